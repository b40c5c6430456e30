"""The development JWT key pair: generated once into run/, reused by every later start."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shop_common.auth import generate_signing_key

from shop_devstack.layout import DevKeys

KEY_FILE = "jwt-dev-key.json"


def import_compose_keys(source: Path, run_dir: Path) -> DevKeys:
    """Adopt the key docker compose's keygen job made (copied out of its volumes) as run/'s key,
    so the operator tools (admin bootstrap) can sign for the compose stack too."""
    kid = (source / "private" / "jwt_kid").read_text().strip()
    private_pem = (source / "private" / "jwt_private_key.pem").read_text()
    public_pem = json.loads((source / "public" / "jwt_public_keys.json").read_text())[kid]
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"kid": kid, "private_pem": private_pem, "public_pem": public_pem}, handle)
    return DevKeys(kid, private_pem, public_pem)


def ensure_dev_keys(run_dir: Path) -> DevKeys:
    """Load run/jwt-dev-key.json, or generate an RSA key pair there (mode 0600) the first time.

    Reusing the key across restarts keeps tokens issued before a restart valid, as a real
    deployment's key would be; `make down` leaves it, `rm run/jwt-dev-key.json` rotates it.
    """
    path = run_dir / KEY_FILE
    if path.exists():
        data = json.loads(path.read_text())
        return DevKeys(data["kid"], data["private_pem"], data["public_pem"])
    run_dir.mkdir(parents=True, exist_ok=True)
    key = generate_signing_key(kid="dev-" + os.urandom(4).hex())
    keys = DevKeys(key.kid, key.private_pem, key.public_pem)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"kid": keys.kid, "private_pem": keys.private_pem, "public_pem": keys.public_pem},
            handle,
        )
    tmp.replace(path)
    return keys

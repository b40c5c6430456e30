"""Generate the development JWT key pair for docker compose (the `keygen` job), once.

    python generate_dev_keys.py /jwt

writes /jwt/public/jwt_public_keys.json ({kid: PEM}, what every service trusts) and
/jwt/private/jwt_private_key.pem + /jwt/private/jwt_kid (what only the gateway mounts).
An existing key is kept, so restarts do not invalidate issued tokens. The local launcher
(`make up`) keeps its key in run/jwt-dev-key.json instead. Development only: production
keys come from a secret store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shop_common.auth import generate_signing_key


def main(directory: str) -> int:
    """Write the key files under directory unless they exist; print what happened."""
    root = Path(directory)
    public = root / "public" / "jwt_public_keys.json"
    private = root / "private" / "jwt_private_key.pem"
    kid_file = root / "private" / "jwt_kid"
    if public.exists() and private.exists() and kid_file.exists():
        print(f"keygen: keeping the existing key {kid_file.read_text().strip()}")
        return 0
    key = generate_signing_key(kid="compose-dev")
    public.parent.mkdir(parents=True, exist_ok=True)
    private.parent.mkdir(parents=True, exist_ok=True)
    public.write_text(json.dumps({key.kid: key.public_pem}))
    private.write_text(key.private_pem)
    private.chmod(0o600)
    kid_file.write_text(key.kid)
    print(f"keygen: generated key {key.kid}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/jwt"))

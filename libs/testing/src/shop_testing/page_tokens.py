"""Forged page tokens: validly signed (the attacker knows or guessed the secret, or an older
release signed another shape) but with a body of every wrong shape. A service must answer each
with 400 / INVALID_ARGUMENT, never 5xx."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shop_common.pagination import sign_token

# Values that a lax parser would coerce or a driver would choke on.
WRONG_VALUES: dict[str, Any] = {
    "true": True,
    "null": None,
    "numeric-string": "2",
    "float": 2.0,
    "2**64": 2**64,
    "2**63": 2**63,
    "negative": -1,
    "list": [1],
    "object": {"a": 1},
    "huge-string": "9" * 1000,
    "huge-int": int("9" * 400),
}


def malformed_bodies(valid: Mapping[str, Any]) -> dict[str, bytes]:
    """Bodies of every wrong shape, derived from one valid body (a JSON object)."""
    bodies: dict[str, bytes] = {
        "not-json": b"{not json",
        "not-utf8": b"\xff\xfe\xfd",
        "empty": b"",
        "json-list": json.dumps(list(valid.values())).encode(),
        "json-string": b'"a"',
        "json-number": b"42",
        "json-null": b"null",
        "empty-object": b"{}",
        "extra-key": json.dumps({**valid, "x": 1}).encode(),
        "duplicate-key-shadowing": (json.dumps(valid)[:-1] + ', "f": 7}').encode(),
    }
    for key in valid:
        bodies[f"missing-{key}"] = json.dumps({k: v for k, v in valid.items() if k != key}).encode()
        for label, value in WRONG_VALUES.items():
            bodies[f"{key}={label}"] = json.dumps({**valid, key: value}).encode()
    return bodies


def forged_page_tokens(secret: str, valid: Mapping[str, Any]) -> dict[str, str]:
    """{label: token}: each malformed body of `valid`, signed with secret."""
    return {label: sign_token(secret, raw) for label, raw in malformed_bodies(valid).items()}

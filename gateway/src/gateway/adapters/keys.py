"""The gateway's signing keys: one current key signs, every trusted key is published and verifies.

Rotation (docs/gateway.md): put the new key in JWT_PRIVATE_KEY/JWT_KID and move the old public
key into JWT_PUBLIC_KEYS. New tokens carry the new kid; old tokens still verify by their kid
until they expire; then the old kid is removed from JWT_PUBLIC_KEYS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shop_common.auth import (
    CachingTokenVerifier,
    SigningKey,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
    jwks,
)
from shop_common.logging import get_logger

from gateway.settings import Settings

_log = get_logger(__name__)


class MissingSigningKeyError(ValueError):
    """No JWT_PRIVATE_KEY outside development/test."""


@dataclass(frozen=True)
class KeyRing:
    """The signing key and every public key the gateway trusts and publishes."""

    signing: SigningKey
    public_keys: Mapping[str, str]

    @classmethod
    def build(cls, signing: SigningKey, trusted: Mapping[str, str] | None = None) -> KeyRing:
        """signing's public key plus the other trusted keys (rotation keeps old kids here)."""
        return cls(signing, {**dict(trusted or {}), signing.kid: signing.public_pem})

    def issuer(self, settings: Settings) -> TokenIssuer:
        """Signs with the current key."""
        return TokenIssuer(
            self.signing, settings.jwt_issuer, settings.jwt_audience, settings.token_ttl_seconds
        )

    def verifier(self, settings: Settings) -> TokenVerifier:
        """Verifies with every published key, chosen by kid (successes cached until exp)."""
        return CachingTokenVerifier(
            self.public_keys,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.jwt_leeway_seconds,
        )

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set served at /.well-known/jwks.json."""
        return jwks(self.public_keys)


def key_ring_from_settings(settings: Settings) -> KeyRing:
    """The configured keys; in development/test without a key, a fresh one (logged)."""
    if settings.jwt_private_key:
        kid = settings.jwt_kid or "gateway"
        return KeyRing.build(SigningKey(kid, settings.jwt_private_key), settings.jwt_public_keys)
    if settings.environment == "production":
        raise MissingSigningKeyError("JWT_PRIVATE_KEY must be set in production")
    key = generate_signing_key()
    _log.warning("jwt_ephemeral_signing_key", kid=key.kid)
    return KeyRing.build(key, settings.jwt_public_keys)

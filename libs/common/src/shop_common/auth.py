"""JWT issue and verification shared by the gateway (issues) and every service (verifies).

Tokens are RS256 only; the algorithm is pinned, `exp`, `iss`, `aud` and `sub` are required,
and the verification key is chosen by the header's `kid`, so keys rotate by adding a new kid
(old tokens stay valid until they expire) and later removing the old one.

The module is long because issuing and verifying are one contract (claims, algorithm, key ids,
the canonical compact form) that must be read, and changed, in one place.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ALGORITHM = "RS256"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
# Far above any token we issue (~800 characters); bounds the work done on a hostile string.
MAX_TOKEN_CHARS = 8192
# Canonical compact JWS (RFC 7515 §7.1, §2: base64url without padding): three non-empty segments
# of the URL-safe alphabet and nothing else: no '=', no whitespace, no '+' or '/'. fullmatch, so
# a trailing newline is refused too ('$' would accept one).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The last character of a segment whose length is 2 or 3 mod 4 carries 4 or 2 unused low bits.
# Decoders ignore them, so 'Q', 'R', 'S', ... would all decode to the same bytes: one signature,
# many token strings. Canonical means those bits are zero (re-encoding gives the same text).
_CANONICAL_LAST = {
    2: frozenset(c for i, c in enumerate(_B64URL) if i % 16 == 0),
    3: frozenset(c for i, c in enumerate(_B64URL) if i % 4 == 0),
}


class AuthError(Exception):
    """A token was missing, malformed, forged, expired or meant for someone else."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified subject and roles of a token."""

    subject: str
    roles: frozenset[str]
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> int:
        """The subject as a user id (tokens issued for users carry the numeric id)."""
        return int(self.subject)

    @property
    def is_admin(self) -> bool:
        """True when the caller holds the admin role."""
        return ADMIN_ROLE in self.roles


ADMIN_ROLE = "admin"
# Least privilege for a front end's sign-up: a registrar creates shopper accounts and nothing else.
REGISTRAR_ROLE = "registrar"
SHOPPER_ROLES = frozenset({"user"})


def account_creation_refusal(caller_roles: Iterable[str], roles: Iterable[str]) -> str | None:
    """Why a caller holding `caller_roles` may not create an account with `roles`, or None when
    it may: an admin creates any account, a registrar only shopper accounts (no role but
    `user`), anyone else none. The user service enforces it; the gateway refuses early with it."""
    held = frozenset(caller_roles)
    if ADMIN_ROLE in held:
        return None
    if REGISTRAR_ROLE in held:
        if frozenset(roles) <= SHOPPER_ROLES:
            return None
        return "a registrar creates shopper accounts only (roles: user)"
    return "creating a user needs the admin role"


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key in PEM with its key id."""

    kid: str
    private_pem: str

    @property
    def public_pem(self) -> str:
        """The matching public key in PEM."""
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


def generate_signing_key(kid: str | None = None, bits: int = 2048) -> SigningKey:
    """A fresh RSA key pair (for development, tests and rotation drills)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningKey(kid or uuid.uuid4().hex[:16], pem)


class TokenIssuer:
    """Signs RS256 access tokens with the current key."""

    def __init__(self, key: SigningKey, issuer: str, audience: str, ttl_seconds: int = 900) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, subject: str, roles: list[str] | tuple[str, ...], **extra: Any) -> str:
        """An access token for subject with roles; extra claims are added as given."""
        now = int(time.time())
        claims = {
            "sub": subject,
            "roles": list(roles),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            **extra,
        }
        return jwt.encode(
            claims, self.key.private_pem, algorithm=ALGORITHM, headers={"kid": self.key.kid}
        )


def is_canonical_compact_jws(token: str) -> bool:
    """True when token is exactly header.payload.signature in unpadded, canonical base64url.

    A length of 1 mod 4 is never valid base64; for 2 or 3 mod 4 the unused trailing bits must
    be zero. So every accepted string decodes to one byte sequence and back to itself.
    """
    if len(token) > MAX_TOKEN_CHARS or _COMPACT_JWS.fullmatch(token) is None:
        return False
    for segment in token.split("."):
        tail = len(segment) % 4
        if tail == 1:
            return False
        if tail and segment[-1] not in _CANONICAL_LAST[tail]:
            return False
    return True


def require_canonical_token(token: str) -> None:
    """AuthError("malformed token") unless token is a canonical compact JWS (before PyJWT)."""
    if not is_canonical_compact_jws(token):
        raise AuthError("malformed token")


class TokenVerifier:
    """Verifies tokens against a set of public keys chosen by kid.

    The whole token string is checked first (`is_canonical_compact_jws`): PyJWT alone accepts
    padded segments and non-zero trailing bits, which makes one signature many token strings.
    """

    def __init__(
        self,
        public_keys: Mapping[str, str],
        issuer: str,
        audience: str,
        leeway_seconds: int = 10,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._keys = {
            kid: serialization.load_pem_public_key(pem.encode()) for kid, pem in public_keys.items()
        }

    def add_key(self, kid: str, public_pem: str) -> None:
        """Trust one more key (rotation: add the new kid before it signs anything)."""
        self._keys[kid] = serialization.load_pem_public_key(public_pem.encode())

    def remove_key(self, kid: str) -> None:
        """Stop trusting a key (after every token it signed has expired)."""
        self._keys.pop(kid, None)

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids trusted now."""
        return tuple(self._keys)

    def verify(self, token: str) -> Principal:
        """The token's principal; AuthError with a short, client-safe reason otherwise."""
        require_canonical_token(token)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthError("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise AuthError("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                self._keys[kid],  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token not meant for this audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token from an untrusted issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("invalid token") from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("invalid roles claim")
        return Principal(str(claims["sub"]), frozenset(roles), claims)


class CachingTokenVerifier(TokenVerifier):
    """A TokenVerifier that remembers successful verifications (RS256 costs ~50 µs a call).

    Every service verifies the caller's token on every request, and a caller sends the same token
    many times until it expires. A token is verified in full once; its Principal is then served
    from memory until the token's own `exp`, or for at most `max_age_seconds` when that is set
    (never longer). Only successes are cached: a bad token is re-verified, and refused, each time.
    Removing a key drops every cached result, so no cached token outlives the key that signed it.
    The cache is keyed by the exact token string, and a string is looked up only after it passed
    the canonical-form check, so a variant of a cached token (padding, whitespace, other unused
    bits) can neither hit the cache nor be stored in it: it is refused like any malformed token.
    The cache holds at most `max_entries` tokens; when full, expired entries go first, then the
    oldest tenth.
    """

    def __init__(
        self,
        public_keys: Mapping[str, str],
        issuer: str,
        audience: str,
        leeway_seconds: int = 10,
        *,
        max_age_seconds: float | None = None,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(public_keys, issuer, audience, leeway_seconds)
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_age_seconds = max_age_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        """The cached principal while the token is unexpired, else a full verification."""
        require_canonical_token(token)
        now = self._clock()
        hit = self._verified.get(token)
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            del self._verified[token]
        principal = super().verify(token)
        expires = principal.claims.get("exp")
        if isinstance(expires, int | float):
            until = float(expires)
            if self.max_age_seconds is not None:
                until = min(until, now + self.max_age_seconds)
            if len(self._verified) >= self._max_entries:
                self._evict(now)
            self._verified[token] = (principal, until)
        return principal

    def remove_key(self, kid: str) -> None:
        """Stop trusting a key, and forget every result verified while it was trusted."""
        super().remove_key(kid)
        self._verified.clear()

    @property
    def cached(self) -> int:
        """How many verified tokens are held now."""
        return len(self._verified)

    def _evict(self, now: float) -> None:
        for token in [t for t, (_, until) in self._verified.items() if until <= now]:
            del self._verified[token]
        # Still full of live tokens: drop the oldest tenth at once (insertion order), so a flood
        # of distinct tokens costs one sweep per max_entries/10 inserts, not one per insert.
        keep = self._max_entries - max(1, self._max_entries // 10)
        while len(self._verified) > keep:
            self._verified.pop(next(iter(self._verified)))


def jwks(public_keys: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """A JSON Web Key Set for these public keys (what /.well-known/jwks.json serves)."""
    keys = []
    for kid, pem in public_keys.items():
        jwk = json.loads(RSAAlgorithm.to_jwk(serialization.load_pem_public_key(pem.encode())))  # type: ignore[arg-type]
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
    return {"keys": keys}


def parse_bearer(header_value: str | None) -> str:
    """The token from an `Authorization: Bearer <token>` value; AuthError otherwise."""
    if not header_value:
        raise AuthError("missing bearer token")
    scheme, _, token = header_value.partition(" ")
    # RFC 6750 §2.1: "Bearer" 1*SP token. Only the separating spaces go; anything else around
    # the token (a tab, a newline) stays, and the verifier refuses it as malformed.
    token = token.lstrip(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("missing bearer token")
    return token

import pytest
from gateway.adapters.keys import KeyRing, MissingSigningKeyError, key_ring_from_settings
from gateway.settings import Settings
from shop_common.auth import generate_signing_key


def test_ring_signs_with_the_current_key_and_publishes_every_trusted_one() -> None:
    old, new = generate_signing_key("old"), generate_signing_key("new")
    settings = Settings(
        jwt_private_key=new.private_pem, jwt_kid="new", jwt_public_keys={"old": old.public_pem}
    )
    ring = key_ring_from_settings(settings)
    assert ring.signing.kid == "new"
    assert {k["kid"] for k in ring.jwks()["keys"]} == {"old", "new"}
    verifier = ring.verifier(settings)
    token = ring.issuer(settings).issue("5", ["user"])
    assert verifier.verify(token).subject == "5"
    old_ring = KeyRing.build(old)
    assert verifier.verify(old_ring.issuer(settings).issue("6", [])).subject == "6"


def test_production_without_a_private_key_is_refused() -> None:
    key = generate_signing_key("k")
    settings = Settings(environment="production", jwt_public_keys={"k": key.public_pem})
    with pytest.raises(MissingSigningKeyError):
        key_ring_from_settings(settings)


def test_development_without_a_key_gets_an_ephemeral_one() -> None:
    ring = key_ring_from_settings(Settings(environment="development"))
    assert list(ring.public_keys) == [ring.signing.kid]

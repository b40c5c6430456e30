"""Pure logic: field masks, filters, page tokens, validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from shop_common.pagination import sign_token
from shop_common.settings import PLACEHOLDER_SECRETS
from shop_testing.page_tokens import forged_page_tokens
from user_service.domain.errors import InvalidArgument
from user_service.domain.field_mask import build_patch, effective_paths
from user_service.domain.listing import (
    MAX_PAGE_SIZE,
    UserFilter,
    UserPageTokens,
    page_size_or_default,
    parse_filter,
)
from user_service.domain.model import normalize_email, validate_name, validate_roles
from user_service.settings import DEV_PAGE_TOKEN_SECRET, Settings

VALUES = {"email": "a@example.com", "name": "Ada", "roles": ["admin"], "password": "long enough"}


def test_patch_has_exactly_the_mask_paths() -> None:
    patch = build_patch(["name"], **VALUES)
    assert (patch.email, patch.name, patch.roles, patch.password) == (None, "Ada", None, None)
    assert build_patch(["roles", "email"], **VALUES).roles == ("admin",)


@pytest.mark.parametrize("paths", [["created_at"], ["id"], ["name", "name"], ["user.name"]])
def test_unknown_or_repeated_path_is_invalid(paths: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        build_patch(paths, **VALUES)


def test_empty_mask_means_every_non_default_field() -> None:
    assert effective_paths([], email="a@example.com", name="", roles=[], password="") == ["email"]
    assert effective_paths([], email="", name="", roles=[], password="") == []
    assert build_patch([], email="", name="", roles=[], password="").is_empty
    assert effective_paths(["name"], email="x", name="", roles=[], password="") == ["name"]


def test_masked_field_is_validated() -> None:
    with pytest.raises(InvalidArgument, match="name"):
        build_patch(["name"], email="", name=" ", roles=[], password="")
    # an unmasked bad value is ignored
    assert build_patch(["name"], email="bad", name="Ok", roles=[], password="").name == "Ok"


def test_filter_parsing() -> None:
    assert parse_filter("email:@Example.COM role:admin") == UserFilter("@example.com", "admin")
    assert parse_filter("") == UserFilter()
    for bad in ("colour:red", "email:", "email:a email:b", "role:Bad!", "plain"):
        with pytest.raises(InvalidArgument):
            parse_filter(bad)


def test_page_size_bounds() -> None:
    assert page_size_or_default(0) == 100
    assert page_size_or_default(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    for bad in (-1, MAX_PAGE_SIZE + 1):
        with pytest.raises(InvalidArgument):
            page_size_or_default(bad)


@given(st.integers(min_value=0, max_value=2**62), st.text(max_size=20))
def test_page_token_round_trips(after_id: int, email: str) -> None:
    codec = UserPageTokens("secret")
    user_filter = UserFilter(email or None, None)
    assert codec.decode(codec.encode(after_id, user_filter), user_filter) == after_id


def test_page_token_is_tamper_evident() -> None:
    codec = UserPageTokens("secret")
    token = codec.encode(42, UserFilter())
    with pytest.raises(InvalidArgument):
        UserPageTokens("other secret").decode(token, UserFilter())
    with pytest.raises(InvalidArgument, match="different filter"):
        codec.decode(token, UserFilter(None, "admin"))
    for bad in ("", "!!!", token[:-2], "A" * 40):
        with pytest.raises(InvalidArgument):
            codec.decode(bad, UserFilter())


def test_email_and_roles_validation() -> None:
    assert normalize_email("  Ada@Example.com ") == "Ada@Example.com"
    with pytest.raises(InvalidArgument):
        normalize_email("no-at-sign")
    assert validate_roles(["b", "a", "a"]) == ("a", "b")
    with pytest.raises(InvalidArgument):
        validate_roles(["Admin"])


@pytest.mark.parametrize("bad", ["a\x00b@example.com", "a@exa\x01mple.com", "a@example.com\x7f"])
def test_email_with_a_control_character_is_invalid(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        normalize_email(bad)


def test_name_and_filter_with_a_control_character_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match="control"):
        validate_name("Ada\x00")
    with pytest.raises(InvalidArgument, match="control"):
        parse_filter("email:ada\x00")
    assert validate_name("Ada Lovelace") == "Ada Lovelace"


VALID_BODY = {"a": 42, "f": UserFilter().canonical}


def test_the_forgeries_start_from_a_body_the_codec_accepts() -> None:
    token = sign_token("secret", json.dumps(VALID_BODY).encode())
    assert UserPageTokens("secret").decode(token, UserFilter()) == 42


@pytest.mark.parametrize(
    ("label", "token"), sorted(forged_page_tokens("secret", VALID_BODY).items())
)
def test_validly_signed_tokens_of_the_wrong_shape_are_invalid_argument(
    label: str, token: str
) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        UserPageTokens("secret").decode(token, UserFilter())


@pytest.mark.parametrize("after", [2**63, 2**64, -1, True, "7", 7.0, None])
def test_the_position_must_be_a_bigint_id(after: object) -> None:
    token = sign_token("secret", json.dumps({**VALID_BODY, "a": after}).encode())
    with pytest.raises(InvalidArgument, match="page_token is not valid"):
        UserPageTokens("secret").decode(token, UserFilter())


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize("secret", [DEV_PAGE_TOKEN_SECRET, *PLACEHOLDER_SECRETS])
def test_outside_development_the_development_page_token_secret_is_refused(
    environment: Literal["production", "test"], secret: str
) -> None:
    keys = {"k": "pem"}
    with pytest.raises(ValidationError, match="PAGE_TOKEN_SECRET"):
        Settings(environment=environment, jwt_public_keys=keys, page_token_secret=secret)
    assert (
        Settings(
            environment=environment, jwt_public_keys=keys, page_token_secret="p"
        ).page_token_secret
        == "p"
    )


def test_development_keeps_its_default() -> None:
    assert Settings(environment="development").page_token_secret == DEV_PAGE_TOKEN_SECRET


def test_the_process_refuses_to_start_in_production_with_the_development_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PAGE_TOKEN_SECRET", "ENVIRONMENT")}
    env.update(ENVIRONMENT="production", JWT_PUBLIC_KEYS='{"k": "pem"}', GRPC_PORT="1")
    done = subprocess.run(
        [sys.executable, "-m", "user_service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "PAGE_TOKEN_SECRET must be set" in done.stderr

"""Domain rules: sku shape, prices, page tokens bound to their filters, the product image."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from catalog_service.domain.errors import InvalidPriceError
from catalog_service.domain.listing import InvalidPageTokenError, ProductFilter, ProductPageTokens
from catalog_service.domain.product import Category, Product, check_price, is_sku
from catalog_service.entrypoints.schemas import product_svg
from shop_common.pagination import sign_token


@pytest.mark.parametrize("sku", ["BOOK-001", "ABC", "A1-B2-C3", "X" * 32])
def test_well_formed_skus(sku: str) -> None:
    assert is_sku(sku)


@pytest.mark.parametrize(
    "sku", ["", "AB", "book-001", "BOOK--1", "-BOOK", "BOOK-", "X" * 33, "BO OK"]
)
def test_malformed_skus(sku: str) -> None:
    assert not is_sku(sku)


def test_prices_keep_two_places() -> None:
    assert check_price(Decimal("5")) == Decimal("5.00")
    with pytest.raises(InvalidPriceError):
        check_price(Decimal("sNaN"))


def test_a_page_token_round_trips_and_is_bound_to_its_filter() -> None:
    tokens = ProductPageTokens("secret")
    books = ProductFilter("tea", Category.BOOKS)
    token = tokens.encode("BOOK-004", books)
    assert tokens.decode(token, books) == "BOOK-004"
    with pytest.raises(InvalidPageTokenError):
        tokens.decode(token, ProductFilter("tea", Category.TOYS))
    with pytest.raises(InvalidPageTokenError):
        ProductPageTokens("other").decode(token, books)


@pytest.mark.parametrize("last", ["2", "book-001", "BOOK 001", "A" * 40, "-X"])
def test_a_signed_token_whose_sku_is_not_an_sku_is_refused(last: str) -> None:
    """A validly signed body of the right types but an impossible sku (a forged or old token)."""
    tokens = ProductPageTokens("secret")
    everything = ProductFilter(None, None)
    body = json.dumps({"s": last, "f": everything.canonical}).encode()
    with pytest.raises(InvalidPageTokenError):
        tokens.decode(sign_token("secret", body), everything)


def test_the_svg_escapes_the_name() -> None:
    product = Product(
        "EVIL-1", "<script>alert(1)</script>", "x", Category.TOYS, Decimal("1.00"), "EUR"
    )
    svg = product_svg(product)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg

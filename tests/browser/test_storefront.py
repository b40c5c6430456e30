"""A shopper's whole journey in a real browser: browse and search the catalog, fill a cart, sign
up, place the order and watch it reach PAID live (SSE through the gateway), find it in the order
history, cancel it and watch the refund; at phone width too. No token in a URL, no cookie, and
no console error (a Content-Security-Policy violation would be one)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Tab

pytestmark = pytest.mark.infra

SEARCH = "Kite"
SECOND = "Hammock"


def _add(tab: Tab, name: str) -> None:
    page = tab.page
    page.get_by_label("Search products").fill(name)
    page.get_by_role("button", name="Search").click()
    button = page.get_by_role("button", name=f"Add {name} to cart")
    expect(button).to_be_visible()
    button.click()
    expect(page.get_by_role("status")).to_contain_text(f"{name} added to your cart")


def test_a_shopper_signs_up_orders_watches_it_paid_and_cancels_it(tab: Tab) -> None:
    page = tab.open("/")
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    expect(page.locator(".product").first).to_be_visible()
    image = page.locator(".product img").first
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0, f"no product image: {tab.failed}"
    tab.shot("storefront-catalog")

    _add(tab, SEARCH)
    _add(tab, SECOND)
    expect(page.locator("#cart-count")).to_have_text("2")

    page.get_by_role("link", name=re.compile("^Cart")).click()
    expect(page.get_by_role("heading", name="Cart")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(SEARCH))).to_be_visible()
    page.get_by_label(f"Quantity of {SECOND}").fill("2")
    page.get_by_label(f"Quantity of {SECOND}").dispatch_event("change")
    expect(page.locator("#cart-count")).to_have_text("3")
    tab.shot("storefront-cart")

    # Placing the order asks for an account first.
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    email = f"shopper.{uuid.uuid4().hex[:8]}@shop.example"
    page.locator("#signup-name").fill("Browser Shopper")
    page.locator("#signup-email").fill(email)
    page.locator("#signup-password").fill("a long enough password")
    tab.shot("storefront-sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("you are signed in", timeout=60_000)
    expect(page.get_by_role("heading", name="Cart")).to_be_visible()

    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name=re.compile("^Order "))).to_be_visible()
    status = page.locator("#order-status")
    expect(status).to_have_text("PAID", timeout=60_000)
    steps = page.locator("#order-steps li")
    expect(steps.first).to_have_attribute("data-status", "PENDING")
    expect(steps.last).to_have_attribute("data-status", "PAID")
    expect(page.locator("#cart-count")).to_have_text("0")
    order_id = page.url.rsplit("/", 1)[1]
    tab.shot("storefront-order-paid")

    page.get_by_role("link", name="Orders", exact=True).click()
    row = page.locator(f'tr[data-order="{order_id}"]')
    expect(row).to_contain_text("PAID")
    tab.shot("storefront-orders")

    row.get_by_role("link").click()
    expect(status).to_have_text("PAID")
    page.get_by_role("button", name="Cancel this order").click()
    expect(status).to_have_text("REFUNDED", timeout=60_000)
    expect(page.locator('#order-steps li[data-status="CANCELLED_REFUND_PENDING"]')).to_have_count(1)
    tab.shot("storefront-order-refunded")

    token = page.evaluate("sessionStorage.getItem('shop.token')")
    assert token, "the page keeps its token in sessionStorage"
    assert not [url for url in tab.urls if token in url], "a token was sent in a URL"
    assert tab.context.cookies() == [], "the shop set a cookie"
    assert tab.errors == []
    assert tab.failed == []


def test_the_storefront_works_at_phone_width(tab: Tab) -> None:
    page = tab.page
    page.set_viewport_size(PHONE)
    tab.open("/")
    expect(page.locator(".product").first).to_be_visible()
    # Nothing is wider than the phone (no horizontal scrolling).
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.shot("storefront-phone", full_page=False)
    # The keyboard reaches the skip link first, and it moves focus to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_role("link", name="Catalog").click()
    _add(tab, SEARCH)
    expect(page.locator("#cart-count")).to_have_text("1")
    assert tab.errors == []


def test_a_wrong_password_is_told_and_no_token_is_kept(tab: Tab) -> None:
    page = tab.open("/#account")
    page.locator("#signin-email").fill("nobody@shop.example")
    page.locator("#signin-password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").first).to_have_text("Wrong email or password.")
    assert page.evaluate("sessionStorage.getItem('shop.token')") is None
    assert tab.errors == []


def test_every_page_carries_the_content_security_policy(tab: Tab) -> None:
    for path in ("/", "/console", "/static/js/store.js", "/static/css/site.css"):
        response = httpx.get(tab.base_url + path, timeout=10)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    page = httpx.get(tab.base_url + "/", timeout=10).text
    assert "<script>" not in page and "<script " in page, "scripts are files, never inline"

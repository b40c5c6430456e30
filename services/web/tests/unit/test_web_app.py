"""The web service's HTTP edge on fakes: pages and their security headers, sign-up, and the
order stream (authentication, ownership, the frames)."""

from __future__ import annotations

import json
from typing import Any

import httpx


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_pages_are_html_with_the_security_headers(web: Any) -> None:
    for path in ("/", "/console", "/static/js/store.js", "/static/css/site.css"):
        response = await web.http.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    page = (await web.http.get("/")).text
    assert '<script type="module" src="/static/js/store.js">' in page
    assert "<script>" not in page


async def test_an_unknown_path_is_a_404_problem_with_the_headers(web: Any) -> None:
    response = await web.http.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "content-security-policy" in response.headers


async def test_sign_up_creates_a_shopper_once(web: Any) -> None:
    body = {"email": "ada@example.com", "name": "Ada", "password": "long enough"}
    first = await web.http.post("/web/signup", json=body)
    assert first.status_code == 201
    assert first.json() == {"id": 1, "email": "ada@example.com"}
    assert first.headers["cache-control"] == "no-store"
    again = await web.http.post("/web/signup", json=body)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_a_bad_sign_up_is_a_422_problem(web: Any) -> None:
    for body in (
        {"email": "x", "name": "Ada", "password": "long enough"},
        {"email": "ada@example.com", "name": "Ada", "password": "short"},
        {"email": "ada@example.com", "name": "Ada", "password": "long enough", "roles": ["admin"]},
        {"email": 1, "name": "Ada", "password": "long enough"},
    ):
        response = await web.http.post("/web/signup", json=body)
        assert response.status_code == 422, body
    assert web.accounts.created == {}


def _frames(text: str) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        frames.append((lines["event"], json.loads(lines["data"])))
    return frames


async def test_the_order_stream_sends_each_state_then_ends(web: Any) -> None:
    token = web.issuer.issue("7", ["user"])
    web.orders.owner_token = token
    order_id = "0b7e3f5c-6a0e-4a59-9a53-2f8f3b1a7c11"
    web.orders.states[order_id] = ["PENDING", "PENDING", "PAID"]
    response = await web.http.get(f"/web/orders/{order_id}/events", headers=_bearer(token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    frames = _frames(response.text)
    assert [(name, data.get("status")) for name, data in frames] == [
        ("order", "PENDING"),
        ("order", "PAID"),
        ("end", None),
    ]


async def test_the_order_stream_needs_a_valid_token_and_the_owner(web: Any) -> None:
    order_id = "0b7e3f5c-6a0e-4a59-9a53-2f8f3b1a7c11"
    web.orders.states[order_id] = ["PENDING"]
    path = f"/web/orders/{order_id}/events"
    assert (await web.http.get(path)).status_code == 401
    assert (await web.http.get(path, headers=_bearer("not.a.token"))).status_code == 401
    stranger = await web.http.get(path, headers=_bearer(web.issuer.issue("8", ["user"])))
    assert stranger.status_code == 404  # the order service's answer, passed on
    assert stranger.headers["content-type"] == "application/problem+json"
    bad_id = await web.http.get(
        "/web/orders/..%2f..%2fadmin/events", headers=_bearer(web.issuer.issue("8", ["user"]))
    )
    assert bad_id.status_code in (404, 422)


async def test_the_service_is_ready_once_started(web: Any) -> None:
    ready = await web.http.get("/ready")
    assert ready.status_code == 200
    metrics = await web.http.get("/metrics")
    assert isinstance(metrics, httpx.Response)
    assert metrics.status_code == 200

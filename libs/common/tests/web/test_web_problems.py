"""Every error FastAPI/Starlette can produce leaves as RFC 9457 application/problem+json."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from shop_common.web import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from conftest import Harness


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert body["type"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body  # type: ignore[no-any-return]


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nope"), 404)
    assert body["title"] == "Not Found"
    assert body["instance"] == "/nope"


async def test_wrong_method_is_a_405_problem_allowing_every_method_of_the_path(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/items")
    assert_problem(response, 405)
    # GET and POST are two routes; Starlette alone would name only the first one.
    assert response.headers["allow"] == "GET, POST"


async def test_validation_error_lists_fields_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    secret = "short-pw"
    response = await client.post("/items", json={"name": "", "password": secret, "quantity": 0})
    body = assert_problem(response, 422)
    locations = sorted(tuple(e["loc"]) for e in body["errors"])  # type: ignore[attr-defined]
    assert locations == [("body", "name"), ("body", "password"), ("body", "quantity")]
    assert secret not in response.text
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])  # type: ignore[attr-defined]


async def test_malformed_json_body_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_path_parameter_of_the_wrong_type_is_a_422_problem(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.get("/items/abc"), 422)
    assert body["errors"][0]["loc"] == ["path", "item_id"]  # type: ignore[index]


async def test_http_exception_keeps_its_status_and_detail(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/conflict"), 409)
    assert body["title"] == "Conflict"
    assert body["detail"] == "already exists"


async def test_problem_error_carries_type_title_and_detail(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/items/0"), 404)
    assert body["type"] == "/problems/no-item"
    assert body["title"] == "Item not found"
    assert body["detail"] == "no item 0"
    assert (await client.get("/items/7")).json() == {"id": 7}


async def test_unhandled_exception_is_a_bare_500_and_is_logged(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    response = await client.get("/boom")
    body = assert_problem(response, 500)
    assert set(body) == {"type", "title", "status", "instance", "request_id"}
    assert "hunter2" not in response.text and "SELECT" not in response.text
    errors = [e for e in harness.logs.entries if e["event"] == "unhandled_exception"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == response.headers["x-request-id"]
    assert harness.access_lines()[-1]["status"] == 500


async def test_oversized_body_by_content_length_is_a_413_problem(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.post("/upload", content=b"x" * 2000), 413)
    assert "1024" in body["detail"]  # type: ignore[operator]
    assert (await client.post("/upload", content=b"x" * 1024)).json() == {"size": 1024}


async def test_oversized_chunked_body_is_a_413_problem(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"y" * 300

    assert_problem(await client.post("/upload", content=chunks()), 413)


def test_openapi_documents_problem_json_instead_of_fastapis_422(harness: Harness) -> None:
    schema = harness.app.openapi()
    post = schema["paths"]["/items"]["post"]["responses"]
    assert list(post["422"]["content"]) == [PROBLEM_MEDIA_TYPE]
    assert post["422"]["content"][PROBLEM_MEDIA_TYPE]["schema"]["$ref"].endswith(
        "/ValidationProblem"
    )
    get_one = schema["paths"]["/items/{item_id}"]["get"]["responses"]
    assert get_one["404"]["content"][PROBLEM_MEDIA_TYPE]["schema"]["$ref"].endswith("/Problem")
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert harness.app.openapi() is schema

"""The transcoded user API documents itself: schemas, media types, problems, examples."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from gateway.entrypoints.transcoding import build_users_router
from shop_common.web import instrument_app


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    app = FastAPI()
    instrument_app(app)
    app.include_router(build_users_router(lambda: pytest.fail("no call while documenting")))
    return app.openapi()


def test_every_route_is_documented_with_its_media_types(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    assert set(paths["/api/users"]) == {"get", "post"}
    assert set(paths["/api/users/{user_id}"]) == {"get", "patch", "delete"}
    listing = paths["/api/users"]["get"]["responses"]["200"]["content"]
    assert set(listing) == {"application/json", "application/x-ndjson"}
    updates = paths["/api/users/updates"]["get"]["responses"]["200"]["content"]
    assert list(updates) == ["text/event-stream"]
    assert "example" in updates["text/event-stream"]
    assert "201" in paths["/api/users"]["post"]["responses"]
    assert "204" in paths["/api/users/{user_id}"]["delete"]["responses"]


def test_errors_are_problem_json_and_bodies_have_examples(openapi: dict[str, Any]) -> None:
    patch = openapi["paths"]["/api/users/{user_id}"]["patch"]
    for status in ("401", "403", "404", "409", "422", "503", "504"):
        assert "application/problem+json" in patch["responses"][status]["content"], status
    schemas = openapi["components"]["schemas"]
    update = schemas["UserUpdate"]
    assert update["additionalProperties"] is False
    assert update["minProperties"] == 1
    assert all("null" not in str(p) for p in update["properties"].values())
    for name in ("UserCreate", "UserUpdate", "UserPublic", "UserPage"):
        assert schemas[name]["examples"], name
    assert patch["security"] == [{"HTTPBearer": []}]


def test_operation_ids_are_unique(openapi: dict[str, Any]) -> None:
    ids = [op["operationId"] for ops in openapi["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))

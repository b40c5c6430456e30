"""A small FastAPI app wired with shop_common.web, served in-process or by a real uvicorn."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from shop_common.auth import Principal, SigningKey, TokenIssuer, TokenVerifier, generate_signing_key
from shop_common.web import (
    BodySizeLimitMiddleware,
    HttpMetricsMiddleware,
    ProblemError,
    RequestContextMiddleware,
    bearer_principal,
    health_router,
    install_problem_details,
    metrics_router,
    problem_responses,
    require_role,
)
from structlog.testing import LogCapture

ISSUER, AUDIENCE = "test-issuer", "test-aud"
BODY_LIMIT = 1024


class ItemCreate(BaseModel):
    name: str = Field(min_length=1)
    password: str = Field(min_length=12)
    quantity: int = Field(gt=0)


@dataclass
class Harness:
    """The app plus the knobs tests turn: readiness results, the stream gate, captured logs."""

    app: FastAPI
    logs: LogCapture
    # Per check: "ok", "failing", "raise" or "hang".
    ready: dict[str, str] = field(default_factory=lambda: {"database": "ok", "broker": "ok"})
    stream_gate: asyncio.Event = field(default_factory=asyncio.Event)

    def access_lines(self) -> list[dict[str, Any]]:
        return [e for e in self.logs.entries if e["event"] == "http_request"]


def build_app(verifier: TokenVerifier, logs: LogCapture) -> Harness:
    app = FastAPI()
    harness = Harness(app=app, logs=logs)
    auth = bearer_principal(verifier)
    install_problem_details(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=BODY_LIMIT)
    app.add_middleware(HttpMetricsMiddleware)
    logger = structlog.wrap_logger(
        structlog.PrintLogger(), processors=[structlog.contextvars.merge_contextvars, logs]
    )
    app.add_middleware(RequestContextMiddleware, logger=logger)

    async def check(name: str) -> bool:
        behaviour = harness.ready[name]
        if behaviour == "raise":
            raise ConnectionRefusedError("cannot reach it")
        if behaviour == "hang":
            await asyncio.Event().wait()
        return behaviour == "ok"

    app.include_router(
        health_router({name: (lambda n=name: check(n)) for name in harness.ready}, timeout=0.5)
    )
    app.include_router(metrics_router())

    @app.get("/items/{item_id}", responses=problem_responses(404))
    async def get_item(item_id: int) -> dict[str, Any]:
        if item_id == 0:
            raise ProblemError(
                404, "Item not found", f"no item {item_id}", type="/problems/no-item"
            )
        return {"id": item_id}

    @app.get("/items")
    async def list_items() -> list[int]:
        return [1, 2]

    @app.post("/items", status_code=201)
    async def create_item(item: ItemCreate) -> dict[str, Any]:
        return {"name": item.name, "quantity": item.quantity}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/conflict")
    async def conflict() -> None:
        raise HTTPException(409, "already exists")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in SELECT * FROM users")

    @app.get("/context")
    async def context(request: Request) -> dict[str, Any]:
        return {
            "bound": structlog.contextvars.get_contextvars().get("request_id"),
            "state": request.state.request_id,
        }

    @app.get("/sets-own-id")
    async def sets_own_id() -> Response:
        return Response("ok", headers={"X-Request-ID": "set-by-the-app"})

    @app.get("/me")
    async def me(principal: Annotated[Principal, Depends(auth)]) -> dict[str, Any]:
        return {"subject": principal.subject, "roles": sorted(principal.roles)}

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, Depends(require_role("admin", auth))]) -> str:
        return principal.subject

    staff = APIRouter(dependencies=[Depends(auth)])

    @staff.get("/staff")
    async def staff_only(principal: Annotated[Principal, Depends(require_role("staff"))]) -> str:
        return principal.subject

    app.include_router(staff)

    @app.get("/unauthenticated-role")
    async def misconfigured(principal: Annotated[Principal, Depends(require_role("x"))]) -> str:
        return principal.subject

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await harness.stream_gate.wait()
            yield b"second\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    return harness


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("k1")


@pytest.fixture
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, ISSUER, AUDIENCE)


@pytest.fixture
def harness(signing_key: SigningKey) -> Harness:
    verifier = TokenVerifier({signing_key.kid: signing_key.public_pem}, ISSUER, AUDIENCE)
    return build_app(verifier, LogCapture())


@pytest_asyncio.fixture
async def client(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=harness.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        yield c


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest_asyncio.fixture
async def server_url(harness: Harness, listening_socket: socket.socket) -> AsyncIterator[str]:
    """The harness app behind a real uvicorn on an ephemeral port, in this event loop."""
    config = uvicorn.Config(harness.app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listening_socket]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    host, port = listening_socket.getsockname()
    yield f"http://{host}:{port}"
    server.should_exit = True
    harness.stream_gate.set()
    await task

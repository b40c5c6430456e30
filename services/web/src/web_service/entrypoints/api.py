"""The web service's JSON and Server-Sent Events API (under /web, behind the gateway).

- POST /web/signup: a shopper opens an account (public; the gateway rate-limits it per address);
- GET /web/orders/{order_id}/events: the order's states live (the shopper's own token).
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from shop_common.web import problem_responses
from starlette.responses import StreamingResponse

from web_service.domain.errors import Refused, Unavailable
from web_service.domain.orders import OrderState
from web_service.domain.signup import SignUpForm
from web_service.entrypoints.deps import Running, Token
from web_service.entrypoints.errors import as_problem
from web_service.entrypoints.sse import event_stream, frame


class SignUpBody(BaseModel):
    """POST /web/signup: strict strings, nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True)
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=256)


class SignedUp(BaseModel):
    """The new account (the shopper then signs in at POST /auth/token)."""

    id: int
    email: str


public_router = APIRouter(prefix="/web", tags=["storefront"])
shopper_router = APIRouter(prefix="/web", tags=["storefront"])


@public_router.post(
    "/signup",
    status_code=201,
    responses=problem_responses(409, 422, 503),
    summary="Open a shopper account",
)
async def sign_up(body: SignUpBody, app: Running, response: Response) -> SignedUp:
    user_id = await app.sign_up(SignUpForm(body.email, body.name, body.password))
    response.headers["Cache-Control"] = "no-store"
    return SignedUp(id=user_id, email=body.email.strip())


@shopper_router.get(
    "/orders/{order_id}/events",
    responses=problem_responses(401, 403, 404, 503),
    summary="The order's states, live (text/event-stream: `event: order`, JSON data)",
    response_class=StreamingResponse,
)
async def order_events(
    order_id: Annotated[UUID, Path(description="The order's id")], app: Running, token: Token
) -> StreamingResponse:
    states = app.order_watch.follow(token, str(order_id))
    try:
        first = await anext(states)  # a refused first read is an HTTP status, not a stream
    except (Refused, Unavailable) as exc:
        raise as_problem(exc) from exc

    async def frames() -> AsyncIterator[bytes]:
        yield frame("order", first.as_event())
        try:
            state: OrderState
            async for state in states:
                yield frame("order", state.as_event())
        except (Refused, Unavailable) as exc:
            problem = as_problem(exc)
            yield frame("error", {"status": problem.status, "detail": problem.detail})
            return
        yield frame("end", {"order_id": str(order_id)})

    return event_stream(frames(), app.settings.sse_keepalive_seconds)

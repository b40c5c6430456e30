"""The pages: server-rendered Jinja2 shells; their data comes from the public API in the page's
own scripts (static ES modules), with the bearer token the shopper got at sign-in.

The pages carry no data of anyone (the console's numbers come from its admin-only stream), so
they are public and the same for every caller.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = Jinja2Templates(directory=PACKAGE / "templates")
STATIC_DIR = PACKAGE / "static"
PAGE_HEADERS = {"Cache-Control": "no-cache"}

pages_router = APIRouter(include_in_schema=False)


@pages_router.get("/", response_class=HTMLResponse)
async def storefront(request: Request) -> HTMLResponse:
    """The storefront: catalog, cart, checkout, live order, order history, account."""
    return TEMPLATES.TemplateResponse(
        request, "store.html", {"title": "Shop"}, headers=PAGE_HEADERS
    )


@pages_router.get("/console", response_class=HTMLResponse)
async def console(request: Request) -> HTMLResponse:
    """The system console's shell (its data: the admin-only stream /web/console/events)."""
    return TEMPLATES.TemplateResponse(
        request, "console.html", {"title": "System console"}, headers=PAGE_HEADERS
    )

"""The HTTP edge: `create_app(settings, **overrides)` and the module-level routers it mounts.

Why HTTP (FastAPI) and not gRPC: the gateway already proxies HTTP to the order and payment
services, and products are public resources whose GETs are cacheable by URL (Cache-Control,
the gateway's response cache); one service shape for the three FastAPI services.

- public: GET /products (q, category, keyset pages), GET /products/{sku},
  GET /products/{sku}/image (SVG), GET /products/{sku}/stock;
- admin (JWT with the admin role): PUT /products/{sku}/price, POST /products/{sku}/restock.

The app's lifespan runs `bootstrap(settings, **overrides)` and keeps its App in
`app.state.app`; each endpoint gets what it needs through a small dependency (503 while the
process starts or stops). Every route is also mounted under /api (the gateway may forward it
with its prefix).
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from shop_common.auth import Principal
from shop_common.web import (
    ProblemError,
    bearer_principal,
    instrument_app,
    problem_responses,
    require_role,
    service_app,
    token_verifier,
)
from shop_common.web.chaos import install_chaos
from shop_common.web.paths import forwarded_prefix

from catalog_service.bootstrap import App, bootstrap
from catalog_service.domain.listing import MAX_QUERY_LENGTH, ProductFilter
from catalog_service.domain.product import SKU_MAX_LENGTH, SKU_MIN_LENGTH, SKU_PATTERN, Category
from catalog_service.entrypoints.http_errors import install_catalog_errors
from catalog_service.entrypoints.schemas import (
    PriceUpdate,
    ProductPage,
    ProductPublic,
    Restock,
    StockPublic,
    product_svg,
)
from catalog_service.settings import Settings

DESCRIPTION = """\
Products, prices and stock. Reads are public and cacheable; an admin changes prices and
restocks, which publish `product.price_changed` and `stock.changed` on the `catalog` exchange
through the outbox. Errors are RFC 9457 problem details (`application/problem+json`).
"""
PUBLIC_CACHE = {"Cache-Control": "public, max-age=30"}
NO_STORE = {"Cache-Control": "no-store"}


def _running(request: Request) -> App:
    app = getattr(request.app.state, "app", None)
    if not isinstance(app, App):
        raise ProblemError(503, detail="the service is starting", headers={"Retry-After": "1"})
    return app


async def running(request: Request) -> App:
    """The started service (503 while it starts or stops)."""
    return _running(request)


Running = Annotated[App, Depends(running)]
AdminCaller = Annotated[Principal, Depends(require_role("admin"))]
Sku = Annotated[
    str,
    Path(
        min_length=SKU_MIN_LENGTH,
        max_length=SKU_MAX_LENGTH,
        pattern=SKU_PATTERN,
        description="Upper-case letters and digits in dash-separated groups, e.g. BOOK-001.",
    ),
]

products_router = APIRouter(prefix="/products", tags=["products"])
admin_router = APIRouter(prefix="/products", tags=["admin"])


@products_router.get(
    "",
    response_model=ProductPage,
    responses=problem_responses(400, 422, 503),
    summary="List products by sku, optionally searched and filtered",
)
async def list_products(
    request: Request,
    response: Response,
    app: Running,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_QUERY_LENGTH,
            pattern=r"^[^\x00-\x1f\x7f]*$",  # no control characters (PostgreSQL refuses NUL)
            description="text in name or description",
        ),
    ] = None,
    category: Category | None = None,
    page_size: Annotated[int | None, Query(ge=1, le=1000)] = None,
    page_token: Annotated[
        str | None,
        Query(description="next_page_token of the previous page, for the same q and category."),
    ] = None,
) -> ProductPage:
    where = ProductFilter(q.strip() or None if q else None, category)
    after = app.page_tokens.decode(page_token, where) if page_token else None
    rows, last = await app.reads.page(where, after, app.page_sizes.size(page_size))
    prefix = forwarded_prefix(request)
    response.headers.update(PUBLIC_CACHE)
    return ProductPage(
        items=[ProductPublic.of(p, prefix) for p in rows],
        next_page_token=app.page_tokens.encode(last, where) if last else None,
    )


@products_router.get(
    "/{sku}",
    response_model=ProductPublic,
    responses=problem_responses(404, 422, 503),
    summary="One product (served from the product cache)",
)
async def get_product(
    request: Request, response: Response, sku: Sku, app: Running
) -> ProductPublic:
    product = await app.reads.product(sku)
    response.headers.update(PUBLIC_CACHE)
    return ProductPublic.of(product, forwarded_prefix(request))


@products_router.get(
    "/{sku}/image",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **problem_responses(404, 422, 503)},
    summary="The product's image (a generated SVG)",
)
async def get_image(sku: Sku, app: Running) -> Response:
    product = await app.reads.product(sku, count_view=False)
    return Response(
        product_svg(product),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@products_router.get(
    "/{sku}/stock",
    response_model=StockPublic,
    responses=problem_responses(404, 422, 503),
    summary="The sku's available stock (never cached)",
)
async def get_stock(response: Response, sku: Sku, app: Running) -> StockPublic:
    available = await app.reads.available(sku)
    response.headers.update(NO_STORE)
    return StockPublic(sku=sku, available=available)


@admin_router.put(
    "/{sku}/price",
    response_model=ProductPublic,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Set a product's price (admin); publishes product.price_changed",
)
async def put_price(
    request: Request, sku: Sku, body: PriceUpdate, admin: AdminCaller, app: Running
) -> ProductPublic:
    product = await app.admin.change_price(sku, body.price, actor=admin.subject)
    return ProductPublic.of(product, forwarded_prefix(request))


@admin_router.post(
    "/{sku}/restock",
    response_model=StockPublic,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
    summary="Add stock to a sku (admin); publishes stock.changed",
)
async def post_restock(sku: Sku, body: Restock, admin: AdminCaller, app: Running) -> StockPublic:
    available = await app.admin.restock(sku, body.quantity, actor=admin.subject)
    return StockPublic(sku=sku, available=available)


def create_app(settings: Settings | None = None, **overrides: Any) -> FastAPI:
    """The app; its lifespan runs bootstrap(settings, **overrides) (adapters for tests)."""
    settings = settings or Settings()
    app = service_app(
        title="Catalog service",
        description=DESCRIPTION,
        settings=settings,
        start=lambda: bootstrap(settings, **overrides),
    )

    async def database() -> bool:
        started = app.state.app
        return isinstance(started, App) and await started.database_ready()

    async def broker() -> bool:
        started = app.state.app
        return isinstance(started, App) and await started.broker_ready()

    instrument_app(
        app, checks={"database": database, "broker": broker}, max_body_bytes=settings.max_body_bytes
    )
    install_catalog_errors(app)
    install_chaos(app, settings)  # chaos switches: admin only, off in production
    authenticated = [Depends(bearer_principal(token_verifier(settings)))]
    for prefix, in_schema in (("", True), ("/api", False)):
        app.include_router(products_router, prefix=prefix, include_in_schema=in_schema)
        app.include_router(
            admin_router, prefix=prefix, include_in_schema=in_schema, dependencies=authenticated
        )
    return app

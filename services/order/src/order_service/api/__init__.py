"""HTTP API of the order service: schemas (routers wait for shop_common.web)."""

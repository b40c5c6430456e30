"""Products, stock per sku, reservations per order, view counters, outbox and inbox."""

from __future__ import annotations

from alembic import op
from shop_common.messaging.inbox import INBOX_DDL
from shop_common.messaging.outbox import OUTBOX_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CATALOG_DDL = [
    """CREATE TABLE products (
  sku TEXT PRIMARY KEY CHECK (sku ~ '^[A-Z0-9]+(-[A-Z0-9]+)*$' AND length(sku) BETWEEN 3 AND 32),
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  category TEXT NOT NULL,
  price NUMERIC(19, 4) NOT NULL CHECK (price > 0),
  currency CHAR(3) NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)""",
    "CREATE INDEX products_category_idx ON products (category, sku)",
    """CREATE TABLE stock (
  sku TEXT PRIMARY KEY REFERENCES products (sku),
  -- Never negative, whatever the races: every decrement is conditional, and this is the backstop.
  available BIGINT NOT NULL CHECK (available >= 0),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)""",
    """CREATE TABLE reservations (
  order_id UUID PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('reserved', 'confirmed', 'released', 'rejected')),
  reason TEXT,
  expires_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  released_at TIMESTAMPTZ
)""",
    "CREATE INDEX reservations_expiry_idx ON reservations (expires_at) WHERE status = 'reserved'",
    """CREATE TABLE reservation_lines (
  order_id UUID NOT NULL REFERENCES reservations (order_id),
  sku TEXT NOT NULL REFERENCES products (sku),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, sku)
)""",
    """CREATE TABLE product_views (
  sku TEXT PRIMARY KEY REFERENCES products (sku),
  views BIGINT NOT NULL CHECK (views >= 0)
)""",
]


def upgrade() -> None:
    for statement in [*CATALOG_DDL, *OUTBOX_DDL, *INBOX_DDL]:
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "inbox",
        "outbox",
        "product_views",
        "reservation_lines",
        "reservations",
        "stock",
        "products",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")

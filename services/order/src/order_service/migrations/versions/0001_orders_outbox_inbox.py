"""Orders, order lines, idempotency keys, outbox and inbox."""

from __future__ import annotations

from alembic import op
from shop_common.messaging.inbox import INBOX_DDL
from shop_common.messaging.outbox import OUTBOX_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ORDERS_DDL = [
    """CREATE TABLE orders (
  id UUID PRIMARY KEY,
  user_id BIGINT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('PENDING','PAID','PAYMENT_FAILED','CANCELLED',
    'CANCELLED_REFUND_PENDING','REFUNDED')),
  currency CHAR(3) NOT NULL,
  total NUMERIC(19, 4) NOT NULL CHECK (total >= 0),
  failure_reason TEXT,
  version INT NOT NULL DEFAULT 1,
  idempotency_key TEXT,
  request_hash TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (user_id, idempotency_key)
)""",
    "CREATE INDEX orders_user_keyset_idx ON orders (user_id, created_at DESC, id DESC)",
    "CREATE INDEX orders_keyset_idx ON orders (created_at DESC, id DESC)",
    "CREATE INDEX orders_pending_idx ON orders (created_at) WHERE status = 'PENDING'",
    """CREATE TABLE order_lines (
  order_id UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_no INT NOT NULL,
  sku TEXT NOT NULL,
  quantity INT NOT NULL CHECK (quantity > 0),
  unit_price NUMERIC(19, 4) NOT NULL CHECK (unit_price >= 0),
  PRIMARY KEY (order_id, line_no)
)""",
]


def upgrade() -> None:
    for statement in [*ORDERS_DDL, *OUTBOX_DDL, *INBOX_DDL]:
        op.execute(statement)


def downgrade() -> None:
    for table in ("inbox", "outbox", "order_lines", "orders"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")

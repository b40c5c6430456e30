"""Payments (one charge and at most one refund per order), outbox and inbox."""

from __future__ import annotations

from alembic import op
from shop_common.messaging.inbox import INBOX_DDL
from shop_common.messaging.outbox import OUTBOX_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PAYMENTS_DDL = [
    """CREATE TABLE payments (
  id UUID PRIMARY KEY,
  order_id UUID NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
  status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
  amount NUMERIC(19, 4) NOT NULL CHECK (amount >= 0),
  currency CHAR(3) NOT NULL,
  provider_ref TEXT,
  reason TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  -- Exactly one charge (and one refund) per order, whatever the redeliveries or instances.
  UNIQUE (order_id, kind)
)""",
    "CREATE INDEX payments_created_idx ON payments (created_at DESC, id DESC)",
]


def upgrade() -> None:
    for statement in [*PAYMENTS_DDL, *OUTBOX_DDL, *INBOX_DDL]:
        op.execute(statement)


def downgrade() -> None:
    for table in ("inbox", "outbox", "payments"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")

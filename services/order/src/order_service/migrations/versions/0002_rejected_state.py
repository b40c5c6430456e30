"""REJECTED: an order whose stock the catalog could not hold (issue 15, inventory in the saga)."""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATES = "'PENDING','PAID','PAYMENT_FAILED','CANCELLED','CANCELLED_REFUND_PENDING','REFUNDED'"


def upgrade() -> None:
    op.execute("ALTER TABLE orders DROP CONSTRAINT orders_status_check")
    op.execute(
        "ALTER TABLE orders ADD CONSTRAINT orders_status_check"
        f" CHECK (status IN ({_STATES},'REJECTED'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP CONSTRAINT orders_status_check")
    op.execute(
        f"ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ({_STATES}))"
    )

"""Payments remember whose order they charged, so the read API can answer owner-or-admin."""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before this revision have no owner (admins still see them).
    op.execute("ALTER TABLE payments ADD COLUMN user_id BIGINT")


def downgrade() -> None:
    op.execute("ALTER TABLE payments DROP COLUMN user_id")

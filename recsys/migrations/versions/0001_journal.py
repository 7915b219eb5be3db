"""The journal: events, consent records and erasures in one table with an increasing seq.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
ID_LENGTH = 128


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("recsys_events"):
        return  # created by create_all before migrations existed
    op.create_table(
        "recsys_events",
        # AUTOINCREMENT: SQLite must never reuse the seq of a deleted (erased) row.
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(ID_LENGTH), unique=True, nullable=True),
        sa.Column("customer_id", sa.String(ID_LENGTH), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("product_id", sa.String(ID_LENGTH), nullable=True),
        sa.Column("coupon_id", sa.String(ID_LENGTH), nullable=True),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("personalization", sa.Boolean, nullable=True),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("recsys_events")

"""Erasure's suppression records and tombstones (keyed hashes only).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = sa.inspect(op.get_bind())
    if not have.has_table("recsys_suppressions"):
        op.create_table(
            "recsys_suppressions",
            sa.Column("subject", sa.String(64), primary_key=True),
            sa.Column("active", sa.Boolean, nullable=False),
            sa.Column("erased_at", sa.DateTime, nullable=False),
        )
    if not have.has_table("recsys_tombstones"):
        op.create_table(
            "recsys_tombstones",
            sa.Column("event_hash", sa.String(64), primary_key=True),
        )


def downgrade() -> None:
    op.drop_table("recsys_tombstones")
    op.drop_table("recsys_suppressions")

"""The exposure log (``recsys/exposures.py``): what each answer showed to whom.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
TABLE = "recsys_exposures"
ID_LENGTH = 128
MODE_LENGTH = 64


def upgrade() -> None:
    have = sa.inspect(op.get_bind())
    if have.has_table(TABLE):
        # Made by ExposureLog's create_all before this migration; the first of those
        # (before commit 5d51416) had mode VARCHAR(32). SQLite ignores lengths: leave it.
        mode = next(c for c in have.get_columns(TABLE) if c["name"] == "mode")
        if op.get_bind().dialect.name != "sqlite" and \
                (getattr(mode["type"], "length", None) or MODE_LENGTH) < MODE_LENGTH:
            op.alter_column(TABLE, "mode", type_=sa.String(MODE_LENGTH),
                            existing_nullable=False)
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(ID_LENGTH), nullable=False, index=True),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(MODE_LENGTH), nullable=False),
        sa.Column("product_ids", sa.Text, nullable=False),  # JSON list, in the order shown
        sa.Column("coupon_ids", sa.Text, nullable=False),
        sa.Column("held_out", sa.Text, nullable=False),  # coupons withheld (holdout group)
        sa.Column("shown_at", sa.DateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table(TABLE)

"""customs: HS codes and gross weights, postal addresses, the program of a shipment

Revision ID: 20261207_customs
Revises: 20261207_webhooks
Create Date: 2026-12-07 06:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "20261207_customs"
down_revision: str | None = "20261207_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hs_code", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("gross_grams_per_unit", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_items_gross_at_least_net"), "gross_grams_per_unit >= grams_per_unit"
        )
    with op.batch_alter_table("kits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hs_code", sa.String(length=12), nullable=True))
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=300), nullable=True))
    with op.batch_alter_table("stock_transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("program_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_stock_transfers_program_id"), ["program_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_stock_transfers_program_id_programs"), "programs", ["program_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_stock_transfers_program_id_programs"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_stock_transfers_program_id"))
        batch_op.drop_column("program_id")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("address")
    with op.batch_alter_table("kits", schema=None) as batch_op:
        batch_op.drop_column("hs_code")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_items_gross_at_least_net"), type_="check")
        batch_op.drop_column("gross_grams_per_unit")
        batch_op.drop_column("hs_code")

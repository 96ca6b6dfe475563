"""merge the domain branches; link prescription requests to their consultation

Revision ID: 20261129_merge
Revises: 20261129_consult, 20261129_dispatch
Create Date: 2026-11-29 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261129_merge"
down_revision: str | Sequence[str] | None = ("20261129_consult", "20261129_dispatch")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("need_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consultation_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_need_requests_consultation_id"), ["consultation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_need_requests_consultation_id_consultations"),
            "consultations",
            ["consultation_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("need_requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_need_requests_consultation_id_consultations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_need_requests_consultation_id"))
        batch_op.drop_column("consultation_id")

"""pledge codes: a pledge's own code (spreadsheets name pledges by it; existing ones get PLEDGE-<id>)

Revision ID: 20261207_pledge_codes
Revises: 20261207_notices
Create Date: 2026-12-07 07:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_pledge_codes"
down_revision: str | None = "20261207_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=40), nullable=True))
    op.execute("UPDATE pledges SET code = 'PLEDGE-' || id WHERE code IS NULL")
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_pledges_code"), ["code"])


def downgrade() -> None:
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_pledges_code"), type_="unique")
        batch_op.drop_column("code")

"""webhooks: deliveries are sent by jobs (retries with backoff) and dead-lettered

Revision ID: 20261207_webhooks
Revises: 20261207_pledge_codes
Create Date: 2026-12-07 07:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_webhooks"
down_revision: str | None = "20261207_pledge_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_job_id"), ["job_id"], unique=False)
    # What gave up after five tries was "failed"; it is the dead-letter list now.
    op.execute("UPDATE webhook_deliveries SET status = 'dead' WHERE status = 'failed'")


def downgrade() -> None:
    op.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'dead'")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_job_id"))
        batch_op.drop_column("last_error")
        batch_op.drop_column("job_id")

"""conversation service: replay, resident tokens, alert updates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:24:52.360712
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "updated_at",
                models.base.UTCDateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
        batch_op.create_index(batch_op.f("ix_alerts_created_at"), ["created_at"], unique=False)

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "resident_token_hash",
                sa.String(length=64),
                nullable=True,
                comment="SHA-256 of the resident's secret link or web chat session id",
            )
        )
        batch_op.create_unique_constraint(batch_op.f("uq_conversations_resident_token_hash"), ["resident_token_hash"])

    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "engine_text",
                sa.Text(),
                nullable=True,
                comment="what the engine was given when it differs from what was said (a button's payload)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "processed_at",
                models.base.UTCDateTime(timezone=True),
                nullable=True,
                comment="resident turns: when the engine answered it; NULL = kept while the engine was down, to replay",
            )
        )
    # Turns stored before this revision were all answered: nothing to replay.
    op.execute("UPDATE turns SET processed_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_column("processed_at")
        batch_op.drop_column("engine_text")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_conversations_resident_token_hash"), type_="unique")
        batch_op.drop_column("resident_token_hash")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_created_at"))
        batch_op.drop_column("updated_at")

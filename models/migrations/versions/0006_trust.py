"""trust: unverified web chat phones, the engine's state kept in the store

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "phone_verified",
                sa.Boolean(),
                server_default=sa.true(),
                nullable=False,
                comment="false when the resident only typed the phone (web chat): nothing proves they hold it. "
                "True for a call to it, a personal link sent to it, or a Zalo user who shared it",
            )
        )
        batch_op.add_column(
            sa.Column(
                "engine_state",
                sa.JSON(),
                nullable=True,
                comment="the engine's slots and active form after the last turn: restores a conversation the "
                "engine lost",
            )
        )
    # Web chats opened before this revision by typing a phone (no personal link behind them) proved nothing either.
    op.execute("UPDATE conversations SET phone_verified = false WHERE channel = 'webchat' AND outreach_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("engine_state")
        batch_op.drop_column("phone_verified")

"""team broadcasts: teams, members, broadcasts, deliveries, replies

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 17:53:45.905012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("province_code", sa.String(length=8), nullable=True, comment="NULL: a national team"),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
    )
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_teams_province_code"), ["province_code"], unique=False)
    # Written by hand: autogenerate cannot compare expression indexes. NULL provinces (national teams) never collide
    # in a plain unique constraint.
    op.create_index("uq_teams_scope_name", "teams", [sa.text("coalesce(province_code, '')"), "name"], unique=True)

    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_broadcasts_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_broadcasts_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcasts_team_id"), ["team_id"], unique=False)

    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=False, comment="E.164: ZNS goes here"),
        sa.Column(
            "zalo_user_id",
            sa.String(length=64),
            nullable=True,
            comment="the member's id as the OA knows it, when the team list gives it",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_members_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_members")),
        sa.UniqueConstraint("team_id", "phone", name=op.f("uq_team_members_team_id_phone")),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_members_team_id"), ["team_id"], unique=False)

    op.create_table(
        "broadcast_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("member_name", sa.String(length=100), nullable=False, comment="as it was when sent"),
        sa.Column("member_phone", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued", "sending", "sent", "failed", "canceled", name="deliverystatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("claimed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "claim_token", sa.String(length=32), nullable=True, comment="the claiming worker's: its writes need it"
        ),
        sa.Column("tries", sa.Integer(), nullable=False, comment="sends that failed for a reason that may pass"),
        sa.Column(
            "next_attempt_at",
            models.base.UTCDateTime(timezone=True),
            nullable=True,
            comment="a queued delivery waits until then",
        ),
        sa.Column("channel", sa.String(length=16), nullable=True, comment="zalo (OA message) or zns"),
        sa.Column("zalo_user_id", sa.String(length=64), nullable=True, comment="the OA message's recipient"),
        sa.Column("provider_ref", sa.String(length=64), nullable=True, comment="Zalo's message_id or msg_id"),
        sa.Column("link_token_hash", sa.String(length=64), nullable=True, comment="the ZNS link's key, hashed"),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_deliveries_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["team_members.id"],
            name=op.f("fk_broadcast_deliveries_member_id_team_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_deliveries")),
        sa.UniqueConstraint(
            "broadcast_id", "member_phone", name=op.f("uq_broadcast_deliveries_broadcast_id_member_phone")
        ),
        sa.UniqueConstraint("link_token_hash", name=op.f("uq_broadcast_deliveries_link_token_hash")),
    )
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcast_deliveries_broadcast_id"), ["broadcast_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_deliveries_provider_ref"), ["provider_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_deliveries_zalo_user_id"), ["zalo_user_id"], unique=False)

    op.create_table(
        "broadcast_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False, comment="zalo or link"),
        sa.Column(
            "external_id", sa.String(length=64), nullable=True, comment="Zalo's msg_id: a retried event adds none"
        ),
        sa.Column("received_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["broadcast_deliveries.id"],
            name=op.f("fk_broadcast_replies_delivery_id_broadcast_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_replies")),
        sa.UniqueConstraint("delivery_id", "external_id", name=op.f("uq_broadcast_replies_delivery_id_external_id")),
    )
    with op.batch_alter_table("broadcast_replies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcast_replies_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("broadcast_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_replies_delivery_id"))

    op.drop_table("broadcast_replies")
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_deliveries_zalo_user_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_deliveries_provider_ref"))
        batch_op.drop_index(batch_op.f("ix_broadcast_deliveries_broadcast_id"))

    op.drop_table("broadcast_deliveries")
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_members_team_id"))

    op.drop_table("team_members")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcasts_team_id"))

    op.drop_table("broadcasts")
    op.drop_index("uq_teams_scope_name", table_name="teams")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_province_code"))

    op.drop_table("teams")

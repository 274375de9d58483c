"""duty roster, alert notifications, conversations taken over, dashboard days

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 03:07:22.358723
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "area_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("province_code", sa.String(length=8), nullable=False, comment="'' = residents of no known province"),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("ward", sa.String(length=100), nullable=False),
        sa.Column("reached", sa.Integer(), nullable=False, comment="people who answered (a declaration that day)"),
        sa.Column(
            "symptomatic", sa.Integer(), nullable=False, comment="people whose declaration that day raised an alert"
        ),
        sa.Column("urgent", sa.Integer(), nullable=False, comment="people whose declaration that day was urgent"),
        sa.Column(
            "under_follow_up", sa.Integer(), nullable=False, comment="Go.Data final status at the end of the day"
        ),
        sa.Column("follow_up_completed", sa.Integer(), nullable=False),
        sa.Column("lost_to_follow_up", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area_days")),
        sa.UniqueConstraint(
            "day", "province_code", "district", "ward", name=op.f("uq_area_days_day_province_code_district_ward")
        ),
    )
    with op.batch_alter_table("area_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_area_days_day"), ["day"], unique=False)

    op.create_table(
        "roster_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("province_code", sa.String(length=8), nullable=True, comment="NULL: residents of no known province"),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=False, comment="E.164: SMS goes here"),
        sa.Column("zalo_user_id", sa.String(length=64), nullable=True, comment="the member's id as the OA knows it"),
        sa.Column(
            "position", sa.Integer(), nullable=False, comment="who is told first (lowest), then next on escalation"
        ),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_members")),
    )
    with op.batch_alter_table("roster_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roster_members_province_code"), ["province_code"], unique=False)

    op.create_table(
        "settled_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("settled_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_settled_days")),
    )
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("member_name", sa.String(length=100), nullable=False, comment="as it was when sent"),
        sa.Column("channel", sa.String(length=16), nullable=False, comment="sms or zalo"),
        sa.Column(
            "status", sa.Enum("sent", "failed", name="notificationstatus", native_enum=False, length=16), nullable=False
        ),
        sa.Column("provider_ref", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_notifications_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["roster_members.id"],
            name=op.f("fk_alert_notifications_member_id_roster_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_notifications_alert_id"), ["alert_id"], unique=False)

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "next_notification_at",
                models.base.UTCDateTime(timezone=True),
                nullable=True,
                comment="urgent alerts: when the roster is told (again) unless acknowledged; NULL = not yet told",
            )
        )
        batch_op.create_index(batch_op.f("ix_alerts_acknowledged_at"), ["acknowledged_at"], unique=False)

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "taken_over_by_id",
                sa.Integer(),
                nullable=True,
                comment="a tracer writing to the resident as a person: the bot is paused until they hand back",
            )
        )
        batch_op.add_column(sa.Column("taken_over_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_taken_over_by_id_users"),
            "users",
            ["taken_over_by_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.create_index("ix_declarations_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_declarations_alert_level_updated_at", ["alert_level", "updated_at"], unique=False)

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_ward"), ["ward"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_index("ix_declarations_alert_level_updated_at")
        batch_op.drop_index("ix_declarations_created_at")

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_ward"))

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_taken_over_by_id_users"), type_="foreignkey")
        batch_op.drop_column("taken_over_at")
        batch_op.drop_column("taken_over_by_id")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_acknowledged_at"))
        batch_op.drop_column("next_notification_at")

    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_notifications_alert_id"))

    op.drop_table("alert_notifications")
    op.drop_table("settled_days")
    with op.batch_alter_table("roster_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_members_province_code"))

    op.drop_table("roster_members")
    with op.batch_alter_table("area_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_area_days_day"))

    op.drop_table("area_days")

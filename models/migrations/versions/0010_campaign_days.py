"""campaign progress kept by day, attempts' follow-up dates, lists' import counts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 05:50:43.600196
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("attempt_status", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False, comment="Go.Data daily outcome"),
        sa.Column("follow_ups", sa.Integer(), nullable=False, comment="people's follow-up days"),
        sa.Column("tried", sa.Integer(), nullable=False, comment="of them, handed to a channel at least once"),
        sa.Column("reached", sa.Integer(), nullable=False, comment="of them, a person answered"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_days_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_days")),
        sa.UniqueConstraint(
            "campaign_id",
            "day",
            "channel",
            "attempt_status",
            "outcome",
            name=op.f("uq_campaign_days_campaign_id_day_channel_attempt_status_outcome"),
        ),
    )
    with op.batch_alter_table("campaign_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_days_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "campaign_settlements",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("settled_through", sa.Date(), nullable=False, comment="the last date kept"),
        sa.Column(
            "follow_ups_next_day",
            sa.Integer(),
            nullable=False,
            comment="people with a follow-up day on the date after it",
        ),
        sa.Column("final_statuses", sa.JSON(), nullable=False, comment="people by Go.Data final status, then"),
        sa.Column("settled_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_settlements_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_settlements")),
    )
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_declarations_campaign_person_day", ["campaign_id", "person_id", "follow_up_day"], unique=False
        )
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "imported",
                sa.Integer(),
                nullable=True,
                comment="people new to the store (None: imported before counts)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "duplicates", sa.Integer(), nullable=True, comment="rows merged into another row of the same person"
            )
        )
        batch_op.add_column(
            sa.Column(
                "rejected",
                sa.Integer(),
                nullable=True,
                comment="rows refused, each in the rejects file with its reason",
            )
        )
    with op.batch_alter_table("outreach_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "follow_up_date",
                sa.Date(),
                nullable=True,
                comment="the date of that follow-up day (exposure + follow_up_day), the day it was planned for",
            )
        )
        batch_op.create_index("ix_outreach_attempts_campaign_claimed_at", ["campaign_id", "claimed_at"], unique=False)
        batch_op.create_index("ix_outreach_attempts_campaign_date", ["campaign_id", "follow_up_date"], unique=False)
        batch_op.create_index(
            "ix_outreach_attempts_campaign_status_due", ["campaign_id", "status", "due_at"], unique=False
        )
        batch_op.add_column(
            sa.Column(
                "verdict",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="what the day's declarations say, by strength (campaigns.outcomes.VERDICT_STRENGTH)",
            )
        )
    _date_the_attempts()
    _judge_the_attempts()


def _judge_the_attempts() -> None:
    """Every attempt's verdict: the strongest of its day's declarations, by the rule of this revision (unwell and
    not the wrong person 3, complete 2, refused / wrong person / unreachable 1, else 0)."""
    op.execute(
        """UPDATE outreach_attempts SET verdict = coalesce((
            SELECT max(CASE
                WHEN (d.alert_level != 'none' OR json_array_length(d.symptoms) > 0)
                     AND d.status != 'wrong_person' THEN 3
                WHEN d.status = 'complete' THEN 2
                WHEN d.status IN ('refused', 'wrong_person', 'unreachable') THEN 1
                ELSE 0 END)
            FROM declarations d
            WHERE d.campaign_id = outreach_attempts.campaign_id AND d.person_id = outreach_attempts.person_id
              AND d.follow_up_day = outreach_attempts.follow_up_day), 0)"""
    )


def _date_the_attempts() -> None:
    """Every attempt's follow-up date: its person's latest exposure on the campaign's lists (the campaign's start
    day for none, as the planner counts) plus its follow-up day."""
    exposure = """coalesce(
        (SELECT max(m.exposure_date) FROM contact_list_members m
         JOIN campaign_lists l ON l.contact_list_id = m.contact_list_id
         WHERE l.campaign_id = outreach_attempts.campaign_id AND m.person_id = outreach_attempts.person_id),
        (SELECT {start} FROM campaigns c WHERE c.id = outreach_attempts.campaign_id))"""
    if op.get_bind().dialect.name == "sqlite":
        start, dated = "date(c.started_at)", "date({exposure}, '+' || follow_up_day || ' days')"
    else:
        start, dated = "CAST(c.started_at AT TIME ZONE 'Asia/Ho_Chi_Minh' AS date)", "{exposure} + follow_up_day"
    op.execute(f"UPDATE outreach_attempts SET follow_up_date = {dated.format(exposure=exposure.format(start=start))}")


def downgrade() -> None:
    with op.batch_alter_table("outreach_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_outreach_attempts_campaign_status_due")
        batch_op.drop_index("ix_outreach_attempts_campaign_date")
        batch_op.drop_index("ix_outreach_attempts_campaign_claimed_at")
        batch_op.drop_column("verdict")
        batch_op.drop_column("follow_up_date")

    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_index("ix_declarations_campaign_person_day")
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.drop_column("rejected")
        batch_op.drop_column("duplicates")
        batch_op.drop_column("imported")

    op.drop_table("campaign_settlements")
    with op.batch_alter_table("campaign_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_days_campaign_id"))

    op.drop_table("campaign_days")

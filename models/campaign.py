"""Campaigns and the outreach attempts they schedule."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamped, enum_column, utcnow
from models.conversation import Channel
from models.people import ContactList, Person


class CampaignStatus(StrEnum):
    """See the state machine in campaigns/lifecycle.py."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELED = "canceled"
    COMPLETED = "completed"


class AttemptStatus(StrEnum):
    """Where one person's contact for one follow-up day stands."""

    SCHEDULED = "scheduled"  # due at due_at, not yet claimed by a worker
    CLAIMED = "claimed"  # a worker took it and is handing it to a channel
    CONTACTING = "contacting"  # a channel took it: the phone is ringing or the message is on its way
    IN_PROGRESS = "in_progress"  # the channel reached the person; a conversation is live
    COMPLETED = "completed"  # the person answered
    RETRY_WAIT = "retry_wait"  # busy / no answer / machine; tried again after the spacing
    FAILED = "failed"  # every allowed attempt of the day used up
    CANCELED = "canceled"  # the campaign was canceled


class Outcome(StrEnum):
    """What the latest try of an attempt gave: what a channel reported, or how the platform ended the day's try."""

    ANSWERED = "answered"  # a person picked up, or replied to the message
    DELIVERED = "delivered"  # the message reached their phone; waiting for a reply
    COMPLETED = "completed"  # the dialogue reached its end (declared, refused, wrong person)
    CALLBACK = "callback"  # the resident asked to be contacted again later
    DROPPED = "dropped"  # reached, but the dialogue stopped half-way (hang-up, silences)
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"  # an answering machine or voicemail picked up
    FAILED = "failed"  # the provider could not place the call or message
    # Set by the platform, never reported by a channel:
    INTERRUPTED = "interrupted"  # a worker died handing it over; not sent again so no one is contacted twice
    DAY_ENDED = "day_ended"  # the day ended before the person was reached


campaign_lists = Table(
    "campaign_lists",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_list_id", ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
)


class Campaign(Timestamped, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    province_code: Mapped[str | None] = mapped_column(String(8), index=True)
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), default=CampaignStatus.DRAFT)
    dialogue: Mapped[str] = mapped_column(String(64), default="health_declaration")
    rules: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, comment="channels, calling hours, retries, follow-up days, rate limits"
    )
    started_at: Mapped[datetime | None]
    dispatch_state: Mapped[dict[str, Any]] = mapped_column(
        JSON,
        default=dict,
        server_default="{}",
        comment="the dispatcher's pacing: the next free send slot per kind (calls, messages)",
    )

    contact_lists: Mapped[list[ContactList]] = relationship(secondary=campaign_lists)


class OutreachAttempt(Timestamped, Base):
    """One person x campaign x follow-up day; retries within the day update the same row."""

    __tablename__ = "outreach_attempts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "person_id", "follow_up_day"),
        Index("ix_outreach_attempts_campaign_date", "campaign_id", "follow_up_date"),  # a campaign's day, live
        Index("ix_outreach_attempts_campaign_claimed_at", "campaign_id", "claimed_at"),  # the pace of the ETA
        Index("ix_outreach_attempts_campaign_status_due", "campaign_id", "status", "due_at"),  # what is left today
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    follow_up_day: Mapped[int] = mapped_column(default=0)
    follow_up_date: Mapped[date | None] = mapped_column(
        comment="the date of that follow-up day (exposure + follow_up_day), the day it was planned for"
    )
    status: Mapped[AttemptStatus] = mapped_column(
        enum_column(AttemptStatus), default=AttemptStatus.SCHEDULED, index=True
    )
    due_at: Mapped[datetime] = mapped_column(index=True)
    channel: Mapped[Channel | None] = mapped_column(
        enum_column(Channel, length=16), comment="channel of the latest try"
    )
    tries: Mapped[int] = mapped_column(default=0)
    verdict: Mapped[int] = mapped_column(
        default=0,
        server_default="0",
        comment="what the day's declarations say, by strength (campaigns.outcomes.VERDICT_STRENGTH)",
    )
    provider_ref: Mapped[str | None] = mapped_column(String(64), comment="CallSid, ZNS tracking id, ...")
    invite_token_hash: Mapped[str | None] = mapped_column(
        String(64), unique=True, comment="SHA-256 of the personal web chat link sent by SMS for this attempt"
    )
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_outcome: Mapped[Outcome | None] = mapped_column(
        enum_column(Outcome),
        comment="what the latest try gave: busy, no_answer, machine, dropped, delivered, completed, ...",
    )

    campaign: Mapped[Campaign] = relationship()
    person: Mapped[Person] = relationship()


class CampaignDay(Base):
    """A campaign's follow-up days of one past date, by channel, attempt status and Go.Data outcome, kept once the
    date is over so that progress never recounts history (campaigns/progress.py). '' stands for no channel and for
    a day never planned (no attempt), so that the unique key holds on every database."""

    __tablename__ = "campaign_days"
    __table_args__ = (UniqueConstraint("campaign_id", "day", "channel", "attempt_status", "outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    day: Mapped[date]
    channel: Mapped[str] = mapped_column(String(16))
    attempt_status: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32), comment="Go.Data daily outcome")
    follow_ups: Mapped[int] = mapped_column(comment="people's follow-up days")
    tried: Mapped[int] = mapped_column(comment="of them, handed to a channel at least once")
    reached: Mapped[int] = mapped_column(comment="of them, a person answered")


class CampaignSettlement(Base):
    """How far a campaign's days are kept in campaign_days, and what was true when they were."""

    __tablename__ = "campaign_settlements"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    settled_through: Mapped[date] = mapped_column(comment="the last date kept")
    follow_ups_next_day: Mapped[int] = mapped_column(comment="people with a follow-up day on the date after it")
    final_statuses: Mapped[dict[str, int]] = mapped_column(JSON, comment="people by Go.Data final status, then")
    settled_at: Mapped[datetime] = mapped_column(default=utcnow)

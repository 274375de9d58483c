"""Outreach attempts as conversations see them: on whose behalf a conversation opens, and the personal links.

A campaign's attempt reaches its person by a call, a Zalo or ZNS message or an SMS link; whichever channel the
person answers on, the conversation it opens answers that attempt (`ConversationService.start(outreach=...)`).
"""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access.auth import hash_token
from campaigns.channels import Contact
from conversations.residents import person_with_phone
from models import AttemptStatus, Campaign, CampaignStatus, Channel, Outcome, OutreachAttempt, utcnow

# A follow-up not yet answered today: waiting to be tried, or tried and waiting for the resident.
OPEN_FOLLOW_UP = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT, AttemptStatus.CONTACTING)


@dataclass(frozen=True)
class Outreach:
    """The attempt a conversation answers, with what the conversation and its declaration record of it."""

    person_id: int
    campaign_id: int
    attempt_id: int
    follow_up_day: int

    @classmethod
    def of(cls, attempt: OutreachAttempt) -> "Outreach":
        return cls(attempt.person_id, attempt.campaign_id, attempt.id, attempt.follow_up_day)

    @classmethod
    def of_contact(cls, contact: Contact) -> "Outreach":
        return cls(contact.person_id, contact.campaign_id, contact.attempt_id, contact.follow_up_day)


class OutreachStore:
    """The attempts the channels' webhooks and links lead back to."""

    def __init__(self, sessions: sessionmaker[Session], public_url: str) -> None:
        self.sessions = sessions
        self.public_url = public_url

    def placed(self, attempt_id: int, provider_ref: str) -> Outreach | None:
        """The attempt a provider reports on (a call that connected), or None when we did not place it."""
        with self.sessions() as session:
            attempt = session.get(OutreachAttempt, attempt_id)
            return Outreach.of(attempt) if attempt is not None and attempt.provider_ref == provider_ref else None

    def called_in(self, phone: str, call_sid: str) -> tuple[int, Outreach | None]:
        """A resident called the platform's number: their person (added when new: their province unknown) and the
        follow-up a running campaign has open for them, if any, which this call now answers (no one calls them
        for it while it lasts)."""
        with self.sessions.begin() as session:
            person_id = person_with_phone(session, phone)
            attempt = session.scalars(
                select(OutreachAttempt)
                .join(Campaign)
                .where(
                    OutreachAttempt.person_id == person_id,
                    OutreachAttempt.status.in_(OPEN_FOLLOW_UP),
                    Campaign.status == CampaignStatus.RUNNING,
                )
                .order_by(OutreachAttempt.due_at.desc())
                .limit(1)
                .with_for_update()
            ).first()
            if attempt is None:
                return person_id, None
            attempt.channel, attempt.provider_ref = (
                Channel.VOICE.value,
                call_sid,
            )  # a late report of the old try: ignored
            attempt.status, attempt.last_outcome, attempt.updated_at = (
                AttemptStatus.IN_PROGRESS,
                Outcome.ANSWERED,
                utcnow(),
            )
            return person_id, Outreach.of(attempt)

    def invited(self, invite: str) -> Outreach | None:
        """The attempt a personal link was sent for, unless unknown or canceled."""
        with self.sessions() as session:
            attempt = session.scalar(
                select(OutreachAttempt).where(OutreachAttempt.invite_token_hash == hash_token(invite))
            )
            return Outreach.of(attempt) if attempt is not None and attempt.status != AttemptStatus.CANCELED else None

    def awaiting_reply(self, person_id: int, channels: Iterable[Channel]) -> Outreach | None:
        """The running campaign's latest attempt whose message on one of `channels` waits for this person's answer."""
        with self.sessions() as session:
            attempt = session.scalars(
                select(OutreachAttempt)
                .join(Campaign)
                .where(
                    OutreachAttempt.person_id == person_id,
                    OutreachAttempt.status == AttemptStatus.CONTACTING,
                    OutreachAttempt.channel.in_([channel.value for channel in channels]),
                    Campaign.status == CampaignStatus.RUNNING,
                )
                .order_by(OutreachAttempt.updated_at.desc())
                .limit(1)
            ).first()
            return Outreach.of(attempt) if attempt is not None else None

    def new_invite(self, attempt_id: int) -> str:
        """A personal link to the web chat for an attempt (sent by SMS or ZNS); only its key's hash is kept, and the
        latest link sent for the attempt is the one that opens it."""
        invite = secrets.token_urlsafe(24)
        with self.sessions.begin() as session:
            session.get(OutreachAttempt, attempt_id).invite_token_hash = hash_token(invite)
        return f"{self.public_url}/chat?invite={invite}"

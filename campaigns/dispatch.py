"""Handing outreach attempts to channels.

`contact` is one attempt's hand-over: its channel (the campaign's first, or the one a fallback chose) reaches the
person; a channel that cannot reach them passes the attempt down the campaign's fallback order at once.
"""

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import ChannelFailed, Contact, OutboundChannel, Unreachable
from campaigns.rules import CampaignRules
from models import AttemptStatus, OutreachAttempt


def _contact_of(attempt: OutreachAttempt, rules: CampaignRules) -> Contact:
    person = attempt.person
    return Contact(attempt_id=attempt.id, campaign_id=attempt.campaign_id, person_id=person.id, phone=person.phone,
                   name=person.full_name, follow_up_day=attempt.follow_up_day, rules=rules)  # fmt: skip


async def contact(
    sessions: sessionmaker[Session], channels: Mapping[str, OutboundChannel], attempt_id: int, now: datetime
) -> AttemptStatus:
    """Reach the person of one attempt; returns where the attempt stands afterwards."""
    while True:
        with sessions.begin() as session:
            attempt = session.get(OutreachAttempt, attempt_id)
            rules = CampaignRules.model_validate(attempt.campaign.rules)
            name = attempt.channel = attempt.channel or rules.channels[0]
            target = _contact_of(attempt, rules)
        channel = channels.get(name)
        try:
            if channel is None:
                raise Unreachable("this channel is not set up on the platform")
            placed = await channel.reach(target)
        except Unreachable as error:
            if not _fall_back(sessions, attempt_id, rules, str(error), now):
                return AttemptStatus.FAILED
            continue  # the next channel, at once
        except ChannelFailed as error:
            return _settle(sessions, attempt_id, rules, now, failure=str(error))
        return _settle(sessions, attempt_id, rules, now, provider_ref=placed.provider_ref)


def _fall_back(sessions: sessionmaker[Session], attempt_id: int, rules: CampaignRules, reason: str,
               now: datetime) -> bool:  # fmt: skip
    with sessions.begin() as session:
        return attempts.fall_back(session.get(OutreachAttempt, attempt_id), rules, reason, now) is not None


def _settle(sessions: sessionmaker[Session], attempt_id: int, rules: CampaignRules, now: datetime, *,
            provider_ref: str | None = None, failure: str | None = None) -> AttemptStatus:  # fmt: skip
    """The channel took the attempt (one try of the day), or failed it (also one try, retried after the spacing)."""
    with sessions.begin() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        attempts.handed_over(attempt, attempt.channel, provider_ref, now)
        if failure is not None:
            attempts.record(attempt, rules, Outcome.FAILED, now, detail=failure)
        return attempt.status

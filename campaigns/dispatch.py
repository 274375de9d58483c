"""Handing due outreach attempts to channels: claimed safely by several workers, paced by each campaign's rates.

Each tick of a worker (APScheduler, every `dispatch_interval_s`):

1. recovers claims a dead worker left behind: the channel is asked whether it reached the person since the claim
   (the call or SMS went out before the worker died: the attempt records it), else the attempt is scheduled again;
2. claims the due attempts of running campaigns that are inside their calling hours, one transaction, with
   `FOR UPDATE SKIP LOCKED` on PostgreSQL (two workers never claim the same row; SQLite runs one worker). Each claim
   gets a send slot: new calls `1 / new_calls_per_second` apart, messages `1 / messages_per_second` apart, the next
   free slot per campaign kept in the store (`campaigns.dispatch_state`), so several workers share one rate. Calls
   also stay under `max_concurrent_calls`. Nobody in a live conversation (an open conversation active lately, or a
   call ringing) is claimed: no one is contacted twice at once;
3. hands each claim over at its slot (`contact`): a channel that cannot reach the person passes the attempt down the
   campaign's fallback order at once.

Times come from an injected clock, so a whole campaign can run in test time.
"""

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from campaigns import attempts
from campaigns.channels import ChannelFailed, Contact, OutboundChannel, Placed, Unreachable
from campaigns.rules import CampaignRules
from models import AttemptStatus, Campaign, CampaignStatus, Channel, Conversation, Outcome, OutreachAttempt, utcnow

log = logging.getLogger(__name__)

DUE = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT)
CALL_HOLDING = (AttemptStatus.CLAIMED, AttemptStatus.CONTACTING, AttemptStatus.IN_PROGRESS)
LIVE_CONVERSATION = timedelta(minutes=30)  # an open conversation (or call) this recently active is still going on
MAX_CLAIMS_PER_TICK = 1000


@runtime_checkable
class Reconciling(Protocol):
    """A channel that can tell whether it reached a person since a moment (Twilio lists calls and messages)."""

    async def reached_since(self, contact: Contact, since: datetime) -> Placed | None: ...


@dataclass(frozen=True)
class Claim:
    attempt_id: int
    send_at: datetime


def _kind(channel: Channel) -> str:
    return "calls" if channel == Channel.VOICE else "messages"


def _contact_of(attempt: OutreachAttempt, rules: CampaignRules) -> Contact:
    person = attempt.person
    return Contact(
        attempt_id=attempt.id,
        campaign_id=attempt.campaign_id,
        person_id=person.id,
        phone=person.phone,
        name=person.full_name,
        follow_up_day=attempt.follow_up_day,
        rules=rules,
    )


# ---- Claiming ---------------------------------------------------------------------------------------------------


def claim_due(session: Session, worker: str, now: datetime, horizon: timedelta) -> list[Claim]:
    """Claim what running campaigns may send from now until now + horizon; each claim with its send slot."""
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.status == CampaignStatus.RUNNING)
        .order_by(Campaign.id)
        .with_for_update(skip_locked=True)  # one worker paces a campaign at a time; the other takes the next
    ).all()
    claims: list[Claim] = []
    for campaign in campaigns:
        rules = CampaignRules.model_validate(campaign.rules)
        if rules.next_allowed(now) == now:  # inside calling hours
            claims += _claim_for(session, campaign, rules, worker, now, horizon)
    return claims


def _someone_live(now: datetime):  # noqa: ANN202 (an SQL condition)
    """The attempt's person is talking already: an open, recently active conversation, or a call ringing."""
    other = aliased(OutreachAttempt)
    talking = exists().where(
        Conversation.person_id == OutreachAttempt.person_id,
        Conversation.ended_at.is_(None),
        Conversation.last_activity_at > now - LIVE_CONVERSATION,
    )
    ringing = exists().where(
        other.person_id == OutreachAttempt.person_id,
        other.id != OutreachAttempt.id,
        other.channel == Channel.VOICE,
        other.status.in_(CALL_HOLDING),
        other.updated_at > now - LIVE_CONVERSATION,
    )
    return talking | ringing


def _claim_for(
    session: Session, campaign: Campaign, rules: CampaignRules, worker: str, now: datetime, horizon: timedelta
) -> list[Claim]:
    due = session.scalars(
        select(OutreachAttempt)
        .where(
            OutreachAttempt.campaign_id == campaign.id,
            OutreachAttempt.status.in_(DUE),
            OutreachAttempt.due_at <= now,
            ~_someone_live(now),
        )
        .order_by(OutreachAttempt.due_at, OutreachAttempt.id)
        .limit(MAX_CLAIMS_PER_TICK)
        .with_for_update(skip_locked=True)
    ).all()
    state = dict(campaign.dispatch_state or {})
    claims = []
    for kind, rate, room in (
        ("calls", rules.new_calls_per_second, _call_room(session, campaign, rules, now)),
        ("messages", rules.messages_per_second, len(due)),
    ):
        group = [a for a in due if _kind(a.channel or rules.channels[0]) == kind]
        free = max(datetime.fromisoformat(state[kind]), now) if kind in state else now
        slots = math.ceil((now + horizon - free).total_seconds() * rate) if now + horizon > free else 0
        taken = group[: max(0, min(slots, room))]
        for position, attempt in enumerate(taken):
            attempt.status, attempt.claimed_by, attempt.claimed_at = AttemptStatus.CLAIMED, worker, now
            claims.append(Claim(attempt.id, free + timedelta(seconds=position / rate)))
        if taken:
            state[kind] = (free + timedelta(seconds=len(taken) / rate)).isoformat()
    campaign.dispatch_state = state
    return claims


def _call_room(session: Session, campaign: Campaign, rules: CampaignRules, now: datetime) -> int:
    """How many more calls may be under way at once in this campaign (a call whose end was never reported stops
    counting after a while, so a lost status callback cannot hold a line forever)."""
    ongoing = session.scalar(
        select(func.count()).where(
            OutreachAttempt.campaign_id == campaign.id,
            OutreachAttempt.channel == Channel.VOICE,
            OutreachAttempt.status.in_(CALL_HOLDING),
            OutreachAttempt.updated_at > now - LIVE_CONVERSATION,
        )
    )
    return rules.max_concurrent_calls - (ongoing or 0)


# ---- Handing over -----------------------------------------------------------------------------------------------


async def contact(
    sessions: sessionmaker[Session], channels: Mapping[str, OutboundChannel], attempt_id: int, now: datetime
) -> AttemptStatus:
    """Reach the person of one attempt; returns where the attempt stands afterwards.

    A campaign paused since the claim gets its attempt back unsent; a canceled one has canceled it already.
    """
    while True:
        with sessions.begin() as session:
            attempt = session.get(OutreachAttempt, attempt_id)
            if attempt.status == AttemptStatus.CANCELED:
                return attempt.status
            if attempt.campaign.status != CampaignStatus.RUNNING:
                attempt.status, attempt.claimed_by = AttemptStatus.SCHEDULED, None
                return attempt.status
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


def _fall_back(
    sessions: sessionmaker[Session], attempt_id: int, rules: CampaignRules, reason: str, now: datetime
) -> bool:
    with sessions.begin() as session:
        return attempts.fall_back(session.get(OutreachAttempt, attempt_id), rules, reason, now) is not None


def _settle(
    sessions: sessionmaker[Session],
    attempt_id: int,
    rules: CampaignRules,
    now: datetime,
    *,
    provider_ref: str | None = None,
    failure: str | None = None,
) -> AttemptStatus:
    """The channel took the attempt (one try of the day), or failed it (also one try, retried after the spacing)."""
    with sessions.begin() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        attempts.handed_over(attempt, attempt.channel, provider_ref, now)
        if failure is not None:
            attempts.record(attempt, rules, Outcome.FAILED, now, detail=failure)
        return attempt.status


# ---- Claims left by a dead worker ---------------------------------------------------------------------------------


def _stale_claims(session: Session, worker: str, now: datetime, timeout: timedelta) -> list[tuple[int, datetime]]:
    """Take over claims older than the timeout (their worker died); each taken by exactly one worker."""
    stale = session.execute(
        select(OutreachAttempt.id, OutreachAttempt.claimed_by, OutreachAttempt.claimed_at)
        .where(OutreachAttempt.status == AttemptStatus.CLAIMED, OutreachAttempt.claimed_at < now - timeout)
        .limit(MAX_CLAIMS_PER_TICK)
    ).all()
    taken = []
    for attempt_id, owner, claimed_at in stale:
        moved = session.execute(
            update(OutreachAttempt)
            .where(
                and_(
                    OutreachAttempt.id == attempt_id,
                    OutreachAttempt.claimed_by == owner,
                    OutreachAttempt.status == AttemptStatus.CLAIMED,
                )
            )
            .values(claimed_by=worker, claimed_at=now)
        )
        if moved.rowcount == 1:
            taken.append((attempt_id, claimed_at))
    return taken


async def _recover(
    sessions: sessionmaker[Session],
    channels: Mapping[str, OutboundChannel],
    attempt_id: int,
    claimed_at: datetime,
    now: datetime,
) -> None:
    """Did the dead worker reach the person before dying? Record it; else the attempt is due again."""
    with sessions() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        rules = CampaignRules.model_validate(attempt.campaign.rules)
        name, target = attempt.channel or rules.channels[0], _contact_of(attempt, rules)
    channel = channels.get(name)
    if not isinstance(channel, Reconciling):
        # No way to ask: calling again could reach them twice, so the day's try is given up (it shows as missed).
        with sessions.begin() as session:
            attempts.record_interrupted(session.get(OutreachAttempt, attempt_id), now)
        return
    placed = await channel.reached_since(target, claimed_at - timedelta(seconds=5))
    with sessions.begin() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        if placed is not None:
            attempt.channel = name
            attempts.handed_over(attempt, name, placed.provider_ref, now)
        else:
            attempt.status, attempt.claimed_by, attempt.due_at = AttemptStatus.SCHEDULED, None, now
    log.warning(
        "recovered attempt %d left claimed by a stopped worker: %s",
        attempt_id,
        "it had been sent" if placed else "scheduled again",
    )


class Dispatcher:
    """One worker's dispatch: `tick` recovers, claims and hands over; the scheduler calls it every interval."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channels: Mapping[str, OutboundChannel],
        worker: str,
        *,
        interval: timedelta = timedelta(seconds=1),
        claim_timeout: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sessions, self.channels, self.worker = sessions, channels, worker
        self.interval, self.claim_timeout, self.clock, self.sleep = interval, claim_timeout, clock, sleep

    async def tick(self) -> int:
        """One round; returns how many attempts were handed over."""
        now = self.clock()
        for attempt_id, claimed_at in await asyncio.to_thread(
            self._in_transaction, _stale_claims, self.worker, now, self.claim_timeout
        ):
            await _recover(self.sessions, self.channels, attempt_id, claimed_at, now)
        claims = await asyncio.to_thread(self._in_transaction, claim_due, self.worker, now, self.interval)
        under_way = []
        for claim in sorted(claims, key=lambda c: c.send_at):  # each starts at its slot; they run side by side
            wait = (claim.send_at - self.clock()).total_seconds()
            if wait > 0:
                await self.sleep(wait)
            under_way.append(asyncio.create_task(self._hand_over(claim.attempt_id)))
        await asyncio.gather(*under_way)
        return len(claims)

    def _in_transaction(self, work: Callable, *args):  # noqa: ANN202
        with self.sessions.begin() as session:
            return work(session, *args)

    async def _hand_over(self, attempt_id: int) -> None:
        try:
            await contact(self.sessions, self.channels, attempt_id, self.clock())
        except Exception:  # one attempt's failure must not stop the others; it stays claimed and is recovered
            log.exception("handing attempt %d over failed", attempt_id)

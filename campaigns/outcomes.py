"""Each person's follow-up in the WHO Go.Data vocabulary: an outcome per follow-up day and a final status.

A person is followed on the days `CampaignRules.follow_up_offsets()` after their latest exposure date (people with
no exposure date count from the day the campaign started, as `plan_day` does). Day N's date is that exposure date
plus N days; "today" is the caller's, in the campaign's time zone. The person's follow-up days in a campaign are the
days planned for them (an outreach attempt) and, unless the campaign was canceled, every day from the campaign's
start to today that was never planned (paused, the planning job not run): Go.Data counts those days too.

A day is *settled* once it is over (its date is past), the campaign is canceled or completed, or its attempt is
settled (completed, failed, canceled). Its declarations are the campaign's declarations for that person and day
(every campaign conversation carries both); when there are several, the strongest says what the day was
(SEEN_NOT_OK, then SEEN_OK, then MISSED) and, among equals, the latest is the one exported. *Unwell* means a
symptom or an alert level above none: the alert level is where the configured fever thresholds, a positive test and
a reported emergency are applied, so the rule stays in one place.

Daily outcome, the first that holds:

    SEEN_NOT_OK    the declaration is unwell, whatever its status but wrong_person (those answers are not the
                   contact's)
    SEEN_OK        the declaration is complete and well
    MISSED         the declaration says refused, wrong_person or unreachable (reached, but their health is not
                   known); or the day is settled after at least one try (failed, dropped half-way, a callback
                   never kept, still open at midnight)
    NOT_ATTEMPTED  the day is settled and was never handed to a channel (tries = 0: no room left in the calling
                   hours, the campaign paused or canceled, the day never planned)
    NOT_PERFORMED  the day is not settled yet: something may still happen (Go.Data's "not performed yet")

The mapping of declaration statuses is the one table `DECLARATION_OUTCOMES`. A callback request or a conversation
still going (or dropped half-way) decides nothing by itself: the day stays NOT_PERFORMED while the attempt can still
reach the resident that day, and is MISSED once settled. A declaration that arrives late (a callback kept the next
morning) still counts for its own follow-up day.

Final status, the first that holds:

    BECAME_CASE          a positive sample of theirs (`people.confirmed_case_on`, from the laboratory results) was
                         taken on or before their last follow-up day: they are a case now, followed as one, no longer
                         as a contact (Go.Data converts the contact to a case). Their days after the sample are not
                         follow-up days: they neither count nor show
    LOST_TO_FOLLOW_UP    the last `LOST_AFTER_MISSED_DAYS` days the person was tried on were all MISSED (days never
                         attempted are the campaign's gap, not the resident's: they neither count nor break the run)
    UNDER_FOLLOW_UP      the last follow-up day (exposure + the largest offset) is today or later and the campaign
                         goes on
    FOLLOW_UP_COMPLETED  the follow-up is over (that day is past, or the campaign canceled or completed) and the
                         person was seen on their last follow-up day (of a canceled campaign: the last one held) or
                         on more than half of the days they were tried
    LOST_TO_FOLLOW_UP    otherwise (the follow-up is over and they were seen too seldom, or never tried at all: a team
                         must find them)

People whose follow-up ended before the campaign started have no follow-up day in it and no final status.

The database does the work, in set-based queries (a 100,000-person list on day 14 is 1.4 million follow-up days):
`_follow_up_days` is every person's days with their outcome (one SQL expression built from the tables here) and
`_records` one row per person with what decides the final status; Python only applies `final_status` per person.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    ColumnElement,
    Date,
    Integer,
    Subquery,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from campaigns.rules import CampaignRules
from models import (
    AlertLevel,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Channel,
    ContactListMember,
    Conversation,
    Declaration,
    DeclarationStatus,
    Outcome,
    OutreachAttempt,
    Person,
    campaign_lists,
)

LOST_AFTER_MISSED_DAYS = 3  # Go.Data makes this an outbreak setting; three days unseen is when a team goes looking
ROWS_PER_FETCH = 5000


class DailyOutcome(StrEnum):
    SEEN_OK = "SEEN_OK"
    SEEN_NOT_OK = "SEEN_NOT_OK"
    MISSED = "MISSED"
    NOT_ATTEMPTED = "NOT_ATTEMPTED"
    NOT_PERFORMED = "NOT_PERFORMED"


class FinalStatus(StrEnum):
    BECAME_CASE = "BECAME_CASE"
    UNDER_FOLLOW_UP = "UNDER_FOLLOW_UP"
    FOLLOW_UP_COMPLETED = "FOLLOW_UP_COMPLETED"
    LOST_TO_FOLLOW_UP = "LOST_TO_FOLLOW_UP"


# What a well declaration says about its day; None: nothing yet, the attempt and the clock decide.
DECLARATION_OUTCOMES: dict[DeclarationStatus, DailyOutcome | None] = {
    DeclarationStatus.COMPLETE: DailyOutcome.SEEN_OK,
    DeclarationStatus.REFUSED: DailyOutcome.MISSED,
    DeclarationStatus.WRONG_PERSON: DailyOutcome.MISSED,
    DeclarationStatus.UNREACHABLE: DailyOutcome.MISSED,
    DeclarationStatus.CALLBACK_REQUESTED: None,
    DeclarationStatus.IN_PROGRESS: None,
}
VERDICT_STRENGTH = {DailyOutcome.SEEN_NOT_OK: 3, DailyOutcome.SEEN_OK: 2, DailyOutcome.MISSED: 1}  # 0: no verdict
SEEN = (DailyOutcome.SEEN_OK, DailyOutcome.SEEN_NOT_OK)
TRIED = (*SEEN, DailyOutcome.MISSED)
SETTLED_ATTEMPTS = (AttemptStatus.COMPLETED, AttemptStatus.FAILED, AttemptStatus.CANCELED)
# An attempt reached someone when it is live or completed, or its latest try was answered, completed, dropped half-way
# or ended with a callback request (a row keeps only its latest try: reached first and missed on a retry is not).
REACHED_STATUSES = (AttemptStatus.IN_PROGRESS, AttemptStatus.COMPLETED)
REACHED_OUTCOMES = (Outcome.ANSWERED, Outcome.COMPLETED, Outcome.CALLBACK, Outcome.DROPPED)
ENDED_CAMPAIGNS = (CampaignStatus.CANCELED, CampaignStatus.COMPLETED)


@dataclass(frozen=True)
class Record:
    """What decides a person's final status."""

    seen: int  # days SEEN_OK or SEEN_NOT_OK
    tried: int  # days seen or MISSED
    missed_in_a_row: int  # MISSED days after the last day seen
    seen_on_last_day: bool
    over: bool  # the last follow-up day is past, or the campaign ended
    became_case: bool = False  # a positive sample on or before the last follow-up day


def final_status(record: Record) -> FinalStatus:
    if record.became_case:
        return FinalStatus.BECAME_CASE
    if record.missed_in_a_row >= LOST_AFTER_MISSED_DAYS:
        return FinalStatus.LOST_TO_FOLLOW_UP
    if not record.over:
        return FinalStatus.UNDER_FOLLOW_UP
    if record.seen_on_last_day or 2 * record.seen > record.tried:
        return FinalStatus.FOLLOW_UP_COMPLETED
    return FinalStatus.LOST_TO_FOLLOW_UP


class Standing(NamedTuple):
    """A person's follow-up so far, as the database counts it for their final status."""

    elapsed: int  # days from the exposure to today
    seen: int
    tried: int
    missed_in_a_row: int
    seen_on_last_day: int
    became_case: int


PERSON_AT = 8 + len(Standing._fields)  # in a follow-up row: the day's 8 columns, a Standing, then the person's


@dataclass(frozen=True)
class PersonRecord:
    """One person's follow-up in a campaign: their final status."""

    person_id: int
    final: FinalStatus


class FollowUpRow(NamedTuple):
    """One person's follow-up day, with everything a tracing team reads about it."""

    phone: str
    name: str | None
    province: str | None
    ward: str | None
    follow_up_day: int
    date: date
    attempt_status: AttemptStatus | None
    channel: Channel | None
    tries: int
    last_outcome: Outcome | None
    outcome: DailyOutcome
    declaration_status: DeclarationStatus | None  # of the day's declaration that says the most (the latest of those)
    phone_verified: bool | None  # of that declaration: false when the phone was only typed into the web chat
    temperature_c: float | None
    symptoms: list[str] | None
    alert_level: AlertLevel | None
    final_status: FinalStatus


class DayCount(NamedTuple):
    """Follow-up days of one date alike in channel, attempt status and outcome ('' for no channel, and for a day
    never planned), with how many of them were tried and reached."""

    day: date
    channel: str
    attempt_status: str
    outcome: DailyOutcome
    follow_ups: int
    tried: int
    reached: int


def local_today(rules: CampaignRules, now: datetime) -> date:
    return now.astimezone(ZoneInfo(rules.timezone)).date()


def person_records(session: Session, campaign: Campaign, today: date) -> Iterator[PersonRecord]:
    """Everyone with a follow-up day in the campaign, one row each, however many days they have."""
    plan = _Plan.of(campaign, today)
    records = _records(_follow_up_days(plan))
    for row in session.execute(select(records), execution_options={"yield_per": ROWS_PER_FETCH}):
        yield PersonRecord(row.person_id, plan.final(row))


def day_counts(session: Session, campaign: Campaign, today: date) -> Iterator[DayCount]:
    """Every follow-up day of the campaign up to `today`, counted by date (a pass over all of them: for keeping the
    days as they settle, not for every view)."""
    plan = _Plan.of(campaign, today)
    days = _follow_up_days(plan)
    kinds = (days.c.exposure, days.c.day, days.c.channel, days.c.attempt_status, days.c.outcome)
    counted = select(*kinds, *_tallies(days.c.tries, days.c.attempt_status, days.c.last_outcome)).group_by(*kinds)
    for exposure, day, channel, status, outcome, follow_ups, tried_count, reached_count in session.execute(counted):
        yield DayCount(
            exposure + timedelta(days=day), channel or "", status or "", DailyOutcome(outcome), follow_ups,
            tried_count, reached_count,
        )  # fmt: skip


def today_counts(session: Session, campaign: Campaign, today: date) -> list[DayCount]:
    """The follow-up days planned for `today`, counted live from today's attempts alone (each keeps what its day's
    declarations say: `keep_verdict`), whatever the campaign's history."""
    plan = _Plan.of(campaign, today)
    settled = true() if plan.ended else OutreachAttempt.status.in_(SETTLED_ATTEMPTS)
    outcome = _outcome(OutreachAttempt.verdict, settled, OutreachAttempt.tries > 0)
    kinds = (OutreachAttempt.channel, OutreachAttempt.status, outcome)
    counted = (
        select(*kinds, *_tallies(OutreachAttempt.tries, OutreachAttempt.status, OutreachAttempt.last_outcome))
        .where(OutreachAttempt.campaign_id == plan.campaign_id, OutreachAttempt.follow_up_date == today)
        .group_by(*kinds)
    )
    return [
        DayCount(today, channel or "", status, DailyOutcome(outcome), *counts)
        for channel, status, outcome, *counts in session.execute(counted)
    ]


def keep_verdict(session: Session, declaration: Declaration) -> None:
    """Keep on the attempt of a declaration's follow-up day the strongest thing its day's declarations say, each
    time one changes (an answer, a correction): a day's outcome is then read from its attempt alone. (Every
    declaration of a campaign's day comes from that day's attempt: a day never planned has none.)"""
    if declaration.campaign_id is None or declaration.follow_up_day is None:
        return
    same_day = (
        (Declaration.campaign_id == declaration.campaign_id)
        & (Declaration.person_id == declaration.person_id)
        & (Declaration.follow_up_day == declaration.follow_up_day)
    )
    strongest = select(func.max(_strength())).where(same_day).scalar_subquery()
    session.execute(
        update(OutreachAttempt)
        .where(
            OutreachAttempt.campaign_id == declaration.campaign_id,
            OutreachAttempt.person_id == declaration.person_id,
            OutreachAttempt.follow_up_day == declaration.follow_up_day,
        )
        .values(verdict=func.coalesce(strongest, 0))
        .execution_options(synchronize_session=False)
    )


def _tallies(tries: ColumnElement, status: ColumnElement, last_outcome: ColumnElement) -> list[ColumnElement[int]]:
    """A group's follow-up days, those tried at least once, and those that reached someone (`REACHED_*`)."""
    tried = tries > 0
    reached = or_(status.in_(REACHED_STATUSES), last_outcome.in_(REACHED_OUTCOMES))
    return [func.count(), count_where(tried), count_where(and_(tried, reached))]


def follow_up_rows(
    session: Session, campaign: Campaign, today: date, province_code: str | None = None
) -> Iterator[FollowUpRow]:
    """Every person's follow-up days (of one province when given), by person and day.

    One query, read in batches: memory stays flat whatever the size of the lists.
    """
    plan = _Plan.of(campaign, today)
    days = _follow_up_days(plan)
    records = _records(days)
    its_declaration = and_(
        Declaration.campaign_id == plan.campaign_id,
        Declaration.person_id == days.c.person_id,
        Declaration.follow_up_day == days.c.day,
        _strength() == days.c.verdict,
    )
    stmt = (
        select(
            days.c.person_id,
            days.c.day,
            days.c.exposure,
            days.c.attempt_status,
            days.c.channel,
            days.c.tries,
            days.c.last_outcome,
            days.c.outcome,
            *(records.c[name] for name in Standing._fields),
            Person.phone,
            Person.full_name,
            Person.province,
            Person.ward,
            Declaration.status,
            Conversation.phone_verified,
            Declaration.temperature_c,
            Declaration.symptoms,
            Declaration.alert_level,
        )
        .join(records, records.c.person_id == days.c.person_id)
        .join(Person, Person.id == days.c.person_id)
        .outerjoin(Declaration, its_declaration)
        .outerjoin(Conversation, Conversation.id == Declaration.conversation_id)
        .order_by(days.c.person_id, days.c.day, Declaration.id)
    )
    if province_code is not None:
        stmt = stmt.where(Person.province_code == province_code)
    # Core rows straight from the connection, unpacked by position: at 1.4 million rows the ORM's result machinery
    # and reading columns by name were a third of an export's time.
    rows = session.connection().execution_options(yield_per=ROWS_PER_FETCH).execute(stmt)
    current, final = None, None
    for (person_id, day), same_day in groupby(rows, key=itemgetter(0, 1)):
        *_, row = same_day  # the latest of the day's declarations that say the most
        exposure, attempt_status, channel, tries, last_outcome, outcome = row[2:8]
        phone, name, province, ward, declared, phone_verified, temperature, symptoms, alert_level = row[PERSON_AT:]
        if person_id != current:
            current, final = person_id, plan.final(Standing(*row[8:PERSON_AT]))
        yield FollowUpRow(
            phone,
            name,
            province,
            ward,
            day,
            exposure + timedelta(days=day),
            attempt_status,
            channel,
            tries or 0,
            last_outcome,
            DailyOutcome(outcome),
            declared,
            # a declaration without a conversation was made by the platform itself: nobody typed a phone for it
            None if declared is None else phone_verified is not False,
            temperature,
            symptoms,
            alert_level,
            final,
        )


class days_between(FunctionElement):
    """Whole days from the first date to the second (SQLite has no date arithmetic, PostgreSQL subtracts)."""

    type = Integer()
    inherit_cache = True


@compiles(days_between)
def _compile_days_between(element: days_between, compiler: Any, **kw: Any) -> str:
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({later} - {earlier})"


@compiles(days_between, "sqlite")
def _compile_days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((condition, 1)))


def _strength() -> ColumnElement[int]:
    """How strongly one declaration says what its day was (VERDICT_STRENGTH, from DECLARATION_OUTCOMES)."""
    unwell = or_(Declaration.alert_level != AlertLevel.NONE, func.json_array_length(Declaration.symptoms) > 0)
    verdicts = [
        (and_(unwell, Declaration.status != DeclarationStatus.WRONG_PERSON), VERDICT_STRENGTH[DailyOutcome.SEEN_NOT_OK])
    ]
    for outcome, strength in VERDICT_STRENGTH.items():
        statuses = [status for status, said in DECLARATION_OUTCOMES.items() if said == outcome]
        if statuses:
            verdicts.append((Declaration.status.in_(statuses), strength))
    return case(*verdicts, else_=0)


@dataclass(frozen=True)
class _Plan:
    """The campaign facts the queries need."""

    campaign_id: int
    offsets: list[int]
    today: date
    start_day: date | None
    status: CampaignStatus

    @classmethod
    def of(cls, campaign: Campaign, today: date) -> "_Plan":
        rules = CampaignRules.model_validate(campaign.rules)
        start_day = local_today(rules, campaign.started_at) if campaign.started_at else None
        return cls(campaign.id, rules.follow_up_offsets(), today, start_day, campaign.status)

    @property
    def ended(self) -> bool:
        return self.status in ENDED_CAMPAIGNS

    def final(self, record: Any) -> FinalStatus:
        over = self.ended or record.elapsed > self.offsets[-1]
        seen_on_last_day, became_case = record.seen_on_last_day > 0, record.became_case > 0
        return final_status(
            Record(record.seen, record.tried, record.missed_in_a_row, seen_on_last_day, over, became_case)
        )


def _follow_up_days(plan: _Plan) -> CTE:
    """Every person's follow-up days with their outcome: the days planned, and those from the campaign's start to
    today never planned (unless it was canceled)."""
    exposures = _exposures(plan)
    offsets = union_all(*(select(literal(day).label("day")) for day in plan.offsets)).subquery("offsets")
    elapsed = days_between(exposures.c.exposure, literal(plan.today, Date))
    held = OutreachAttempt.id.is_not(None)
    if plan.start_day is not None and plan.status != CampaignStatus.CANCELED:
        since_start = days_between(exposures.c.exposure, literal(plan.start_day, Date))
        held = or_(held, offsets.c.day.between(since_start, elapsed))
    # A confirmed case's follow-up as a contact ends on the day of their positive sample.
    confirmed = exposures.c.confirmed
    case_day = days_between(exposures.c.exposure, confirmed)
    held = and_(held, or_(confirmed.is_(None), offsets.c.day <= case_day))
    became_case = case((and_(confirmed.is_not(None), case_day <= plan.offsets[-1]), 1), else_=0)
    settled = true() if plan.ended else or_(offsets.c.day < elapsed, OutreachAttempt.status.in_(SETTLED_ATTEMPTS))
    return (
        select(
            exposures.c.person_id,
            exposures.c.exposure,
            elapsed.label("elapsed"),
            offsets.c.day,
            OutreachAttempt.status.label("attempt_status"),
            OutreachAttempt.channel,
            OutreachAttempt.tries,
            OutreachAttempt.last_outcome,
            OutreachAttempt.verdict,
            _outcome(OutreachAttempt.verdict, settled, func.coalesce(OutreachAttempt.tries, 0) > 0).label("outcome"),
            became_case.label("became_case"),
        )
        .select_from(exposures)
        .join(offsets, true())
        .outerjoin(
            OutreachAttempt,
            and_(
                OutreachAttempt.campaign_id == plan.campaign_id,
                OutreachAttempt.person_id == exposures.c.person_id,
                OutreachAttempt.follow_up_day == offsets.c.day,
            ),
        )
        .where(held)
        .cte("follow_up_days")
    )


def _outcome(
    verdict: ColumnElement[int], settled: ColumnElement[bool], tried: ColumnElement[bool]
) -> ColumnElement[str]:
    """The daily outcome table of the module's docstring, for a day's strongest declaration and its attempt."""
    return case(
        *((verdict == strength, outcome.value) for outcome, strength in VERDICT_STRENGTH.items()),
        (and_(settled, tried), DailyOutcome.MISSED.value),
        (settled, DailyOutcome.NOT_ATTEMPTED.value),
        else_=DailyOutcome.NOT_PERFORMED.value,  # also when `settled` is NULL: today, and nothing planned yet
    )


def _exposures(plan: _Plan) -> Subquery:
    """Each person's latest exposure date (the campaign's start, or today, stands in for a missing one) and the date of
    their first positive sample, if any."""
    unknown = plan.start_day or plan.today
    return (
        select(
            ContactListMember.person_id,
            func.max(func.coalesce(ContactListMember.exposure_date, literal(unknown, Date))).label("exposure"),
            func.max(Person.confirmed_case_on).label("confirmed"),
        )
        .join(campaign_lists, campaign_lists.c.contact_list_id == ContactListMember.contact_list_id)
        .join(Person, Person.id == ContactListMember.person_id)
        .where(campaign_lists.c.campaign_id == plan.campaign_id)
        .group_by(ContactListMember.person_id)
        .subquery("exposures")
    )


def _records(days: CTE) -> Subquery:
    """One row per person: what decides their final status."""
    of_person = {"partition_by": days.c.person_id}
    last_seen = func.max(case((days.c.outcome.in_(SEEN), days.c.day))).over(**of_person)
    last_day = func.max(days.c.day).over(**of_person)
    day = select(days, last_seen.label("last_seen"), last_day.label("last_day")).subquery("with_last_days").c
    seen = day.outcome.in_(SEEN)
    return (
        select(
            day.person_id,
            func.max(day.elapsed).label("elapsed"),
            count_where(seen).label("seen"),
            count_where(day.outcome.in_(TRIED)).label("tried"),
            count_where(and_(day.outcome == DailyOutcome.MISSED, day.day > func.coalesce(day.last_seen, -1))).label(
                "missed_in_a_row"
            ),
            count_where(and_(seen, day.day == day.last_day)).label("seen_on_last_day"),
            func.max(day.became_case).label("became_case"),
        )
        .group_by(day.person_id)
        .subquery("records")
    )

"""A campaign at provincial scale, on SQLite and PostgreSQL side by side (part of `make bench`).

    .venv/bin/python scripts/bench_campaigns.py --people 100000 --days 14 --runs 3

A province of `people` residents in 60 wards, all on one contact list exposed `days` days ago, followed by one
running campaign (voice then SMS) for `days` days: today is its last follow-up day, so 100,000 x 14 = 1.4 million
follow-up days. Every day has one outreach attempt per person, made on its own date as the planner makes them: past
days mostly completed (some failed after three tries, a few canceled), today's a live mix (scheduled, completed,
waiting for a retry, in a call, failed; those in a call claimed in the last minutes, so the ETA has a pace). Every
completed attempt has its declaration (one in twenty with an alert, most of those raised as an alert row; today's
and some older ones still unacknowledged). Measured in-process (ASGI, templates rendered) as a provincial manager:

- the campaign's progress through the API (GET /api/v1/campaigns/{id}): the first view, which settles the past
  days, timed apart, then p95 of 10;
- the console's campaign page and the progress it polls (p95 of 10);
- the capacity plan of the campaign's list and rules (POST /api/v1/campaigns/capacity-plan, p95 of 10);
- the full CSV export as an operator runs it (`outreach campaign export`, a child process): wall time, rows written
  and the child's peak memory.

A page or endpoint that does not exist (404, 405) shows n/a. A request slower than 2 s is repeated 3 times instead of
10 (the output says where). Each figure is the median of `runs` runs; goals: progress p95 < 300 ms, export < 30 s and
< 200 MB, capacity plan < 200 ms.
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from access import auth, console  # noqa: E402
from app.web import create_app  # noqa: E402
from campaigns.outcomes import VERDICT_STRENGTH, DailyOutcome  # noqa: E402
from campaigns.rules import CampaignRules  # noqa: E402
from ground.settings import Settings  # noqa: E402
from ground.store import refresh_statistics  # noqa: E402
from models import (  # noqa: E402
    Alert,
    AlertLevel,
    AttemptStatus,
    Campaign,
    CampaignDay,
    CampaignSettlement,
    CampaignStatus,
    Channel,
    ContactList,
    ContactListMember,
    Declaration,
    DeclarationStatus,
    Outcome,
    OutreachAttempt,
    Person,
    Role,
)
from models.migrate import upgrade  # noqa: E402
from tests.support.postgres import ThrowawayPostgres  # noqa: E402

PASSWORD = "mật-khẩu-đủ-dài-2021"
MANAGER = "manager-bn"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
WARDS = [f"Phường {n}" for n in range(1, 61)]
CHUNK = 20_000
SLOW = 2.0  # seconds: a request slower than this is repeated REPEAT_SLOW times instead of REPEAT
REPEAT, REPEAT_SLOW = 10, 3
OUTREACH = str(ROOT / ".venv" / "bin" / "outreach")
PACE_WINDOW = timedelta(minutes=10)  # the ETA's pace: attempts claimed in the last 10 minutes


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock_time(hour, minute), ZONE).astimezone(UTC)


def _past_attempt(rng: random.Random, day: date) -> dict[str, Any]:
    """A past day's attempt as the day left it: completed ~82 %, failed ~15 %, canceled ~3 %."""
    roll = rng.random()
    if roll < 0.03:
        return {"status": AttemptStatus.CANCELED, "tries": 0}
    claimed = _local(day, 8) + timedelta(minutes=rng.randrange(11 * 60))
    channel = Channel.VOICE if rng.random() < 0.7 else Channel.SMS
    tried = {
        "channel": channel,
        "claimed_by": "worker-1",
        "claimed_at": claimed,
        "provider_ref": f"CA{rng.getrandbits(64):016x}",
    }
    if roll < 0.18:
        outcome = rng.choice([Outcome.NO_ANSWER, Outcome.DAY_ENDED])
        return tried | {"status": AttemptStatus.FAILED, "tries": 3, "last_outcome": outcome}
    return tried | {
        "status": AttemptStatus.COMPLETED,
        "tries": rng.choice([1, 1, 1, 2]),
        "last_outcome": Outcome.COMPLETED,
    }


def _today_attempt(rng: random.Random, today: date, now: datetime) -> dict[str, Any]:
    """Today's attempt, live: scheduled 40 %, completed 40 %, retry_wait 10 %, in_progress 5 %, failed 5 %."""
    roll = rng.random()
    if roll < 0.40:
        return {"status": AttemptStatus.SCHEDULED, "tries": 0}
    opened = _local(today, 8)
    span = max(60, int((now - PACE_WINDOW - opened).total_seconds()))
    claimed = opened + timedelta(seconds=rng.randrange(span))
    channel = Channel.VOICE if rng.random() < 0.7 else Channel.SMS
    tried = {
        "channel": channel,
        "claimed_by": "worker-1",
        "claimed_at": claimed,
        "provider_ref": f"CA{rng.getrandbits(64):016x}",
    }
    if roll < 0.80:
        return tried | {
            "status": AttemptStatus.COMPLETED,
            "tries": rng.choice([1, 1, 1, 2]),
            "last_outcome": Outcome.COMPLETED,
        }
    if roll < 0.90:
        outcome = rng.choice([Outcome.NO_ANSWER, Outcome.BUSY])
        retry = max(now, claimed) + timedelta(minutes=rng.randrange(5, 60))
        return tried | {
            "status": AttemptStatus.RETRY_WAIT,
            "tries": rng.choice([1, 2]),
            "last_outcome": outcome,
            "due_at": retry,
        }
    if roll < 0.95:  # in a call now: claimed in the last minutes, which gives the ETA its pace
        claimed = now - timedelta(seconds=rng.randrange(int(PACE_WINDOW.total_seconds())))
        return tried | {
            "status": AttemptStatus.IN_PROGRESS,
            "tries": 1,
            "last_outcome": Outcome.ANSWERED,
            "claimed_at": claimed,
        }
    return tried | {"status": AttemptStatus.FAILED, "tries": 3, "last_outcome": Outcome.NO_ANSWER}


def _declaration(rng: random.Random, attempt: dict[str, Any]) -> dict[str, Any]:
    """The declaration of a completed attempt, written a few minutes after its claim."""
    at = attempt["claimed_at"] + timedelta(minutes=rng.randrange(2, 10))
    refused = rng.random() < 0.04
    level = AlertLevel.NONE if refused else rng.choices(list(AlertLevel), [95, 4, 1])[0]
    unwell = level != AlertLevel.NONE
    return {
        "person_id": attempt["person_id"],
        "campaign_id": attempt["campaign_id"],
        "channel": attempt["channel"],
        "follow_up_day": attempt["follow_up_day"],
        "status": DeclarationStatus.REFUSED if refused else DeclarationStatus.COMPLETE,
        "identity_confirmed": True,
        "answered_by": "resident",
        "symptoms_asked": not refused,
        "symptoms": ["cough"] if unwell else [],
        "temperature_c": None if refused else round(rng.uniform(36.2, 38.6 if unwell else 37.2), 1),
        "alert_level": level,
        "alert_reasons": ["cough"] if unwell else [],
        "created_at": at,
        "updated_at": at,
    }


def _verdict(declaration: dict[str, Any]) -> int:
    """What `campaigns.outcomes.keep_verdict` keeps on the attempt for this declaration."""
    if declaration["alert_level"] != AlertLevel.NONE:
        return VERDICT_STRENGTH[DailyOutcome.SEEN_NOT_OK]
    if declaration["status"] == DeclarationStatus.COMPLETE:
        return VERDICT_STRENGTH[DailyOutcome.SEEN_OK]
    return VERDICT_STRENGTH[DailyOutcome.MISSED] if declaration["status"] == DeclarationStatus.REFUSED else 0


_UNFINISHED = {
    "status": DeclarationStatus.IN_PROGRESS,
    "symptoms": [],
    "temperature_c": None,
    "alert_level": AlertLevel.NONE,
    "alert_reasons": [],
}


def fill(url: str, people: int, days: int) -> tuple[float, dict[str, Any]]:
    """The generated province and its campaign; returns the seconds it took and what the measures need."""
    started = time.perf_counter()
    app = create_app(Settings(database_url=url))
    sessions, engine = app.state.platform.sessions, app.state.platform.db_engine
    upgrade(engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    today = now.astimezone(ZONE).date()
    exposure = today - timedelta(days=days)
    rules = CampaignRules(follow_up_days=days, channels=[Channel.VOICE, Channel.SMS]).model_dump(mode="json")
    with sessions.begin() as session:
        manager = auth.add_user(session, MANAGER, Role.MANAGER, "27")
        console.set_password(manager.user, PASSWORD)
        token, manager_id = manager.token, manager.user.id
        for first in range(0, people, CHUNK):
            rows = [
                {
                    "phone": f"+8491{n:07d}",
                    "full_name": f"Nguyễn Văn {n}",
                    "birth_year": 1940 + n % 70,
                    "province_code": "27",
                    "province": "Bắc Ninh",
                    "ward": WARDS[n % len(WARDS)],
                    "created_at": _local(exposure, 20),
                    "updated_at": _local(exposure, 20),
                }
                for n in range(first, min(first + CHUNK, people))
            ]
            session.execute(insert(Person), rows)
        ids = list(session.scalars(select(Person.id).order_by(Person.id)))
        contact_list = ContactList(
            name="F1 của BN-27",
            province_code="27",
            source_case="BN-27",
            exposure_date=exposure,
            created_at=_local(exposure, 20),
        )
        session.add(contact_list)
        session.flush()
        for first in range(0, len(ids), CHUNK):
            rows = [
                {
                    "contact_list_id": contact_list.id,
                    "person_id": person_id,
                    "exposure_date": exposure,
                    "source_case": "BN-27",
                    "source_line": line,
                }
                for line, person_id in enumerate(ids[first : first + CHUNK], start=first + 2)
            ]
            session.execute(insert(ContactListMember), rows)
        started_at = _local(exposure + timedelta(days=1), 8)
        campaign = Campaign(
            name="Theo dõi F1 BN-27",
            province_code="27",
            status=CampaignStatus.RUNNING,
            rules=rules,
            started_at=started_at,
            contact_lists=[contact_list],
            created_at=started_at - timedelta(minutes=30),
            updated_at=started_at,
        )
        session.add(campaign)
        session.flush()
        campaign_id, list_id = campaign.id, contact_list.id
    for day in range(1, days + 1):
        on = exposure + timedelta(days=day)
        made = _local(on, 7)
        with sessions.begin() as session:
            for first in range(0, len(ids), CHUNK):
                attempts, declarations = [], []
                for person_id in ids[first : first + CHUNK]:
                    attempt = {
                        "campaign_id": campaign_id,
                        "person_id": person_id,
                        "follow_up_day": day,
                        "follow_up_date": on,
                        "verdict": 0,
                        "due_at": _local(on, 8),
                        "channel": None,
                        "claimed_by": None,
                        "claimed_at": None,
                        "provider_ref": None,
                        "last_outcome": None,
                        "created_at": made,
                        "updated_at": made,
                    }
                    attempt |= _today_attempt(rng, today, now) if on == today else _past_attempt(rng, on)
                    if attempt["claimed_at"] is not None:
                        attempt["updated_at"] = attempt["claimed_at"] + timedelta(minutes=rng.randrange(1, 10))
                    attempts.append(attempt)
                    if attempt["status"] == AttemptStatus.COMPLETED:
                        declarations.append(_declaration(rng, attempt))
                    elif attempt["status"] == AttemptStatus.IN_PROGRESS:  # the call is on: its answers so far
                        declarations.append(_declaration(rng, attempt) | _UNFINISHED)
                    if attempt["status"] in (AttemptStatus.COMPLETED, AttemptStatus.IN_PROGRESS):
                        attempt["verdict"] = _verdict(declarations[-1])  # as the assessment keeps it
                session.execute(insert(OutreachAttempt), attempts)
                if declarations:
                    session.execute(insert(Declaration), declarations)
    with sessions.begin() as session:
        alerting = session.execute(
            select(
                Declaration.id,
                Declaration.person_id,
                Declaration.alert_level,
                Declaration.created_at,
                Declaration.follow_up_day,
            )
            .where(Declaration.campaign_id == campaign_id, Declaration.alert_level != AlertLevel.NONE)
            .order_by(Declaration.id)
        ).all()
        alerts = []
        for declaration_id, person_id, level, at, day in alerting:
            if rng.random() >= 0.8:  # the rest were raised on a campaign since cleaned up, or merged by a tracer
                continue
            open_ = day == days or rng.random() < 0.1
            alerts.append(
                {
                    "declaration_id": declaration_id,
                    "person_id": person_id,
                    "level": level,
                    "reasons": ["cough"],
                    "created_at": at,
                    "updated_at": at,
                    "acknowledged_at": None if open_ else at + timedelta(minutes=rng.randrange(5, 240)),
                    "acknowledged_by_id": None if open_ else manager_id,
                    "acknowledgement_note": None if open_ else "Đã gọi lại, hẹn xét nghiệm",
                    "next_notification_at": at + timedelta(minutes=10) if level == AlertLevel.URGENT else None,
                }
            )
        for first in range(0, len(alerts), CHUNK):
            session.execute(insert(Alert), alerts[first : first + CHUNK])
    refresh_statistics(engine)  # as the worker's planning job does every few minutes
    if engine.dialect.name != "sqlite":  # what autovacuum does within a minute of a bulk load (not in mid-measure)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    facts = {"campaign_id": campaign_id, "list_id": list_id, "token": token, "rules": rules}
    return time.perf_counter() - started, facts


def keep_pace(url: str) -> None:
    """The attempts in a call were claimed in the last minutes, as if the dispatcher were still at work (a run may
    start well after the fill); the past days are forgotten, so that each run's first view settles them again."""
    app = create_app(Settings(database_url=url))
    now = datetime.now(UTC)
    with app.state.platform.sessions.begin() as session:
        session.execute(delete(CampaignDay))
        session.execute(delete(CampaignSettlement))
        session.execute(
            update(OutreachAttempt)
            .where(OutreachAttempt.status == AttemptStatus.IN_PROGRESS)
            .values(claimed_at=now - PACE_WINDOW / 2)
        )
    app.state.platform.db_engine.dispose()


def _signed_in(client: TestClient) -> None:
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/console/login",
        data={"username": MANAGER, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


class Missing(Exception):
    """The page or endpoint is not there (yet)."""


def _timed(client: TestClient, method: str, path: str, missing_ok: bool, **kwargs: Any) -> float:
    started = time.perf_counter()
    try:
        answer = client.request(method, path, **kwargs)
    except Exception as error:  # a page being written may still raise
        if missing_ok:
            raise Missing(f"{path}: {type(error).__name__}: {error}") from None
        raise
    took = time.perf_counter() - started
    if missing_ok and answer.status_code in (404, 405):
        raise Missing(f"{path}: {answer.status_code}")
    if answer.status_code != 200:
        if missing_ok:
            raise Missing(f"{path}: {answer.status_code} {answer.text[:200]}")
        raise AssertionError(f"{path}: {answer.status_code} {answer.text[:500]}")
    return took


def _p95(
    client: TestClient,
    method: str,
    path: str,
    notes: list[str],
    missing_ok: bool = False,
    **kwargs: Any,
) -> float | None:
    """p95 in ms of REPEAT requests after one warm-up; None when the page is missing; REPEAT_SLOW requests when the
    warm-up was slower than SLOW."""
    try:
        warm = _timed(client, method, path, missing_ok, **kwargs)
        times = REPEAT_SLOW if warm > SLOW else REPEAT
        if times < REPEAT:
            notes.append(f"{method} {path}: {warm:.1f} s when warm: p95 of {times}, not {REPEAT}")
        took = sorted(_timed(client, method, path, missing_ok, **kwargs) for _ in range(times))
    except Missing as missing:
        notes.append(f"n/a: {missing}")
        return None
    return took[max(0, round(0.95 * len(took)) - 1)] * 1000


def _run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a child process; (wall seconds, its peak RSS in MB), as /usr/bin/time sees it. Not os.wait4 on our own
    child: Linux starts a forked child's peak RSS at its parent's, and this process holds the app and its data."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss, tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *command],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        took = time.perf_counter() - started
        if done.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{command[1:3]} failed ({done.returncode}): {output.read().decode()[-2000:]}")
        kilobytes = int(Path(rss.name).read_text().split()[-1])
    return took, kilobytes / 1024


def export_in_child(url: str, campaign_id: int, workdir: Path) -> dict[str, float]:
    """`outreach campaign export` in a child process: wall seconds, rows written, the child's peak RSS in MB."""
    target = workdir / f"campaign-{campaign_id}.csv"
    target.unlink(missing_ok=True)
    command = [OUTREACH, "campaign", "export", str(campaign_id), "--format", "csv", "-o", str(target)]
    code = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # the code this script runs
    took, peak = _run_child(command, os.environ | {"OUTREACH_DATABASE_URL": url, "PYTHONPATH": code})
    with target.open("rb") as written:
        rows = sum(1 for _ in written) - 1  # the header
    target.unlink()
    return {"export: wall (s)": took, "export: rows written": rows, "export: child peak RSS (MB)": peak}


def cli_alone() -> tuple[float, float]:
    """What the export's child costs before it reads a row: (seconds, peak RSS in MB) of `outreach campaign --help`."""
    return _run_child([OUTREACH, "campaign", "--help"])


def measure(url: str, facts: dict[str, Any], workdir: Path, notes: list[str]) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    campaign_id = facts["campaign_id"]
    api = {"Authorization": f"Bearer {facts['token']}"}
    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        path = f"/api/v1/campaigns/{campaign_id}"
        first = _timed(client, "GET", path, False, headers=api)
        figures["API progress: first view (settles past days)"] = first * 1000
        figures["API progress: GET campaign (p95)"] = _p95(client, "GET", path, notes, headers=api)  # warmed anew
        _signed_in(client)
        page = f"/console/campaigns/{campaign_id}"
        figures["console: campaign page (p95)"] = _p95(client, "GET", page, notes, missing_ok=True)
        figures["console: progress.json (p95)"] = _p95(client, "GET", f"{page}/progress.json", notes, missing_ok=True)
        plan = {"contact_list_ids": [facts["list_id"]], "rules": facts["rules"]}
        figures["capacity plan (p95)"] = _p95(
            client, "POST", "/api/v1/campaigns/capacity-plan", notes, missing_ok=True, headers=api, json=plan
        )
    app.state.platform.db_engine.dispose()
    figures |= export_in_child(url, campaign_id, workdir)
    return figures


def _cell(values: list[float | None], name: str) -> str:
    if any(value is None for value in values):
        return "n/a"
    median = statistics.median(values)
    return f"{median:,.0f}" if "rows" in name else f"{median:.1f}" if "(s)" in name else f"{median:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    chosen = [store.strip() for store in args.stores.split(",") if store.strip()]
    if not chosen or set(chosen) - {"sqlite", "postgresql"}:
        parser.error("--stores: sqlite, postgresql or both")
    workdir = Path(tempfile.mkdtemp(prefix="outreach-campaign-bench-"))
    postgres = ThrowawayPostgres() if "postgresql" in chosen else None
    if postgres:
        postgres.start()
    try:
        urls = {
            "sqlite": lambda: f"sqlite:///{workdir / 'campaign.db'}",
            "postgresql": lambda: postgres.create_database("campaign"),
        }
        results: dict[str, list[dict[str, float | None]]] = {}
        notes: dict[str, list[str]] = {}
        for name in chosen:
            url = urls[name]()
            took, facts = fill(url, args.people, args.days)
            print(
                f"{name}: {args.people:,} people x {args.days} days ({args.people * args.days:,} attempts and their "
                f"declarations) written in {took:.0f} s",
                flush=True,
            )
            results[name], notes[name] = [], []
            for _ in range(args.runs):
                keep_pace(url)
                results[name].append(measure(url, facts, workdir, notes[name]))
                print(f"{name}: run {len(results[name])} of {args.runs} done", flush=True)
        print(f"\ncampaign at {args.people:,} people x {args.days} days (median of {args.runs} runs; ms unless said)")
        print(f"{'measure':48}" + "".join(f" {name:>12}" for name in chosen))
        for measure_name in results[chosen[0]][0]:
            cells = [_cell([run[measure_name] for run in results[name]], measure_name) for name in chosen]
            print(f"{measure_name:48}" + "".join(f" {cell:>12}" for cell in cells))
        print("\ngoals: progress p95 < 300 ms; export < 30 s and < 200 MB; capacity plan < 200 ms")
        alone = cli_alone()
        print(f"the export child before any row (`outreach campaign --help`): {alone[0]:.1f} s, {alone[1]:.0f} MB")
        for name in chosen:
            for note in dict.fromkeys(notes[name]):
                print(f"{name}: {note}")
    finally:
        if postgres:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

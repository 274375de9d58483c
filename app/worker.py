"""The in-process scheduler (APScheduler) that `outreach serve` runs beside the API.

Jobs that must survive a restart (the planning of follow-ups) live in the store, in the table `scheduler_jobs`;
jobs tied to this process live in memory: the dispatch tick (its state is the attempts table itself: claims, due
times, pacing), the heartbeat, watching the child engine. Several workers may share the store: claiming is safe
(see campaigns/dispatch.py) and planning is idempotent.
"""

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from app.engine_process import EngineProcess
from app.platform import broadcast_sender, build_platform, duty_notifiers, outbound_channels
from campaigns.dashboard import settle_days
from campaigns.dispatch import Dispatcher
from campaigns.lifecycle import plan_running_campaigns
from campaigns.progress import settle_running_campaigns
from connectors.twilio_voice import personal_lines_due
from conversations import duty
from ground.settings import Settings, get_settings
from ground.store import make_engine, make_session_factory, refresh_statistics
from models import JOBS_TABLE, utcnow
from voice.prompts import PromptCache
from voice.recordings import Recordings

ENGINE_WATCH_INTERVAL_S = 15
HEARTBEAT_INTERVAL_S = 20
PLANNING_INTERVAL_MIN = 10
log = logging.getLogger(__name__)


def beat(heartbeat_file: Path) -> None:
    heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
    heartbeat_file.write_text(f"{time.time():.0f}\n")


def heartbeat_age_s(heartbeat_file: Path) -> float | None:
    """Seconds since the scheduler last ran its heartbeat job, or None when it never did."""
    try:
        return time.time() - heartbeat_file.stat().st_mtime
    except FileNotFoundError:
        return None


class DispatchLoop:
    """The dispatcher on an event loop of its own, in a thread: the channels' async clients live on that loop, and
    a scheduler job (a thread) runs each tick on it."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dispatch", daemon=True)
        self.thread.start()
        self.platform = build_platform(settings)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        self.dispatcher = Dispatcher(
            self.platform.sessions,
            outbound_channels(self.platform),
            worker,
            interval=timedelta(seconds=settings.dispatch_interval_s),
            claim_timeout=timedelta(seconds=settings.dispatch_claim_timeout_s),
        )
        self.notifiers = duty_notifiers(self.platform)
        self.broadcasts = broadcast_sender(self.platform)

    def tick(self) -> None:
        asyncio.run_coroutine_threadsafe(self.dispatcher.tick(), self.loop).result()

    def notify_tick(self) -> None:
        """Tell the on-duty roster of urgent alerts (and escalate those nobody acknowledged)."""
        settings = self.platform.settings
        told = duty.notify_due(
            self.platform.sessions,
            self.notifiers,
            settings.public_url,
            timedelta(minutes=settings.alert_escalation_minutes),
        )
        if sent := asyncio.run_coroutine_threadsafe(told, self.loop).result():
            log.info("told the duty roster of urgent alerts: %d message(s)", sent)

    def broadcast_tick(self) -> None:
        """Send the team broadcasts' queued deliveries."""
        if self.broadcasts is None:
            return
        if sent := asyncio.run_coroutine_threadsafe(self.broadcasts.send_due(), self.loop).result():
            log.info("sent %d team broadcast message(s)", sent)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.platform.aclose_clients(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.platform.db_engine.dispose()


def plan_follow_ups(database_url: str) -> None:
    """The daily planning job (kept in the store, so a restarted worker knows when it last ran). Then the greetings
    with the names of everyone due are rendered, so that no call waits on speech synthesis when it is placed."""
    db_engine = make_engine(database_url)
    try:
        with make_session_factory(db_engine).begin() as session:
            if planned := plan_running_campaigns(session, utcnow()):
                log.info("planned %d follow-up attempt(s)", planned)
            if settled := settle_running_campaigns(session, utcnow()):  # after planning closed yesterday's attempts
                log.info("kept the past days of %d campaign(s)", settled)
            timezone = get_settings().timezone
            if settled := settle_days(session, timezone, utcnow().astimezone(ZoneInfo(timezone)).date()):
                log.info("kept the dashboard figures of %d past day(s)", settled)
            lines = personal_lines_due(session)
        refresh_statistics(db_engine)
    finally:
        db_engine.dispose()
    if rendered := PromptCache.from_settings(get_settings()).render_ahead(lines, personal=True):
        log.info("rendered %d personal voice prompt(s) ahead", rendered)
    if expired := Recordings.from_settings(get_settings()).expire():
        log.info("removed %d recorded answer(s) past their retention", expired)


def build_scheduler(
    settings: Settings, db_engine: Engine, engine: EngineProcess | None, dispatch: DispatchLoop | None = None
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=db_engine, tablename=JOBS_TABLE),
            "process": MemoryJobStore(),
        },
        timezone=settings.timezone,
    )
    # Proof of life for container health checks: the file is touched only while jobs actually run.
    _add_process_job(scheduler, HEARTBEAT_INTERVAL_S, "heartbeat", beat, settings.heartbeat_file, at_once=True)
    if dispatch is not None:
        _add_process_job(scheduler, settings.dispatch_interval_s, "dispatch", dispatch.tick, at_once=True)
        _add_process_job(scheduler, settings.alert_notify_interval_s, "duty", dispatch.notify_tick, at_once=True)
        _add_process_job(scheduler, settings.dispatch_interval_s, "broadcasts", dispatch.broadcast_tick, at_once=True)
        # Idempotent, so planning every few minutes (and on every worker) costs little and never misses a day.
        scheduler.add_job(
            plan_follow_ups,
            "interval",
            args=[settings.database_url],
            minutes=PLANNING_INTERVAL_MIN,
            id="plan-follow-ups",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
    if engine is not None:
        _add_process_job(scheduler, ENGINE_WATCH_INTERVAL_S, "engine-watchdog", engine.restart_if_dead, at_once=False)
    return scheduler


def _add_process_job(
    scheduler: BackgroundScheduler, seconds: float, job_id: str, job: Callable[..., None], *args: Any, at_once: bool
) -> None:
    """A job of this process alone (kept in memory, not in the store): one run at a time, missed runs folded into
    one; the first run now when `at_once`, else after the first interval."""
    first_run = {"next_run_time": datetime.now(UTC)} if at_once else {}
    scheduler.add_job(
        job,
        "interval",
        args=list(args),
        seconds=seconds,
        id=job_id,
        jobstore="process",
        max_instances=1,
        coalesce=True,
        **first_run,
    )

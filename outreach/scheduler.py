"""The in-process scheduler (APScheduler) that `outreach serve` runs beside the API.

Jobs that must survive a restart (campaign dispatch and planning) live in the store, in the table
`scheduler_jobs`; jobs tied to this process (watching the child engine) live in memory.
"""

import time
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from outreach.engine import EngineProcess
from outreach.settings import Settings

JOBS_TABLE = "scheduler_jobs"
ENGINE_WATCH_INTERVAL_S = 15
HEARTBEAT_INTERVAL_S = 20


def beat(heartbeat_file: Path) -> None:
    heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
    heartbeat_file.write_text(f"{time.time():.0f}\n")


def heartbeat_age_s(heartbeat_file: Path) -> float | None:
    """Seconds since the scheduler last ran its heartbeat job, or None when it never did."""
    try:
        return time.time() - heartbeat_file.stat().st_mtime
    except FileNotFoundError:
        return None


def build_scheduler(settings: Settings, db_engine: Engine, engine: EngineProcess | None) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=db_engine, tablename=JOBS_TABLE),
            "process": MemoryJobStore(),
        },
        timezone=settings.timezone,
    )
    # Proof of life for container health checks: the file is touched only while jobs actually run.
    scheduler.add_job(
        beat, "interval", args=[settings.heartbeat_file], seconds=HEARTBEAT_INTERVAL_S, id="heartbeat",
        jobstore="process", next_run_time=datetime.now(UTC), coalesce=True,
    )  # fmt: skip
    if engine is not None:
        scheduler.add_job(
            engine.restart_if_dead, "interval", seconds=ENGINE_WATCH_INTERVAL_S, id="engine-watchdog",
            jobstore="process", max_instances=1, coalesce=True,
        )  # fmt: skip
    return scheduler

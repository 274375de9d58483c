"""The scheduler's job table, as APScheduler's SQLAlchemyJobStore defines it, so that Alembic creates it with the
rest of the store (several workers starting at once would otherwise race to create it)."""

from sqlalchemy import Column, Float, LargeBinary, Table, Unicode

from models.base import Base

JOBS_TABLE = "scheduler_jobs"

scheduler_jobs = Table(
    JOBS_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
    comment="APScheduler's persistent jobs (the follow-up planning job)",
)

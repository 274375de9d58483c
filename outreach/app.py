"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.client import EngineClient
from outreach import errors
from outreach.db import make_engine, make_session_factory
from outreach.deps import Platform
from outreach.routers import conversations, declarations, health
from outreach.settings import Settings, get_settings

DESCRIPTION = """\
Chatbot and callbot outreach for epidemic follow-up in Vietnam.

Every `/api/v1` endpoint needs `Authorization: Bearer <token>` (make one with `outreach user add`), except the
channels residents use. A user scoped to a province sees only that province's people, declarations and
transcripts; every read of a declaration or transcript is written to the audit log.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    db_engine = make_engine(settings.database_url)
    platform = Platform(
        settings=settings,
        db_engine=db_engine,
        sessions=make_session_factory(db_engine),
        engine_client=EngineClient(settings.effective_engine_url, timeout_s=settings.engine_timeout_s),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await platform.engine_client.aclose()
        db_engine.dispose()

    app = FastAPI(title="Outreach platform", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.platform = platform
    errors.install(app)
    for module in (health, declarations, conversations):
        app.include_router(module.router)
    return app

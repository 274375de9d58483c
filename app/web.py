"""The FastAPI application factory."""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import apidocs, console, errors, security
from app.platform import Platform, build_platform
from app.routers import (
    alerts,
    campaigns,
    contact_lists,
    conversations,
    declarations,
    health,
    people,
    prompts,
    teams,
    tracing,
)
from app.schemas import error_responses
from connectors import twilio_sms, twilio_voice, webchat
from connectors.call_lines import ahead_of_calls
from connectors.zalo import inbound as zalo
from ground.settings import Settings, get_settings
from voice.prompts import PromptCache

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """\
Chatbot and callbot outreach for epidemic follow-up in Vietnam.

Every `/api/v1` endpoint needs `Authorization: Bearer <token>` (make one with `outreach user add`), except the
channels residents use. A user scoped to a province sees only that province's people, declarations and
transcripts; every read of a declaration or transcript is written to the audit log.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    platform = build_platform(settings)
    db_engine = platform.db_engine

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        replayer = asyncio.create_task(_replay_forever(platform))
        stop_rendering = threading.Event()
        renderer = asyncio.create_task(asyncio.to_thread(_render_static_prompts, platform.prompts, stop_rendering))
        yield
        stop_rendering.set()
        replayer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replayer
        await renderer  # a thread cannot be cancelled: it ends after the prompt in hand
        await platform.aclose_clients()
        db_engine.dispose()

    app = FastAPI(
        title="Outreach platform",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # apidocs serves /docs
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.platform = platform
    errors.install(app)
    security.install(app, https=settings.public_url.lower().startswith("https://"))
    if settings.docs_enabled:  # Swagger UI served by the platform itself (no CDN), under the strict CSP
        apidocs.install(app)
    if settings.trusted_proxies:  # the server's own proxy handling is off (serve): this setting alone decides
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    for module in (health, declarations, conversations, alerts, contact_lists, people, campaigns, tracing, teams):
        app.include_router(module.router)
    _include_channels(app, platform)
    console.install(app, platform)
    app.include_router(prompts.router)

    @app.get("/chat", include_in_schema=False)
    def chat_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "chat.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    return app


def _include_channels(app: FastAPI, platform: Platform) -> None:
    """The residents' channels and the providers' webhooks, each given the parts it uses."""
    settings, conversation_service = platform.settings, platform.conversations
    app.include_router(
        webchat.router(conversation_service, platform.webchat_limits, settings),
        responses=error_responses(*webchat.ERROR_CODES),
    )
    voice = twilio_voice.router(
        conversation_service, platform.sessions, platform.prompts, settings, platform.streamed_calls
    )
    app.include_router(voice)
    app.include_router(twilio_sms.router(platform.sessions, settings))
    app.include_router(zalo.router(platform.zalo_conversations, settings))


async def _replay_forever(platform: Platform) -> None:
    """Residents' turns kept while the engine was down are answered as soon as it is back."""
    while True:
        await asyncio.sleep(platform.settings.replay_interval_s)
        try:
            if caught_up := await platform.conversations.replay_pending():
                log.info("replayed the kept turns of %d conversation(s)", caught_up)
        except Exception:  # the loop must outlive any one failure (a store hiccup); the next round retries
            log.exception("replaying kept turns failed")


def _render_static_prompts(cache: PromptCache, stop: threading.Event) -> None:
    """Every fixed line of the dialogue is rendered before a call needs it (synthesis blocks: run in a thread)."""
    started = time.monotonic()
    try:
        rendered = cache.render_ahead(ahead_of_calls(), stop)
    except Exception:  # the app serves without them: a missing prompt is rendered when first asked for
        log.exception("rendering the voice prompts ahead failed")
        return
    log.info("rendered %d voice prompt(s) ahead in %.1f s", rendered, time.monotonic() - started)

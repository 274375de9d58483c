"""The alerts page and its live feed: open alerts of the user's province, urgent first, pushed as they are raised."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Header, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from access.auth import CAN_HANDLE_ALERTS
from access.errors import Forbidden
from app.client_address import ClientIpDep
from app.console.session import ConsoleRoute, FormDep, Signed, SignedDep
from app.console.views import Views, render
from app.deps import PlatformDep, SessionDep
from app.platform import Platform
from app.schemas import Id
from conversations import alert_queue
from models import Alert, User, utcnow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
POLL_S = 1.0  # how often the feed looks for new alerts in the store (every process raises them there)
STREAM_S = 25.0  # a feed ends after this and the browser reconnects: a server stopping waits for no open feed
KEEPALIVE_S = 10.0  # a comment line keeps proxies from closing a quiet feed


def _handler(signed: Signed) -> User:
    if signed.user.role not in CAN_HANDLE_ALERTS:
        raise Forbidden("Vai trò của bạn không xem được danh sách cảnh báo.")
    return signed.user


@router.get("/alerts")
def alerts_page(request: Request, signed: SignedDep, session: SessionDep, ip: ClientIpDep) -> Response:
    user = _handler(signed)
    since = utcnow()  # before the query: a change while it runs is pushed again rather than missed
    alerts = alert_queue.list_alerts(session, user, acknowledged=False, limit=500, offset=0, client_ip=ip)
    context = {"signed": signed, "alerts": alerts, "since": since.isoformat()}
    return render(request, "alerts.html", context)


@router.get("/alerts/{alert_id}")
def alert_page(alert_id: Id, signed: SignedDep, session: SessionDep) -> Response:
    """The link in a duty message: the alert on its declaration's page (a laboratory's: in the alert queue)."""
    alert = alert_queue.get_alert(session, _handler(signed), alert_id)
    page = f"/console/declarations/{alert.declaration_id}" if alert.declaration_id else "/console/alerts"
    return RedirectResponse(f"{page}#alert-{alert.id}", status_code=303)


@router.post("/alerts/{alert_id}/ack")
def acknowledge(
    alert_id: Id,
    signed: FormDep,
    session: SessionDep,
    ip: ClientIpDep,
    note: Annotated[str, Form(max_length=alert_queue.MAX_NOTE_CHARS)] = "",
) -> Response:
    alert_queue.acknowledge(session, _handler(signed), alert_id, utcnow(), ip, note)
    return RedirectResponse("/console/alerts", status_code=303)


@router.get("/events")
async def events(
    request: Request,
    signed: SignedDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    last_event_id: Annotated[str | None, Header()] = None,
    since: str | None = None,
) -> Response:
    """Server-sent events: `event: alert` for each alert of the user's province raised, raised further or
    acknowledged. The event id is the moment of the change, so a reconnecting browser misses nothing."""
    _handler(signed)  # refuses a role that does not handle alerts
    cursor = _moment(last_event_id) or _moment(since) or utcnow()
    return StreamingResponse(
        _feed(request, platform, signed, cursor, ip),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _moment(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment and moment.tzinfo else None


async def _feed(
    request: Request, platform: Platform, signed: Signed, cursor: datetime, ip: str | None
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    views = request.app.state.console_views
    started = last_sent = time.monotonic()
    while time.monotonic() - started < STREAM_S:
        if await request.is_disconnected():
            return
        alerts = await asyncio.to_thread(_changed, platform, views, signed, cursor, ip)
        for moment, payload in alerts:
            cursor = max(cursor, moment)
            yield f"event: alert\nid: {cursor.isoformat()}\ndata: {payload}\n\n"
            last_sent = time.monotonic()
        if time.monotonic() - last_sent > KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_S)


def _changed(
    platform: Platform, views: Views, signed: Signed, since: datetime, ip: str | None
) -> list[tuple[datetime, str]]:
    with platform.sessions.begin() as session:
        alerts = alert_queue.changed_since(session, signed.user, since, ip)
        return [(alert.updated_at, json.dumps(_event(views, signed, alert))) for alert in alerts]


def _event(views: Views, signed: Signed, alert: Alert) -> dict:
    return {
        "id": alert.id,
        "level": alert.level.value,
        "acknowledged": alert.acknowledged_at is not None,
        "row": views.fragment("alert_row.html", {"alert": alert, "signed": signed}),
    }

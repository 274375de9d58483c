"""Alerts: declarations a tracing team must act on, urgent ones within minutes.

Read and acknowledged by those who act on them (admin, manager, tracer); viewers see each declaration's alert level
and reasons through the declarations, not this work queue.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.client_address import ClientIpDep
from app.deps import AlertHandlerDep, SessionDep
from app.schemas import Id, Offset, PersonOut, error_responses
from conversations import alert_queue
from models import Alert, AlertLevel, utcnow

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    level: AlertLevel
    reasons: list[str]
    declaration_id: int | None = Field(description="the declaration that raised it; or")
    lab_result_id: int | None = Field(description="the laboratory result that raised it (a positive test)")
    person: PersonOut
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    acknowledgement_note: str | None = Field(description="what the person who took it did or will do")
    phone_verified: bool = Field(
        description="false when the answers came from a web chat opened by typing the phone: call before acting"
    )

    @classmethod
    def of(cls, alert: Alert) -> "AlertOut":
        conversation = alert.declaration.conversation if alert.declaration else None
        return cls(
            id=alert.id,
            level=alert.level,
            reasons=list(alert.reasons),
            declaration_id=alert.declaration_id,
            lab_result_id=alert.lab_result_id,
            person=PersonOut.of(alert.person),
            created_at=alert.created_at,
            updated_at=alert.updated_at,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by=alert.acknowledged_by_id,
            acknowledgement_note=alert.acknowledgement_note,
            phone_verified=conversation is None or conversation.phone_verified,
        )


@router.get(
    "",
    summary="List alerts, urgent and newest first (admin, manager, tracer)",
    responses=error_responses(401, 403),
)
def list_alerts(
    session: SessionDep,
    user: AlertHandlerDep,
    ip: ClientIpDep,
    level: AlertLevel | None = None,
    province: Annotated[str | None, Query(description="two-digit province code (national users)")] = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    alerts = alert_queue.list_alerts(
        session,
        user,
        level=level,
        province=province,
        acknowledged=acknowledged,
        limit=limit,
        offset=offset,
        client_ip=ip,
    )
    return [AlertOut.of(a) for a in alerts]


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=alert_queue.MAX_NOTE_CHARS, description="what you do about it")


@router.post(
    "/{alert_id}/ack",
    summary="Acknowledge an alert (someone is acting on it)",
    responses=error_responses(401, 403, 404),
)
def acknowledge(
    alert_id: Id, session: SessionDep, user: AlertHandlerDep, ip: ClientIpDep, body: AckIn | None = None
) -> AlertOut:
    note = body.note if body else None
    return AlertOut.of(alert_queue.acknowledge(session, user, alert_id, utcnow(), ip, note))

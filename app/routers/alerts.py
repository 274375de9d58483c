"""Alerts: declarations a tracing team must act on, urgent ones within minutes.

Read and acknowledged by those who act on them (admin, manager, tracer); viewers see each declaration's alert level
and reasons through the declarations, not this work queue.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import case, select
from sqlalchemy.orm import contains_eager, selectinload

from access.auth import audit, in_scope
from app.deps import AlertHandlerDep, SessionDep
from app.schemas import ErrorOut, Id, Offset, PersonOut
from models import Alert, AlertLevel, Declaration, Person, utcnow

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    level: AlertLevel
    reasons: list[str]
    declaration_id: int
    person: PersonOut
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    phone_verified: bool = Field(
        description="false when the answers came from a web chat opened by typing the phone: call before acting"
    )

    @classmethod
    def of(cls, alert: Alert) -> "AlertOut":
        conversation = alert.declaration.conversation
        return cls(
            id=alert.id,
            level=alert.level,
            reasons=list(alert.reasons),
            declaration_id=alert.declaration_id,
            person=PersonOut.of(alert.person),
            created_at=alert.created_at,
            updated_at=alert.updated_at,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by=alert.acknowledged_by_id,
            phone_verified=conversation is None or conversation.phone_verified,
        )


def _scoped(user):
    return in_scope(select(Alert).join(Alert.person), user).options(
        contains_eager(Alert.person), selectinload(Alert.declaration).selectinload(Declaration.conversation)
    )


@router.get(
    "",
    summary="List alerts, urgent and newest first (admin, manager, tracer)",
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
)
def list_alerts(
    request: Request,
    session: SessionDep,
    user: AlertHandlerDep,
    level: AlertLevel | None = None,
    province: Annotated[str | None, Query(description="two-digit province code (national users)")] = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    stmt = _scoped(user)
    if level is not None:
        stmt = stmt.where(Alert.level == level)
    if province is not None:
        stmt = stmt.where(Person.province_code == province)
    if acknowledged is not None:
        stmt = stmt.where(Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None))
    urgent_first = case((Alert.level == AlertLevel.URGENT, 0), else_=1)
    rows = session.scalars(stmt.order_by(urgent_first, Alert.created_at.desc()).limit(limit).offset(offset)).all()
    audit(session, user, "alert.list", "alert", [a.id for a in rows], request.client and request.client.host)
    return [AlertOut.of(a) for a in rows]


@router.post(
    "/{alert_id}/ack",
    summary="Acknowledge an alert (someone is acting on it)",
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)
def acknowledge(alert_id: Id, request: Request, session: SessionDep, user: AlertHandlerDep) -> AlertOut:
    alert = session.scalar(_scoped(user).where(Alert.id == alert_id))
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id} in your scope")
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by_id = utcnow(), user.id
        audit(session, user, "alert.ack", "alert", [alert.id], request.client and request.client.host)
    return AlertOut.of(alert)

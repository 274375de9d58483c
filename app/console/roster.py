"""The duty roster: who is told of the province's urgent alerts, in which order."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from access.errors import InvalidValue
from app.console.session import ConsoleRoute, FormDep, Signed, SignedDep
from app.console.views import render
from app.deps import SessionDep
from app.schemas import Id
from conversations import duty

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
HERE = "/console/roster"


def _page(request: Request, signed: Signed, session: Session, error: InvalidValue | None = None) -> Response:
    context = {
        "signed": signed,
        "members": duty.roster(session, signed.user),
        "can_manage": signed.user.role in duty.CAN_MANAGE_ROSTER,
        "escalation": request.app.state.platform.settings.alert_escalation_minutes,
        "error": error,
    }
    return render(request, "roster.html", context, status_code=422 if error else 200)


@router.get("/roster")
def roster_page(request: Request, signed: SignedDep, session: SessionDep) -> Response:
    return _page(request, signed, session)


@router.post("/roster")
def add(
    request: Request,
    signed: FormDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    phone: Annotated[str, Form(max_length=40)] = "",
    zalo_user_id: Annotated[str, Form(max_length=100)] = "",
    position: Annotated[int, Form(ge=1, le=1000)] = 1,
    province: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    province_code = signed.user.province_code or province.strip() or None
    try:
        duty.add_member(
            session,
            signed.user,
            name=name,
            phone=phone,
            province_code=province_code,
            zalo_user_id=zalo_user_id,
            position=position,
        )
    except InvalidValue as problem:
        session.rollback()
        return _page(request, signed, session, problem)
    return RedirectResponse(HERE, status_code=303)


@router.post("/roster/{member_id}/duty")
def set_duty(member_id: Id, signed: FormDep, session: SessionDep, on_duty: Annotated[str, Form()] = "") -> Response:
    if on_duty not in ("yes", "no"):
        raise InvalidValue("on_duty", "yes hoặc no")
    duty.set_on_duty(session, signed.user, member_id, on_duty == "yes")
    return RedirectResponse(HERE, status_code=303)


@router.post("/roster/{member_id}/remove")
def remove(member_id: Id, signed: FormDep, session: SessionDep) -> Response:
    duty.remove_member(session, signed.user, member_id)
    return RedirectResponse(HERE, status_code=303)

"""Where each declaration field's value came from: the resident's answers, turn by turn, and the tracing team's
corrections, each with who made it and why. The declaration row holds the latest value; its history keeps every one,
so a correction stands beside the resident's answer and never erases it."""

import re
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access.auth import CAN_HANDLE_ALERTS, audit
from access.errors import Forbidden, InvalidValue
from conversations.alerts import EMERGENCY_REASON, SYMPTOM_NAMES, assess, raise_alert
from conversations.reading import read_declaration
from ground.settings import Settings
from models import ChangeSource, Declaration, DeclarationChange, User

# Who may correct a declaration: those who call residents back and act on alerts.
CAN_CORRECT = CAN_HANDLE_ALERTS
MAX_REASON_CHARS = 1000
NOT_TRACKED = {"symptoms_asked"}  # follows from `symptoms`


def as_json(value: Any) -> Any:
    """A field's value as the history keeps it: dates as ISO text, enums as their value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def resident_answers(session: Session, declaration_id: int) -> dict[str, Any]:
    """The latest answer the resident gave for each field, as the history keeps it (JSON)."""
    rows = session.execute(
        select(DeclarationChange.field, DeclarationChange.value)
        .where(DeclarationChange.declaration_id == declaration_id, DeclarationChange.source == ChangeSource.RESIDENT)
        .order_by(DeclarationChange.id)
    ).all()  # a declaration has a few dozen changes at most
    return {field: value for field, value in rows}


def record_answers(session: Session, declaration: Declaration, answers: dict[str, Any], turn_id: int | None) -> None:
    """Write the resident's answers (the engine's slots, read by `service.answers_in`) and keep where each came from.

    An answer the resident already gave is no new answer: the engine repeats every slot on every turn, and a field
    a person corrected keeps the correction until the resident says something new about it.
    """
    previous = resident_answers(session, declaration.id)
    for name, value in answers.items():
        if name in NOT_TRACKED:
            setattr(declaration, name, value)
            continue
        said_before = previous.get(name, as_json(getattr(declaration, name)))
        if as_json(value) == said_before:
            continue
        _change(session, declaration, name, value, source=ChangeSource.RESIDENT, turn_id=turn_id)


def _change(session: Session, declaration: Declaration, field: str, value: Any, **source: Any) -> DeclarationChange:
    """Set a field and keep the value it takes beside the one it replaces, with where it came from."""
    change = DeclarationChange(
        declaration_id=declaration.id,
        field=field,
        value=as_json(value),
        replaced=as_json(getattr(declaration, field)),
        **source,
    )
    setattr(declaration, field, value)
    session.add(change)
    return change


def _temperature(raw: str) -> float | None:
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        raise InvalidValue("temperature_c", "nhiệt độ là một số, ví dụ 37,5") from None
    if not 34 <= value <= 43:
        raise InvalidValue("temperature_c", "nhiệt độ phải từ 34 đến 43 °C")
    return round(value, 1)


def _day(field: str) -> Callable[[str], date]:
    def parse(raw: str) -> date:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise InvalidValue(field, "ngày theo dạng năm-tháng-ngày, ví dụ 2021-06-15") from None

    return parse


def _doses(raw: str) -> int:
    if not re.fullmatch(r"[0-6]", raw):
        raise InvalidValue("vaccine_doses", "số mũi là một số từ 0 đến 6")
    return int(raw)


def _choice(field: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise InvalidValue(field, f"chọn một trong: {', '.join(choices)}")
        return raw

    return parse


def _yes_no(field: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        if raw not in ("yes", "no"):
            raise InvalidValue(field, "chọn có hoặc không")
        return raw == "yes"

    return parse


def _needs(raw: str) -> str:
    raw = raw.replace("\x00", "")  # PostgreSQL text holds no NUL; nobody types one
    if len(raw) > 1000:
        raise InvalidValue("needs", "tối đa 1000 ký tự")
    return raw


# The fields a person may correct, each with how its form value is read. An empty value clears the field (unknown).
SCALAR_FIELDS: dict[str, Callable[[str], Any]] = {
    "identity_confirmed": _yes_no("identity_confirmed"),
    "temperature_c": _temperature,
    "symptom_onset": _day("symptom_onset"),
    "contact_with_case": _choice("contact_with_case", ("yes", "no", "unknown")),
    "test_result": _choice("test_result", ("positive", "negative", "pending", "not_tested")),
    "test_date": _day("test_date"),
    "vaccine_doses": _doses,
    "at_registered_address": _yes_no("at_registered_address"),
    "needs": _needs,
}
CORRECTABLE = (*SCALAR_FIELDS, "symptoms")


def parse_correction(field: str, values: list[str], today: date) -> Any:
    """The value a correction form gave for `field` (symptoms: the ticked codes; others: one value, empty = none).
    `today`: the local date (onsets and tests are never in the future)."""
    if field == "symptoms":
        unknown = [code for code in values if code not in SYMPTOM_NAMES]
        if unknown:
            raise InvalidValue("symptoms", f"triệu chứng không có trong danh mục: {', '.join(unknown)}")
        return sorted(set(values), key=list(SYMPTOM_NAMES).index)
    if field not in SCALAR_FIELDS:
        raise InvalidValue("field", f"trường '{field}' không sửa được")
    raw = (values[0] if values else "").strip()
    value = SCALAR_FIELDS[field](raw) if raw else None
    if isinstance(value, date) and value > today:
        raise InvalidValue(field, "ngày này chưa đến")
    return value


def correct(
    session: Session,
    user: User,
    declaration_id: int,
    field: str,
    value: Any,
    reason: str,
    settings: Settings,
    client_ip: str | None = None,
) -> Declaration:
    """A person's correction of one field (a value from `parse_correction`), with the reason: kept beside the
    resident's answer, audited, and the declaration's alert assessed again."""
    if user.role not in CAN_CORRECT:
        raise Forbidden(f"the {user.role.value} role cannot correct declarations")
    reason = reason.replace("\x00", "").strip()
    if not reason:
        raise InvalidValue("reason", "ghi lý do sửa (ví dụ: gọi lại xác minh, người dân đọc nhầm)")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidValue("reason", f"lý do tối đa {MAX_REASON_CHARS} ký tự")
    declaration, _ = read_declaration(session, user, declaration_id, client_ip)
    if field == "symptoms":
        declaration.symptoms_asked = True
    change = _change(session, declaration, field, value, source=ChangeSource.CORRECTION, user_id=user.id, reason=reason)
    audit(
        session,
        user,
        "declaration.correct",
        "declaration",
        [declaration.id],
        client_ip,
        {"field": field, "from": change.replaced, "to": change.value, "reason": reason},
    )
    session.flush()
    _assess_again(session, declaration, settings)
    return declaration


def _assess_again(session: Session, declaration: Declaration, settings: Settings) -> None:
    emergency = EMERGENCY_REASON in (declaration.alert_reasons or [])
    raise_alert(session, declaration, assess(declaration, emergency, settings), by_a_person=True)

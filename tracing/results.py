"""Laboratory results (the e-testing platform's) into the store: `phone`, `sample_date`, `result`, `lab`.

Imported as the national platforms' records are (tracing/records.py): whole or not at all, every row counted once,
within the uploader's province. A result sent again adds nothing.

A positive result makes its person a confirmed case (F0) from its sample date: an urgent alert goes to the tracing
team (and the duty roster), campaigns stop planning them as a contact, and their own contacts can be derived from the
check-ins at once (`derive_cases`: infectious from two days before the sample, as the MOH counts it for a case found
by testing). Negative and pending results are kept on their record.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigns.importer import ReadLimits, parse_date
from campaigns.listfile import UnusableFile, header_key
from ground.settings import Settings
from models import Alert, AlertLevel, AttemptStatus, LabResult, OutreachAttempt, Person, TestResult, User, utcnow
from tracing.checkins import stored_checkins
from tracing.copresence import Case, Derivation, derive_f1
from tracing.records import Kind, RecordsImport, import_records

__all__ = ["ResultsImport", "UnusableFile", "cases_of", "derive_new_cases", "import_results"]

RESULT_WORDS = {
    TestResult.POSITIVE: ["positive", "pos", "duong tinh", "dt"],
    TestResult.NEGATIVE: ["negative", "neg", "am tinh", "at"],
    TestResult.PENDING: ["pending", "cho ket qua", "dang cho ket qua", "chua co ket qua"],
}
_RESULT = {word: result for result, words in RESULT_WORDS.items() for word in words}
_SIGNS = {"+": TestResult.POSITIVE, "-": TestResult.NEGATIVE}
LAB_CHARS = LabResult.lab.type.length
INFECTIOUS_DAYS_BEFORE_SAMPLE = 2  # MOH: a case found by testing is infectious from two days before its sample


@dataclass
class ResultsImport(RecordsImport):
    new_cases: list[tuple[str, date]] = field(default_factory=list)  # (phone, first positive sample date)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "new_cases": len(self.new_cases)}


def _read(values: dict[str, Any]) -> dict[str, Any]:
    sample_date = parse_date(values["sample_date"] or "", "sample_date")
    written = str(values["result"] or "").strip()
    result = _SIGNS.get(written) or _RESULT.get(header_key(written))
    if result is None:
        raise ValueError(f"result '{written}' is not positive, negative or pending (dương tính, âm tính, chờ kết quả)")
    lab = str(values["lab"] or "").strip()
    if not lab or len(lab) > LAB_CHARS:
        raise ValueError(f"lab must be 1 to {LAB_CHARS} characters")
    return {"sample_date": sample_date, "result": result, "lab": lab}


def import_results(
    sessions: sessionmaker[Session],
    user: User,
    path: Path,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> ResultsImport:
    """Import the results at `path` as `user` (their province is the scope; the caller checks they may import)."""
    summary = ResultsImport()

    def keep(session: Session, person: Person, fields: dict[str, Any], source: str, by: User) -> bool:
        same = select(LabResult.id).filter_by(person_id=person.id, **fields)
        if session.scalar(same) is not None:
            return False
        result = LabResult(person_id=person.id, source_file=source[:500], imported_by_id=by.id, **fields)
        session.add(result)
        session.flush()
        if result.result is TestResult.POSITIVE:
            _confirmed(session, person, result, summary)
        return True

    kind = Kind("results", COLUMNS, _read, keep)
    import_records(sessions, user, path, kind, summary, limits=limits, source_name=source_name)
    return summary


COLUMNS = {
    "phone": ["phone", "so dien thoai", "sdt", "dien thoai"],
    "sample_date": ["sample date", "ngay lay mau", "ngay xet nghiem"],
    "result": ["result", "ket qua", "ket qua xet nghiem"],
    "lab": ["lab", "noi xet nghiem", "phong xet nghiem", "don vi xet nghiem", "co so xet nghiem"],
}


def _confirmed(session: Session, person: Person, result: LabResult, summary: ResultsImport) -> None:
    """A positive sample: a case from its date. The first one raises an urgent alert and ends their follow-up as a
    contact; an earlier sample found later only moves the date back."""
    first = person.confirmed_case_on is None
    if first or result.sample_date < person.confirmed_case_on:
        person.confirmed_case_on = result.sample_date
    if not first:
        return
    summary.new_cases.append((person.phone, result.sample_date))
    reasons = ["positive test", f"{result.lab}, {result.sample_date:%d/%m/%Y}"]
    session.add(Alert(lab_result_id=result.id, person_id=person.id, level=AlertLevel.URGENT, reasons=reasons))
    session.execute(  # no more calls about their health as a contact: a team now follows them as a case
        update(OutreachAttempt)
        .where(OutreachAttempt.person_id == person.id)
        .where(OutreachAttempt.status.in_([AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT]))
        .values(status=AttemptStatus.CANCELED, updated_at=utcnow())
    )


def derive_new_cases(
    sessions: sessionmaker[Session],
    user: User,
    settings: Settings,
    summary: ResultsImport,
    list_name: str | None,
    source: str | None,
) -> tuple[Derivation | None, str | None]:
    """The new cases' contacts from the check-ins as the list `list_name`, or why none was derived. The results are
    stored already: a derivation that cannot be made is said, never taken for a failed import."""
    if not list_name:
        return None, None
    if not summary.new_cases:
        return None, "no new cases"
    if not stored_checkins(settings):
        return None, "no check-ins imported yet"
    try:
        cases = cases_of(summary.new_cases)
        return derive_f1(sessions, user, settings, cases, list_name, source=source or "results"), None
    except UnusableFile as error:
        return None, str(error)


def cases_of(new_cases: list[tuple[str, date]]) -> list[Case]:
    """The new cases as cases to derive contacts of: infectious from two days before the sample to its day."""
    return [
        Case(phone, f"F0 0{phone.removeprefix('+84')}", sample - timedelta(days=INFECTIOUS_DAYS_BEFORE_SAMPLE), sample)
        for phone, sample in new_cases
    ]

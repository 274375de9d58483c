"""Laboratory results (the e-testing platform's) into the store: `phone`, `sample_date`, `result`, `lab`.

Imported as F1 lists are: whole or not at all (one transaction), every row counted once (imported, a duplicate of a
result already stored or earlier in the file, or rejected with its line and reason in FILE.rejects.csv), and within
the uploader's province (a phone of a person another province follows is rejected; someone new joins the uploader's
province). Results are never changed or removed: a later result is a new row.

A positive result makes its person a confirmed case (F0) from its sample date: an urgent alert goes to the tracing
team (and the duty roster), campaigns stop planning them as a contact, and their own contacts can be derived from the
check-ins at once (`derive_cases`: infectious from two days before the sample, as the MOH counts it for a case found
by testing). Negative and pending results are kept on their record.
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from access.auth import audit
from bot.vntext import folded
from campaigns.importer import ReadLimits, after_other_imports, parse_date, write_rejects
from campaigns.listfile import UnusableFile, read_table
from ground.phones import InvalidPhone, normalize_phone
from ground.settings import Settings
from models import Alert, AlertLevel, AttemptStatus, LabResult, OutreachAttempt, Person, TestResult, User, utcnow
from tracing.checkins import stored_checkins
from tracing.copresence import Case

__all__ = ["ResultsImport", "UnusableFile", "cases_of", "derivable", "import_results"]

COLUMNS = {
    "phone": ["phone", "so dien thoai", "sdt", "dien thoai"],
    "sample_date": ["sample date", "ngay lay mau", "ngay xet nghiem"],
    "result": ["result", "ket qua", "ket qua xet nghiem"],
    "lab": ["lab", "noi xet nghiem", "phong xet nghiem", "don vi xet nghiem", "co so xet nghiem"],
}
RESULT_WORDS = {
    TestResult.POSITIVE: ["positive", "pos", "duong tinh", "dt"],
    TestResult.NEGATIVE: ["negative", "neg", "am tinh", "at"],
    TestResult.PENDING: ["pending", "cho ket qua", "dang cho ket qua", "chua co ket qua"],
}
_RESULT = {word: result for result, words in RESULT_WORDS.items() for word in words}
_SIGNS = {"+": TestResult.POSITIVE, "-": TestResult.NEGATIVE}
LAB_CHARS = LabResult.lab.type.length
FIRST_REJECTS = 20
INFECTIOUS_DAYS_BEFORE_SAMPLE = 2  # MOH: a case found by testing is infectious from two days before its sample
Row = tuple[int, list[Any]]


@dataclass
class ResultsImport:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    new_cases: list[tuple[str, date]] = field(default_factory=list)  # (phone, first positive sample date)
    rejects_file: str | None = None
    first_rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), shown by the API

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "new_cases": len(self.new_cases),
            "rejects_file": self.rejects_file,
        }


@dataclass(frozen=True)
class Reported:
    line: int
    cells: list[Any]
    phone: str
    sample_date: date
    result: TestResult
    lab: str


def _key(text: Any) -> str:
    return re.sub(r"[^a-z0-9]+", " ", folded(str(text or "")).lower()).strip()


def _mapping(header: list[Any], name: str) -> dict[str, int]:
    keys = [_key(title) for title in header]
    mapping = {}
    for column, aliases in COLUMNS.items():
        found = [index for index, key in enumerate(keys) if key in aliases]
        if not found:
            raise UnusableFile(f"{name} has no {column} column (columns: {', '.join(COLUMNS)})")
        mapping[column] = found[0]
    return mapping


def _reported(line: int, cells: list[Any], mapping: dict[str, int]) -> Reported:
    values = {column: cells[index] if index < len(cells) else None for column, index in mapping.items()}
    try:
        phone = normalize_phone(str(values["phone"] or ""))
    except InvalidPhone as error:
        raise ValueError(str(error)) from None
    sample_date = parse_date(values["sample_date"] or "", "sample_date")
    written = str(values["result"] or "").strip()
    result = _SIGNS.get(written) or _RESULT.get(_key(written))
    if result is None:
        raise ValueError(f"result '{written}' is not positive, negative or pending (dương tính, âm tính, chờ kết quả)")
    lab = str(values["lab"] or "").strip()
    if not lab or len(lab) > LAB_CHARS:
        raise ValueError(f"lab must be 1 to {LAB_CHARS} characters")
    return Reported(line, cells, phone, sample_date, result, lab)


def import_results(
    sessions: sessionmaker[Session],
    user: User,
    path: Path,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> ResultsImport:
    """Import the results at `path` as `user` (their province is the scope; the caller checks they may import)."""
    limits = limits or ReadLimits()
    rows = list(islice(read_table(path, limits), limits.max_rows + 2))
    if not rows:
        raise UnusableFile(f"{path.name} is empty")
    if len(rows) > limits.max_rows + 1:
        raise UnusableFile(f"{path.name} has more than {limits.max_rows:,} rows; split the file")
    (_, header), *rows = rows
    mapping = _mapping(header, path.name)
    if not rows:
        raise UnusableFile(f"{path.name} has a header but no rows")
    reported, rejects = [], []
    for line, cells in rows:
        try:
            reported.append(_reported(line, cells, mapping))
        except ValueError as error:
            rejects.append((line, str(error), cells))
    summary = ResultsImport()
    with sessions.begin() as session:  # one transaction: a failure leaves the store as it was
        after_other_imports(session)
        _store(session, user, reported, rejects, summary, source_name or path.name)
        summary.rejected = len(rejects)
        if rejects:
            summary.rejects_file = str(write_rejects(path, header, rejects))
            summary.first_rejects = [
                (line, reason) for line, reason, _ in sorted(rejects, key=lambda reject: reject[0])[:FIRST_REJECTS]
            ]
        audit(session, user, "results.import", "lab_result", [], detail={"source": source_name or path.name,
                                                                          **summary.as_dict()})  # fmt: skip
    return summary


def _store(
    session: Session,
    user: User,
    reported: list[Reported],
    rejects: list[tuple[int, str, list[Any]]],
    summary: ResultsImport,
    source: str,
) -> None:
    people = {p.phone: p for p in session.scalars(select(Person).where(Person.phone.in_({r.phone for r in reported})))}
    seen = {
        (result.person_id, result.sample_date, result.lab, result.result)
        for result in session.scalars(select(LabResult).where(LabResult.person_id.in_([p.id for p in people.values()])))
    }
    for row in reported:
        person = people.get(row.phone)
        if person is not None and user.province_code and person.province_code not in (None, user.province_code):
            reason = "this phone belongs to a person followed by another province; ask a national user"
            rejects.append((row.line, reason, row.cells))
            continue
        if person is None:
            person = people[row.phone] = Person(phone=row.phone, province_code=user.province_code)
            session.add(person)
            session.flush()
        person.province_code = person.province_code or user.province_code
        key = (person.id, row.sample_date, row.lab, row.result)
        if key in seen:
            summary.duplicates += 1
            continue
        seen.add(key)
        result = LabResult(person_id=person.id, sample_date=row.sample_date, result=row.result, lab=row.lab,
                           source_file=source[:500], imported_by_id=user.id)  # fmt: skip
        session.add(result)
        session.flush()
        summary.imported += 1
        if row.result is TestResult.POSITIVE:
            _confirmed(session, person, result, summary)


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


def derivable(summary: ResultsImport, settings: Settings) -> bool:
    """Whether the import's new cases have contacts to find: some cases, and check-ins to find them in."""
    return bool(summary.new_cases) and bool(stored_checkins(settings))


def cases_of(new_cases: list[tuple[str, date]]) -> list[Case]:
    """The new cases as cases to derive contacts of: infectious from two days before the sample to its day."""
    return [
        Case(phone, f"F0 0{phone.removeprefix('+84')}", sample - timedelta(days=INFECTIOUS_DAYS_BEFORE_SAMPLE), sample)
        for phone, sample in new_cases
    ]

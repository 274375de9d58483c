"""F1 lists from QR check-ins: who was at the same venue as a case, at the same time, while the case was infectious.

The rule, as one SQL query (COPRESENCE) that DuckDB runs here and Spark runs on a cluster (tracing/spark_job.py):

- a visit lasts from check-in to check-out; with no check-out, `dwell` minutes;
- a case's presence is each of its visits cut to its infectious period (whole local days, both ends included);
- a person is an F1 of a case when one of their visits to a venue overlaps a presence of the case there. Intervals
  that only touch do not overlap;
- people who are cases themselves are not F1s.

The query gives one row per (person, case, venue) with the end of their last time together; Python folds those into
one F1 per person with every case and venue, and their latest exposure date (local).
"""

import csv
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy.orm import Session, sessionmaker

from access.auth import check_imports_national_data
from campaigns.importer import ImportSummary, ReadLimits, import_contacts, parse_date
from campaigns.listfile import UnusableFile, read_table
from ground.phones import InvalidPhone, normalize_phone
from ground.private import private_text_file
from ground.settings import Settings
from models import ContactListMember, User
from tracing.analytics import connection, quoted
from tracing.checkins import stored_checkins

__all__ = ["Case", "Exposure", "F1", "UnusableFile", "copresence_sql", "derive_f1", "fold", "read_cases"]

CASE_COLUMNS = ("phone", "infectious_from", "infectious_to", "case_code")
CASE_CODE_CHARS = 50
SOURCE_CASE_CHARS = ContactListMember.source_case.type.length
OUT_COLUMNS = ("phone", "exposure_date", "case_codes", "venues")


def copresence_sql(dwell_minutes: int) -> str:
    """The derivation over the views `checkins` and `cases`, in SQL both DuckDB and Spark run unchanged."""
    dwell = int(dwell_minutes)  # an int, never text, goes into the query
    return f"""
WITH visits AS (
    SELECT venue_id, phone, checked_in_at AS arrived,
           COALESCE(checked_out_at, checked_in_at + INTERVAL '{dwell}' MINUTE) AS departed
    FROM checkins
),
presence AS (
    SELECT visits.venue_id, cases.case_code,
           GREATEST(visits.arrived, cases.infectious_start) AS present_from,
           LEAST(visits.departed, cases.infectious_end) AS present_to
    FROM visits JOIN cases ON visits.phone = cases.phone
    WHERE visits.arrived < cases.infectious_end AND cases.infectious_start < visits.departed
)
SELECT visits.phone, presence.case_code, presence.venue_id,
       MAX(LEAST(visits.departed, presence.present_to)) AS last_together
FROM visits JOIN presence
  ON visits.venue_id = presence.venue_id
 AND visits.arrived < presence.present_to AND presence.present_from < visits.departed
WHERE visits.phone NOT IN (SELECT phone FROM cases)
GROUP BY visits.phone, presence.case_code, presence.venue_id
"""


@dataclass(frozen=True)
class Case:
    phone: str
    case_code: str
    infectious_from: date
    infectious_to: date


@dataclass(frozen=True)
class Exposure:
    """A row of the query: `phone` was with `case_code` at `venue_id` until `last_together` (an instant)."""

    phone: str
    case_code: str
    venue_id: str
    last_together: datetime


@dataclass
class F1:
    phone: str
    exposure_date: date
    case_codes: list[str] = field(default_factory=list)
    venues: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        return [self.phone, self.exposure_date.isoformat(), "; ".join(self.case_codes), "; ".join(self.venues)]


@dataclass
class Derivation:
    f1s: list[F1]
    cases: int
    checkin_files: int
    seconds: float
    contact_list: ImportSummary | None = None
    out_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "f1": len(self.f1s),
            "cases": self.cases,
            "checkin_files": self.checkin_files,
            "seconds": round(self.seconds, 3),
            "contact_list": self.contact_list.as_dict() if self.contact_list else None,
            "out_file": self.out_file,
        }


def read_cases(path: Path, limits: ReadLimits, name: str | None = None) -> list[Case]:
    """The cases file (CSV or XLSX; `name`: as uploaded), whole: a case left out would leave its contacts out, so any
    bad row refuses the file, with every reason."""
    name = name or path.name
    rows = iter(read_table(path, limits))
    header = next(rows, None)
    if header is None:
        raise UnusableFile(f"{name} is empty")
    names = [re.sub(r"\W+", "_", str(title or "").strip().lower()) for title in header[1]]
    missing = [name for name in CASE_COLUMNS if name not in names]
    if missing:
        raise UnusableFile(f"{name} has no column {', '.join(missing)} (columns: {', '.join(CASE_COLUMNS)})")
    index = {name: names.index(name) for name in CASE_COLUMNS}
    cases, problems = [], []
    for line, cells in rows:
        values = {name: cells[i] if i < len(cells) else None for name, i in index.items()}
        try:
            cases.append(_case(values))
        except ValueError as error:
            problems.append(f"line {line}: {error}")
    if problems:
        raise UnusableFile(f"{name}: {len(problems)} rows cannot be used; " + "; ".join(problems[:20]))
    if not cases:
        raise UnusableFile(f"{name} has a header but no cases")
    return cases


def _case(values: dict[str, Any]) -> Case:
    code = str(values["case_code"] or "").strip()
    if not code or len(code) > CASE_CODE_CHARS:
        raise ValueError(f"case_code must be 1 to {CASE_CODE_CHARS} characters")
    try:
        phone = normalize_phone(str(values["phone"] or ""))
    except InvalidPhone as error:
        raise ValueError(str(error)) from None
    start = parse_date(values["infectious_from"] or "", "infectious_from")
    end = parse_date(values["infectious_to"] or "", "infectious_to", future=True)
    if end < start:
        raise ValueError(f"infectious_to {end} is before infectious_from {start}")
    return Case(phone, code, start, end)


def cases_table(cases: list[Case], zone: ZoneInfo) -> pa.Table:
    """The cases with their infectious period as instants: from local midnight of the first day to local midnight
    after the last."""

    def midnight(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)

    return pa.table(
        {
            "phone": [case.phone for case in cases],
            "case_code": [case.case_code for case in cases],
            "infectious_start": [midnight(case.infectious_from) for case in cases],
            "infectious_end": [midnight(case.infectious_to + timedelta(days=1)) for case in cases],
        },
        schema=CASES_SCHEMA,
    )


CASES_SCHEMA = pa.schema(
    [
        ("phone", pa.string()),
        ("case_code", pa.string()),
        ("infectious_start", pa.timestamp("us", tz="UTC")),
        ("infectious_end", pa.timestamp("us", tz="UTC")),
    ]
)


def exposures(settings: Settings, cases: list[Case], dwell_minutes: int, files: list[Path]) -> list[Exposure]:
    """The query on DuckDB over the stored check-ins."""
    with connection(settings) as database:
        database.register("cases", cases_table(cases, ZoneInfo(settings.timezone)))
        listed = ", ".join(quoted(file) for file in files)
        database.execute(f"CREATE VIEW checkins AS SELECT * FROM read_parquet([{listed}])")
        rows = database.execute(copresence_sql(dwell_minutes)).fetchall()
    return [Exposure(phone, case, venue, last.astimezone(UTC)) for phone, case, venue, last in rows]


def fold(found: list[Exposure], zone: ZoneInfo) -> list[F1]:
    """One F1 per person, by phone: every case and venue (sorted), the local date of their last time together (today
    at the latest: a case still infectious and a check-in stamped ahead of the clock are not tomorrow's contact)."""
    today = datetime.now(zone).date()
    people: dict[str, F1] = {}
    for exposure in found:
        # Together until `last_together`, not at it: the last moment shared is just before.
        day = min(today, (exposure.last_together - timedelta(microseconds=1)).astimezone(zone).date())
        person = people.setdefault(exposure.phone, F1(exposure.phone, day))
        person.exposure_date = max(person.exposure_date, day)
        person.case_codes.append(exposure.case_code)
        person.venues.append(exposure.venue_id)
    for person in people.values():
        person.case_codes, person.venues = sorted(set(person.case_codes)), sorted(set(person.venues))
    return [people[phone] for phone in sorted(people)]


def derive_f1(
    sessions: sessionmaker[Session],
    user: User,
    settings: Settings,
    cases: list[Case],
    list_name: str,
    *,
    source: str,
    province: str | None = None,
    dwell_minutes: int = 60,
    out: Path | None = None,
) -> Derivation:
    """The F1s of `cases`, written to `out` if given and imported as the contact list `list_name` of `province` (from
    `source`, a cases file or a results import). A national action: the check-ins, and so who was with whom, are the
    whole country's, and a provincial user could name anyone a case."""
    check_imports_national_data(user)  # the check-ins are the whole country's: who met whom is not a province's
    if not 1 <= dwell_minutes <= 24 * 60:
        raise UnusableFile("the dwell time is 1 to 1440 minutes")
    files = stored_checkins(settings)
    if not files:
        raise UnusableFile("no check-ins have been imported yet (outreach checkins import FILE)")
    started = time.perf_counter()
    f1s = fold(exposures(settings, cases, dwell_minutes, files), ZoneInfo(settings.timezone))
    derivation = Derivation(f1s, len(cases), len(files), time.perf_counter() - started)
    if out is not None:
        derivation.out_file = str(write_f1_csv(out, f1s))
    if f1s:
        list_file = write_list_file(settings.checkins_dir / "derived" / f"{_stamp()}-{_slug(list_name)}.csv", f1s)
        derivation.contact_list = import_contacts(
            sessions,
            list_file,
            list_name,
            province=province,
            scope=user.province_code,
            created_by=user.id,
            source_name=f"F1 of {source}",
        )
    return derivation


def write_f1_csv(path: Path, f1s: list[F1]) -> Path:
    with private_text_file(path) as sink:
        writer = csv.writer(sink)
        writer.writerow(OUT_COLUMNS)
        writer.writerows(f1.row() for f1 in f1s)
    return path


def write_list_file(path: Path, f1s: list[F1]) -> Path:
    """The F1s as a list the importer reads; the source case is cut to what the store keeps (the full codes are in
    the derived file's `case_codes`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with private_text_file(path) as sink:
        writer = csv.writer(sink)
        writer.writerow(["phone", "exposure_date", "source_case", "case_codes", "venues"])
        for f1 in f1s:
            phone, day, codes, venues = f1.row()
            writer.writerow([phone, day, _shortened(f1.case_codes), codes, venues])
    return path


def _shortened(codes: list[str]) -> str:
    joined = "; ".join(codes)
    if len(joined) <= SOURCE_CASE_CHARS:
        return joined
    kept: list[str] = []
    for code in codes:
        more = f" (+{len(codes) - len(kept) - 1})"
        if len("; ".join([*kept, code])) + len(more) > SOURCE_CASE_CHARS:
            break
        kept.append(code)
    return "; ".join(kept) + f" (+{len(codes) - len(kept)})"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "list"

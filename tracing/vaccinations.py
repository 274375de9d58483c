"""Vaccination records (the vaccination platform's) into the store: `phone`, `doses`, `last_dose_date`.

Imported as the national platforms' records are (tracing/records.py): whole or not at all, every row counted once,
within the uploader's province. The dialogue then confirms the doses on record instead of asking them ("Hồ sơ ghi
anh/chị đã tiêm 2 mũi, đúng không ạ?"; a no asks for the number), to residents whose phone is proven.
"""

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigns.importer import ReadLimits, parse_date
from campaigns.listfile import UnusableFile
from models import Person, User, VaccinationRecord
from tracing.records import Kind, RecordsImport, import_records

__all__ = ["UnusableFile", "import_vaccinations"]

MAX_DOSES = 10
COLUMNS = {
    "phone": ["phone", "so dien thoai", "sdt", "dien thoai"],
    "doses": ["doses", "so mui", "so mui da tiem", "so mui tiem"],
    "last_dose_date": ["last dose date", "ngay tiem mui cuoi", "ngay tiem gan nhat", "ngay tiem"],
}


def _read(values: dict[str, Any]) -> dict[str, Any]:
    written = str(values["doses"] if values["doses"] is not None else "").strip()
    if not written.isdecimal() or int(written) > MAX_DOSES:
        raise ValueError(f"doses '{written}' is not a number of doses (0 to {MAX_DOSES})")
    doses = int(written)
    last = values["last_dose_date"]
    last_dose: date | None = parse_date(last, "last_dose_date") if last not in (None, "") else None
    if doses and last_dose is None:
        raise ValueError("last_dose_date is missing")
    if not doses and last_dose is not None:
        raise ValueError("a last dose date with no dose")
    return {"doses": doses, "last_dose_date": last_dose}


def _keep(session: Session, person: Person, fields: dict[str, Any], source: str, by: User) -> bool:
    same = select(VaccinationRecord.id).filter_by(person_id=person.id, **fields)
    if session.scalar(same) is not None:
        return False
    session.add(VaccinationRecord(person_id=person.id, source_file=source[:500], imported_by_id=by.id, **fields))
    session.flush()
    return True


VACCINATIONS = Kind("vaccinations", COLUMNS, _read, _keep)


def import_vaccinations(
    sessions: sessionmaker[Session],
    user: User,
    path: Path,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> RecordsImport:
    """Import the records at `path` as `user` (their province is the scope; the caller checks they may import)."""
    return import_records(sessions, user, path, VACCINATIONS, RecordsImport(), limits=limits, source_name=source_name)

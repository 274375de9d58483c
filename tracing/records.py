"""Records of the national platforms about people (test results, vaccinations), imported as F1 lists are.

Whole or not at all (one transaction, one import at a time), every row counted once (imported, a duplicate of a
record already stored or earlier in the file, or rejected with its line and reason in FILE.rejects.csv), within the
uploader's province (a phone of a person another province follows is rejected; someone new joins the uploader's
province, a national uploader's joins none). Records are never changed or removed: a later one is a new row.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access.auth import audit
from campaigns.importer import CHUNK, ReadLimits, Reject, after_other_imports, write_rejects
from campaigns.listfile import UnusableFile, header_key, read_table
from ground.phones import InvalidPhone, normalize_phone
from models import Person, User

FIRST_REJECTS = 20  # shown by the CLI and the API; all of them are in the rejects file
NOT_YOURS = "this phone belongs to a person followed by another province; ask a national user"


@dataclass
class RecordsImport:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects_file: str | None = None
    first_rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejects_file": self.rejects_file,
        }


@dataclass(frozen=True)
class Kind:
    """What one kind of record is: its columns (with the headers provinces write), how a row reads, how it is kept."""

    name: str  # for the audit log: "results", "vaccinations"
    columns: dict[str, list[str]]  # column -> headers, compared without accents, case or punctuation
    read: Callable[[dict[str, Any]], dict[str, Any]]  # the row's values (but the phone) -> fields, or ValueError
    keep: Callable[[Session, Person, dict[str, Any], str, User], bool]  # stores one row; False: a duplicate


def import_records(
    sessions: sessionmaker[Session],
    user: User,
    path: Path,
    kind: Kind,
    summary: RecordsImport,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> RecordsImport:
    """Import the records at `path` as `user` (their province is the scope; the caller checks they may import)."""
    limits = limits or ReadLimits()
    source = source_name or path.name
    rows = list(islice(read_table(path, limits), limits.max_rows + 2))
    if not rows:
        raise UnusableFile(f"{source} is empty")
    if len(rows) > limits.max_rows + 1:
        raise UnusableFile(f"{source} has more than {limits.max_rows:,} rows; split the file")
    (_, header), *rows = rows
    mapping = _mapping(header, kind, source)
    if not rows:
        raise UnusableFile(f"{source} has a header but no rows")
    read, rejects = _read(rows, mapping, kind)
    with sessions.begin() as session:
        after_other_imports(session)
        people = _people(session, sorted({phone for _, phone, _, _ in read}))
        for line, phone, fields, cells in read:
            person = people.get(phone)
            if person is not None and user.province_code and person.province_code not in (None, user.province_code):
                rejects.append((line, NOT_YOURS, cells))
                continue
            if person is None:
                person = people[phone] = Person(phone=phone, province_code=user.province_code)
                session.add(person)
            person.province_code = person.province_code or user.province_code
            session.flush()
            if kind.keep(session, person, fields, source, user):
                summary.imported += 1
            else:
                summary.duplicates += 1
        summary.rejected = len(rejects)
        if rejects:
            summary.rejects_file = str(write_rejects(path, header, rejects))
            ordered = sorted(rejects, key=lambda reject: reject[0])
            summary.first_rejects = [(line, reason) for line, reason, _ in ordered[:FIRST_REJECTS]]
        audit(session, user, f"{kind.name}.import", kind.name, [], detail={"source": source, **summary.as_dict()})
    return summary


def _people(session: Session, phones: list[str]) -> dict[str, Person]:
    """The stored people of these phones, a chunk at a time (a driver binds at most 65,535 parameters)."""
    people: dict[str, Person] = {}
    for start in range(0, len(phones), CHUNK):
        chunk = phones[start : start + CHUNK]
        people.update((p.phone, p) for p in session.scalars(select(Person).where(Person.phone.in_(chunk))))
    return people


def _mapping(header: list[Any], kind: Kind, name: str) -> dict[str, int]:
    keys = [header_key(title) for title in header]
    mapping = {}
    for column, aliases in kind.columns.items():
        found = [index for index, key in enumerate(keys) if key in aliases]
        if not found:
            raise UnusableFile(f"{name} has no {column} column (columns: {', '.join(kind.columns)})")
        mapping[column] = found[0]
    return mapping


def _read(
    rows: list[tuple[int, list[Any]]], mapping: dict[str, int], kind: Kind
) -> tuple[list[tuple[int, str, dict[str, Any], list[Any]]], list[Reject]]:
    read, rejects = [], []
    for line, cells in rows:
        values = {column: cells[index] if index < len(cells) else None for column, index in mapping.items()}
        try:
            phone = normalize_phone(str(values.pop("phone") or ""))
            read.append((line, phone, kind.read(values), cells))
        except (InvalidPhone, ValueError) as error:
            rejects.append((line, str(error), cells))
    return read, rejects

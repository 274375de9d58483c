"""F1 lists (CSV or XLSX, as Vietnamese spreadsheets come) into people and a contact list, whole or not at all.

Every data row is counted once: `imported` (a person new to the store), `duplicates` (merged into an earlier row of
the file or a person already stored: one person per phone, the newest details kept, both lists linked) or
`rejected` (with its line number and reason, written to a rejects CSV beside the file).

Province scope holds on writes too. An uploader with a province (`scope`) imports people of that province only: a row
naming another province, or the phone of a person another province follows, is rejected with the reason, and that
person is neither changed nor put on the list. A person stored with no province yet (met through web chat, say)
joins the uploader's. A national import (no scope) may give anyone new details and a new province; every province it
gives a stored person is written to the audit log.
"""

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from access.auth import audit, operator
from bot.vntext import folded
from campaigns.export import neutralise
from campaigns.listfile import ReadLimits, UnusableFile, read_table
from campaigns.provinces import province_code
from ground.phones import InvalidPhone, normalize_phone
from ground.private import private_text_file
from ground.settings import get_settings
from models import ContactList, ContactListMember, Person, User, utcnow

__all__ = [
    "ImportSummary",
    "ReadLimits",
    "UnusableFile",
    "import_contacts",
    "map_columns",
    "parse_contact",
    "after_other_imports",
    "local_today",
    "parse_date",
    "write_rejects",
]

FIELDS = ("full_name", "phone", "birth_year", "address", "ward", "district", "province", "exposure_date", "source_case")
# Headers as provinces write them, compared without diacritics, case or punctuation.
HEADERS = {
    "full_name": ["ho va ten", "ho ten", "ten", "ho ten f1", "ten f1", "full name", "name"],
    "phone": ["so dien thoai", "sdt", "dien thoai", "so dt", "dt", "di dong", "so di dong", "phone", "sdt f1"],
    "birth_year": ["nam sinh", "ngay sinh", "ngay thang nam sinh", "ns", "birth year"],
    "address": ["dia chi", "dia chi cu tru", "noi o", "dia chi cach ly", "address"],
    "ward": ["phuong xa", "xa phuong", "phuong", "xa", "ward"],
    "district": ["quan huyen", "huyen", "quan", "district"],
    "province": ["tinh", "tinh thanh pho", "tinh tp", "tinh thanh", "province"],
    "exposure_date": ["ngay tiep xuc", "ngay tiep xuc cuoi", "ngay tiep xuc gan", "exposure date"],
    "source_case": ["ma f0", "f0", "ca benh", "ma ca benh", "tiep xuc voi", "nguon lay", "source case"],
}
_HEADER_FIELD = {alias: name for name, aliases in HEADERS.items() for alias in aliases}
CHUNK = 1000
REJECT_CELL_CHARS = 200  # a rejects file shows enough of each cell to find the row, and stays small
Reject = tuple[int, str, list[Any]]  # line, reason, the row's cells
IMPORT_LOCK = 0x46_31_4C_49_53_54  # "F1LIST": the advisory lock imports take on PostgreSQL


@dataclass
class ImportSummary:
    list_id: int
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "list_id": self.list_id,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejects_file": self.rejects_file,
        }


@dataclass
class Contact:
    phone: str
    details: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)  # every row merged into it: (line, cells)

    @property
    def line(self) -> int:
        return self.rows[-1][0]


def _header_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", folded(str(text)).lower()).strip()


def map_columns(header: list[Any], column_map: dict[str, str] | None = None) -> dict[str, int]:
    """Which column holds which field: Vietnamese headers recognised, `column_map` ({header: field}) for others."""
    given = {_header_key(k): v for k, v in (column_map or {}).items()}
    unknown = [f for f in given.values() if f not in FIELDS]
    if unknown:
        raise UnusableFile(f"column map names unknown fields {unknown}; fields are {', '.join(FIELDS)}")
    keys = [_header_key(title or "") for title in header]
    mapping = {given[key]: index for index, key in enumerate(keys) if key in given}  # the operator's map first
    for index, key in enumerate(keys):
        name = _HEADER_FIELD.get(key)
        if name and name not in mapping and key not in given:
            mapping[name] = index
    if "phone" not in mapping:
        raise UnusableFile("no phone column (e.g. 'Số điện thoại', 'SĐT'); name it with a column map")
    return mapping


def _year(value: Any) -> int | None:
    if isinstance(value, date | datetime):
        return value.year
    match = re.search(r"(19|20)\d\d", str(value))
    if not match:
        raise ValueError(f"birth year '{value}' is not a year")
    year = int(match.group())
    if not 1900 <= year <= date.today().year:
        raise ValueError(f"birth year {year} is out of range")
    return year


def local_today() -> date:
    """Today where the residents are (the server's clock may run in UTC: 00:00-07:00 in Hà Nội is yesterday there)."""
    return datetime.now(ZoneInfo(get_settings().timezone)).date()


def parse_date(value: Any, what: str = "exposure date", *, future: bool = False) -> date:
    """A date as Vietnamese spreadsheets hold it (a date cell, dd/mm/yyyy, yyyy-mm-dd ...), or ValueError naming
    `what`; a date after today is an error unless `future`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for pattern in ("%d/%m/%Y", "%d-%m-%Y", "%Y-%m-%d", "%d/%m/%y", "%d.%m.%Y"):
        try:
            parsed = datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        if not future and parsed > local_today():
            raise ValueError(f"{what} {text} is in the future")
        return parsed
    raise ValueError(f"{what} '{text}' is not a date (dd/mm/yyyy)")


def parse_contact(line: int, cells: list[Any], mapping: dict[str, int], scope: str | None = None) -> Contact:
    """One row as a contact, or ValueError saying what is wrong with it (a province outside `scope` included).
    A province is set only when the row names one; the list's own province is the importer's default."""
    values = {name: cells[i] if i < len(cells) else None for name, i in mapping.items()}
    values = {k: v for k, v in values.items() if v not in (None, "")}
    if "phone" not in values:
        raise ValueError("no phone number")
    try:
        phone = normalize_phone(str(values.pop("phone")))
    except InvalidPhone as error:
        raise ValueError(str(error)) from None
    details: dict[str, Any] = {k: _fits(k, str(v)) for k, v in values.items() if k in TEXT_LIMITS}
    if "birth_year" in values:
        details["birth_year"] = _year(values["birth_year"])
    if "exposure_date" in values:
        details["exposure_date"] = parse_date(values["exposure_date"])
    if "province" in values:
        code = province_code(str(values["province"]))
        if code is None:
            raise ValueError(f"unknown province '{values['province']}'")
        if scope and code != scope:
            raise ValueError(
                f"province '{values['province']}' ({code}) is outside your province ({scope}); ask "
                f"province {code} or a national user to import this row"
            )
        details["province_code"], details["province"] = code, _fits("province", str(values["province"]))
    return Contact(phone, details, [(line, cells)])


# The longest text the store keeps of each field: a longer cell is a row's error, never a failed import.
TEXT_LIMITS = {
    name: column.type.length
    for name, column in {
        "full_name": Person.full_name,
        "address": Person.address,
        "ward": Person.ward,
        "district": Person.district,
        "province": Person.province,
        "source_case": ContactListMember.source_case,
    }.items()
}


def _fits(name: str, value: str) -> str:
    if len(value) > TEXT_LIMITS[name]:
        raise ValueError(f"{name} is longer than {TEXT_LIMITS[name]} characters")
    return value


SOURCE_NAME_CHARS = ContactList.source_file.type.length
PERSON_FIELDS = ("full_name", "birth_year", "address", "ward", "district", "province", "province_code")


def import_contacts(
    sessions: sessionmaker[Session],
    path: Path,
    list_name: str,
    *,
    province: str | None = None,
    scope: str | None = None,
    column_map: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
    source_name: str | None = None,
    limits: ReadLimits | None = None,
    created_by: int | None = None,
) -> ImportSummary:
    """Import the list at `path` for `province`, as an uploader whose province is `scope` (None: national)."""
    province = province or scope
    if scope and province != scope:
        raise UnusableFile(f"a list of province {province} is outside your province ({scope})")
    if len(list_name) > ContactList.name.type.length:
        raise UnusableFile(f"the list's name is longer than {ContactList.name.type.length} characters")
    limits = limits or ReadLimits.from_settings(get_settings())
    rows = list(islice(read_table(path, limits), limits.max_rows + 2))  # counted before the slower parsing
    if not rows:
        raise UnusableFile(f"{path.name} is empty")
    if len(rows) > limits.max_rows + 1:
        raise UnusableFile(f"{path.name} has more than {limits.max_rows:,} rows; split the list")
    (_, header), *rows = rows
    mapping = map_columns(header, column_map)
    contacts, rejects = _parse_rows(rows, mapping, scope, progress)
    if not contacts and not rejects:
        raise UnusableFile(f"{path.name} has a header but no rows")
    with sessions.begin() as session:  # one transaction: a failure leaves the store as it was
        after_other_imports(session)
        contact_list = ContactList(
            name=list_name,
            province_code=province,
            source_file=(source_name or path.name)[:SOURCE_NAME_CHARS],
            created_by_id=created_by,
        )
        session.add(contact_list)
        session.flush()
        summary = _store(session, contact_list, contacts, scope, rejects, created_by)
        if rejects:
            contact_list.rejects_file = summary.rejects_file = str(write_rejects(path, header, rejects))
        contact_list.imported, contact_list.duplicates = summary.imported, summary.duplicates
        contact_list.rejected = summary.rejected
    return summary


def after_other_imports(session: Session) -> None:
    """Imports write one at a time: two lists holding one new phone would otherwise both insert that person, and a
    person another import is adding would escape the scope check. PostgreSQL: a transaction-scoped advisory lock;
    SQLite: a write that changes nothing takes the database's write lock before anything is read (a transaction that
    read first could not write once another had)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK})
    else:
        session.execute(update(Person).where(false()).values(id=Person.id).execution_options(synchronize_session=False))


def _parse_rows(
    rows: list[tuple[int, list[Any]]],
    mapping: dict[str, int],
    scope: str | None,
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, Contact], list[Reject]]:
    """Contacts by phone (rows of one phone merged) and the rows rejected."""
    contacts: dict[str, Contact] = {}
    rejects: list[Reject] = []
    for line, cells in rows:
        if progress:
            progress(1)
        try:
            contact = parse_contact(line, cells, mapping, scope)
        except ValueError as error:
            rejects.append((line, str(error), cells))
            continue
        if earlier := contacts.get(contact.phone):  # the later row is the newer one; it keeps what it leaves blank
            contact.details = {**earlier.details, **contact.details}
            contact.rows = earlier.rows + contact.rows
        contacts[contact.phone] = contact
    return contacts, rejects


def _store(
    session: Session,
    contact_list: ContactList,
    contacts: dict[str, Contact],
    scope: str | None,
    rejects: list[Reject],
    created_by: int | None,
) -> ImportSummary:
    """People and list members, chunk by chunk; the rows of people outside `scope` join `rejects` instead."""
    summary = ImportSummary(list_id=contact_list.id)
    moves: list[list[Any]] = []
    phones = list(contacts)
    for start in range(0, len(phones), CHUNK):
        chunk = phones[start : start + CHUNK]
        stored = {p.phone: p for p in session.scalars(select(Person).where(Person.phone.in_(chunk)))}
        for phone, person in list(stored.items()):
            if scope and person.province_code not in (None, scope):
                rejects.extend(_not_yours(contacts.pop(phone), person.province_code))
                del stored[phone]
            elif move := _update(person, contacts[phone], contact_list.province_code):
                moves.append(move)
        chunk = [phone for phone in chunk if phone in contacts]
        new = [_person_row(contacts[p], contact_list.province_code) for p in chunk if p not in stored]
        if new:
            session.execute(insert(Person), new)
        summary.imported += len(new)
        summary.duplicates += len(stored) + sum(len(contacts[p].rows) - 1 for p in chunk)
        if not chunk:
            continue
        ids = dict(session.execute(select(Person.phone, Person.id).where(Person.phone.in_(chunk))).all())
        session.execute(
            insert(ContactListMember),
            [
                {
                    "contact_list_id": contact_list.id,
                    "person_id": ids[p],
                    "source_line": contacts[p].line,
                    "exposure_date": contacts[p].details.get("exposure_date"),
                    "source_case": contacts[p].details.get("source_case"),
                }
                for p in chunk
            ],
        )
    if moves:  # a province given to a stored person changes who may see them: on the record, like a move
        uploader = session.get(User, created_by) if created_by is not None else operator()
        detail = {"contact_list_id": contact_list.id, "moves": moves}
        audit(session, uploader, "person.move", "person", [m[0] for m in moves], detail=detail)
    summary.rejected = len(rejects)
    return summary


def _not_yours(contact: Contact, province: str) -> list[Reject]:
    # Which province follows them is itself personal (it says they are on that province's list): not named.
    reason = "this phone belongs to a person followed by another province; ask a national user"
    return [(line, reason, cells) for line, cells in contact.rows]


def _update(person: Person, contact: Contact, list_province: str | None) -> list[Any] | None:
    """One person per phone: the list's newest details win. Their province changes only when the row names one
    (a national import) or they had none (the list's province claims them). A change comes back as [id, from, to]."""
    before = person.province_code
    for name in PERSON_FIELDS:
        if contact.details.get(name) is not None:
            setattr(person, name, contact.details[name])
    if person.province_code is None:
        person.province_code = list_province
    return [person.id, before, person.province_code] if person.province_code != before else None


def _person_row(contact: Contact, list_province: str | None) -> dict[str, Any]:
    now = utcnow()
    row = {name: contact.details.get(name) for name in PERSON_FIELDS}
    row["province_code"] = row["province_code"] or list_province
    return {**row, "phone": contact.phone, "created_at": now, "updated_at": now}


def write_rejects(path: Path, header: list[Any], rejects: list[Reject]) -> Path:
    """FILE.rejects.csv beside the file: private to the platform's user, each cell cut to REJECT_CELL_CHARS."""
    target = path.with_name(f"{path.stem}.rejects.csv")
    with private_text_file(target, "utf-8-sig") as sink:  # with a BOM, so Excel reads the accents
        writer = csv.writer(sink)
        writer.writerow(["line", "reason", *[_shown(h) for h in header]])
        for line, reason, cells in sorted(rejects, key=lambda reject: reject[0]):
            writer.writerow([line, reason, *[_shown(c) for c in cells]])
    return target


def _shown(cell: Any) -> Any:
    """A cell as uploaded, but never as a formula a spreadsheet would run, and never longer than needed."""
    if cell is None:
        return ""
    if isinstance(cell, str) and len(cell) > REJECT_CELL_CHARS:
        cell = cell[:REJECT_CELL_CHARS] + "…"
    return neutralise(cell)

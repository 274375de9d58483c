"""F1 lists (CSV or XLSX, as Vietnamese spreadsheets come) into people and a contact list, whole or not at all.

Every data row is counted once: `imported` (a person new to the store), `duplicates` (merged into an earlier row of
the file or a person already stored: one person per phone, the newest details kept, both lists linked) or
`rejected` (with its line number and reason, written to a rejects CSV beside the file).
"""

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from bot.vntext import folded, nfc
from campaigns.export import neutralise
from campaigns.provinces import province_code
from models import ContactList, ContactListMember, Person, utcnow
from outreach.db import session_scope
from outreach.phones import InvalidPhone, normalize_phone

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


class UnusableFile(ValueError):
    """The file cannot be imported at all (format, no phone column, empty); nothing was stored."""


@dataclass
class ImportSummary:
    list_id: int
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"list_id": self.list_id, "imported": self.imported, "duplicates": self.duplicates,
                "rejected": self.rejected, "rejects_file": self.rejects_file}  # fmt: skip


@dataclass
class Contact:
    line: int
    phone: str
    details: dict[str, Any] = field(default_factory=dict)


def _header_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", folded(str(text)).lower()).strip()


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel keeps phones and years as numbers: 912345678.0
    if isinstance(value, int):
        return str(value)
    return nfc(value.strip()) if isinstance(value, str) else value


def _csv_rows(data: bytes) -> Iterator[list[Any]]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")  # Excel's "Unicode text"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1258", errors="strict")  # Windows Vietnamese
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    yield from csv.reader(io.StringIO(text), dialect)


def _xlsx_rows(path: Path) -> Iterator[list[Any]]:
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        yield from (list(row) for row in workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()


def read_table(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(line number, cells) for every row of the file's first sheet."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            rows = _xlsx_rows(path)
            first = next(rows, None)
        except Exception as error:  # openpyxl raises many kinds for a file that is not a workbook
            raise UnusableFile(f"{path.name} is not a readable XLSX workbook ({error.__class__.__name__})") from None
        rows = iter([first, *rows]) if first is not None else iter([])
    elif path.suffix.lower() in (".csv", ".txt", ".tsv"):
        try:
            rows = _csv_rows(path.read_bytes())
        except UnicodeDecodeError:
            raise UnusableFile(f"{path.name}: text in an unknown encoding (save it as UTF-8 CSV)") from None
    else:
        raise UnusableFile(f"{path.name}: unsupported format; give a .csv or .xlsx file")
    for line, row in enumerate(rows, start=1):
        yield line, [_cell(value) for value in row]


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


def _date(value: Any) -> date:
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
        if parsed > date.today():
            raise ValueError(f"exposure date {text} is in the future")
        return parsed
    raise ValueError(f"exposure date '{text}' is not a date (dd/mm/yyyy)")


def parse_contact(line: int, cells: list[Any], mapping: dict[str, int], default_province: str | None) -> Contact:
    """One row as a contact, or ValueError saying what is wrong with it."""
    values = {name: cells[i] if i < len(cells) else None for name, i in mapping.items()}
    values = {k: v for k, v in values.items() if v not in (None, "")}
    if "phone" not in values:
        raise ValueError("no phone number")
    try:
        phone = normalize_phone(str(values.pop("phone")))
    except InvalidPhone as error:
        raise ValueError(str(error)) from None
    details: dict[str, Any] = {k: str(v) for k, v in values.items() if k in ("full_name", "address", "ward",
                                                                           "district", "source_case")}  # fmt: skip
    if "birth_year" in values:
        details["birth_year"] = _year(values["birth_year"])
    if "exposure_date" in values:
        details["exposure_date"] = _date(values["exposure_date"])
    if "province" in values:
        code = province_code(str(values["province"]))
        if code is None:
            raise ValueError(f"unknown province '{values['province']}'")
        details["province_code"], details["province"] = code, str(values["province"])
    elif default_province:
        details["province_code"] = default_province
    return Contact(line, phone, details)


PERSON_FIELDS = ("full_name", "birth_year", "address", "ward", "district", "province", "province_code")


def import_contacts(
    sessions: sessionmaker[Session], path: Path, list_name: str, *, province: str | None = None,
    column_map: dict[str, str] | None = None, progress: Callable[[int], None] | None = None,
    source_name: str | None = None,
) -> ImportSummary:  # fmt: skip
    rows = read_table(path)
    header = next((cells for _, cells in rows if any(c not in (None, "") for c in cells)), None)
    if header is None:
        raise UnusableFile(f"{path.name} is empty")
    mapping = map_columns(header, column_map)
    contacts: dict[str, Contact] = {}
    rejects: list[tuple[int, str, list[Any]]] = []
    duplicates = 0
    for line, cells in rows:
        if progress:
            progress(1)
        if all(c in (None, "") for c in cells):
            continue  # blank rows are spacing, not data
        try:
            contact = parse_contact(line, cells, mapping, province)
        except ValueError as error:
            rejects.append((line, str(error), cells))
            continue
        if contact.phone in contacts:  # the later row is the newer one; it keeps what it leaves blank
            duplicates += 1
            contact.details = {**contacts[contact.phone].details, **contact.details}
        contacts[contact.phone] = contact
    if not contacts and not rejects:
        raise UnusableFile(f"{path.name} has a header but no rows")
    rejects_file = str(_write_rejects(path, header, rejects)) if rejects else None
    summary = _store(sessions, ContactList(name=list_name, province_code=province, source_file=source_name or path.name,
                                           rejects_file=rejects_file), contacts)  # fmt: skip
    summary.duplicates += duplicates
    summary.rejected, summary.rejects_file = len(rejects), rejects_file
    return summary


def _store(sessions, contact_list: ContactList, contacts: dict[str, Contact]) -> ImportSummary:
    """Everything in one transaction: a failure leaves the store as it was."""
    with session_scope(sessions) as session:
        session.add(contact_list)
        session.flush()
        summary = ImportSummary(list_id=contact_list.id)
        phones = list(contacts)
        for start in range(0, len(phones), CHUNK):
            chunk = phones[start : start + CHUNK]
            stored = {p.phone: p for p in session.scalars(select(Person).where(Person.phone.in_(chunk)))}
            new = [_person_row(contacts[p]) for p in chunk if p not in stored]
            for phone, person in stored.items():  # one person per phone: the list's newest details win
                for name in PERSON_FIELDS:
                    if contacts[phone].details.get(name) is not None:
                        setattr(person, name, contacts[phone].details[name])
            if new:
                session.execute(insert(Person), new)
            summary.imported += len(new)
            summary.duplicates += len(stored)
            ids = dict(session.execute(select(Person.phone, Person.id).where(Person.phone.in_(chunk))).all())
            session.execute(insert(ContactListMember), [
                {"contact_list_id": contact_list.id, "person_id": ids[p], "source_line": contacts[p].line,
                 "exposure_date": contacts[p].details.get("exposure_date"),
                 "source_case": contacts[p].details.get("source_case")} for p in chunk
            ])  # fmt: skip
    return summary


def _person_row(contact: Contact) -> dict[str, Any]:
    now = utcnow()
    row = {name: contact.details.get(name) for name in PERSON_FIELDS}
    return {**row, "phone": contact.phone, "created_at": now, "updated_at": now}


def _write_rejects(path: Path, header: list[Any], rejects: list[tuple[int, str, list[Any]]]) -> Path:
    target = path.with_name(f"{path.stem}.rejects.csv")
    with target.open("w", encoding="utf-8-sig", newline="") as sink:  # with a BOM, so Excel reads the accents
        writer = csv.writer(sink)
        writer.writerow(["line", "reason", *[neutralise(h) if h is not None else "" for h in header]])
        for line, reason, cells in rejects:  # the cells as uploaded, but never as formulas a spreadsheet would run
            writer.writerow([line, reason, *["" if c is None else neutralise(c) for c in cells]])
    return target

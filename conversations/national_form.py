"""Declarations in the field order and codes of the national health-declaration form (tokhaiyte.vn / NCOVI, "Khai báo y
tế"), so the national platform and its tools take them as their own.

The form (../shared/reference/protocols.md 4.1), in its order: the personal block, the travel block, then the three
14-day questions answered Có / Không (the second per symptom, the third per kind of contact). Each cell holds the
form's own words: "Có" or "Không" for its questions, the form's labels as headers. A question the platform does not
ask (passport number, sex, nationality, the travel block, places visited, pneumonia, contact with people from abroad
or with symptoms) is an empty cell, never a guess; so is a question not answered. What the platform asks beyond the
form follows it, each header marked "(bổ sung)" (an addition): loss of taste or smell (MOH guidance of December
2021), temperature, symptom onset, test result and date, vaccine doses, and when and under which code the
declaration was made.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from access.auth import audit
from access.errors import InvalidValue
from campaigns.export import ExportFormat, csv_chunks, neutralise, write_xlsx
from campaigns.provinces import PROVINCES
from conversations.reading import DeclarationFilter, scoped_filtered
from models import Declaration, Person, User

YES, NO = "Có", "Không"
TEST_RESULTS = {
    "positive": "Dương tính",
    "negative": "Âm tính",
    "pending": "Chờ kết quả",
    "not_tested": "Chưa xét nghiệm",
}
ROWS_PER_FETCH = 1000


def _symptom(name: str) -> Callable[[Declaration, Person, ZoneInfo], str]:
    def answer(declaration: Declaration, _: Person, __: ZoneInfo) -> str:
        if not declaration.symptoms_asked:
            return ""
        return YES if name in declaration.symptoms else NO

    return answer


def _contact(declaration: Declaration, _: Person, __: ZoneInfo) -> str:
    return {"yes": YES, "no": NO}.get(declaration.contact_with_case or "", "")


def _not_asked(*_: Any) -> str:
    return ""


def _national_phone(_: Declaration, person: Person, __: ZoneInfo) -> str:
    return "0" + person.phone.removeprefix("+84")


def _province(_: Declaration, person: Person, __: ZoneInfo) -> str:
    return person.province or PROVINCES.get(person.province_code or "", "")


def _declared_at(declaration: Declaration, _: Person, zone: ZoneInfo) -> str:
    return declaration.created_at.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def _day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


Cell = Callable[[Declaration, Person, ZoneInfo], Any]
# (the form's label, how a declaration answers it), in the form's order.
FORM: list[tuple[str, Cell]] = [
    ("Họ tên (ghi chữ IN HOA)", lambda d, p, z: (p.full_name or "").upper()),
    ("Số hộ chiếu / CMND / CCCD", _not_asked),
    ("Năm sinh", lambda d, p, z: p.birth_year or ""),
    ("Giới tính", _not_asked),
    ("Quốc tịch", _not_asked),
    ("Tỉnh/thành", _province),
    ("Quận/huyện", lambda d, p, z: p.district or ""),
    ("Phường/xã", lambda d, p, z: p.ward or ""),
    ("Số nhà, phố, tổ dân phố / thôn / đội", lambda d, p, z: p.address or ""),
    ("Điện thoại", _national_phone),
    ("Email", _not_asked),
    ("Phương tiện", _not_asked),
    ("Số hiệu phương tiện", _not_asked),
    ("Số ghế", _not_asked),
    ("Ngày khởi hành", _not_asked),
    ("Ngày kết thúc", _not_asked),
    ("Nơi đi", _not_asked),
    ("Nơi đến", _not_asked),
    ("Trong vòng 14 ngày qua, Anh/Chị có đến tỉnh/thành phố, quốc gia/vùng lãnh thổ nào", _not_asked),
    ("Sốt", _symptom("fever")),
    ("Ho", _symptom("cough")),
    ("Khó thở", _symptom("shortness_of_breath")),
    ("Viêm phổi", _not_asked),
    ("Đau họng", _symptom("sore_throat")),
    ("Mệt mỏi", _symptom("fatigue")),
    ("Tiếp xúc với người bệnh hoặc nghi ngờ mắc bệnh COVID-19", _contact),
    ("Tiếp xúc với người từ nước/quốc gia/vùng lãnh thổ có bệnh COVID-19", _not_asked),
    ("Tiếp xúc với người có biểu hiện (sốt, ho, khó thở, viêm phổi)", _not_asked),
    ("Mất vị giác/khứu giác (bổ sung)", _symptom("loss_of_taste_or_smell")),
    ("Nhiệt độ °C (bổ sung)", lambda d, p, z: d.temperature_c if d.temperature_c is not None else ""),
    ("Ngày khởi phát triệu chứng (bổ sung)", lambda d, p, z: _day(d.symptom_onset)),
    ("Kết quả xét nghiệm (bổ sung)", lambda d, p, z: TEST_RESULTS.get(d.test_result or "", "")),
    ("Ngày xét nghiệm (bổ sung)", lambda d, p, z: _day(d.test_date)),
    ("Số mũi vắc-xin (bổ sung)", lambda d, p, z: d.vaccine_doses if d.vaccine_doses is not None else ""),
    ("Thời điểm khai báo (bổ sung)", _declared_at),
    ("Mã khai báo (bổ sung)", lambda d, p, z: d.id),
]
HEADER = tuple(label for label, _ in FORM)


@dataclass(frozen=True)
class NationalExport:
    """One user's export in the national form, on the record already; its rows are read in the caller's session."""

    user: User
    where: DeclarationFilter
    timezone: str
    file_format: ExportFormat
    today: date

    @property
    def file_name(self) -> str:
        return f"khai-bao-y-te-{self.today}.{self.file_format}"

    def rows(self, session: Session) -> Iterator[tuple[Any, ...]]:
        return national_rows(session, self.user, self.where, self.timezone)

    def csv_bytes(self, session: Session) -> Iterator[bytes]:
        return csv_chunks(self.rows(session), HEADER)

    def write(self, session: Session, sink: IO[bytes]) -> None:
        if self.file_format is ExportFormat.XLSX:
            write_xlsx(self.rows(session), sink, header=HEADER, sheet_name="khai báo y tế")
        else:
            sink.writelines(self.csv_bytes(session))


def begin_national_export(
    session: Session,
    user: User,
    where: DeclarationFilter,
    file_format: str,
    timezone: str,
    client_ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> NationalExport:
    """The user's declarations matching `where`, in the national form. The audit row is committed before any row is
    read: the file holds health data, so the record stands whether or not the file is completed."""
    try:
        chosen = ExportFormat(file_format)
    except ValueError:
        raise InvalidValue("format", f"unknown format '{file_format}'; use csv or xlsx") from None
    filters = {name: str(value) for name, value in vars(where).items() if value is not None}
    recorded = {"form": "national", "format": str(chosen), **filters, **(detail or {})}
    audit(session, user, "declaration.export.national", "declaration", [], client_ip, recorded)
    session.commit()
    return NationalExport(user, where, timezone, chosen, datetime.now(ZoneInfo(timezone)).date())


def national_rows(session: Session, user: User, where: DeclarationFilter, timezone: str) -> Iterator[tuple[Any, ...]]:
    """The user's declarations matching `where`, oldest first, each a row under HEADER. Every cell is neutralised (a
    name starting with = stays text)."""
    zone = ZoneInfo(timezone)
    stmt = scoped_filtered(user, where, timezone).order_by(Declaration.created_at, Declaration.id)
    for declaration, _ in session.execute(stmt.execution_options(yield_per=ROWS_PER_FETCH)):
        person = declaration.person
        yield tuple(neutralise(cell(declaration, person, zone)) for _, cell in FORM)

"""Declarations in the national health-declaration form: its fields in its order, its codes, the reader's province,
by API and CLI."""

import csv
import io
from datetime import UTC, date, datetime

import httpx
import openpyxl
import pytest
from sqlalchemy import select

from access import auth
from access.auth import operator
from conversations.national_form import HEADER, begin_national_export, national_rows
from conversations.reading import DeclarationFilter
from models import AuditLog, Role
from tests import factories
from tests.test_cli import outreach

ZONE = "Asia/Ho_Chi_Minh"
# The form's own blocks (../shared/reference/protocols.md 4.1), in its order, then the platform's additions.
PERSONAL = ["Họ tên (ghi chữ IN HOA)", "Số hộ chiếu / CMND / CCCD", "Năm sinh", "Giới tính", "Quốc tịch", "Tỉnh/thành",
            "Quận/huyện", "Phường/xã", "Số nhà, phố, tổ dân phố / thôn / đội", "Điện thoại", "Email"]  # fmt: skip
TRAVEL = ["Phương tiện", "Số hiệu phương tiện", "Số ghế", "Ngày khởi hành", "Ngày kết thúc", "Nơi đi", "Nơi đến"]
SYMPTOMS = ["Sốt", "Ho", "Khó thở", "Viêm phổi", "Đau họng", "Mệt mỏi"]


def row_of(values: tuple) -> dict:
    return dict(zip(HEADER, values, strict=True))


def test_the_columns_are_the_forms_in_its_order_and_the_additions_are_marked():
    assert list(HEADER[: len(PERSONAL)]) == PERSONAL
    assert list(HEADER[len(PERSONAL) : len(PERSONAL) + len(TRAVEL)]) == TRAVEL
    questions = HEADER[len(PERSONAL) + len(TRAVEL) :]
    assert questions[0].startswith("Trong vòng 14 ngày qua, Anh/Chị có đến")
    assert list(questions[1:7]) == SYMPTOMS
    assert [q.split(" (")[0] for q in questions[7:10]] == [
        "Tiếp xúc với người bệnh hoặc nghi ngờ mắc bệnh COVID-19",
        "Tiếp xúc với người từ nước/quốc gia/vùng lãnh thổ có bệnh COVID-19",
        "Tiếp xúc với người có biểu hiện",
    ]
    assert questions[10:] and all(label.endswith("(bổ sung)") for label in questions[10:])


def test_a_declaration_answers_in_the_forms_words_and_leaves_what_was_not_asked_empty(sessions):
    with sessions.begin() as session:
        an = factories.person(session, "+84912345678", name="Nguyễn Văn An")
        an.ward, an.address, an.district = "Phường Suối Hoa", "12 Lý Thái Tổ", None
        factories.complete_declaration(
            session,
            an,
            symptoms=["fever", "cough", "loss_of_taste_or_smell"],
            test_result="positive",
            contact_with_case="unknown",
            created_at=datetime(2021, 6, 3, 1, 30, tzinfo=UTC),
        )
        binh = factories.person(session, "+84323456789", name='=HYPERLINK("x")')
        factories.complete_declaration(
            session, binh, symptoms_asked=False, symptoms=[], contact_with_case="no", test_result=None,
            temperature_c=None, vaccine_doses=None, created_at=datetime(2021, 6, 4, 1, 0, tzinfo=UTC),
        )  # fmt: skip
    with sessions() as session:
        first, second = (row_of(r) for r in national_rows(session, operator(), DeclarationFilter(), ZONE))
    assert first["Họ tên (ghi chữ IN HOA)"] == "NGUYỄN VĂN AN"
    assert (first["Điện thoại"], first["Tỉnh/thành"], first["Phường/xã"]) == (
        "0912345678",
        "Bắc Ninh",
        "Phường Suối Hoa",
    )
    assert first["Số nhà, phố, tổ dân phố / thôn / đội"] == "12 Lý Thái Tổ"
    assert first["Năm sinh"] == 1985
    assert [first[s] for s in SYMPTOMS] == ["Có", "Có", "Không", "", "Không", "Không"], "pneumonia is not asked"
    assert first["Mất vị giác/khứu giác (bổ sung)"] == "Có"
    assert first["Tiếp xúc với người bệnh hoặc nghi ngờ mắc bệnh COVID-19"] == "", "unknown is no answer"
    assert first["Kết quả xét nghiệm (bổ sung)"] == "Dương tính"
    assert first["Ngày xét nghiệm (bổ sung)"] == "03/06/2021"
    assert first["Nhiệt độ °C (bổ sung)"] == 38.5
    assert first["Thời điểm khai báo (bổ sung)"] == "03/06/2021 08:30", "local time"
    assert all(first[label] == "" for label in ["Giới tính", "Quốc tịch", "Email", "Viêm phổi", *TRAVEL])
    assert second["Họ tên (ghi chữ IN HOA)"] == '\'=HYPERLINK("X")', "a formula stays text"
    assert [second[s] for s in SYMPTOMS] == [""] * 6, "symptoms not asked: no answer, not 'Không'"
    assert second["Tiếp xúc với người bệnh hoặc nghi ngờ mắc bệnh COVID-19"] == "Không"
    assert (second["Kết quả xét nghiệm (bổ sung)"], second["Số mũi vắc-xin (bổ sung)"]) == ("", "")


def test_a_provincial_reader_exports_their_province_within_the_dates(sessions):
    with sessions.begin() as session:
        for phone, province, day in [("+84912000001", "27", 2), ("+84912000002", "01", 2), ("+84912000003", "27", 5)]:
            who = factories.person(session, phone, province_code=province)
            factories.complete_declaration(session, who, created_at=datetime(2021, 6, day, 3, 0, tzinfo=UTC))
        reader = auth.add_user(session, "viewer-27", Role.VIEWER, "27").user
    where = DeclarationFilter(created_from=date(2021, 6, 1), created_to=date(2021, 6, 3))
    with sessions() as session:
        export = begin_national_export(session, reader, where, "csv", ZONE)
        phones = [row_of(r)["Điện thoại"] for r in export.rows(session)]
        logged = session.scalars(select(AuditLog).where(AuditLog.action == "declaration.export.national")).one()
    assert phones == ["0912000001"]
    assert logged.detail["created_to"] == "2021-06-03"
    with sessions() as session, pytest.raises(ValueError, match="unknown format 'pdf'"):
        begin_national_export(session, reader, where, "pdf", ZONE)


def test_the_api_and_the_cli_give_the_file(api, tmp_path):
    with api.sessions.begin() as session:
        who = factories.person(session, "+84912345678")
        factories.complete_declaration(session, who)
        other = factories.person(session, "+84901234567", province_code="01")
        factories.complete_declaration(session, other)
        token = auth.add_user(session, "tracer-27", Role.TRACER, "27").token
    headers = {"Authorization": f"Bearer {token}"}
    got = httpx.get(f"{api.url}/api/v1/declarations/national-form.csv", headers=headers, timeout=10)
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"].startswith('attachment; filename="khai-bao-y-te-')
    assert got.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == HEADER
    assert [row[HEADER.index("Điện thoại")] for row in rows[1:]] == ["0912345678"]
    workbook = httpx.get(f"{api.url}/api/v1/declarations/national-form.xlsx", headers=headers, timeout=10)
    assert workbook.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content), read_only=True).worksheets[0]
    assert [tuple(r) for r in sheet.iter_rows(values_only=True)][0] == HEADER
    bad = httpx.get(
        f"{api.url}/api/v1/declarations/national-form.csv", params={"created_from": "hôm qua"}, headers=headers
    )
    assert bad.status_code == 422
    no_end = {"created_from": "0001-01-01", "created_to": "9999-12-31"}
    assert (
        httpx.get(f"{api.url}/api/v1/declarations/national-form.csv", params=no_end, headers=headers).status_code == 200
    )
    written = tmp_path / "khai-bao.xlsx"
    done = outreach(
        "declarations", "export", "-o", str(written), "--format", "xlsx", database_url=api.settings.database_url
    )
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(written, read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows(values_only=True))) == 3, "the operator is national: both provinces"

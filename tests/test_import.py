"""F1 list import: messy Vietnamese spreadsheets, exact counts, rejects with reasons, whole or nothing."""

import csv
import json
from datetime import date, datetime

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from access import auth
from campaigns.importer import UnusableFile, import_contacts
from ground.settings import Settings
from models import ContactList, ContactListMember, Person, Role
from tests import factories
from tests.conftest import run_app
from tests.support.net import free_port
from tests.test_cli import outreach

MESSY = """\
STT,Họ và tên,Số điện thoại,Năm sinh,Địa chỉ,Phường/Xã,Tỉnh,Ngày tiếp xúc,Mã F0
1,Nguyễn Văn An,0912 345 678,1985,12 Lý Thái Tổ,Suối Hoa,Bắc Ninh,01/06/2021,BN1234
2,Trần Thị Bình,84987654321,1990,,Vũ Ninh,Bắc Ninh,02/06/2021,BN1234
3,Lê Văn Cường,0162.345.6789,1975,,Đại Phúc,tỉnh Bac Ninh,02/06/2021,BN1234
,,,,,,,,
4,Phạm Dũng,abc,1980,,,Bắc Ninh,02/06/2021,BN1234
5,Nguyễn Văn An,+84 91 234 5678,1985,15 Lý Thái Tổ,Suối Hoa,Bắc Ninh,03/06/2021,BN1234
6,Hoàng Em,0901234567,19xx,,,Bắc Ninh,02/06/2021,BN1234
7,Đỗ Giang,0911111111,2001,,,Tỉnh Lạ,02/06/2021,BN1234
8,Vũ Hà,0935 123 456,1999,,,Bắc Ninh,32/13/2021,BN1234
9,Ngô Ích,,1999,,,Bắc Ninh,02/06/2021,BN1234
"""


@pytest.fixture
def messy_csv(tmp_path):
    path = tmp_path / "f1-bacninh.csv"
    path.write_bytes(MESSY.encode("utf-8-sig"))  # Excel's "CSV UTF-8" starts with a BOM
    return path


def test_a_messy_list_imports_with_exact_counts_and_reasons(sessions, messy_csv):
    summary = import_contacts(sessions, messy_csv, "F1 của BN1234", province="27")
    assert (summary.imported, summary.duplicates, summary.rejected) == (3, 1, 5)
    with open(summary.rejects_file, encoding="utf-8-sig") as rejects:
        rows = list(csv.DictReader(rejects))
    assert [(r["line"], r["Họ và tên"]) for r in rows] == [
        ("6", "Phạm Dũng"),
        ("8", "Hoàng Em"),
        ("9", "Đỗ Giang"),
        ("10", "Vũ Hà"),
        ("11", "Ngô Ích"),
    ]
    assert "letters" in rows[0]["reason"] and "province" in rows[2]["reason"] and "no phone" in rows[4]["reason"]
    with sessions() as session:
        an = session.scalar(select(Person).where(Person.phone == "+84912345678"))
        assert (an.address, an.province_code, an.birth_year) == ("15 Lý Thái Tổ", "27", 1985), "newest row wins"
        assert session.scalar(select(Person.phone).where(Person.full_name == "Lê Văn Cường")) == "+84323456789"
        member = session.scalar(select(ContactListMember).where(ContactListMember.person_id == an.id))
        assert (member.exposure_date, member.source_case, member.source_line) == (date(2021, 6, 3), "BN1234", 7)


def test_people_already_stored_are_merged_and_on_both_lists(sessions, messy_csv):
    with sessions.begin() as session:
        factories.person(session, "+84987654321", name="Trần T. Bình (cũ)")
    summary = import_contacts(sessions, messy_csv, "F1", province="27")
    assert (summary.imported, summary.duplicates) == (2, 2)
    again = import_contacts(sessions, messy_csv, "F1 ngày 2", province="27")
    assert (again.imported, again.duplicates, again.rejected) == (0, 4, 5)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 3
        binh = session.scalar(select(Person).where(Person.phone == "+84987654321"))
        assert binh.full_name == "Trần Thị Bình"
        lists = session.scalars(select(ContactListMember.contact_list_id).where(ContactListMember.person_id == binh.id))
        assert len(lists.all()) == 2


def test_xlsx_with_numbers_dates_and_a_column_map(sessions, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Họ tên", "SĐT", "Ngày sinh", "Xã/Phường", "Ngày tiếp xúc", "Ghi chú di động"])
    sheet.append(["Trần Văn Tư", 912345678, datetime(1970, 5, 1), "Suối Hoa", datetime(2021, 6, 1), None])
    sheet.append(["Lý Thị Năm", None, 1988, "Vũ Ninh", "02/06/2021", "0987 654 321"])
    path = tmp_path / "danh-sach.xlsx"
    workbook.save(path)
    summary = import_contacts(sessions, path, "xlsx", province="27", column_map={"Ghi chú di động": "phone"})
    assert (summary.imported, summary.rejected) == (1, 1), "the mapped column replaces the SĐT column"
    summary = import_contacts(sessions, path, "xlsx", province="27")
    assert (summary.imported, summary.duplicates, summary.rejected) == (1, 0, 1)
    with sessions() as session:
        person = session.scalar(select(Person).where(Person.phone == "+84912345678"))
        assert (person.full_name, person.birth_year, person.ward) == ("Trần Văn Tư", 1970, "Suối Hoa")


def test_utf16_tab_separated_text_from_excel(sessions, tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("Họ và tên\tSố điện thoại\nPhạm Thị Hoà\t0912 000 111\n".encode("utf-16"))
    summary = import_contacts(sessions, path, "utf16", province="01")
    assert summary.imported == 1
    with sessions() as session:
        assert session.scalar(select(Person.full_name)) == "Phạm Thị Hoà"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("list.pdf", b"%PDF-1.4", "unsupported format"),
        ("no-phone.csv", "Họ và tên,Địa chỉ\nAn,HN\n".encode(), "no phone"),
        ("empty.csv", b"", "empty"),
        ("header-only.csv", "Họ và tên,SĐT\n".encode(), "no rows"),
        ("broken.xlsx", b"not a zip", "not a readable XLSX"),
    ],
)
def test_unusable_files_say_why_and_store_nothing(sessions, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnusableFile, match=message):
        import_contacts(sessions, path, "bad")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ContactList)) == 0


def test_cli_json_summary_and_exit_codes(store_url, messy_csv, tmp_path):
    result = outreach(
        "contacts", "import", str(messy_csv), "--list", "F1", "--province", "27", "--json", database_url=store_url
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("imported", "duplicates", "rejected")} == {
        "imported": 3,
        "duplicates": 1,
        "rejected": 5,
    }
    assert summary["rejects_file"].endswith("f1-bacninh.rejects.csv") and isinstance(summary["list_id"], int)
    text = outreach("contacts", "import", str(messy_csv), "--list", "F1 again", database_url=store_url)
    assert "0 imported, 4 merged duplicates, 5 rejected" in text.stdout
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    failed = outreach("contacts", "import", str(empty), "--list", "x", "--json", database_url=store_url)
    assert failed.returncode == 1 and failed.stdout == "" and "empty" in failed.stderr


@pytest.fixture
def managers(api):
    with api.sessions.begin() as session:
        return {
            "bacninh": auth.add_user(session, "m27", Role.MANAGER, "27").token,
            "national": auth.add_user(session, "admin", Role.ADMIN, None).token,
            "tracer": auth.add_user(session, "t27", Role.TRACER, "27").token,
        }


def _upload(api, token, path, **form):
    with path.open("rb") as handle:
        return httpx.post(
            f"{api.url}/api/v1/contact-lists",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (path.name, handle)},
            data=form,
            timeout=30,
        )


def test_api_upload_gives_the_same_summary_and_the_rejects(api, managers, messy_csv):
    response = _upload(api, managers["bacninh"], messy_csv, name="F1 BN1234")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["duplicates"], body["rejected"]) == (3, 1, 5)
    listed = api.get(f"/api/v1/contact-lists/{body['list_id']}", managers["bacninh"]).json()
    assert (listed["people"], listed["province_code"], listed["source_file"]) == (3, "27", "f1-bacninh.csv")
    rejects = httpx.get(f"{api.url}{body['rejects_url']}", headers={"Authorization": f"Bearer {managers['bacninh']}"})
    assert rejects.status_code == 200 and "Phạm Dũng" in rejects.content.decode("utf-8-sig")


def test_api_upload_rules(api, managers, messy_csv, tmp_path):
    assert _upload(api, managers["tracer"], messy_csv, name="x").status_code == 403
    assert _upload(api, managers["bacninh"], messy_csv, name="x", province="01").status_code == 403
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused = _upload(api, managers["national"], empty, name="x")
    assert refused.status_code == 422 and "empty" in refused.json()["message"]
    created = _upload(api, managers["national"], messy_csv, name="Hà Nội", province="01").json()
    assert api.get(f"/api/v1/contact-lists/{created['list_id']}", managers["bacninh"]).status_code == 404


def test_api_upload_size_limit(store_url, tmp_path):
    for running in run_app(
        Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}", import_max_bytes=1000)
    ):
        with running.sessions.begin() as session:
            token = auth.add_user(session, "admin", Role.ADMIN, None).token
        big = tmp_path / "big.csv"
        big.write_text("SĐT\n" + "0912345678\n" * 200)
        response = _upload(running, token, big, name="big")
        assert response.status_code == 413 and "larger than" in response.json()["message"]
        with running.sessions() as session:
            assert session.scalar(select(func.count()).select_from(ContactList)) == 0


def test_the_rejects_file_never_holds_a_formula(sessions, tmp_path):
    path = tmp_path / "f1.csv"
    path.write_text(
        'Họ và tên,Số điện thoại\n"=HYPERLINK(""http://x"",""bấm"")",không có\n@SUM(A1),0912 345 678\n',
        encoding="utf-8",
    )
    summary = import_contacts(sessions, path, "F1")
    with open(summary.rejects_file, encoding="utf-8-sig") as rejects:
        rows = list(csv.DictReader(rejects))
    assert [r["Họ và tên"] for r in rows] == ['\'=HYPERLINK("http://x","bấm")']


def test_every_row_of_another_provinces_person_is_rejected_and_counted_once(sessions, tmp_path):
    with sessions.begin() as session:
        factories.person(session, "+84912345678", province_code="27", name="Nguyễn Văn An")
    path = tmp_path / "f1.csv"
    path.write_text(
        "SĐT,Họ và tên\n0912345678,An (HN)\n0912 345 678,An (HN 2)\n0987654321,Bình\n0987654321,Bình 2\n",
        encoding="utf-8",
    )
    summary = import_contacts(sessions, path, "F1", scope="01")
    assert (summary.imported, summary.duplicates, summary.rejected) == (1, 1, 2), "four rows, each counted once"
    with open(summary.rejects_file, encoding="utf-8-sig") as rejects:
        rows = list(csv.DictReader(rejects))
    assert [(r["line"], r["Họ và tên"]) for r in rows] == [("2", "An (HN)"), ("3", "An (HN 2)")]
    assert all("followed by another province" in r["reason"] and "27" not in r["reason"] for r in rows)
    with sessions() as session:
        an = session.scalar(select(Person).where(Person.phone == "+84912345678"))
        assert (an.full_name, an.province_code) == ("Nguyễn Văn An", "27")
        assert session.scalar(select(Person.province_code).where(Person.phone == "+84987654321")) == "01"


def test_a_cell_longer_than_the_store_keeps_is_a_rejected_row(sessions, tmp_path):
    """PostgreSQL refuses a name past 200 characters: the row says so instead of the whole import failing."""
    path = tmp_path / "f1.csv"
    rows = [f"0912345678,{'A' * 201},BN1", f"0987654321,Bình,{'x' * 101}", "0903000111,Chi,BN2"]
    path.write_text("\n".join(["SĐT,Họ và tên,Mã F0", *rows]) + "\n", encoding="utf-8")
    summary = import_contacts(sessions, path, "F1", province="27", source_name="f" * 600 + ".csv")
    assert (summary.imported, summary.rejected) == (1, 2)
    with open(summary.rejects_file, encoding="utf-8-sig") as rejects:
        reasons = [row["reason"] for row in csv.DictReader(rejects)]
    assert reasons == ["full_name is longer than 200 characters", "source_case is longer than 100 characters"]

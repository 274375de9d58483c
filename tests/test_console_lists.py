"""The console's F1 list pages over real HTTP, on SQLite and PostgreSQL: uploading a messy list and reading its
counts and rejected rows, mapping the columns of a file whose phone column is not recognised, who may upload, province
scope, CSRF, files that cannot be imported, and the upload's progress for its uploader only."""

import re

import httpx
import pytest
from sqlalchemy import func, select

from app.console.lists import reason_vi
from campaigns.import_process import start_fork_server
from campaigns.importer import import_contacts, parse_contact
from ground.settings import Settings
from models import AuditLog, ContactList, Person, Role
from tests.conftest import run_app
from tests.support.net import free_port
from tests.test_console import _csrf, _sign_in, _user
from tests.test_import import MESSY

UPLOAD_ID = re.compile(r'name="upload_id" value="([^"]+)"')
STAGED_TOKEN = re.compile(r'name="staged" value="([^"]+)"')
UNKNOWN_PHONE = "Họ và tên,Liên lạc,Ghi chú\nNguyễn Văn An,0912 345 678,nhà số 5\nTrần Thị Bình,0987654321,\n"


@pytest.fixture
def manager(api):
    """A manager of Bắc Ninh (27) signed in to the console."""
    start_fork_server()  # as the app does at start; waiting here keeps the first upload's time out of the test
    _user(api.sessions, "manager-bn", Role.MANAGER)
    browser = _sign_in(api.url, "manager-bn")
    yield api, browser
    browser.close()


def _upload(browser: httpx.Client, name: str, content: bytes, **fields: str) -> httpx.Response:
    form = browser.get("/console/lists/new")
    data = {"csrf_token": _csrf(form), "upload_id": UPLOAD_ID.search(form.text).group(1), "name": "F1 BN1234"}
    return browser.post("/console/lists", data=data | fields, files={"file": (name, content, "text/csv")})


def _count(text: str, name: str) -> int:
    return int(re.search(rf'data-count="{name}">(\d+)<', text).group(1))


def _lists_stored(api) -> int:
    with api.sessions() as session:
        return session.scalar(select(func.count()).select_from(ContactList))


def test_a_manager_uploads_a_messy_list_and_reads_its_counts_and_rejected_lines(manager):
    api, browser = manager
    answer = _upload(browser, "f1-bacninh.csv", MESSY.encode("utf-8-sig"))
    assert answer.status_code == 303, answer.text
    page = browser.get(answer.headers["location"])
    assert page.status_code == 200
    counts = page.text.split('id="list-counts"')[1].split("</dl>")[0]
    assert (_count(counts, "people"), _count(counts, "new"), _count(counts, "rejected")) == (3, 3, 5)
    assert "1 dòng trùng đã gộp" in page.text  # this upload's summary, shown to its uploader
    rejects = page.text.split('id="rejects"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(\d+)</td>", rejects) == ["6", "8", "9", "10", "11"]
    assert "Phạm Dũng" in rejects and "Không có số điện thoại" in rejects
    list_id = int(re.search(r"/console/lists/(\d+)", answer.headers["location"]).group(1))
    assert f'href="/console/campaigns/new?list={list_id}"' in page.text
    csv_file = browser.get(f"/console/lists/{list_id}/rejects.csv")
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    listed = browser.get("/console/lists")
    assert "F1 BN1234" in listed.text and "f1-bacninh.csv" in listed.text
    with api.sessions() as session:
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"contact_list.list", "contact_list.read", "contact_list.rejects.read"} <= actions


def test_a_file_without_a_known_phone_column_is_previewed_and_imported_once_mapped(manager):
    api, browser = manager
    preview = _upload(browser, "lien-lac.csv", UNKNOWN_PHONE.encode())
    assert preview.status_code == 200 and 'id="column-map"' in preview.text
    assert 'name="map:Liên lạc"' in preview.text and 'name="map:Ghi chú"' in preview.text
    assert 'name="map:Họ và tên"' not in preview.text  # recognised: no question asked
    assert "0912 345 678" in preview.text and _lists_stored(api) == 0
    data = {
        "csrf_token": _csrf(preview),
        "staged": STAGED_TOKEN.search(preview.text).group(1),
        "upload_id": UPLOAD_ID.search(preview.text).group(1),
        "map:Liên lạc": "phone",
        "map:Ghi chú": "",  # left blank: ignored
    }
    imported = browser.post("/console/lists/map", data=data)
    assert imported.status_code == 303, imported.text
    assert _count(browser.get(imported.headers["location"]).text, "people") == 2
    again = browser.post("/console/lists/map", data=data)
    assert again.status_code == 410 and "hết hạn" in again.text, "a staged file is imported once"
    assert _lists_stored(api) == 1


def test_the_api_takes_the_same_column_map(manager):
    api, _ = manager
    token = _user(api.sessions, "api-manager", Role.MANAGER)
    answer = httpx.post(
        f"{api.url}/api/v1/contact-lists",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("lien-lac.csv", UNKNOWN_PHONE.encode(), "text/csv")},
        data={"name": "F1", "map": ["Liên lạc=phone"]},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["imported"] == 2, answer.text


@pytest.mark.parametrize("role", [Role.TRACER, Role.VIEWER])
def test_tracers_and_viewers_may_not_upload(api, role):
    _user(api.sessions, "reader-bn", role)
    browser = _sign_in(api.url, "reader-bn")
    assert browser.get("/console/lists/new").status_code == 403
    token = _csrf(browser.get("/console/lists"))
    data = {"csrf_token": token, "name": "F1"}
    answer = browser.post("/console/lists", data=data, files={"file": ("f1.csv", MESSY.encode(), "text/csv")})
    assert answer.status_code == 403 and _lists_stored(api) == 0


def test_another_provinces_list_is_not_found(manager, tmp_path):
    api, browser = manager
    path = tmp_path / "f1-hanoi.csv"
    path.write_text("Họ và tên,SĐT\nTrần Thị Bình,0987654321\n,abc\n")
    theirs = import_contacts(api.sessions, path, "F1 Hà Nội", province="01")
    assert browser.get(f"/console/lists/{theirs.list_id}").status_code == 404
    assert browser.get(f"/console/lists/{theirs.list_id}/rejects.csv").status_code == 404
    assert "F1 Hà Nội" not in browser.get("/console/lists").text


def test_an_upload_without_the_csrf_token_is_refused(manager):
    api, browser = manager
    data = {"name": "F1", "upload_id": "x" * 22}
    answer = browser.post("/console/lists", data=data, files={"file": ("f1.csv", MESSY.encode(), "text/csv")})
    assert answer.status_code == 403 and _lists_stored(api) == 0


def test_an_oversized_or_binary_file_gets_a_clear_page_and_stores_nothing(store_url):
    settings = Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}", import_max_bytes=2048)
    for running in run_app(settings):
        _user(running.sessions, "manager-bn", Role.MANAGER)
        browser = _sign_in(running.url, "manager-bn")
        big = _upload(browser, "big.csv", ("Họ và tên,SĐT\n" + "An,0912345678\n" * 200).encode())
        assert big.status_code == 413 and "Tệp lớn hơn 2 KB" in big.text and 'id="list-upload"' in big.text
        binary = _upload(browser, "list.csv", bytes(range(256)) * 4)
        assert binary.status_code == 422 and "Không nhập được tệp này" in binary.text
        assert "binary data" in binary.text
        with running.sessions() as session:
            assert session.scalar(select(func.count()).select_from(ContactList)) == 0
            assert session.scalar(select(func.count()).select_from(Person)) == 0


def test_the_progress_of_an_upload_is_its_uploaders_only(manager):
    api, browser = manager
    form = browser.get("/console/lists/new")
    upload_id = UPLOAD_ID.search(form.text).group(1)
    assert browser.get(f"/console/lists/progress/{upload_id}").status_code == 404  # not started yet
    data = {"csrf_token": _csrf(form), "upload_id": upload_id, "name": "F1"}
    files = {"file": ("f1.csv", MESSY.encode(), "text/csv")}
    assert browser.post("/console/lists", data=data, files=files).status_code == 303
    progress = browser.get(f"/console/lists/progress/{upload_id}")
    assert progress.json() == {"state": "done", "rows": 9}, "every data row read, reported by the import process"
    _user(api.sessions, "manager-2", Role.MANAGER)
    other = _sign_in(api.url, "manager-2")
    same_user_elsewhere = _sign_in(api.url, "manager-bn")
    for stranger in (other, same_user_elsewhere):
        assert stranger.get(f"/console/lists/progress/{upload_id}").status_code == 404


def test_a_national_admin_picks_the_province_and_a_provincial_manager_has_theirs_fixed(manager):
    api, browser = manager
    assert 'name="province"' not in browser.get("/console/lists/new").text  # Bắc Ninh's manager: Bắc Ninh
    _user(api.sessions, "admin-national", Role.ADMIN, None)
    admin = _sign_in(api.url, "admin-national")
    form = admin.get("/console/lists/new")
    assert '<select id="province" name="province" required>' in form.text and '<option value="27"' in form.text
    unnamed = _upload(admin, "f1.csv", MESSY.encode(), province="")
    assert unnamed.status_code == 422 and "Chọn tỉnh" in unnamed.text and _lists_stored(api) == 0


@pytest.mark.parametrize(
    ("cells", "said"),
    [
        (["An", ""], "Không có số điện thoại"),
        (["An", "abc123"], "có chữ cái"),
        (["An", "12345"], "không phải số điện thoại Việt Nam"),
        (["An", "0912345678", "năm ngoái"], "Năm sinh"),
        (["An", "0912345678", "1985", "32/13/2021"], "Ngày tiếp xúc"),
        (["An", "0912345678", "1985", "01/06/2021", "Xứ Wakanda"], "Không rõ tỉnh"),
        (["An", "0912345678", "1985", "01/06/2021", "Hà Nội"], "ngoài phạm vi tỉnh của bạn"),
        (["A" * 5000, "0912345678"], "dài quá"),
    ],
)
def test_the_page_says_each_reason_a_row_is_refused_in_vietnamese(cells, said):
    mapping = {"full_name": 0, "phone": 1, "birth_year": 2, "exposure_date": 3, "province": 4}
    with pytest.raises(ValueError) as refused:
        parse_contact(7, cells, mapping, scope="27")
    assert said in reason_vi(str(refused.value))

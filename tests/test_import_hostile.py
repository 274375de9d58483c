"""Hostile list files: each refused fast with a reason (or read only as far as its real rows), while the API process
stays small and /healthz stays quick. The files are written by hand with zipfile, so their sizes can lie.

The app under test runs in a thread of this process: the memory figures are this process's peak resident size
(VmHWM, reset before each upload) over its size before. Imports run in child processes, outside that figure: that
is the design under test.
"""

import math
import os
import stat
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from access import auth
from campaigns.import_process import start_fork_server
from campaigns.importer import ReadLimits, UnusableFile, import_contacts
from ground.settings import Settings
from models import ContactList, Person, Role
from tests.conftest import run_app
from tests.support.net import free_port
from tests.test_cli import outreach

MAIN_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
PARTS = {
    "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{SHEET_TYPE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_TYPE}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SHEET_TYPE}.sharedStrings+xml"/></Types>',
    "_rels/.rels": f'<Relationships xmlns="{PACKAGE_NS}"><Relationship Id="rId1" Target="xl/workbook.xml" '
    f'Type="{REL_NS}/officeDocument"/></Relationships>',
    "xl/workbook.xml": f'<workbook {MAIN_NS} xmlns:r="{REL_NS}"><sheets><sheet name="F1" sheetId="1" r:id="rId1"/>'
    "</sheets></workbook>",
    "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PACKAGE_NS}">'
    f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
}
MB = 1 << 20


def write_xlsx(path: Path, sheet: Iterable[str | bytes], shared_strings: Iterable[str | bytes] = ()) -> Path:
    """A workbook of one sheet, each part streamed into the zip (a 150 MB part never sits in this process)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        for name, chunks in (
            ("xl/sharedStrings.xml", shared_strings or [f"<sst {MAIN_NS}/>"]),
            ("xl/worksheets/sheet1.xml", sheet),
        ):
            with archive.open(name, "w", force_zip64=True) as part:
                for chunk in chunks:
                    part.write(chunk.encode() if isinstance(chunk, str) else chunk)
    return path


def cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def sheet_of(rows: Iterable[str], dimension: str | None = None) -> Iterator[str]:
    yield f"<worksheet {MAIN_NS}>" + (f'<dimension ref="{dimension}"/>' if dimension else "") + "<sheetData>"
    yield from rows
    yield "</sheetData></worksheet>"


def people_rows(count: int) -> Iterator[str]:
    yield f'<row r="1">{cell("A1", "Số điện thoại")}{cell("B1", "Họ và tên")}</row>'
    for n in range(2, count + 2):
        yield f'<row r="{n}">{cell(f"A{n}", f"0912{n:06d}")}{cell(f"B{n}", "Nguyễn Văn An")}</row>'


def dimension_bomb(path: Path, rows: int = 2) -> Path:
    """A small sheet declaring the largest size a sheet can have (A1:XFD1048576): 1.6 KB with two rows."""
    return write_xlsx(path, sheet_of(people_rows(rows), dimension="A1:XFD1048576"))


def huge_string_cell(path: Path, megabytes: int = 150) -> Path:
    """One 150 MB shared string in a 155 KB file."""
    strings = [f'<sst {MAIN_NS} count="1" uniqueCount="1"><si><t>', *[b"A" * MB] * megabytes, "</t></si></sst>"]
    rows = [
        f'<row r="1">{cell("A1", "SĐT")}{cell("B1", "Ghi chú")}</row>',
        f'<row r="2">{cell("A2", "0912345678")}<c r="B2" t="s"><v>0</v></c></row>',
    ]
    return write_xlsx(path, sheet_of(rows), strings)


def zip_bomb(path: Path, megabytes: int = 128) -> Path:
    """A sheet padded with 128 MB of spaces: 130 KB packed."""
    return write_xlsx(path, [*sheet_of([f'<row r="1">{cell("A1", "SĐT")}</row>']), *[b" " * MB] * megabytes])


def too_many_rows(path: Path, rows: int = 200_001) -> Path:
    with path.open("w", encoding="utf-8") as sink:
        sink.write("Họ và tên,Số điện thoại\n")
        sink.writelines(f"Người {n},09{n:08d}\n" for n in range(rows))
    return path


def binary_file(path: Path) -> Path:
    path.write_bytes(os.urandom(64 * 1024))
    return path


def shift_jis_csv(path: Path) -> Path:
    path.write_bytes("氏名,電話番号\n山田太郎,0912345678\n佐藤花子,0987654321\n".encode("shift_jis"))
    return path


# name, how it is made, what the API answers, words of the reason
HOSTILE = [
    ("dimension-bomb.xlsx", dimension_bomb, 200, None),
    ("huge-cell.xlsx", huge_string_cell, 422, "compressed 1,0"),
    ("zip-bomb.xlsx", zip_bomb, 422, "zip bomb"),
    ("too-many-rows.csv", too_many_rows, 422, "more than 200,000 rows"),
    ("binary.csv", binary_file, 422, "not text in UTF-8"),
    ("shift-jis.csv", shift_jis_csv, 422, "not text in UTF-8"),
]


def _status_kb(field: str) -> int:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


@contextmanager
def peak_growth_mb() -> Iterator[list[float]]:
    """This process's peak resident size during the block, over its size before (VmHWM reset first)."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = _status_kb("VmRSS")
    figure: list[float] = []
    yield figure
    figure.append((_status_kb("VmHWM") - before) / 1024)


@pytest.fixture
def admin(api) -> str:
    start_fork_server()  # as the app does when it starts: a running server is what is measured
    with api.sessions.begin() as session:
        return auth.add_user(session, "admin", Role.ADMIN, None).token


def upload(url: str, token: str, path: Path, **form) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(
            f"{url}/api/v1/contact-lists",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (path.name, handle)},
            data={"name": "F1", **form},
            timeout=120,
        )


def _stored(sessions) -> tuple[int, int]:
    with sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(ContactList)),
            session.scalar(select(func.count()).select_from(Person)),
        )


def test_each_hostile_file_is_refused_fast_and_the_api_stays_small(api, admin, tmp_path, capsys):
    figures = []
    for name, make, expected_status, reason in HOSTILE:
        path = make(tmp_path / name)
        stored = _stored(api.sessions)
        with peak_growth_mb() as growth:
            started = time.monotonic()
            response = upload(api.url, admin, path, province="27")
            elapsed = time.monotonic() - started
        figures.append(
            f"{name} ({path.stat().st_size:,} bytes): {response.status_code} in {elapsed:.2f} s, API "
            f"peak memory +{growth[0]:.1f} MB"
        )
        assert response.status_code == expected_status, response.text
        assert elapsed < 5, figures[-1]
        assert growth[0] < 100, figures[-1]
        if reason:
            assert reason in response.json()["message"]
            assert _stored(api.sessions) == stored, f"{name}: a refused file stored something"
        else:  # the dimension lies, the rows do not: the two real rows are the list
            assert response.json()["imported"] == 2
    with capsys.disabled():
        print("\nhostile files through the API:\n  " + "\n  ".join(figures))


def test_six_uploads_at_once_leave_healthz_quick(api, admin, tmp_path, capsys):
    bombs = [dimension_bomb(tmp_path / f"bomb-{n}.xlsx", rows=3000) for n in range(6)]
    latencies: list[float] = []
    uploading = threading.Event()
    uploading.set()

    def poll_health() -> None:
        with httpx.Client(timeout=30) as client:
            while uploading.is_set() or len(latencies) < 100:
                started = time.monotonic()
                client.get(f"{api.url}/healthz")
                latencies.append(time.monotonic() - started)
                time.sleep(0.02)

    poller = threading.Thread(target=poll_health)
    with peak_growth_mb() as growth, ThreadPoolExecutor(6) as pool:
        poller.start()
        started = time.monotonic()
        responses = list(pool.map(lambda path: upload(api.url, admin, path), bombs))
        elapsed = time.monotonic() - started
        uploading.clear()
        poller.join()
    p99 = sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1]
    figure = (
        f"six 3,000-row dimension bombs at once: all answered in {elapsed:.1f} s; /healthz p99 "
        f"{p99 * 1000:.0f} ms (max {max(latencies) * 1000:.0f} ms, {len(latencies)} requests); API peak memory "
        f"+{growth[0]:.1f} MB"
    )
    with capsys.disabled():
        print(f"\n{figure}")
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert sum(r.json()["imported"] for r in responses) == 3000, "each phone once; the others merged"
    assert p99 < 0.5, figure
    assert growth[0] < 100, figure


def test_an_import_that_outlives_its_time_is_stopped_and_stores_nothing(store_url, tmp_path):
    settings = Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}", import_timeout_s=0.01)
    for running in run_app(settings):
        with running.sessions.begin() as session:
            token = auth.add_user(session, "admin", Role.ADMIN, None).token
        response = upload(running.url, token, dimension_bomb(tmp_path / "slow.xlsx", rows=3000))
        assert response.status_code == 422 and "took longer than" in response.json()["message"]
        assert _stored(running.sessions) == (0, 0)


def test_the_cli_refuses_a_hostile_file_with_exit_code_1(store_url, tmp_path):
    result = outreach(
        "contacts", "import", str(zip_bomb(tmp_path / "bomb.xlsx")), "--list", "F1", database_url=store_url
    )
    assert result.returncode == 1 and "zip bomb" in result.stderr and result.stdout == ""


LIMITS = ReadLimits()


@pytest.mark.parametrize(
    ("name", "content", "limits", "reason"),
    [
        ("long-cell.csv", "SĐT,Ghi chú\n0912345678," + "x" * 1001 + "\n", LIMITS, "line 2, column B: a cell of 1,001"),
        ("long-line.csv", "SĐT\n" + "0912345678," * 30_000 + "\n", LIMITS, "longer than 200,000 characters"),
        ("too-wide.csv", "SĐT" + "," * 250 + "x\n0912345678\n", LIMITS, "column IQ; a list has at most 200 columns"),
        ("xlsx-named.csv", None, LIMITS, "zip archive"),
        ("nul.csv", "SĐT\n0912345678\x00\n", LIMITS, "binary data"),
        ("shift-jis-as-1258.csv", "電話,電話\n".encode("shift_jis") * 50, LIMITS, "not text in UTF-8"),
        ("rows.csv", "SĐT\n0912345678\n0912345679\n0912345670\n", ReadLimits(max_rows=2), "more than 2 rows"),
    ],
)
def test_text_beyond_a_cap_is_refused_with_where_and_why(sessions, tmp_path, name, content, limits, reason):
    path = tmp_path / name
    if content is None:
        dimension_bomb(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UnusableFile, match=reason):
        import_contacts(sessions, path, "F1", limits=limits)
    assert _stored(sessions) == (0, 0)


@pytest.mark.parametrize(
    ("make", "limits", "reason"),
    [
        (lambda path: zip_bomb(path, megabytes=3), ReadLimits(), "compressed"),
        (
            lambda path: write_xlsx(path, sheet_of(people_rows(3)), [b" " * (2 * MB)]),
            ReadLimits(max_unpacked_bytes=MB),
            "unpacks to 2 MB",
        ),
        (
            lambda path: write_xlsx(
                path, sheet_of(['<row r="1"><c r="B1" t="inlineStr"><is><t>' + "x" * 2000 + "</t></is></c></row>"])
            ),
            ReadLimits(),
            "column B: a cell of 2,000",
        ),
        (
            lambda path: write_xlsx(path, sheet_of([f'<row r="1">{cell("A1", "SĐT")}{cell("XFD1", "x")}</row>'])),
            ReadLimits(),
            "column XFD",
        ),
        (
            lambda path: write_xlsx(path, sheet_of(['<row r="1"><c r="A1" t="s"><v>7</v></c></row>'])),
            ReadLimits(),
            "the sheet cannot be read",
        ),
    ],
)
def test_workbooks_beyond_a_cap_are_refused_before_they_cost_anything(sessions, tmp_path, make, limits, reason):
    with pytest.raises(UnusableFile, match=reason):
        import_contacts(sessions, make(tmp_path / "list.xlsx"), "F1", limits=limits)
    assert _stored(sessions) == (0, 0)


def test_a_sheet_is_read_to_its_real_last_row_whatever_its_gaps(sessions, tmp_path):
    rows = [
        *people_rows(1),
        f'<row r="1048576">{cell("A1048576", "0987 654 321")}{cell("B1048576", "Lê Thị Út")}</row>',
    ]
    path = write_xlsx(tmp_path / "gap.xlsx", sheet_of(rows, dimension="A1:XFD1048576"))
    started = time.monotonic()
    summary = import_contacts(sessions, path, "F1", province="27")
    assert (summary.imported, summary.rejected) == (2, 0) and time.monotonic() - started < 5
    with sessions() as session:
        assert session.scalar(select(Person.full_name).where(Person.phone == "+84987654321")) == "Lê Thị Út"


def test_the_rejects_file_is_private_and_small(sessions, tmp_path):
    path = tmp_path / "f1.csv"
    path.write_text("Họ và tên,Số điện thoại\n" + "x" * 900 + ",không có\n", encoding="utf-8")
    summary = import_contacts(sessions, path, "F1")
    rejects = Path(summary.rejects_file)
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    assert rejects.stat().st_size < 700, "the 900-character name is cut to 200 in the rejects"

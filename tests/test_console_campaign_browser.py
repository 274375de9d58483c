"""A provincial centre's day in a real Chromium: upload a messy F1 list, map the column the importer does not know,
read the rejects, create a campaign with two calling windows, see its capacity plan, start it against the local
Twilio, watch the progress move without a reload, pause it and export it.

Screenshots go to the test's folder, and to $OUTREACH_SCREENSHOTS when set (the README's images)."""

import csv
import io
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from access import auth, console
from app.worker import DispatchLoop
from ground.settings import Settings
from models import Campaign, CampaignStatus, Role
from tests.conftest import run_app
from tests.fakes.twilio import FakeTwilio
from tests.support.net import free_port
from tests.test_console_browser import DESKTOP, LIVE_WITHIN_MS, PASSWORD, _shoot

YESTERDAY = (date.today() - timedelta(days=1)).strftime("%d/%m/%Y")
# "Liên lạc" is no header the importer knows (the phones are in it); one duplicate, two broken rows.
MESSY_LIST = f"""Họ và tên,Liên lạc,Phường xã,Ngày tiếp xúc
Nguyễn Văn An,0912 345 601,Phường Suối Hoa,{YESTERDAY}
Trần Thị Bình,+84 912 345 602,Phường Vũ Ninh,{YESTERDAY}
Lê Văn Cường,0912.345.603,Phường Suối Hoa,{YESTERDAY}
Nguyễn Văn An,0912345601,Phường Suối Hoa,{YESTERDAY}
Phạm Thị Dung,12345,Phường Vũ Ninh,{YESTERDAY}
Hoàng Văn Em,,Phường Vũ Ninh,{YESTERDAY}
"""


@pytest.fixture
def centre(migrated_sqlite, tmp_path):
    """The platform with the local Twilio, a Bắc Ninh manager, and the worker's dispatcher ticking every second."""
    path = tmp_path / "store.db"
    shutil.copyfile(migrated_sqlite, path)
    twilio = FakeTwilio()
    with twilio.running():
        port = free_port()
        settings = Settings(
            database_url=f"sqlite:///{path}",
            engine_url=f"http://127.0.0.1:{free_port()}",
            public_base_url=f"http://127.0.0.1:{port}",
            **twilio.settings(),
        )
        for app in run_app(settings, port):
            with app.sessions.begin() as session:
                console.set_password(auth.add_user(session, "manager-bn", Role.MANAGER, "27").user, PASSWORD)
            worker, stop = DispatchLoop(app.settings), threading.Event()
            thread = threading.Thread(target=_dispatch_every_second, args=(worker, stop), daemon=True)
            thread.start()
            yield app, twilio
            stop.set()
            thread.join(10)
            worker.close()


def _dispatch_every_second(worker: DispatchLoop, stop: threading.Event) -> None:
    """The worker's dispatch job, as `outreach serve` schedules it."""
    while not stop.is_set():
        worker.tick()
        stop.wait(1)


def _sign_in(browser: Browser, url: str, path: str) -> Page:
    context = browser.new_context(
        viewport=DESKTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", accept_downloads=True
    )
    page = context.new_page()
    page.goto(f"{url}{path}")
    page.get_by_label("Tên đăng nhập").fill("manager-bn")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    return page


def _confirm(page: Page, action: str) -> None:
    page.locator(f"#action-{action}").click()
    page.locator("#confirm-action button").click()


def test_a_list_becomes_a_running_campaign_watched_live_paused_and_exported(centre, browser, tmp_path):
    app, twilio = centre
    page = _sign_in(browser, app.url, "/console/lists/new")
    messy = tmp_path / "f1-que-vo.csv"
    messy.write_text(MESSY_LIST, encoding="utf-8")
    page.locator("input[name=file]").set_input_files(str(messy))
    page.locator("input[name=name]").fill("F1 ổ dịch Quế Võ")
    page.locator("#list-upload button[type=submit]").click()

    mapping = page.locator("#column-map")
    expect(mapping).to_be_visible()
    expect(page.get_by_text("0912 345 601").first).to_be_visible()  # the preview of the first rows
    _shoot(page, tmp_path, "lists-map-a-column")
    mapping.locator("select").first.select_option("phone")
    mapping.locator("button[type=submit]").click()

    expect(page.locator("#list-counts")).to_contain_text("3")
    rejects = page.locator("#rejects")
    expect(rejects).to_contain_text("6")  # the line numbers of the broken rows
    expect(rejects).to_contain_text("7")
    expect(rejects).to_contain_text("không phải số điện thoại Việt Nam hợp lệ")
    _shoot(page, tmp_path, "lists-imported-with-rejects")

    page.get_by_role("link", name="Tạo chiến dịch").click()
    page.locator("#name").fill("F1 Quế Võ, ngày 1")
    page.locator("#window_1_start").fill("00:00")
    page.locator("#window_1_end").fill("12:00")
    page.locator("#window_2_start").fill("12:00")
    page.locator("#window_2_end").fill("23:59")
    page.locator("#max_concurrent_calls").fill("2")
    page.locator("#see-plan").click()
    expect(page.locator("#plan-today")).to_have_text("3")
    expect(page.locator("#plan-days")).to_contain_text("3")
    _shoot(page, tmp_path, "campaign-capacity-plan")

    page.locator("#create-campaign").click()
    expect(page.locator("#campaign-status")).to_have_text("Bản nháp")
    _confirm(page, "start")
    expect(page.locator("#campaign-status")).to_have_text("Đang chạy")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#by-channel")).to_contain_text("Cuộc gọi", timeout=LIVE_WITHIN_MS + 5000)
    assert page.evaluate("window.stillTheSamePage === true"), "the figures moved without a reload"
    deadline = time.monotonic() + 5
    while len(twilio.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(twilio.calls) == 2, "two lines: today's first two calls ring through the local Twilio, the third waits"
    _shoot(page, tmp_path, "campaign-live")

    _confirm(page, "pause")
    expect(page.locator("#campaign-status")).to_have_text("Tạm dừng")
    with app.sessions() as session:
        assert session.query(Campaign).one().status == CampaignStatus.PAUSED

    with page.expect_download() as download:
        page.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert sorted(row["phone"] for row in rows) == ["'+84912345601", "'+84912345602", "'+84912345603"]

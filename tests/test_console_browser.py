"""The tracing teams' console in a real Chromium, desktop and phone, against the real engine: while a resident chats
in another browser and says they cannot breathe, the urgent alert appears live and the on-duty tracer's phone (the
local Twilio) gets the message; the tracer acknowledges it, reads the transcript, corrects a field, takes the chat
over and hands it back; another province's tracer sees none of it.

Screenshots of every page go to the test's folder, and to $OUTREACH_SCREENSHOTS when set (the README's images:
`OUTREACH_SCREENSHOTS=docs/console make test PYTEST_ARGS="-k console_browser"`)."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from access import auth, console
from app.worker import DispatchLoop
from conversations import duty
from ground.settings import Settings
from models import Role
from tests import factories
from tests.conftest import run_app
from tests.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.engine
PASSWORD = "mật-khẩu-đủ-dài-2021"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
LIVE_WITHIN_MS = 5000


@pytest.fixture
def store(migrated_sqlite, tmp_path) -> str:
    path = tmp_path / "store.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture
def platform(store, engine_url):
    twilio = FakeTwilio()
    with twilio.running():
        for app in run_app(Settings(database_url=store, engine_url=engine_url, **twilio.settings())):
            with app.sessions.begin() as session:
                factories.person(session, "+84912345678", name="Trần Thị Bình")
                for name, province in (("tracer-bn", "27"), ("tracer-hn", "01")):
                    console.set_password(auth.add_user(session, name, Role.TRACER, province).user, PASSWORD)
                duty.add_member(session, auth.operator(), name="Anh Minh", phone="0911 000 002", province_code="27")
            yield app, twilio


@pytest.fixture
def duty_worker(platform):
    """The worker's duty job, as `outreach serve` schedules it (every second here)."""
    app, _ = platform
    worker = DispatchLoop(app.settings)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            worker.notify_tick()
            stop.wait(1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
    worker.close()


def _shoot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if target := os.environ.get("OUTREACH_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def _signed_in(browser: Browser, url: str, name: str, viewport: dict) -> Page:
    context = browser.new_context(viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page = context.new_page()
    page.goto(f"{url}/console/alerts")
    expect(page).to_have_url(f"{url}/console/login?next=%2Fconsole%2Falerts")
    page.get_by_label("Tên đăng nhập").fill(name)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("heading", name="Cảnh báo đang mở")).to_be_visible()
    return page


def _resident(browser: Browser, url: str) -> Page:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    chat = context.new_page()
    chat.goto(f"{url}/chat")
    chat.get_by_label("Số điện thoại").fill("0912 345 678")
    chat.get_by_label("Họ và tên").fill("Trần Thị Bình")
    chat.get_by_role("button", name="Bắt đầu").click()
    chat.get_by_role("button", name="Đúng").click()
    chat.get_by_role("button", name="Đồng ý").click()
    expect(chat.locator(".bot").last).to_contain_text("triệu chứng")
    return chat


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_urgent_answer_reaches_the_tracer_live_and_by_sms_and_the_chat_is_taken_over(
    platform, duty_worker, browser, tmp_path, viewport
):
    app, twilio = platform
    shots, suffix = tmp_path, "" if viewport is DESKTOP else "-phone"
    tracer = _signed_in(browser, app.url, "tracer-bn", viewport)
    expect(tracer.locator("#no-alerts")).to_be_visible()
    expect(tracer.locator("body[data-live='yes']")).to_have_count(1)
    chat = _resident(browser, app.url)

    chat.get_by_label("Câu trả lời").fill("em khó thở quá, tức ngực từ sáng")
    answered = time.monotonic()
    chat.get_by_label("Câu trả lời").press("Enter")
    row = tracer.locator("#alerts tbody tr").first
    expect(row).to_contain_text("Trần Thị Bình", timeout=LIVE_WITHIN_MS)
    live_s = time.monotonic() - answered
    expect(row).to_contain_text("Khẩn cấp")
    expect(row).to_contain_text("khó thở")
    expect(tracer.locator("#new-alert")).to_contain_text("KHẨN CẤP")
    expect(tracer.locator("body[data-sounded]")).to_have_count(1)
    print(f"\nconsole ({viewport['width']}x{viewport['height']}): urgent alert live {live_s:.2f} s after the answer")
    _shoot(tracer, shots, f"alerts{suffix}")

    deadline = time.monotonic() + 60
    while not any(m["To"] == ["+84911000002"] for m in twilio.messages) and time.monotonic() < deadline:
        time.sleep(0.5)
    [sms] = [m for m in twilio.messages if m["To"] == ["+84911000002"]]
    assert "CANH BAO KHAN CAP" in sms["Body"][0] and "/console/alerts/" in sms["Body"][0]
    print(f"console: the on-duty tracer's SMS sent {time.monotonic() - answered:.1f} s after the answer")
    tracer.reload()
    expect(tracer.locator("#alerts tbody tr").first).to_contain_text("Đã báo Anh Minh (SMS")

    tracer.locator("#alerts tbody tr").first.get_by_label("Ghi chú xử lý").fill("Đã gọi, trạm y tế đang đến")
    tracer.locator("#alerts tbody tr").first.get_by_role("button", name="Nhận xử lý").click()
    expect(tracer.locator("#no-alerts")).to_be_visible()

    tracer.goto(f"{app.url}/console/declarations")
    expect(tracer.locator("#declarations")).to_contain_text("Trần Thị Bình")
    _shoot(tracer, shots, f"declarations{suffix}")
    tracer.get_by_role("link", name="Trần Thị Bình").click()
    expect(tracer.locator(".transcript")).to_contain_text("em khó thở quá")
    declaration_url = tracer.url
    expect(tracer.locator("#field-symptoms .source")).to_contain_text("Người dân trả lời")
    expect(tracer.locator("#alerts-h ~ p").first).to_contain_text("Đã gọi, trạm y tế đang đến")

    temperature = tracer.locator("#field-temperature_c")
    temperature.locator("summary").click()
    temperature.get_by_label("Giá trị mới (°C)").fill("38,4")
    temperature.get_by_label("Lý do sửa").fill("gọi lại, người dân đo lại")
    temperature.get_by_role("button", name="Lưu").click()
    expect(tracer.locator("#field-temperature_c .value")).to_have_text("38,4")
    expect(tracer.locator("#field-temperature_c .source")).to_contain_text("Sửa bởi tracer-bn")
    expect(tracer.locator("ol.history")).to_contain_text("gọi lại, người dân đo lại")

    tracer.get_by_role("button", name="Tiếp nhận trò chuyện").click()
    expect(chat.locator(".notice").last).to_contain_text("Cán bộ y tế đang trò chuyện")
    tracer.get_by_label("Nhắn cho người dân").fill("Chị Bình ơi, em là cán bộ trạm y tế, em gọi chị ngay nhé.")
    tracer.get_by_role("button", name="Gửi").click()
    expect(chat.locator(".agent").last).to_contain_text("em gọi chị ngay nhé")
    chat.get_by_label("Câu trả lời").fill("vâng em cảm ơn")
    chat.get_by_label("Câu trả lời").press("Enter")
    expect(tracer.locator(".transcript .resident").last).to_contain_text("vâng em cảm ơn")
    _shoot(tracer, shots, f"declaration{suffix}")
    _shoot(chat, shots, "chat-with-a-tracer")
    tracer.get_by_role("button", name="Trả lại cho tổng đài tự động").click()
    expect(chat.locator(".bot").last).to_contain_text("Tổng đài tự động xin hỏi tiếp")
    expect(chat.locator(".notice").last).to_contain_text("Tổng đài tự động tiếp tục")

    tracer.goto(f"{app.url}/console/roster")
    expect(tracer.locator("#roster")).to_contain_text("Anh Minh")
    _shoot(tracer, shots, f"roster{suffix}")
    tracer.goto(f"{app.url}/console/dashboard")
    expect(tracer.locator("#areas")).to_contain_text("Phường Suối Hoa")
    _shoot(tracer, shots, f"dashboard{suffix}")

    hanoi = _signed_in(browser, app.url, "tracer-hn", viewport)
    expect(hanoi.locator("#no-alerts")).to_be_visible()
    hanoi.goto(f"{app.url}/console/declarations")
    expect(hanoi.locator("#declarations")).not_to_contain_text("Trần Thị Bình")
    hanoi.goto(declaration_url)
    expect(hanoi.get_by_role("heading", name="Không tìm thấy")).to_be_visible()


def test_the_login_page_on_a_phone(platform, browser, tmp_path):
    app, _ = platform
    page = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
    page.goto(f"{app.url}/console/login")
    page.get_by_label("Tên đăng nhập").fill("tracer-bn")
    page.get_by_label("Mật khẩu").fill("sai mật khẩu rồi")
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("alert")).to_contain_text("không đúng")
    box = page.get_by_role("button", name="Đăng nhập").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    _shoot(page, tmp_path, "login")

"""The resident's chat page in a real Chromium, on a phone-sized screen, against the real engine.

The page is served here under the strictest Content-Security-Policy (nothing inline, nothing from elsewhere): it
must work with no violation."""

import pytest
from playwright.sync_api import Browser, expect

from ground.settings import Settings
from tests.conftest import run_app

pytestmark = pytest.mark.engine
STRICT_CSP = "default-src 'self'; frame-ancestors 'none'"


@pytest.fixture
def page(store_url, engine_url, browser):
    for app in run_app(Settings(database_url=store_url, engine_url=engine_url)):
        yield from _browsing(browser, f"{app.url}/chat")


def _browsing(browser: Browser, url: str):
    """A phone-sized tab on `url`, served under the strict CSP; no violation may be reported by the end."""
    context = browser.new_context(viewport={"width": 390, "height": 760}, is_mobile=True, has_touch=True)
    context.route(f"{url}*", _under_strict_csp)
    tab = context.new_page()
    console = []
    tab.on("console", lambda message: console.append(message.text))
    tab.goto(url)
    yield tab
    context.close()
    assert [text for text in console if "Content Security Policy" in text] == []


def _under_strict_csp(route):
    response = route.fetch()
    route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})


def test_a_resident_declares_with_buttons_and_typing(page, tmp_path):
    expect(page.get_by_role("heading", name="Khai báo y tế")).to_be_visible()
    page.get_by_label("Số điện thoại").fill("0912 345 678")
    page.get_by_label("Họ và tên").fill("Trần Thị Bình")
    page.get_by_role("button", name="Bắt đầu").click()
    expect(page.locator(".bot").last).to_contain_text("Trần Thị Bình")
    page.get_by_role("button", name="Đúng").click()
    expect(page.locator(".bot").last).to_contain_text("2 phút")
    page.get_by_role("button", name="Đồng ý").click()
    expect(page.locator(".bot").last).to_contain_text("triệu chứng")
    page.get_by_label("Câu trả lời").fill("em bị ho với đau họng từ hôm qua")
    page.get_by_label("Câu trả lời").press("Enter")
    expect(page.locator(".bot").last).to_contain_text("tiếp xúc gần")
    expect(page.locator(".resident").last).to_have_text("em bị ho với đau họng từ hôm qua")
    composer = page.get_by_role("button", name="Gửi").bounding_box()
    assert composer["y"] + composer["height"] <= 760, "the send button stays on a phone screen"
    page.screenshot(path=str(tmp_path / "chat.png"))


def test_a_wrong_phone_number_is_explained(page):
    page.get_by_label("Số điện thoại").fill("12345")
    page.get_by_label("Họ và tên").fill("Trần Thị Bình")
    page.get_by_role("button", name="Bắt đầu").click()
    expect(page.get_by_role("alert")).to_contain_text("Số điện thoại chưa đúng")


def test_the_conversation_survives_a_reload_and_an_ended_one_starts_afresh(page):
    page.get_by_label("Số điện thoại").fill("0987654321")
    page.get_by_label("Họ và tên").fill("Lê Văn Cường")
    page.get_by_role("button", name="Bắt đầu").click()
    page.get_by_role("button", name="Đúng").click()
    expect(page.locator(".bot").last).to_contain_text("2 phút")
    page.reload()
    expect(page.locator(".bot").last).to_contain_text("2 phút")
    expect(page.locator(".resident")).to_have_text(["Đúng"])
    page.get_by_label("Câu trả lời").fill("không muốn trả lời đâu")
    page.get_by_label("Câu trả lời").press("Enter")
    expect(page.locator(".notice")).to_contain_text("đã kết thúc")
    expect(page.get_by_role("button", name="Gửi")).to_be_disabled()
    page.reload()
    expect(page.get_by_label("Số điện thoại")).to_be_visible()


def test_the_name_is_asked_with_the_phone(page):
    page.get_by_label("Số điện thoại").fill("0987654321")
    page.get_by_role("button", name="Bắt đầu").click()
    assert page.get_by_label("Họ và tên").evaluate("field => field.validity.valueMissing")
    expect(page.locator(".bot")).to_have_count(0)

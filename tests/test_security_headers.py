"""Security headers on every response, and API docs that need no CDN and run under the strict CSP (real Chromium)."""

import re

import httpx
import pytest
from playwright.sync_api import expect

from app.security import CONTENT_SECURITY_POLICY
from ground.settings import Settings
from ground.store import make_engine
from models.migrate import upgrade
from tests.conftest import run_app
from tests.support.net import free_port

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _app(tmp_path, **settings):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(make_engine(url))
    yield from run_app(Settings(database_url=url, engine_url=f"http://127.0.0.1:{free_port()}", **settings))


@pytest.fixture
def app(tmp_path):
    yield from _app(tmp_path)


def test_the_csp_is_strict():
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "script-src" not in policy and "style-src" not in policy


@pytest.mark.parametrize(
    "path",
    [
        "/chat",
        "/docs",
        "/docs/start.js",
        "/docs/assets/swagger-ui-bundle.js",
        "/openapi.json",
        "/healthz",
        "/api/v1/declarations",
        "/no/such/page",
        "/static/chat.js",
    ],
)
def test_every_response_carries_the_security_headers(app, path):
    response = httpx.get(f"{app.url}{path}")
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED
    assert "strict-transport-security" not in response.headers  # plain http: HSTS would lock a test install out


def test_errors_refused_before_any_route_carry_them_too(app):
    response = httpx.post(
        f"{app.url}/api/v1/webchat/sessions",
        content=b'{"phone": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED


def test_hsts_only_when_the_public_address_is_https(tmp_path):
    for app in _app(tmp_path, public_base_url="https://f1.soyte.example.vn"):
        response = httpx.get(f"{app.url}/chat")
        assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_the_docs_page_loads_nothing_from_elsewhere_and_nothing_inline(app):
    page = httpx.get(f"{app.url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<style" not in page.text and not re.search(r"\s(style|on\w+)=", page.text)  # no inline style or handler
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all(body.strip() == "" and 'src="/' in attrs for attrs, body in scripts)
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/") and not link.startswith("//") for link in links)
    for link in links:
        asset = httpx.get(f"{app.url}{link}")
        assert asset.status_code == 200, link
    assert httpx.get(f"{app.url}/docs/start.js").headers["content-type"].startswith("text/javascript")
    assert "cdn" not in page.text.lower()


def test_docs_and_schema_are_off_by_a_setting(tmp_path):
    for app in _app(tmp_path, docs_enabled=False):
        for path in ("/docs", "/docs/start.js", "/docs/assets/swagger-ui-bundle.js", "/openapi.json", "/redoc"):
            assert httpx.get(f"{app.url}{path}").status_code == 404, path
        assert httpx.get(f"{app.url}/healthz").status_code in (200, 503)  # the API itself still answers


def test_swagger_ui_renders_the_api_under_the_csp_in_chromium(app, browser):
    """The real page with its real headers: every operation is listed and the browser reports no CSP violation."""
    context = browser.new_context()
    tab = context.new_page()
    console, outside = [], []
    tab.on("console", lambda message: console.append(message.text))
    tab.on("request", lambda request: None if request.url.startswith(app.url) else outside.append(request.url))
    tab.goto(f"{app.url}/docs")
    expect(tab.locator(".opblock").first).to_be_visible(timeout=15_000)
    expect(tab.locator(".opblock-summary-path", has_text="/api/v1/declarations/{declaration_id}")).to_be_visible()
    tab.locator(".opblock-summary", has_text="/api/v1/declarations/{declaration_id}").click()
    expect(tab.get_by_role("button", name="Try it out")).to_be_visible()
    context.close()
    assert [text for text in console if "Content Security Policy" in text or "Refused" in text] == []
    assert outside == []

"""The tracing teams' console over real HTTP, on SQLite and PostgreSQL: signing in and out, CSRF, slowed guessing,
idle sessions, province scope, the audit log, corrections beside the resident's answers, and the live alert feed.
(The pages in a real Chromium, with a resident chatting: tests/test_console_browser.py.)"""

import json
import re
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from access import auth, console
from conversations.alerts import assess, raise_alert
from ground.settings import Settings
from models import (
    Alert,
    AlertLevel,
    AreaDay,
    AuditLog,
    ChangeSource,
    Channel,
    ConsoleSession,
    Conversation,
    Declaration,
    DeclarationChange,
    Role,
    Speaker,
    Turn,
    User,
    ZaloUser,
    utcnow,
)
from tests import factories
from tests.conftest import run_app
from tests.fakes.zalo import FakeZalo, zalo_id
from tests.support.net import free_port

PASSWORD = "mật-khẩu-đủ-dài-2021"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _user(sessions, name: str, role: Role = Role.TRACER, province: str | None = "27") -> str:
    """A user with a console password; returns their API token."""
    with sessions.begin() as session:
        created = auth.add_user(session, name, role, province)
        console.set_password(created.user, PASSWORD)
        return created.token


def _csrf(page: httpx.Response) -> str:
    return CSRF_FIELD.search(page.text).group(1)


def _sign_in(url: str, name: str, password: str = PASSWORD) -> httpx.Client:
    browser = httpx.Client(base_url=url, timeout=10)
    form = browser.get("/console/login")
    signed = browser.post("/console/login", data={"username": name, "password": password, "csrf_token": _csrf(form)})
    assert signed.status_code == 303, signed.text
    return browser


@pytest.fixture
def bac_ninh(api):
    """A resident of Bắc Ninh (27) with a transcript and an alerting declaration, one of Hà Nội (01), and a Bắc Ninh
    tracer signed in."""
    with api.sessions.begin() as session:
        an = factories.person(session, "+84912345678")
        conversation = factories.conversation(session, an)
        ours = factories.complete_declaration(session, an, conversation_id=conversation.id)
        raise_alert(session, ours, assess(ours, False, api.settings))
        binh = factories.person(session, "+84987654321", province_code="01", name="Trần Thị Bình")
        theirs = factories.complete_declaration(session, binh)
        raise_alert(session, theirs, assess(theirs, False, api.settings))
        ids = {"ours": ours.id, "theirs": theirs.id, "conversation": conversation.id}
    _user(api.sessions, "tracer-bn")
    browser = _sign_in(api.url, "tracer-bn")
    yield api, browser, ids
    browser.close()


def test_a_page_without_a_session_goes_to_the_login_form_and_back_after_it(api):
    _user(api.sessions, "tracer-bn")
    browser = httpx.Client(base_url=api.url, timeout=10)
    answer = browser.get("/console/declarations?status=complete")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=%2Fconsole%2Fdeclarations%3Fstatus%3Dcomplete"
    form = browser.get(answer.headers["location"])
    assert 'value="/console/declarations?status=complete"' in form.text
    signed = browser.post(
        "/console/login",
        data={
            "username": "tracer-bn",
            "password": PASSWORD,
            "csrf_token": _csrf(form),
            "next": "/console/declarations?status=complete",
        },
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/console/declarations?status=complete"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # served over plain http here
    assert browser.get("/console/declarations").status_code == 200


def test_the_next_page_is_never_another_site(api):
    _user(api.sessions, "tracer-bn")
    browser = httpx.Client(base_url=api.url, timeout=10)
    for target in ("https://evil.example/", "//evil.example/console/", "/\\evil.example", "/api/v1/alerts"):
        form = browser.get("/console/login", params={"next": target})
        data = {"username": "tracer-bn", "password": PASSWORD, "csrf_token": _csrf(form), "next": target}
        assert browser.post("/console/login", data=data).headers["location"] == "/console/alerts"


def test_a_wrong_password_gets_no_session_and_repeated_failures_make_logins_wait(api):
    _user(api.sessions, "tracer-bn")
    browser = httpx.Client(base_url=api.url, timeout=10)
    form = browser.get("/console/login")
    for _ in range(api.settings.console_login_failures_per_name):
        wrong = browser.post(
            "/console/login", data={"username": "tracer-bn", "password": "đoán-bừa-12345", "csrf_token": _csrf(form)}
        )
        assert wrong.status_code == 401
        assert "outreach_console=" not in wrong.headers.get("set-cookie", "")
        assert "không đúng" in wrong.text
    right = browser.post(
        "/console/login", data={"username": "tracer-bn", "password": PASSWORD, "csrf_token": _csrf(form)}
    )
    assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
    assert "outreach_console=" not in right.headers.get("set-cookie", "")
    with api.sessions() as session:
        assert session.scalar(select(ConsoleSession)) is None


def test_an_unknown_user_and_a_user_without_a_password_are_refused_alike(api):
    with api.sessions.begin() as session:
        auth.add_user(session, "api-only", Role.TRACER, "27")  # a machine's user: token, no password
    browser = httpx.Client(base_url=api.url, timeout=10)
    form = browser.get("/console/login")
    for name in ("api-only", "nobody"):
        answer = browser.post(
            "/console/login", data={"username": name, "password": PASSWORD, "csrf_token": _csrf(form)}
        )
        assert answer.status_code == 401 and "Tên đăng nhập hoặc mật khẩu không đúng" in answer.text


def test_every_post_needs_the_csrf_token_of_its_session(bac_ninh):
    api, browser, ids = bac_ninh
    login_without = httpx.post(f"{api.url}/console/login", data={"username": "tracer-bn", "password": PASSWORD})
    assert login_without.status_code == 403
    alert_id = _open_alert_of(api, ids["ours"])
    other = _sign_in(api.url, "tracer-bn")  # the same user in another browser: another session, another token
    other_token = _csrf(other.get("/console/alerts"))
    for token in (None, "", "0" * 64, other_token):
        data = {"note": "đã gọi"} | ({"csrf_token": token} if token is not None else {})
        assert browser.post(f"/console/alerts/{alert_id}/ack", data=data).status_code == 403
        data = {"field": "temperature_c", "value": "37", "reason": "x"} | ({"csrf_token": token} if token else {})
        assert browser.post(f"/console/declarations/{ids['ours']}/corrections", data=data).status_code == 403
    with api.sessions() as session:
        assert session.get(Alert, alert_id).acknowledged_at is None
        assert session.get(Declaration, ids["ours"]).temperature_c == 38.5


def test_logout_and_idle_time_end_a_session(api):
    _user(api.sessions, "tracer-bn")
    browser = _sign_in(api.url, "tracer-bn")
    page = browser.get("/console/alerts")
    cookie = browser.cookies["outreach_console"]
    assert browser.post("/console/logout", data={"csrf_token": _csrf(page)}).status_code == 303
    stale = httpx.get(f"{api.url}/console/alerts", cookies={"outreach_console": cookie})
    assert stale.status_code == 303 and stale.headers["location"].startswith("/console/login")

    idle = _sign_in(api.url, "tracer-bn")
    assert idle.get("/console/alerts").status_code == 200
    with api.sessions.begin() as session:
        live = session.scalar(select(ConsoleSession).where(ConsoleSession.ended_at.is_(None)))
        live.last_seen_at -= timedelta(minutes=api.settings.console_idle_minutes + 1)
    assert idle.get("/console/alerts").status_code == 303
    with api.sessions() as session:
        assert session.scalar(select(ConsoleSession).where(ConsoleSession.ended_at.is_(None))) is None


def test_a_new_password_signs_the_user_out_everywhere_and_a_disabled_user_is_out_at_once(api):
    _user(api.sessions, "tracer-bn")
    browser = _sign_in(api.url, "tracer-bn")
    with api.sessions.begin() as session:
        user = session.scalar(select(User).where(User.name == "tracer-bn"))
        user.disabled = True
    assert browser.get("/console/alerts").status_code == 303


def test_the_session_cookie_is_secure_behind_https(store_url):
    unreachable_engine = f"http://127.0.0.1:{free_port()}"
    settings = Settings(database_url=store_url, engine_url=unreachable_engine, public_base_url="https://cdc.example.vn")
    for app in run_app(settings):
        _user(app.sessions, "tracer-bn")
        form = httpx.get(f"{app.url}/console/login")
        assert "Secure" in form.headers["set-cookie"]
        signed = httpx.post(
            f"{app.url}/console/login",
            data={"username": "tracer-bn", "password": PASSWORD, "csrf_token": _csrf(form)},
            headers={
                "Cookie": f"outreach_console_login={form.cookies['outreach_console_login']}"
            },  # sent as a proxy would
        )
        assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]


def test_another_provinces_declaration_is_not_found_and_its_alerts_are_not_listed(bac_ninh):
    api, browser, ids = bac_ninh
    assert browser.get(f"/console/declarations/{ids['theirs']}").status_code == 404
    alerts = browser.get("/console/alerts").text
    assert "Nguyễn Văn An" in alerts and "Trần Thị Bình" not in alerts
    listed = browser.get("/console/declarations").text
    assert "Nguyễn Văn An" in listed and "Trần Thị Bình" not in listed
    theirs = _open_alert_of(api, ids["theirs"])
    page = browser.get("/console/alerts")
    assert browser.post(f"/console/alerts/{theirs}/ack", data={"csrf_token": _csrf(page)}).status_code == 404


def test_a_declaration_shows_each_answer_with_its_source_and_the_transcript_and_is_audited(bac_ninh):
    api, browser, ids = bac_ninh
    with api.sessions.begin() as session:
        turn_id = session.execute(
            select(Turn.id).where(Turn.conversation_id == ids["conversation"], Turn.seq == 2)
        ).scalar_one()
        session.add(
            DeclarationChange(
                declaration_id=ids["ours"],
                field="temperature_c",
                value=38.5,
                source=ChangeSource.RESIDENT,
                turn_id=turn_id,
            )
        )
    page = browser.get(f"/console/declarations/{ids['ours']}")
    assert page.status_code == 200
    row = _row(page.text, "temperature_c")
    assert "38,5" in row and 'href="#turn-2"' in row and "Người dân trả lời" in row
    assert 'id="turn-2"' in page.text and "vâng đúng rồi" in page.text and "91%" in page.text
    with api.sessions() as session:
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"declaration.read", "transcript.read"} <= actions


def test_a_viewer_reads_declarations_without_transcripts_alerts_or_corrections(bac_ninh):
    api, _, ids = bac_ninh
    _user(api.sessions, "viewer-bn", Role.VIEWER)
    viewer = _sign_in(api.url, "viewer-bn")
    page = viewer.get(f"/console/declarations/{ids['ours']}")
    assert page.status_code == 200
    assert "vâng đúng rồi" not in page.text and "không xem được hội thoại" in page.text
    assert "/corrections" not in page.text
    assert viewer.get("/console/alerts").status_code == 403
    data = {"csrf_token": _csrf(page), "field": "temperature_c", "value": "37", "reason": "thử"}
    assert viewer.post(f"/console/declarations/{ids['ours']}/corrections", data=data).status_code == 403


def test_a_correction_stands_beside_the_residents_answer_and_the_api_shows_both(bac_ninh):
    api, browser, ids = bac_ninh
    token = _user(api.sessions, "api-reader", Role.VIEWER)
    page = browser.get(f"/console/declarations/{ids['ours']}")
    data = {"csrf_token": _csrf(page), "field": "temperature_c", "value": "37,2", "reason": "gọi lại, đo lại"}
    corrected = browser.post(f"/console/declarations/{ids['ours']}/corrections", data=data)
    assert corrected.status_code == 303
    page = browser.get(f"/console/declarations/{ids['ours']}")
    assert "37,2" in _row(page.text, "temperature_c") and "Sửa bởi tracer-bn" in _row(page.text, "temperature_c")
    assert "trước đó: 38,5" in page.text

    record = api.get(f"/api/v1/declarations/{ids['ours']}", token).json()
    assert record["temperature_c"] == 37.2
    [correction] = record["corrections"]
    assert correction | {"at": None} == {
        "field": "temperature_c",
        "value": 37.2,
        "replaced": 38.5,
        "by": "tracer-bn",
        "reason": "gọi lại, đo lại",
        "at": None,
    }
    with api.sessions() as session:
        audit_row = session.scalar(select(AuditLog).where(AuditLog.action == "declaration.correct"))
        assert audit_row.detail == {"field": "temperature_c", "from": 38.5, "to": 37.2, "reason": "gọi lại, đo lại"}
        # the alert is assessed again: 37.2 °C is no longer a reason, the symptoms still are
        assert session.get(Declaration, ids["ours"]).alert_reasons == ["fever", "cough"]


def test_a_correction_to_positive_raises_an_urgent_alert_and_symptoms_are_ticked(bac_ninh):
    api, browser, ids = bac_ninh
    page = browser.get(f"/console/declarations/{ids['ours']}")
    post = browser.post
    url = f"/console/declarations/{ids['ours']}/corrections"
    reason = "kết quả từ CDC tỉnh"
    post(url, data={"csrf_token": _csrf(page), "field": "test_result", "value": "positive", "reason": reason})
    ticked = {"csrf_token": _csrf(page), "field": "symptoms", "value": ["cough", "headache"], "reason": "gọi lại"}
    assert post(url, data=ticked).status_code == 303
    with api.sessions() as session:
        declaration = session.get(Declaration, ids["ours"])
        assert declaration.symptoms == ["cough", "headache"] and declaration.alert_level == AlertLevel.URGENT
        assert "positive test" in declaration.alert_reasons


@pytest.mark.parametrize(
    ("field", "value", "reason", "problem"),
    [
        ("temperature_c", "99", "đo lại", "từ 34 đến 43"),
        ("temperature_c", "ba tám", "đo lại", "là một số"),
        ("test_date", "2999-01-01", "xác minh", "chưa đến"),
        ("test_date", "01/06/2021", "xác minh", "năm-tháng-ngày"),
        ("test_result", "maybe", "xác minh", "chọn một trong"),
        ("symptoms", "flying", "xác minh", "không có trong danh mục"),
        ("vaccine_doses", "7", "xác minh", "từ 0 đến 6"),
        ("temperature_c", "37", "   ", "lý do"),
        ("person_id", "1", "xác minh", "không sửa được"),
    ],
)
def test_a_correction_that_cannot_be_used_is_explained_by_the_form_and_changes_nothing(
    bac_ninh, field, value, reason, problem
):
    api, browser, ids = bac_ninh
    page = browser.get(f"/console/declarations/{ids['ours']}")
    data = {"csrf_token": _csrf(page), "field": field, "value": value, "reason": reason}
    answer = browser.post(f"/console/declarations/{ids['ours']}/corrections", data=data)
    assert answer.status_code == 422
    assert problem in answer.text and 'id="correction-error"' in answer.text
    with api.sessions() as session:
        assert session.scalar(select(DeclarationChange)) is None
        assert session.get(Declaration, ids["ours"]).temperature_c == 38.5


def test_hostile_text_is_shown_as_text(bac_ninh):
    api, browser, ids = bac_ninh
    with api.sessions.begin() as session:
        declaration = session.get(Declaration, ids["ours"])
        declaration.person.full_name = '<script>alert("x")</script>\u202eAn'
        declaration.needs = "<img src=x onerror=alert(1)>"
    page = browser.get(f"/console/declarations/{ids['ours']}").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page


def test_declarations_are_filtered_searched_and_paged(bac_ninh):
    api, browser, _ = bac_ninh
    with api.sessions.begin() as session:
        for n in range(60):
            someone = factories.person(session, f"+8491300{n:04d}", name=f"Lê Văn Số {n}")
            factories.empty_declaration(session, someone)
    first = browser.get("/console/declarations")
    assert "61 khai báo · trang 1/2" in first.text and 'rel="next"' in first.text
    assert "61 khai báo · trang 2/2" in browser.get("/console/declarations?page=2").text
    by_phone = browser.get("/console/declarations", params={"q": "0913 000 007"}).text
    assert "1 khai báo" in by_phone and "Lê Văn Số 7" in by_phone
    by_name = browser.get("/console/declarations", params={"q": "Văn Số 5"}).text
    assert "11 khai báo" in by_name  # 5, 50-59
    assert "1 khai báo" in browser.get("/console/declarations", params={"status": "complete"}).text
    assert "1 khai báo" in browser.get("/console/declarations", params={"alert_level": "watch"}).text
    assert browser.get("/console/declarations", params={"status": "nonsense"}).status_code == 422
    assert browser.get("/console/declarations", params={"created_from": "hôm qua"}).status_code == 422
    assert browser.get("/console/declarations", params={"page": "0"}).status_code == 422
    urgent_first = browser.get("/console/declarations", params={"sort": "alert"}).text
    assert urgent_first.index("Nguyễn Văn An") < urgent_first.index("Lê Văn Số")


def test_the_live_feed_pushes_a_new_alert_of_the_province_within_seconds_and_no_other(bac_ninh):
    api, browser, ids = bac_ninh
    received: list[dict] = []
    opened = threading.Event()

    def listen() -> None:
        with browser.stream("GET", "/console/events", timeout=30) as stream:
            opened.set()
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "alert":
                    received.append(json.loads(line.removeprefix("data: ")))
                    if any(r["level"] == "urgent" for r in received):
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)
    time.sleep(0.5)
    raised = time.monotonic()
    with api.sessions.begin() as session:
        binh = session.get(Declaration, ids["theirs"])
        binh.symptoms = ["shortness_of_breath"]
        raise_alert(session, binh, assess(binh, False, api.settings))  # Hà Nội's: never on this feed
        an = session.get(Declaration, ids["ours"])
        an.symptoms = ["shortness_of_breath"]
        raise_alert(session, an, assess(an, False, api.settings))
    listener.join(10)
    assert received, "no alert arrived"
    assert time.monotonic() - raised < 5
    assert [r["level"] for r in received] == ["urgent"]
    assert "Nguyễn Văn An" in received[0]["row"] and "Trần Thị Bình" not in json.dumps(received)


def test_the_feed_needs_a_session(api):
    assert httpx.get(f"{api.url}/console/events").status_code == 303


def _open_alert_of(api, declaration_id: int) -> int:
    with api.sessions() as session:
        return session.scalar(select(Alert.id).where(Alert.declaration_id == declaration_id))


def _row(page: str, field: str) -> str:
    start = page.index(f'id="field-{field}"')
    return page[start : page.index("</tr>", start)]


def test_the_roster_is_kept_in_the_console_and_a_duty_link_opens_the_alert(bac_ninh):
    api, browser, ids = bac_ninh
    page = browser.get("/console/roster")
    assert "Chưa có ai trong lịch trực" in page.text
    data = {"csrf_token": _csrf(page), "name": "Anh Minh", "phone": "0911 000 002", "position": "1"}
    assert browser.post("/console/roster", data=data).status_code == 303
    refused = browser.post("/console/roster", data=data | {"phone": "12345"})
    assert refused.status_code == 422 and "Chưa thêm được" in refused.text
    page = browser.get("/console/roster")
    assert "+84911000002" in page.text and "Đang trực" in page.text
    member_id = re.search(r'id="member-(\d+)"', page.text).group(1)
    off = {"csrf_token": _csrf(page), "on_duty": "no"}
    assert browser.post(f"/console/roster/{member_id}/duty", data=off).status_code == 303
    assert "Nghỉ" in browser.get("/console/roster").text

    alert_id = _open_alert_of(api, ids["ours"])
    opened = browser.get(f"/console/alerts/{alert_id}")
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/console/declarations/{ids['ours']}#alert-{alert_id}"
    theirs = _open_alert_of(api, ids["theirs"])
    assert browser.get(f"/console/alerts/{theirs}").status_code == 404


@pytest.fixture
def live_chat(bac_ninh):
    """A web chat of the Bắc Ninh resident, still going, the bot's last line a question with buttons."""
    api, browser, ids = bac_ninh
    with api.sessions.begin() as session:
        conversation = session.get(Conversation, ids["conversation"])
        conversation.channel, conversation.resident_token_hash = Channel.WEBCHAT, auth.hash_token("chat-secret")
        session.add(
            Turn(
                conversation_id=conversation.id,
                seq=3,
                speaker=Speaker.BOT,
                text="Anh/chị có ho không ạ?",
                channel=Channel.WEBCHAT,
                buttons=[{"title": "Có", "payload": "/affirm"}, {"title": "Không", "payload": "/deny"}],
            )
        )
    return api, browser, ids


def test_a_tracer_takes_over_a_chat_writes_as_a_person_and_hands_back_to_the_bot(live_chat):
    api, browser, ids = live_chat
    chat = f"{api.url}/api/v1/webchat/sessions/chat-secret"
    page = browser.get(f"/console/declarations/{ids['ours']}")
    url = f"/console/conversations/{ids['conversation']}"
    assert "Tiếp nhận trò chuyện" in page.text
    assert browser.post(f"{url}/take-over", data={"csrf_token": _csrf(page)}).status_code == 303
    assert httpx.get(chat).json()["with_a_person"] is True

    # the resident writes: kept and shown, not sent to the engine (which is down here: no 503)
    said = httpx.post(f"{chat}/messages", json={"text": "em thấy khó thở quá"}, timeout=10)
    assert said.status_code == 200 and said.json()["replies"] == []
    live = browser.get(f"{url}/lines", params={"after": 3}).json()
    assert [line["seq"] for line in live["lines"]] == [4] and "khó thở quá" in live["lines"][0]["html"]

    page = browser.get(f"/console/declarations/{ids['ours']}")
    assert "Đang trò chuyện trực tiếp: tracer-bn" in page.text
    wrote = browser.post(f"{url}/messages", data={"csrf_token": _csrf(page), "text": "Chị ơi, em gọi ngay nhé."})
    assert wrote.status_code == 303
    fetched = httpx.get(chat, params={"after": 4}).json()
    assert fetched["lines"] == [{"speaker": "agent", "text": "Chị ơi, em gọi ngay nhé.", "buttons": []}]

    assert browser.post(f"{url}/hand-back", data={"csrf_token": _csrf(page)}).status_code == 303
    back = httpx.get(chat, params={"after": 5}).json()
    assert back["with_a_person"] is False
    [question] = back["lines"]
    assert question["speaker"] == "bot" and question["text"].endswith("Anh/chị có ho không ạ?")
    assert [b["payload"] for b in question["buttons"]] == ["/affirm", "/deny"]
    with api.sessions() as session:
        actions = list(session.scalars(select(AuditLog.action).where(AuditLog.action.like("conversation.%"))))
        assert actions == ["conversation.take_over", "conversation.write", "conversation.hand_back"]
        turns = session.scalars(select(Turn).where(Turn.conversation_id == ids["conversation"]).order_by(Turn.seq))
        assert [t.speaker.value for t in turns] == ["bot", "resident", "bot", "resident", "agent", "bot"]
    # the bot answers again (its engine is down here: the turn is kept for it, as any turn is)
    assert httpx.post(f"{chat}/messages", json={"text": "không ho"}, timeout=10).status_code == 503


def test_a_conversation_is_taken_over_by_one_tracer_in_its_province_only(live_chat):
    api, browser, ids = live_chat
    url = f"/console/conversations/{ids['conversation']}"
    page = browser.get(f"/console/declarations/{ids['ours']}")
    assert browser.post(f"{url}/messages", data={"csrf_token": _csrf(page), "text": "xin chào"}).status_code == 409
    browser.post(f"{url}/take-over", data={"csrf_token": _csrf(page)})
    _user(api.sessions, "tracer-bn-2")
    colleague = _sign_in(api.url, "tracer-bn-2")
    token = _csrf(colleague.get("/console/alerts"))
    assert colleague.post(f"{url}/take-over", data={"csrf_token": token}).status_code == 409
    _user(api.sessions, "tracer-hn", province="01")
    hanoi = _sign_in(api.url, "tracer-hn")
    token = _csrf(hanoi.get("/console/alerts"))
    assert hanoi.post(f"{url}/messages", data={"csrf_token": token, "text": "xin chào"}).status_code == 404
    assert hanoi.get(f"{url}/lines").status_code == 404


def test_the_dashboard_counts_today_live_keeps_past_days_once_and_stays_in_the_province(bac_ninh):
    api, browser, ids = bac_ninh
    with api.sessions.begin() as session:
        for n, ward in enumerate(["Phường Vũ Ninh", "Phường Vũ Ninh", "Xã Hòa Long"]):
            someone = factories.person(session, f"+8491400{n:04d}", name=f"Người {n}")
            someone.ward = ward
            factories.complete_declaration(session, someone, alert_level=AlertLevel.NONE, symptoms=[])  # today
            two_days_ago = factories.complete_declaration(session, someone, symptoms=["cough"])
            two_days_ago.created_at = utcnow() - timedelta(days=2)
        hanoi = factories.person(session, "+84914009999", province_code="01")
        factories.complete_declaration(session, hanoi)
    page = browser.get("/console/dashboard")
    assert page.status_code == 200
    vu_ninh = _area_row(page.text, "Phường Vũ Ninh")
    assert vu_ninh[:2] == ["0", "2"]  # nobody under a running campaign; two reached today
    with api.sessions() as session:
        kept = session.scalars(select(AreaDay).where(AreaDay.day == _local_day(api, 2))).all()
        assert sorted((row.ward, row.reached, row.symptomatic) for row in kept) == [
            ("Phường Vũ Ninh", 2, 2),
            ("Xã Hòa Long", 1, 1),
        ]
        days_kept = session.scalar(select(func.count()).select_from(AreaDay))
    assert "Hà Nội" not in page.text and "+84914009999" not in page.text
    title = f"{_local_day(api, 2):%d/%m/%Y} · Có triệu chứng, cần theo dõi: 3"
    assert title in page.text
    browser.get("/console/dashboard")  # a second view counts no past day again
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AreaDay)) == days_kept
    table = browser.get("/console/dashboard.csv", params={"level": "ward"})
    assert table.headers["content-type"].startswith("text/csv")
    lines = table.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("province_code,district,ward,under_follow_up,reached_today")
    assert any(line.startswith("27,,Xã Hòa Long,0,1,") for line in lines)
    assert browser.get("/console/dashboard", params={"level": "street"}).status_code == 422


def _area_row(page: str, area: str) -> list[str]:
    start = page.index(f'<th scope="row">27 · {area}')
    row = page[start : page.index("</tr>", start)]
    return re.findall(r"<td>(\d+)</td>", row)


def _local_day(api, days_ago: int):
    from zoneinfo import ZoneInfo

    return (utcnow() - timedelta(days=days_ago)).astimezone(ZoneInfo(api.settings.timezone)).date()


def test_a_correction_of_an_acknowledged_alert_raises_no_new_one_unless_it_grows(bac_ninh):
    api, browser, ids = bac_ninh
    alert_id = _open_alert_of(api, ids["ours"])  # a watch alert (fever, cough)
    page = browser.get("/console/alerts")
    browser.post(f"/console/alerts/{alert_id}/ack", data={"csrf_token": _csrf(page), "note": "đã gọi"})
    url = f"/console/declarations/{ids['ours']}/corrections"
    page = browser.get(f"/console/declarations/{ids['ours']}")
    browser.post(url, data={"csrf_token": _csrf(page), "field": "temperature_c", "value": "38,9", "reason": "đo lại"})
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 2  # this one and Hà Nội's
    browser.post(url, data={"csrf_token": _csrf(page), "field": "test_result", "value": "positive", "reason": "CDC"})
    with api.sessions() as session:
        newest = session.scalars(select(Alert).where(Alert.declaration_id == ids["ours"]).order_by(Alert.id)).all()
        assert [a.level for a in newest] == [AlertLevel.WATCH, AlertLevel.URGENT]
        assert newest[-1].acknowledged_at is None


def test_urgent_first_pages_run_through_the_levels_without_gaps_or_repeats(sessions):
    from conversations import reading

    with sessions.begin() as session:
        for n in range(23):
            level = [AlertLevel.URGENT] * 3 + [AlertLevel.WATCH] * 5 + [AlertLevel.NONE] * 15
            someone = factories.person(session, f"+8491500{n:04d}")
            factories.complete_declaration(session, someone, alert_level=level[n])
    tracer = User(name="t", role=Role.TRACER, province_code="27")
    with sessions() as session:
        pages = [
            reading.list_declarations(
                session,
                tracer,
                reading.DeclarationFilter(),
                4,
                offset,
                "Asia/Ho_Chi_Minh",
                None,
                reading.Sort.ALERT,
                10,
            )
            for offset in range(0, 24, 4)
        ]
        seen = [declaration for page in pages for declaration, _ in page.rows]
    assert len(seen) == 23 and len({d.id for d in seen}) == 23
    assert [d.alert_level for d in seen] == sorted((d.alert_level for d in seen), key=["urgent", "watch", "none"].index)
    assert pages[0].total == 11  # counted up to 10 (and one more: "more than 10")


def test_a_zalo_conversation_taken_over_sends_the_tracers_words_and_the_bots_question_as_oa_messages(store_url):
    zalo = FakeZalo()
    with zalo.running():
        settings = Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}", **zalo.settings())
        for app in run_app(settings):
            resident = zalo_id()
            with app.sessions.begin() as session:
                an = factories.person(session, "+84912345678")
                conversation = factories.conversation(session, an, Channel.ZALO)
                declaration = factories.empty_declaration(session, an, conversation_id=conversation.id)
                session.add(ZaloUser(user_id=resident, person_id=an.id, conversation_id=conversation.id))
                ids = {"conversation": conversation.id, "declaration": declaration.id}
            _user(app.sessions, "tracer-bn")
            browser = _sign_in(app.url, "tracer-bn")
            page = browser.get(f"/console/declarations/{ids['declaration']}")
            url = f"/console/conversations/{ids['conversation']}"
            browser.post(f"{url}/take-over", data={"csrf_token": _csrf(page)})
            wrote = browser.post(f"{url}/messages", data={"csrf_token": _csrf(page), "text": "Anh An ơi, em gọi nhé"})
            assert wrote.status_code == 303 and "undelivered" not in wrote.headers["location"]
            zalo.fail_next(-230, "User has not interacted with the OA in the last 7 days")
            refused = browser.post(f"{url}/messages", data={"csrf_token": _csrf(page), "text": "Anh nghe máy nhé"})
            assert "undelivered=1" in refused.headers["location"]
            assert "Zalo chưa nhận gửi đi" in browser.get(refused.headers["location"]).text
            browser.post(f"{url}/hand-back", data={"csrf_token": _csrf(page)})
            sent = zalo.messages_to(resident)
            assert [m.text for m in sent][0] == "Anh An ơi, em gọi nhé"
            assert sent[-1].text.endswith("Có phải anh An không ạ?")
            with app.sessions() as session:  # the refused line is kept in the transcript all the same
                texts = session.scalars(select(Turn.text).where(Turn.conversation_id == ids["conversation"]))
                assert "Anh nghe máy nhé" in list(texts)


@pytest.mark.parametrize(
    "path",
    [
        "/console/declarations?page=99999999999",
        "/console/declarations?campaign_id=999999999999999999999999",
        "/console/declarations?q=%ED%A0%80",
        "/console/declarations?q=%00%27%22%3Cscript%3E",
        "/console/declarations/99999999999999999999",
        "/console/alerts/-1",
        "/console/dashboard?level=%ED%A0%80",
        "/console/events?since=not-a-date",
    ],
)
def test_hostile_addresses_get_a_page_never_a_server_error(bac_ninh, path):
    _, browser, _ = bac_ninh
    if path.startswith("/console/events"):
        with browser.stream("GET", path, timeout=5) as stream:
            assert stream.status_code == 200
        return
    answer = browser.get(path)
    assert answer.status_code in (200, 404, 422), answer.text
    assert "text/html" in answer.headers["content-type"]


def test_hostile_form_bodies_change_nothing(bac_ninh):
    api, browser, ids = bac_ninh
    page = browser.get(f"/console/declarations/{ids['ours']}")
    url = f"/console/declarations/{ids['ours']}/corrections"
    raw = f"csrf_token={_csrf(page)}&field=needs&value=%ED%A0%80&reason=%ED%A0%80".encode()
    answer = browser.post(url, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code in (303, 422)
    nul = {"csrf_token": _csrf(page), "field": "needs", "value": "cần\x00thuốc", "reason": "gọi\x00 lại"}
    assert browser.post(url, data=nul).status_code == 303
    long_password = {"username": "tracer-bn", "password": "x" * 100_000, "csrf_token": "x"}
    assert browser.post("/console/login", data=long_password).status_code in (403, 422)
    with api.sessions() as session:
        for change in session.scalars(select(DeclarationChange)):
            assert "\ud800" not in str(change.value) + str(change.reason)
        assert session.get(Declaration, ids["ours"]).needs == "cầnthuốc"

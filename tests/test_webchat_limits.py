"""Web chat's edges: bad input, rate limits, and an engine that is down (the message kept and replayed)."""

import time

import httpx
import pytest
from sqlalchemy import select

from models import Conversation, Speaker, Turn
from outreach.auth import hash_token
from outreach.settings import Settings
from tests.conftest import run_app
from tests.support.net import free_port


def _open(url: str, phone: str = "0912345678") -> httpx.Response:
    return httpx.post(f"{url}/api/v1/webchat/sessions", json={"phone": phone}, timeout=30)


@pytest.fixture
def strict(store_url, engine_url):
    settings = Settings(database_url=store_url, engine_url=engine_url, webchat_messages_per_minute=3,
                        webchat_requests_per_minute_per_ip=8, webchat_max_chars=50)  # fmt: skip
    yield from run_app(settings)


@pytest.mark.engine
def test_bad_input_is_a_clear_4xx(strict):
    assert _open(strict.url, "12345").status_code == 422
    assert "phone" in _open(strict.url, "12345").json()["message"]
    session_id = _open(strict.url).json()["session_id"]
    messages = f"{strict.url}/api/v1/webchat/sessions/{session_id}/messages"
    too_long = httpx.post(messages, json={"text": "a" * 51})
    assert too_long.status_code == 422 and "at most 50" in too_long.json()["message"]
    assert httpx.post(messages, json={"text": "   "}).status_code == 422
    assert httpx.post(messages, json={"text": "x", "payload": "not an intent"}).status_code == 422
    unknown = httpx.post(f"{strict.url}/api/v1/webchat/sessions/not-a-session/messages", json={"text": "alo"})
    assert unknown.status_code == 404


@pytest.mark.engine
def test_session_and_address_rate_limits(strict):
    session_id = _open(strict.url).json()["session_id"]
    messages = f"{strict.url}/api/v1/webchat/sessions/{session_id}/messages"
    codes = [httpx.post(messages, json={"text": "vâng"}, timeout=30).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = httpx.post(messages, json={"text": "vâng"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    codes = [_open(strict.url).status_code for _ in range(4)]
    assert codes[-1] == 429, "one address cannot open sessions without end"


@pytest.mark.engine
def test_session_ids_are_unguessable_and_kept_only_as_a_hash(strict):
    first, second = (_open(strict.url, phone).json()["session_id"] for phone in ("0912345678", "0987654321"))
    assert first != second and len(first) >= 32
    with strict.sessions() as session:
        stored = session.scalars(select(Conversation.resident_token_hash)).all()
    assert first not in stored and hash_token(first) in stored, "a leaked store does not let anyone chat as them"
    guessed = httpx.post(f"{strict.url}/api/v1/webchat/sessions/{first[:-1]}x/messages", json={"text": "alo"})
    assert guessed.status_code == 404


@pytest.mark.engine
def test_engine_down_keeps_the_message_and_answers_it_when_back(store_url, engine_url):
    healthy = run_app(Settings(database_url=store_url, engine_url=engine_url, replay_interval_s=0.3))
    down = run_app(Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}"))
    broken = next(down)
    assert _open(broken.url).status_code == 503, "no engine, no session: nothing is half-made"
    working = next(healthy)
    try:
        session_id = _open(working.url).json()["session_id"]
        reply = httpx.post(f"{broken.url}/api/v1/webchat/sessions/{session_id}/messages", json={"text": "vâng"})
        assert reply.status_code == 503
        assert "thử lại" in reply.json()["message"]
        with working.sessions() as session:
            kept = session.scalars(select(Turn).where(Turn.speaker == Speaker.RESIDENT)).one()
            assert kept.text == "vâng" and kept.processed_at is None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with working.sessions() as session:
                bot_lines = session.scalars(
                    select(Turn.text).where(Turn.speaker == Speaker.BOT).order_by(Turn.seq)
                ).all()
            if len(bot_lines) > 2:
                break
            time.sleep(0.3)
        assert "2 phút" in bot_lines[-1], "the kept answer was replayed: the bot moved on to the consent question"
    finally:
        for app in (healthy, down):
            app.close()

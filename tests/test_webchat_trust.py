"""A phone typed into the web chat proves nothing: such a chat learns nothing stored about the number, its
declaration is marked unverified, and a phone opens only so many a day. With the real engine."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from access import auth
from ground.settings import Settings
from models import Channel, Conversation, Person, Role
from tests import factories
from tests.conftest import run_app

pytestmark = pytest.mark.engine
SECRET_NAME = "Hoàng Thị Xuyến"  # on file for the known phone: it must never reach whoever types that phone
KNOWN_PHONE = "+84912345678"


@pytest.fixture
def chat(store_url, engine_url):
    yield from run_app(Settings(database_url=store_url, engine_url=engine_url, webchat_sessions_per_phone_per_day=2))


@pytest.fixture
def on_file(chat) -> str:
    """A person of an F1 list, with an earlier conversation (a cough); returns a national admin's token."""
    with chat.sessions.begin() as session:
        person = factories.person(session, KNOWN_PHONE, name=SECRET_NAME)
        factories.complete_declaration(session, person, conversation_id=factories.conversation(session, person).id)
        return auth.add_user(session, "root", Role.ADMIN, None).token


def _open(app, **body) -> httpx.Response:
    return httpx.post(f"{app.url}/api/v1/webchat/sessions", json=body, timeout=30)


def _replies(response: httpx.Response) -> list:
    assert response.status_code == 200, response.text
    return response.json()["replies"]


def test_a_typed_phone_reveals_nothing_stored_about_it(chat, on_file):
    opened = _open(chat, phone="0912 345 678", name="Lan")
    history = httpx.get(f"{chat.url}/api/v1/webchat/sessions/{opened.json()['session_id']}")
    assert "Lan" in _replies(opened)[-1]["text"], "greeted with the name the resident typed"
    assert "Xuyến" not in opened.text and "Xuyến" not in history.text
    lines = [line["text"] for line in history.json()["lines"]]
    assert lines == [reply["text"] for reply in _replies(opened)], "nothing of the earlier conversation"
    nameless = _open(chat, phone="0912345678")
    assert "Xuyến" not in nameless.text
    assert "số điện thoại này" in _replies(nameless)[-1]["text"], "no name given: the bot asks who it speaks to"


def test_known_and_unknown_phones_get_the_same_answer(chat, on_file):
    known, unknown = _open(chat, phone=KNOWN_PHONE, name="Lan"), _open(chat, phone="0987 000 111", name="Lan")
    assert known.status_code == unknown.status_code == 200
    assert _replies(known) == _replies(unknown)
    assert known.headers.keys() == unknown.headers.keys()
    assert len(known.content) == len(unknown.content), "the same size too (the session ids are of one length)"


def test_a_typed_name_never_becomes_the_persons_name(chat, on_file):
    _open(chat, phone=KNOWN_PHONE, name="Kẻ Mạo Danh")
    _open(chat, phone="0987 000 222", name="Người Lạ")
    with chat.sessions() as session:
        names = dict(session.execute(select(Person.phone, Person.full_name)).all())
    assert names[KNOWN_PHONE] == SECRET_NAME
    assert names["+84987000222"] is None, "a typed name is a claim: it stays in the transcript"


def test_the_api_marks_typed_phone_declarations_unverified(chat, on_file):
    _open(chat, phone=KNOWN_PHONE, name="Lan")
    with chat.sessions.begin() as session:
        attempt_id = factories.outreach_attempt(session, "+84987000333", name="Trần Văn Bảo").id
    invite = chat.platform.conversations.outreach.new_invite(attempt_id).split("invite=")[1]
    linked = _open(chat, invite=invite)
    assert "Trần Văn Bảo" in _replies(linked)[-1]["text"], "a personal link was sent to the phone: verified"
    listed = chat.get("/api/v1/declarations", on_file).json()
    verified = {(d["person"]["phone"], d["channel"]): d["phone_verified"] for d in listed}
    assert verified == {
        (KNOWN_PHONE, "voice"): True,
        (KNOWN_PHONE, "webchat"): False,
        ("+84987000333", "webchat"): True,
    }
    unverified = chat.get("/api/v1/declarations", on_file, phone_verified="false").json()
    assert [(d["person"]["phone"], d["phone_verified"]) for d in unverified] == [(KNOWN_PHONE, False)]
    one = chat.get(f"/api/v1/declarations/{unverified[0]['id']}", on_file).json()
    assert one["phone_verified"] is False and one["person"]["full_name"] == SECRET_NAME, "the team sees whose phone"


def test_a_phone_opens_only_so_many_chats_a_day(chat, on_file):
    with chat.sessions.begin() as session:
        person_id = session.scalar(select(Person.id).where(Person.phone == KNOWN_PHONE))
        before_midnight = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).replace(hour=0, minute=0) - timedelta(minutes=1)
        session.add(
            Conversation(
                person_id=person_id,
                channel=Channel.WEBCHAT,
                engine_sender_id="yesterday",
                phone_verified=False,
                started_at=before_midnight.astimezone(UTC),
            )
        )
    replica = run_app(chat.settings)
    another_replica = next(replica)
    try:
        codes = [_open(app, phone=KNOWN_PHONE, name="Lan").status_code for app in (chat, another_replica, chat)]
        assert codes == [200, 200, 429], "yesterday's chat does not count; the cap holds across replicas"
        refused = _open(another_replica, phone="0912 345 678")
        assert refused.status_code == 429 and "ngày mai" in refused.json()["message"]
        assert "tomorrow" in refused.json()["message"]
        assert 0 < int(refused.headers["retry-after"]) <= 24 * 3600, "until local midnight"
        assert _open(chat, phone="0987 000 444", name="Lan").status_code == 200, "other phones are not affected"
    finally:
        replica.close()

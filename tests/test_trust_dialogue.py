"""The store is the truth, the engine's memory a cache: answers survive an engine that is killed, loses its
trackers or is sent control messages; residents send text, not commands. Real engine, SQLite and PostgreSQL."""

import asyncio
import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.engine_process import EngineProcess
from conversations.engine import EngineClient
from conversations.service import ConversationService, EngineDown
from ground.private import engine_token
from ground.settings import Settings
from models import Channel, Conversation, Declaration, Turn
from tests import factories
from tests.support.declarations import TYPED_ANSWERS, columns, today, typed_declaration
from tests.support.net import free_port

pytestmark = pytest.mark.engine


class Resident:
    """One resident talking to the platform's conversation service (the road every channel takes)."""

    def __init__(self, sessions, engine_url: str, phone: str = "+84912345678"):
        settings = Settings(engine_url=engine_url)
        self.engine = EngineClient(engine_url, engine_token(settings))
        self.service = ConversationService(sessions, self.engine, settings)
        self.sessions = sessions
        with sessions.begin() as session:
            self.person_id = factories.person(session, phone).id
        result, _ = self.run(self.service.start(self.person_id, Channel.WEBCHAT))
        self.conversation_id, self.replies = result.conversation_id, result.replies

    def run(self, coroutine):
        return asyncio.get_event_loop().run_until_complete(coroutine)

    def say(self, text: str, payload: str | None = None) -> str:
        result = self.run(self.service.handle(self.conversation_id, text, engine_text=payload))
        self.replies = result.replies
        return " ".join(reply.text for reply in result.replies)

    def declaration(self) -> Declaration:
        with self.sessions() as session:
            return session.scalar(select(Declaration).where(Declaration.conversation_id == self.conversation_id))

    def close(self) -> None:
        self.run(self.engine.aclose())


@pytest.fixture
def event_loop_for_test():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()


@pytest.fixture
def resident(sessions, engine_url, event_loop_for_test):
    who = Resident(sessions, engine_url)
    yield who
    who.close()


def answered_so_far(declaration: Declaration) -> dict:
    return {
        "identity_confirmed": declaration.identity_confirmed,
        "symptoms": declaration.symptoms,
        "temperature_c": declaration.temperature_c,
        "alert_level": declaration.alert_level.value,
    }


def test_typed_commands_are_plain_text_and_wipe_nothing(resident):
    resident.say("đúng rồi")
    resident.say("được")
    resident.say("tôi bị ho, sốt 38 độ 5")
    before = answered_so_far(resident.declaration())
    assert before == {
        "identity_confirmed": True,
        "symptoms": ["cough", "fever"],
        "temperature_c": 38.5,
        "alert_level": "watch",
    }
    # One command before each answer: a question is asked at most twice, so each gets its one second chance.
    for control, answer in (
        ("/restart", "từ hôm qua"),
        (" /restart{}", "không"),
        ('/inform{"symptom": "fever"}', "chưa test"),
    ):
        resident.say(control)
        assert answered_so_far(resident.declaration()) == before, control
        resident.say(answer)
    declaration = resident.declaration()
    assert declaration.symptom_onset == today() - timedelta(days=1), "the form went on where it was"
    assert (declaration.contact_with_case, declaration.test_result) == ("no", "not_tested")
    assert answered_so_far(declaration) == before
    with resident.sessions() as session:
        stored = session.scalar(
            select(Turn).where(Turn.conversation_id == resident.conversation_id, Turn.text == "/restart")
        )
        assert stored.engine_text == "restart", "the transcript keeps what was typed, the engine gets plain words"


@pytest.mark.parametrize("payload", ["/restart", "/refuse"])
def test_a_payload_that_was_not_offered_counts_as_its_text(resident, payload):
    resident.say("đúng rồi")
    resident.say("được")  # the bot now asks about symptoms, with symptom buttons
    resident.say("Không", payload=payload)  # a forged button: its title is what the resident "said"
    declaration = resident.declaration()
    assert declaration.status.value == "in_progress" and declaration.identity_confirmed is True
    assert declaration.symptoms_asked and declaration.symptoms == []


def test_a_payload_offered_in_the_last_reply_is_taken(resident):
    assert "/affirm" in [b.payload for b in resident.replies[-1].buttons]
    resident.say("Đúng", payload="/affirm")
    assert resident.declaration().identity_confirmed is True


# The engine killed mid-conversation: once keeping its tracker store, once losing it too. A dedicated engine. Each
# store once (pairwise: what the engine keeps does not depend on the platform's store, and a run costs 45 s).


@pytest.fixture
def own_engine(tmp_path):
    settings = Settings(engine_port=free_port(), engine_tracker_db=tmp_path / "engine" / "trackers.db")
    engine = EngineProcess(settings, tmp_path / "engine.log")
    engine.start()
    engine.wait_ready(settings.engine_start_timeout_s)
    yield engine
    engine.stop()


def _kill_and_restart(engine: EngineProcess, *, lose_trackers: bool) -> None:
    engine.engine.process.kill()
    engine.engine.process.wait()
    if lose_trackers:
        shutil.rmtree(engine.settings.engine_tracker_db.parent)
        engine.settings.engine_tracker_db.parent.mkdir()
    engine.restart_if_dead()
    engine.wait_ready(engine.settings.engine_start_timeout_s)


@pytest.mark.parametrize(
    ("store_url", "lose_trackers"),
    [
        pytest.param("sqlite", False, id="sqlite-trackers-kept"),
        pytest.param("postgresql", True, id="postgresql-trackers-lost", marks=pytest.mark.postgres),
    ],
    indirect=["store_url"],
)
def test_sigkill_of_the_engine_mid_conversation_loses_nothing(sessions, own_engine, event_loop_for_test, lose_trackers):
    resident = Resident(sessions, own_engine.url)
    try:
        *before_the_kill, temperature = TYPED_ANSWERS[:4]
        for answer in before_the_kill:
            resident.say(answer)
        own_engine.engine.process.kill()
        own_engine.engine.process.wait()
        with pytest.raises(EngineDown):
            resident.say(temperature)  # kept while the engine is down
        _kill_and_restart(own_engine, lose_trackers=lose_trackers)
        assert resident.run(resident.service.replay_pending()) == 1
        assert resident.declaration().temperature_c == 38.5
        for answer in TYPED_ANSWERS[4:]:
            text = resident.say(answer)
            assert "chưa hiểu" not in text.lower(), f"'{answer}' was not understood after the restart: {text}"
        expected = typed_declaration()
        assert columns(resident.declaration(), expected) == expected
        with sessions() as session:
            assert session.get(Conversation, resident.conversation_id).ended_at is not None
    finally:
        resident.close()

"""Calls in stream mode through a local Twilio (tests/fakes/twilio.py), its Media Streams over a real WebSocket
(tests/fakes/twilio_media.py), the real engine and the real recogniser: real Vietnamese speech and keypad presses
make a declaration; the resident can talk over the bot; a forged stream is refused before any audio flows."""

import io
import shutil
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from connectors.call_lines import NOT_HEARD
from connectors.twilio_stream import stream_token
from models import Conversation, Declaration, Speaker, Turn
from tests.conftest import RunningApp, run_public_app
from tests.fakes.twilio import FakeCall, FakeTwilio
from tests.fakes.twilio_media import MediaStream
from tests.support.speech import spoken
from tests.test_console import _sign_in, _user
from tests.test_twilio_voice import attempt, dispatch, new_attempt

pytestmark = pytest.mark.engine
EXPECTED = {
    "status": "complete",
    "identity_confirmed": True,
    "symptoms_asked": True,
    "symptoms": [],
    "contact_with_case": "no",
    "test_result": "not_tested",
    "vaccine_doses": 1,
    "at_registered_address": True,
    "needs": None,
    "alert_level": "none",
}


def _platform(store_url: str, engine_url: str, twilio: FakeTwilio, tmp_path: Path) -> Iterator[RunningApp]:
    settings = {"voice_gather_timeout_s": 3, "recordings_dir": tmp_path / "recordings", **twilio.settings()}
    yield from run_public_app(store_url, engine_url, **settings)


def _sqlite(migrated_sqlite: Path, tmp_path: Path) -> str:
    shutil.copyfile(migrated_sqlite, tmp_path / "store.db")
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def app(migrated_sqlite, engine_url, twilio, tmp_path):
    """The platform on SQLite: what a stream does does not depend on the store."""
    yield from _platform(_sqlite(migrated_sqlite, tmp_path), engine_url, twilio, tmp_path)


@pytest.fixture
def on_each_store(store_url, engine_url, twilio, tmp_path):
    """The platform on SQLite and on PostgreSQL: for what the store's queries decide (scope, locks)."""
    yield from _platform(store_url, engine_url, twilio, tmp_path)


def streamed_call(app, twilio, speed: float = 4.0) -> tuple[int, FakeCall, MediaStream]:
    attempt_id = new_attempt(app, voice_mode="stream")
    dispatch(app, attempt_id)
    call = twilio.calls[-1]
    connect = call.answer()
    assert connect.stream and not connect.plays and not connect.gather, "stream mode connects the call's audio"
    parameters = {k: v for k, v in connect.stream.items() if k != "url"}
    return attempt_id, call, MediaStream(connect.stream["url"], parameters, twilio.auth_token, call.sid, speed)


def bot_lines(app) -> list[str]:
    with app.sessions() as session:
        return list(session.scalars(select(Turn.text).where(Turn.speaker == Speaker.BOT).order_by(Turn.seq)))


def resident_turns(app) -> list[tuple[str, str | None]]:
    with app.sessions() as session:
        turns = session.scalars(select(Turn).where(Turn.speaker == Speaker.RESIDENT).order_by(Turn.seq))
        return [(t.text, t.engine_text) for t in turns]


def test_real_speech_and_keys_over_a_media_stream_make_the_declaration(on_each_store, twilio):
    app = on_each_store
    attempt_id, call, stream = streamed_call(app, twilio)
    assert call.param("Url").endswith("&mode=stream")
    with stream:
        greeting = stream.wait_for_the_bot()
        assert greeting and all(line.audio and not line.cut for line in greeting), "the greeting is heard whole"
        stream.press("1")  # "Đúng": it is me
        stream.wait_for_the_bot()
        stream.press("1")  # "Đồng ý": I agree to answer
        stream.wait_for_the_bot()
        # No symptoms, no contact, never tested, one dose, at home, nothing needed: each said by a real speaker.
        for word in ("không", "không", "không", "một", "có", "không"):
            stream.say(spoken(word))
            stream.wait_for_the_bot()
        assert stream.wait_until_closed(), "the platform ends the stream after its goodbye"
        assert stream.lines[-1].mark == "bye" and not stream.lines[-1].cut, "the goodbye was heard to the end"
    call.hang_up()
    said = resident_turns(app)
    assert [text for text, _ in said] == ["Đúng", "Đồng ý", "không", "không", "không", "một", "có", "không"]
    assert said[3] == ("không", "/deny"), "a word that is an offered answer is that answer"
    with app.sessions() as session:
        declaration = session.scalar(select(Declaration))
        answers = {column: getattr(declaration, column) for column in EXPECTED}
        assert answers == EXPECTED
        assert session.scalar(select(Conversation)).ended_at is not None
    assert attempt(app, attempt_id).status == "completed"
    assert len(app.platform.streamed_calls.latencies.seconds) >= 6, "each answer's delay is measured"


def test_the_resident_can_talk_over_the_bot(app, twilio):
    _, call, stream = streamed_call(app, twilio)
    with stream:
        while not stream.lines or stream.lines[0].played < 8000:  # a second into the long welcome
            time.sleep(0.01)
        stream.say(spoken("có"))  # "yes, it is me", before the question was even asked
        stream.wait_for_the_bot()
        welcome = stream.lines[0]
        assert welcome.cut and welcome.played < len(welcome.audio), "the platform cleared the rest of its line"
        assert resident_turns(app)[0][0] == "có"
        assert bot_lines(app)[-1].startswith("Anh/chị có thể dành khoảng 2 phút"), "and went on to the next question"


def test_silence_is_asked_again_once_then_the_call_ends_politely_to_be_retried(app, twilio):
    attempt_id, call, stream = streamed_call(app, twilio)
    with stream:
        stream.wait_for_the_bot()
        stream.press("1")
        started = time.monotonic()
        assert stream.wait_until_closed(30), "two silences end the call"
        assert time.monotonic() - started >= 2 * app.platform.settings.voice_gather_timeout_s
    call.hang_up()
    assert bot_lines(app).count(NOT_HEARD) == 0, "a call's re-asking is not part of the transcript"
    retried = attempt(app, attempt_id)
    assert (retried.status, retried.last_outcome) == ("retry_wait", "dropped")


def test_a_campaign_that_records_keeps_each_spoken_answer_for_tracers_of_its_province_only(on_each_store, twilio):
    app = on_each_store
    attempt_id = new_attempt(app, voice_mode="stream", record_voice=True)
    dispatch(app, attempt_id)
    call = twilio.calls[-1]
    connect = call.answer()
    parameters = {k: v for k, v in connect.stream.items() if k != "url"}
    with MediaStream(connect.stream["url"], parameters, twilio.auth_token, call.sid) as stream:
        stream.wait_for_the_bot()
        stream.press("1")  # a key: nothing to record
        stream.wait_for_the_bot()
        stream.say(spoken("có"))
        stream.wait_for_the_bot()
    with app.sessions() as session:
        turns = session.scalars(select(Turn).where(Turn.speaker == Speaker.RESIDENT).order_by(Turn.seq)).all()
        assert turns[0].audio_ref is None and turns[1].audio_ref.startswith("/console/recordings/")
        url = turns[1].audio_ref
    recordings = app.platform.settings.recordings_dir
    assert oct(recordings.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in recordings.iterdir())

    _user(app.sessions, "tracer-bac-ninh", province="27")
    _user(app.sessions, "tracer-ha-noi", province="01")
    tracer = _sign_in(app.url, "tracer-bac-ninh")
    with app.sessions() as session:
        declaration_id = session.scalar(select(Declaration.id))
    page = tracer.get(f"/console/declarations/{declaration_id}")
    assert f'<audio controls preload="none" src="{url}">' in page.text, "the transcript plays the answer"
    heard = tracer.get(url)
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(heard.content)) as recording:
        seconds = recording.getnframes() / recording.getframerate()
        assert recording.getframerate() == 8000 and 0.3 < seconds < 2.5, "the answer as it was said"
    assert _sign_in(app.url, "tracer-ha-noi").get(url).status_code == 404, "another province's is not found"
    assert httpx.get(f"{app.url}{url}", follow_redirects=False).status_code in (303, 401), "a session is needed"

    assert app.platform.recordings.expire(now=time.time() + 31 * 86400) == 1
    assert _sign_in(app.url, "tracer-bac-ninh").get(url).status_code == 410, "an expired recording says so"


def test_a_forged_upgrade_is_refused_before_any_audio(app, twilio):
    _, call, stream = streamed_call(app, twilio)
    stream.auth_token = "not-the-auth-token"
    with pytest.raises(InvalidStatus) as refused:
        stream.__enter__()
    assert refused.value.response.status_code == 403


def test_a_forged_token_closes_the_stream_before_the_bot_speaks(app, twilio):
    _, call, stream = streamed_call(app, twilio)
    stream.parameters["token"] = stream_token(app.platform.settings, "CA-another-call", "1", 0)
    with stream:
        assert stream.wait_until_closed(10)
    assert not stream.lines, "not a word of the bot on a forged stream"


# ---- The hotline: residents call the platform's number --------------------------------------------------------


@pytest.fixture
def hotline(migrated_sqlite, engine_url, twilio, tmp_path):
    """The platform with its hotline in stream mode."""
    settings = {"voice_inbound_mode": "stream", "recordings_dir": tmp_path / "recordings", **twilio.settings()}
    yield from run_public_app(_sqlite(migrated_sqlite, tmp_path), engine_url, **settings)


def test_a_resident_with_an_open_follow_up_calls_in_and_answers_it(on_each_store, twilio):
    app = on_each_store
    attempt_id = new_attempt(app, phone="+84912345678")
    call = twilio.call_in(f"{app.url}/webhooks/twilio/voice/incoming", caller="0912 345 678")
    opening = call.answer()
    assert opening.gather and opening.plays, "Gather mode, the hotline's default"
    assert bot_lines(app)[-1] == "Xin hỏi có phải anh/chị Nguyễn Văn An không ạ?", "greeted by the name on file"
    answering = attempt(app, attempt_id)
    assert (answering.status, answering.provider_ref) == ("in_progress", call.sid), "no one calls them meanwhile"
    call.press("1")
    call.press("1")
    for said in ("không", "không", "chưa xét nghiệm", "hai mũi", "có", "không cần gì"):
        call.say(said)
    assert call.status == "completed"
    with app.sessions() as session:
        declaration = session.scalar(select(Declaration))
        assert (declaration.status, declaration.campaign_id, declaration.follow_up_day) == ("complete", 1, 2)
    assert attempt(app, attempt_id).status == "completed", "the day's follow-up is done: the campaign does not call"


def test_a_caller_who_hangs_up_midway_keeps_their_answers_and_is_called_back(app, twilio):
    attempt_id = new_attempt(app, phone="+84912345678")
    status = f"{app.url}/webhooks/twilio/voice/status"  # the number's own status callback: no attempt in it
    call = twilio.call_in(f"{app.url}/webhooks/twilio/voice/incoming", "+84912345678", status_callback=status)
    call.answer()
    call.press("1")
    call.hang_up()
    assert resident_turns(app) == [("Đúng", "/affirm")]
    dropped = attempt(app, attempt_id)
    assert (dropped.status, dropped.last_outcome) == ("retry_wait", "dropped"), "the campaign calls them again"
    with app.sessions() as session:
        assert session.scalar(select(Conversation)).ended_at is not None


def test_someone_new_calls_the_hotline_is_asked_who_and_where_they_are(hotline, twilio):
    call = twilio.call_in(f"{hotline.url}/webhooks/twilio/voice/incoming", caller="+84987654321")
    connect = call.answer()
    assert connect.stream, "the hotline in stream mode"
    parameters = {k: v for k, v in connect.stream.items() if k != "url"}
    assert parameters["attempt"] == "inbound"
    with MediaStream(connect.stream["url"], parameters, twilio.auth_token, call.sid) as stream:
        stream.wait_for_the_bot()
        assert bot_lines(hotline)[-1] == "Xin hỏi anh/chị có phải là người sử dụng số điện thoại này không ạ?"
        # It is me, I agree, no symptoms, no contact, not tested, two doses, at my address: all by keys.
        for key in "1112431":
            stream.press(key)
            stream.wait_for_the_bot()
        assert "phường/xã nào" in bot_lines(hotline)[-1], "asked where they are staying, for their province's team"
    with hotline.sessions() as session:
        conversation = session.scalar(select(Conversation))
        assert conversation.campaign_id is None and conversation.person.phone == "+84987654321"
        assert conversation.person.province_code is None
        declaration = session.scalar(select(Declaration))
        assert (declaration.symptoms, declaration.test_result, declaration.vaccine_doses) == ([], "not_tested", 2)


def test_a_hidden_number_is_asked_to_call_again_and_nothing_is_kept(app, twilio):
    call = twilio.call_in(f"{app.url}/webhooks/twilio/voice/incoming", caller="anonymous")
    goodbye = call.answer()
    assert goodbye.hangs_up and goodbye.plays
    with app.sessions() as session:
        assert session.scalar(select(Conversation)) is None


def test_a_forged_incoming_call_is_refused(app, twilio):
    fields = {"CallSid": "CA" + "1" * 32, "From": "+84987654321", "To": "+15005550006", "Direction": "inbound"}
    forged = httpx.post(f"{app.url}/webhooks/twilio/voice/incoming", data=fields, headers={"X-Twilio-Signature": "x"})
    assert forged.status_code == 403
    with app.sessions() as session:
        assert session.scalar(select(Conversation)) is None


# ---- An attacker's probe of the stream: each finding a test ----------------------------------------------------


def raw(stream: MediaStream, frame: str | bytes) -> None:
    stream._socket.send(frame)


@pytest.mark.parametrize(
    "hostile",
    [
        "not json at all",
        b"\x00\x01 a binary frame",
        "[1, 2, 3]",
        '{"event": "media", "media": {"payload": "' + "A" * 12_000 + '"}}',  # 9,000 bytes of audio in one message
        '{"event": "media", "media": "' + "x" * 20_000 + '"}',  # a message of 20,000 characters
        "x" * 70_000,  # over the WebSocket's frame limit
    ],
    ids=["text", "binary", "list", "a-second-of-audio-too-much", "huge-message", "huge-frame"],
)
def test_a_stream_that_breaks_the_protocol_is_closed_and_keeps_what_was_said(app, twilio, hostile):
    _, call, stream = streamed_call(app, twilio, speed=8)
    with stream:
        stream.press("1")  # over the welcome: "it is me"
        stream.wait_for_the_bot()
        raw(stream, hostile)
        assert stream.wait_until_closed(10), "closed, not left hanging"
    assert resident_turns(app) == [("Đúng", "/affirm")], "the answer given before stays stored"
    assert httpx.get(f"{app.url}/healthz").status_code == 200


def test_damaged_fields_and_odd_keys_are_ignored_not_fatal(app, twilio):
    _, call, stream = streamed_call(app, twilio, speed=8)
    with stream:
        for odd in (
            '{"event": "dtmf", "dtmf": "1"}',
            '{"event": "dtmf", "dtmf": {"digit": "١"}}',  # an Arabic-Indic one: a digit to Python, not a key
            '{"event": "mark", "mark": ["x"]}',
            '{"event": "media", "media": {"payload": "%%% not base64"}}',
            '{"event": "media", "media": {"payload": 42}}',
            '{"event": "an event Twilio never sends"}',
        ):
            raw(stream, odd)
        stream.press("1")
        stream.wait_for_the_bot()
        assert not stream.closed_by_platform.is_set()
    assert resident_turns(app) == [("Đúng", "/affirm")], "only the real key counted"


def test_a_second_stream_for_a_call_is_refused_while_the_first_is_open(app, twilio):
    _, call, stream = streamed_call(app, twilio, speed=8)
    replay = MediaStream(stream.url, dict(stream.parameters), twilio.auth_token, call.sid)
    with stream:
        with replay:
            assert replay.wait_until_closed(10), "the replayed upgrade is closed"
        assert not replay.lines
        stream.press("1")
        stream.wait_for_the_bot()
    assert resident_turns(app) == [("Đúng", "/affirm")]

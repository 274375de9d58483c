"""Calls through a local Twilio (tests/fakes/twilio.py) and the real engine: placed, answered by speech and by
keypad, retried when busy or unanswered, and never moved by a forged or repeated webhook."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.platform import outbound_channels
from campaigns.dispatch import contact
from connectors.call_lines import keypad_hint
from models import AttemptStatus, Conversation, Declaration, InboundEvent, OutreachAttempt, Speaker, Turn
from tests import factories
from tests.conftest import run_public_app
from tests.fakes.twilio import FakeCall
from tests.support.declarations import SPOKEN_HEALTH_ANSWERS, today
from tests.test_prompts import unkeyed_names

pytestmark = pytest.mark.engine
GREETING = "Xin hỏi có phải anh/chị Nguyễn Văn An không ạ?"  # the name factories.outreach_attempt gives


@pytest.fixture
def app(store_url, engine_url, twilio):
    yield from run_public_app(store_url, engine_url, **twilio.settings())


def new_attempt(app, phone: str = "+84912345678", **rules) -> int:
    with app.sessions.begin() as session:
        return factories.outreach_attempt(session, phone, **rules).id


def dispatch(app, attempt_id: int, channels: tuple[str, ...] = ("voice",)) -> AttemptStatus:
    known = outbound_channels(app.platform)
    return asyncio.run(contact(app.sessions, {c: known[c] for c in channels}, attempt_id, datetime.now(UTC)))


def attempt(app, attempt_id: int) -> OutreachAttempt:
    with app.sessions() as session:
        return session.get(OutreachAttempt, attempt_id)


def place_call(app, twilio, **rules) -> tuple[int, FakeCall]:
    attempt_id = new_attempt(app, **rules)
    assert dispatch(app, attempt_id) == AttemptStatus.CONTACTING
    return attempt_id, twilio.calls[-1]


def test_a_call_is_placed_with_callbacks_detection_and_a_ring_timeout(app, twilio):
    attempt_id, call = place_call(app, twilio)
    assert call.param("To") == "+84912345678" and call.param("From") == "+15005550006"
    assert call.param("Url") == f"{app.url}/webhooks/twilio/voice/answer?attempt={attempt_id}&mode=gather"
    assert call.param("StatusCallback") == f"{app.url}/webhooks/twilio/voice/status?attempt={attempt_id}"
    assert call.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (call.param("MachineDetection"), call.param("Timeout")) == ("Enable", "25")
    assert call.param("FallbackUrl") == f"{app.url}/webhooks/twilio/voice/fallback"
    placed = attempt(app, attempt_id)
    assert (placed.status, placed.provider_ref, placed.tries, placed.channel) == ("contacting", call.sid, 1, "voice")
    # The resident's name was rendered before the phone rang: the greeting with it is in the cache already.
    assert app.platform.prompts.rendered(GREETING) is not None


def test_a_call_answered_by_keypad_and_speech_ends_with_the_declaration(app, twilio):
    attempt_id, call = place_call(app, twilio)
    opening = call.answer()
    assert attempt(app, attempt_id).status == AttemptStatus.IN_PROGRESS
    gather = opening.gather
    assert (gather["input"], gather["language"], gather["numDigits"]) == ("speech dtmf", "vi-VN", "1")
    assert "đúng" in gather["hints"].split(", ")
    prompts = app.platform.prompts
    hint = keypad_hint(["Đúng", "Không phải"])
    assert hint == "Hoặc bấm phím 1 nếu đúng, phím 2 nếu không phải."
    assert opening.plays[-1].endswith(prompts.file_name(hint)), "the question says which keys to press"
    assert all(kind.startswith("audio/") and size > 1000 for kind, size in twilio.audio.values())

    call.press("1")  # "Đúng"
    call.press("1")  # "Đồng ý"
    for said in SPOKEN_HEALTH_ANSWERS:
        assert call.prompt.gather, f"the call ended before '{said}'"
        call.say(said, confidence=0.87)
    call.say("có tôi vẫn ở nhà")
    goodbye = call.say("không cần gì")
    assert goodbye.hangs_up and goodbye.plays and call.status == "completed"

    with app.sessions() as session:
        declaration = session.scalar(select(Declaration))
        answers = (
            declaration.status,
            declaration.identity_confirmed,
            declaration.symptoms,
            declaration.temperature_c,
            declaration.symptom_onset,
            declaration.test_result,
            declaration.test_date,
            declaration.vaccine_doses,
            declaration.follow_up_day,
        )
        yesterday = today() - timedelta(days=1)
        assert answers == ("complete", True, ["fever", "cough"], 38.5, yesterday, "negative", today(), 2, 2)
        said = session.scalars(select(Turn).where(Turn.speaker == Speaker.RESIDENT).order_by(Turn.seq)).all()
        assert [(t.text, t.engine_text) for t in said[:2]] == [("Đúng", "/affirm"), ("Đồng ý", "/affirm")]
        assert said[2].text == "tôi bị sốt và ho" and said[2].asr_confidence == pytest.approx(0.87)
        assert session.scalar(select(Conversation)).ended_at is not None
    final = attempt(app, attempt_id)
    assert (final.status, final.last_outcome) == ("completed", "completed")


@pytest.mark.parametrize(
    ("call_status", "outcome"), [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed")]
)
def test_an_unanswered_call_is_retried_after_the_spacing(app, twilio, call_status, outcome):
    attempt_id, call = place_call(app, twilio)
    call.end_unanswered(call_status)
    waiting = attempt(app, attempt_id)
    assert (waiting.status, waiting.last_outcome) == ("retry_wait", outcome)
    assert waiting.due_at >= datetime.now(UTC) + timedelta(minutes=4)
    assert app.platform.prompts.rendered(GREETING) is None, "the greeting with their name left with the call"
    call.end_unanswered(call_status)  # Twilio repeats the callback: nothing changes
    assert attempt(app, attempt_id).due_at == waiting.due_at
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 0, "no one was reached"


def test_who_was_called_cannot_be_told_from_prompt_urls_and_their_greeting_leaves_with_the_call(app, twilio):
    never_called = "Xin hỏi có phải anh/chị Trần Thị Bình không ạ?"
    guesses = [f"{app.url}/voice/prompts/{name}" for name in unkeyed_names(GREETING) + unkeyed_names(never_called)]
    _, call = place_call(app, twilio)
    greeting = app.platform.prompts.rendered(GREETING)
    greeting_url = f"{app.url}/voice/prompts/{greeting.name}"
    opening = call.answer()
    assert greeting_url in opening.plays, "Twilio got the keyed name"
    assert [httpx.get(url).status_code for url in guesses] == [404] * len(guesses)

    call.hang_up()  # the status callback: completed
    assert app.platform.prompts.rendered(GREETING) is None and not greeting.exists()
    assert httpx.get(greeting_url).status_code == 404
    assert [httpx.get(url).status_code for url in guesses] == [404] * len(guesses)
    fixed = [httpx.get(url) for url in opening.plays if url != greeting_url]  # the introduction, the keypad hint
    assert fixed and [(r.status_code, r.headers["cache-control"]) for r in fixed] == [
        (200, "public, max-age=31536000, immutable")
    ] * len(fixed)


def test_a_namesakes_call_under_way_keeps_the_greeting_they_share(app, twilio):
    _, first = place_call(app, twilio)
    _, second = place_call(app, twilio, phone="+84987654321")  # another Nguyễn Văn An
    first.answer()
    second.answer()
    first.hang_up()
    assert app.platform.prompts.rendered(GREETING) is not None, "the second call may still play it"
    second.hang_up()
    assert app.platform.prompts.rendered(GREETING) is None


def test_the_last_try_of_the_day_fails_the_day(app, twilio):
    attempt_id, call = place_call(app, twilio, max_attempts_per_day=1)
    call.end_unanswered("no-answer")
    assert attempt(app, attempt_id).status == AttemptStatus.FAILED


def test_an_answering_machine_is_hung_up_on_and_retried(app, twilio):
    attempt_id, call = place_call(app, twilio)
    prompt = call.answer(answered_by="machine_start")
    assert prompt.hangs_up and not prompt.plays
    waiting = attempt(app, attempt_id)
    assert (waiting.status, waiting.last_outcome) == ("retry_wait", "machine")


def test_two_silences_end_the_call_politely_and_keep_the_answers(app, twilio):
    attempt_id, call = place_call(app, twilio)
    call.answer()
    call.say("vâng đúng rồi")
    again = call.stay_silent()
    assert again.gather and "silences=1" in again.gather["action"], "asked again once"
    goodbye = call.stay_silent()
    assert goodbye.hangs_up and goodbye.plays
    dropped = attempt(app, attempt_id)
    assert (dropped.status, dropped.last_outcome) == ("retry_wait", "dropped")
    with app.sessions() as session:
        declaration = session.scalar(select(Declaration))
        assert (declaration.status, declaration.identity_confirmed) == ("in_progress", True), "the answer is kept"
        assert session.scalar(select(Conversation)).ended_at is not None, "the line is closed"


def test_a_retried_turn_webhook_is_processed_once(app, twilio):
    _, call = place_call(app, twilio)
    call.answer()
    first_try = call.say("vâng đúng rồi", retried=True)
    with app.sessions() as session:
        residents = session.scalars(select(Turn.text).where(Turn.speaker == Speaker.RESIDENT)).all()
    assert residents == ["vâng đúng rồi"]
    assert call.prompts[-2].plays == first_try.plays, "the retry got the same TwiML"


def test_forged_signatures_change_nothing(app, twilio):
    attempt_id, call = place_call(app, twilio)
    fields = {"CallSid": call.sid, "CallStatus": "busy", "AccountSid": twilio.account_sid}
    status_url = call.param("StatusCallback")
    for headers in (
        {},
        {"X-Twilio-Signature": "forged"},
        {"X-Twilio-Signature": twilio.signature(status_url, {**fields, "CallStatus": "completed"})},
    ):
        assert httpx.post(status_url, data=fields, headers=headers).status_code == 403
        assert httpx.post(call.param("Url"), data=fields, headers=headers).status_code == 403
    assert attempt(app, attempt_id).status == AttemptStatus.CONTACTING
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 0
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 0


def test_the_fallback_url_apologises_and_hangs_up(app, twilio):
    _, call = place_call(app, twilio)
    response = twilio.post_signed(call.param("FallbackUrl"), {"CallSid": call.sid, "ErrorCode": "11205"})
    assert response.status_code == 200
    assert "<Say" in response.text and 'language="vi-VN"' in response.text and "<Hangup" in response.text


def test_an_uncallable_number_falls_back_to_sms_with_a_personal_chat_link(app, twilio):
    twilio.refuse_calls["+84912345678"] = 21215  # calls to Vietnam not enabled on the account; SMS are
    attempt_id = new_attempt(app, channels=["voice", "sms"])
    assert dispatch(app, attempt_id, ("voice", "sms")) == AttemptStatus.CONTACTING
    assert twilio.calls == []
    sms = twilio.messages[-1]
    body = sms["Body"][0]
    assert body.isascii() and len(body) <= 160, "one GSM-7 segment"
    assert "Nguyen Van An" in body and f"{app.url}/chat?invite=" in body
    sent = attempt(app, attempt_id)
    assert (sent.channel, sent.provider_ref) == ("sms", sms["Sid"][0]) and "21215" in sent.last_error

    assert twilio.deliver_message(-1, "delivered").status_code == 204
    assert attempt(app, attempt_id).last_outcome == "delivered"

    invite = body.split("invite=")[1].split()[0]
    opened = httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"invite": invite}, timeout=30)
    assert opened.status_code == 200 and "Nguyễn Văn An" in opened.json()["replies"][-1]["text"]
    assert opened.json()["session_id"] == invite, "the link itself resumes the chat"
    assert httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"invite": invite}).status_code == 409
    assert httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"invite": "nope"}).status_code == 404
    for text in ("đúng rồi", "được", "không có triệu chứng", "không", "chưa xét nghiệm", "3 mũi", "có", "không"):
        httpx.post(f"{app.url}/api/v1/webchat/sessions/{invite}/messages", json={"text": text}, timeout=30)
    with app.sessions() as session:
        declaration = session.scalar(select(Declaration))
        assert (declaration.status, declaration.campaign_id is not None, declaration.follow_up_day) == (
            "complete",
            True,
            2,
        )
    assert attempt(app, attempt_id).status == AttemptStatus.COMPLETED


def test_an_undelivered_sms_is_retried(app, twilio):
    attempt_id = new_attempt(app, channels=["sms"])
    dispatch(app, attempt_id, ("sms",))
    assert twilio.deliver_message(-1, "undelivered", error_code="30003").status_code == 204
    failed = attempt(app, attempt_id)
    assert (failed.status, failed.last_outcome) == ("retry_wait", "failed") and "30003" in failed.last_error


def test_a_refused_api_call_counts_as_a_try(app, twilio):
    twilio.auth_token = "rotated"  # the platform's token no longer authenticates
    attempt_id = new_attempt(app)
    assert dispatch(app, attempt_id) == AttemptStatus.RETRY_WAIT
    refused = attempt(app, attempt_id)
    assert refused.tries == 1 and "20003" in refused.last_error


def test_a_late_delivery_report_does_not_undo_a_reply(app, twilio):
    attempt_id = new_attempt(app, channels=["sms"])
    dispatch(app, attempt_id, ("sms",))
    invite = twilio.messages[-1]["Body"][0].split("invite=")[1].split()[0]
    httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"invite": invite}, timeout=30)
    httpx.post(f"{app.url}/api/v1/webchat/sessions/{invite}/messages", json={"text": "đúng rồi"}, timeout=30)
    assert attempt(app, attempt_id).status == AttemptStatus.IN_PROGRESS
    assert twilio.deliver_message(-1, "delivered").status_code == 204
    answered = attempt(app, attempt_id)
    assert (answered.status, answered.last_outcome) == ("in_progress", "answered")

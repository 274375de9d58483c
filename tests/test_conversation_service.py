"""What the conversation service gives the channels besides a turn: the replies of a retried turn, the question
being answered, the attempt a webhook or a link leads back to, the person of a typed phone. A scripted engine
stands in for Rasa; the store is real (SQLite and PostgreSQL)."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from campaigns.channels import Contact
from campaigns.rules import CampaignRules
from conversations.engine import BotMessage, Button, EngineReply
from conversations.outreach import Outreach
from conversations.service import ConversationService, Line
from ground.settings import Settings
from models import AttemptStatus, Channel, Conversation, Declaration, OutreachAttempt, Person, Speaker
from tests import factories

YES_NO = (Button("Đúng", "/affirm"), Button("Không phải", "/deny"))
OPENING = [BotMessage("Chào anh/chị, đây là CDC Bắc Ninh."), BotMessage("Anh/chị là Nguyễn Văn An?", YES_NO)]


class ScriptedEngine:
    """Answers every turn with the next reply of its script, and counts the turns it was sent."""

    def __init__(self, *replies: list[BotMessage]) -> None:
        self.replies = list(replies)
        self.turns: list[str] = []

    async def turn(self, sender_id: str, text: str, **_: Any) -> EngineReply:
        self.turns.append(text)
        return EngineReply(self.replies.pop(0))


def service(sessions, engine: ScriptedEngine) -> ConversationService:
    return ConversationService(sessions, engine, Settings(public_base_url="https://outreach.example"))


def opened(sessions, engine: ScriptedEngine) -> tuple[ConversationService, int]:
    conversations = service(sessions, engine)
    with sessions.begin() as session:
        person_id = factories.person(session, "+84912345678").id
    result, _ = asyncio.run(conversations.start(person_id, Channel.VOICE, external_ref="CA1"))
    return conversations, result.conversation_id


def test_a_retried_turn_gets_the_replies_it_was_given_without_reaching_the_engine_again(sessions):
    consent = [BotMessage("Cảm ơn anh/chị."), BotMessage("Anh/chị có đồng ý trả lời?", (Button("Đồng ý", "/agree"),))]
    engine = ScriptedEngine(OPENING, consent)
    conversations, conversation_id = opened(sessions, engine)

    first = asyncio.run(conversations.handle(conversation_id, "Đúng", engine_text="/affirm", external_id="CA1:1"))
    retried = asyncio.run(conversations.handle(conversation_id, "Đúng", engine_text="/affirm", external_id="CA1:1"))

    assert first.replies == consent
    assert (retried.replies, retried.ended) == (consent, False)
    assert len(engine.turns) == 2, "the opening and the first answer only"
    assert conversations.stored_reply(conversation_id, "CA1:1").replies == consent


def test_the_stored_reply_without_a_turn_is_the_opening(sessions):
    conversations, conversation_id = opened(sessions, ScriptedEngine(OPENING, [BotMessage("Cảm ơn.")]))
    asyncio.run(conversations.handle(conversation_id, "Đúng", external_id="CA1:1"))
    assert conversations.stored_reply(conversation_id).replies == OPENING


def test_the_question_being_answered_is_the_bots_last_line_with_its_buttons(sessions):
    conversations, conversation_id = opened(sessions, ScriptedEngine(OPENING))
    assert conversations.question_being_answered(conversation_id) == OPENING[-1]
    assert conversations.question_being_answered(conversation_id + 1) is None, "no such conversation"


def test_a_call_finds_its_conversation_and_a_chat_its_transcript(sessions):
    conversations, conversation_id = opened(sessions, ScriptedEngine(OPENING, [BotMessage("Cảm ơn.")]))
    asyncio.run(conversations.handle(conversation_id, "Đúng"))
    assert conversations.conversation_for_ref("CA1") == conversation_id
    assert conversations.conversation_for_ref("CA2") is None
    transcript = conversations.transcript(conversation_id)
    assert transcript.lines[-2:] == [Line(Speaker.RESIDENT, "Đúng"), Line(Speaker.BOT, "Cảm ơn.")]
    assert not transcript.ended


def test_an_attempt_is_found_by_its_call_or_its_link_and_opens_the_conversation_answering_it(sessions):
    conversations = service(sessions, ScriptedEngine(OPENING))
    with sessions.begin() as session:
        attempt = factories.outreach_attempt(session, "+84912345678")
        attempt.provider_ref = "CA9"
        session.flush()
        expected = Outreach(attempt.person_id, attempt.campaign_id, attempt.id, attempt.follow_up_day)
    assert conversations.outreach.placed(expected.attempt_id, "CA9") == expected
    assert conversations.outreach.placed(expected.attempt_id, "CA8") is None, "a call we did not place"

    link = conversations.outreach.new_invite(expected.attempt_id)
    assert link.startswith("https://outreach.example/chat?invite=")
    invite = link.split("invite=")[1]
    assert conversations.outreach.invited(invite) == expected
    assert conversations.outreach.invited("guessed") is None

    result, _ = asyncio.run(conversations.start(expected.person_id, Channel.WEBCHAT, outreach=expected, token=invite))
    with sessions() as session:
        conversation = session.get(Conversation, result.conversation_id)
        assert (conversation.campaign_id, conversation.outreach_id) == (expected.campaign_id, expected.attempt_id)
        declaration = session.scalar(select(Declaration).where(Declaration.conversation_id == conversation.id))
        assert declaration.follow_up_day == expected.follow_up_day

    with sessions.begin() as session:
        session.get(OutreachAttempt, expected.attempt_id).status = AttemptStatus.CANCELED
    assert conversations.outreach.invited(invite) is None, "a canceled attempt's link has expired"


def test_the_attempt_awaiting_a_reply_is_the_latest_on_the_channels_asked_for(sessions):
    conversations = service(sessions, ScriptedEngine())
    with sessions.begin() as session:
        attempt = factories.outreach_attempt(session, "+84912345678")
        attempt.status, attempt.channel = AttemptStatus.CONTACTING, Channel.ZNS.value
        session.flush()
        person_id, attempt_id = attempt.person_id, attempt.id
    assert conversations.outreach.awaiting_reply(person_id, (Channel.ZNS, Channel.ZALO)).attempt_id == attempt_id
    assert conversations.outreach.awaiting_reply(person_id, (Channel.VOICE,)) is None


def test_an_outreach_of_a_contact_is_the_one_of_its_attempt(sessions):
    with sessions.begin() as session:
        attempt = factories.outreach_attempt(session, "+84912345678")
        session.flush()
        contact = Contact(
            attempt.id,
            attempt.campaign_id,
            attempt.person_id,
            "+84912345678",
            None,
            attempt.follow_up_day,
            CampaignRules.model_validate(attempt.campaign.rules),
        )
        assert Outreach.of_contact(contact) == Outreach.of(attempt)


def test_a_typed_phone_finds_or_adds_its_person_and_counts_its_unverified_chats(sessions):
    conversations = service(sessions, ScriptedEngine(OPENING))
    since = datetime.now(UTC) - timedelta(hours=1)
    person_id, opened_before = conversations.person_for_typed_phone("+84987000111", since)
    assert opened_before == 0
    asyncio.run(conversations.start(person_id, Channel.WEBCHAT, phone_verified=False))
    assert conversations.person_for_typed_phone("+84987000111", since) == (person_id, 1)
    with sessions() as session:
        assert session.get(Person, person_id).phone == "+84987000111"

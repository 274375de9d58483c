"""A Zalo user's conversations, through the conversation service: one exchange with a user at a time."""

import asyncio

from sqlalchemy.orm import Session, sessionmaker

from connectors.zalo import store
from connectors.zalo.client import ZaloClient, ZaloError
from connectors.zalo.events import Message
from conversations.engine import BotMessage
from conversations.outreach import Outreach
from conversations.service import ConversationService, EngineDown
from ground.locks import KeyedLocks
from models import Channel

ENGINE_BUSY = "Hệ thống đang bận, tin nhắn của anh/chị đã được lưu lại. Xin anh/chị nhắn lại sau ít phút."


class ZaloConversations:
    """Opens a user's conversation and answers their messages; the webhook and the outbound channel both go
    through it, holding `user_lock`, so a user's messages are answered in order and never open two conversations."""

    def __init__(self, conversations: ConversationService, client: ZaloClient, sessions: sessionmaker[Session]):
        self.conversations = conversations
        self.client = client
        self.sessions = sessions
        self.user_lock = KeyedLocks[str, asyncio.Lock](asyncio.Lock)

    async def open(self, user_id: str, person_id: int, outreach: Outreach | None = None) -> str | None:
        """Open the person's conversation on Zalo, send the bot's opening, then route the user's messages to it.

        The user follows the conversation only once the opening is sent: after a failed send their next message
        opens a fresh one rather than answering a question they never saw. Returns the id of the last message sent.
        """
        result, _ = await self.conversations.start(person_id, Channel.ZALO, outreach=outreach)
        message_id = await self.client.send_replies(user_id, result.replies)
        await asyncio.to_thread(store.follow_conversation, self.sessions, user_id, result.conversation_id)
        return message_id

    async def open_for_resident(self, user_id: str, person_id: int) -> None:
        """The resident wrote first: the opening answers them, on behalf of the campaign waiting for them if any."""
        waiting = await asyncio.to_thread(
            self.conversations.outreach.awaiting_reply, person_id, (Channel.ZNS, Channel.ZALO)
        )
        try:
            await self.open(user_id, person_id, waiting)
        except EngineDown:
            await self.client.send_text(user_id, ENGINE_BUSY)

    async def answer(self, user_id: str, conversation_id: int, message: Message) -> None:
        question = await asyncio.to_thread(self.conversations.question_being_answered, conversation_id)
        text, payload = as_button_tap(question, message.text)
        try:
            result = await self.conversations.handle(
                conversation_id, text, engine_text=payload, external_id=message.msg_id
            )
        except EngineDown:  # the turn is kept and replayed when the engine is back
            await self.client.send_text(user_id, ENGINE_BUSY)
            return
        await self.client.send_replies(user_id, result.replies)

    async def say(self, conversation_id: int, message: BotMessage) -> None:
        """A line the platform says outside a reply to the user (a tracer who took the conversation over, the bot's
        question when they hand back). Raises ZaloError when Zalo refuses it."""
        user_id = await asyncio.to_thread(store.user_of_conversation, self.sessions, conversation_id)
        if user_id is None:
            raise ZaloError(None, "no Zalo user follows this conversation any more")
        await self.client.send_text(user_id, message.text, message.buttons)


def as_button_tap(question: BotMessage | None, text: str) -> tuple[str, str | None]:
    """A tap arrives as the button's payload typed by the user: store its title, give the engine its payload."""
    for button in question.buttons if question else ():
        if button.payload == text:
            return button.title, text
    return text, None

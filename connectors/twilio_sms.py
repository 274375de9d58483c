"""Twilio SMS, the last channel of a campaign: a short text with a personal link to the web chat.

POST /webhooks/twilio/sms/status?attempt=ID   delivery reports: delivered, undelivered, failed

The text is written without diacritics on purpose: it then fits one 160-character GSM-7 segment, where
Vietnamese with diacritics is UCS-2 and splits after 70 characters (every phone shows it; it costs a third).
"""

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance, MessageList

from bot.vntext import fold
from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import Contact, Placed
from connectors.events import first_time
from connectors.twilio_auth import UNCALLABLE_NUMBER_CODES, TwilioChannel, TwilioSignature, twilio_client
from conversations.duty import Member, NotifyFailed
from conversations.outreach import OutreachStore
from ground.settings import Settings
from models import Channel, utcnow

log = logging.getLogger(__name__)
PREFIX = "/webhooks/twilio/sms"

UNTEXTABLE_NUMBER_CODES = UNCALLABLE_NUMBER_CODES | {21610}  # 21610: the resident replied STOP
DELIVERY_OUTCOMES = {"delivered": Outcome.DELIVERED, "undelivered": Outcome.FAILED, "failed": Outcome.FAILED}


def invitation_text(name: str | None, link: str) -> str:
    greeting = f"Chao {fold(name)}" if name else "Xin chao"
    return f"CDC: {greeting}, moi anh/chi tra loi vai cau hoi ve suc khoe (mien phi) tai: {link}"


@dataclass(frozen=True)
class SmsChannel(TwilioChannel):
    """Sends the SMS of an outreach attempt."""

    outreach: OutreachStore
    name: str = Channel.SMS
    unreachable_codes = UNTEXTABLE_NUMBER_CODES

    async def reach(self, contact: Contact) -> Placed:
        link = await asyncio.to_thread(self.outreach.new_invite, contact.attempt_id)
        return await self._hand_over(partial(self._send, contact, invitation_text(contact.name, link)))

    def _sent(self, client: Client) -> MessageList:
        return client.messages

    def _send(self, contact: Contact, body: str) -> MessageInstance:
        return self._sent(twilio_client(self.settings)).create(
            to=contact.phone,
            from_=self.settings.twilio_from_number,
            body=body,
            status_callback=f"{self.settings.public_url}{PREFIX}/status?attempt={contact.attempt_id}",
        )


@dataclass(frozen=True)
class SmsNotifier:
    """Tells a roster member of an urgent alert by SMS (conversations.duty.Notifier)."""

    settings: Settings
    name: str = "sms"

    def reaches(self, member: Member) -> bool:
        return bool(member.phone)

    async def send(self, member: Member, text: str) -> str:
        create = partial(
            twilio_client(self.settings).messages.create,
            to=member.phone,
            from_=self.settings.twilio_from_number,
            body=text,
        )
        try:
            return (await asyncio.to_thread(create)).sid
        except TwilioRestException as error:
            raise NotifyFailed(f"Twilio {error.code or error.status}: {error.msg}") from error
        except OSError as error:  # Twilio unreachable
            raise NotifyFailed(f"Twilio unreachable: {error}") from error


def router(sessions: sessionmaker[Session], settings: Settings) -> APIRouter:
    """The delivery reports, signed by Twilio."""
    signed_form = Annotated[dict[str, str], Depends(TwilioSignature(settings))]
    routes = APIRouter(prefix=PREFIX, tags=["Twilio SMS (webhooks)"], include_in_schema=False)

    @routes.post("/status")
    def status(attempt: int, form: signed_form) -> Response:
        record_delivery(sessions, attempt, form)
        return Response(status_code=204)

    return routes


def record_delivery(sessions: sessionmaker[Session], attempt_id: int, form: dict[str, str]) -> None:
    """A delivery report; delivered waits for the resident to open the link, a failure is retried."""
    message_sid, message_status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    outcome = DELIVERY_OUTCOMES.get(message_status)
    if outcome is None:
        return  # accepted, queued, sending, sent: not final
    with sessions.begin() as session:
        if first_time(session, "twilio-sms", f"{message_sid}:{message_status}"):
            error = f" (error {form['ErrorCode']})" if form.get("ErrorCode") else ""
            detail = f"SMS {message_status}{error}"
            attempts.record_report(session, attempt_id, message_sid, outcome, utcnow(), detail=detail)

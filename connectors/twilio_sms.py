"""Twilio SMS, the last channel of a campaign: a short text with a personal link to the web chat.

POST /webhooks/twilio/sms/status?attempt=ID   delivery reports: delivered, undelivered, failed

The text is written without diacritics on purpose: it then fits one 160-character GSM-7 segment, where
Vietnamese with diacritics is UCS-2 and splits after 70 characters (every phone shows it; it costs a third).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Response
from twilio.base.exceptions import TwilioRestException

from app.deps import Platform, PlatformDep
from bot.vntext import fold
from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import Contact, Placed
from connectors.events import first_time
from connectors.twilio_auth import UNCALLABLE_NUMBER_CODES, SignedForm, channel_error, sent_since, twilio_client
from connectors.webchat import new_invite
from models import utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio/sms", tags=["Twilio SMS (webhooks)"], include_in_schema=False)

UNTEXTABLE_NUMBER_CODES = UNCALLABLE_NUMBER_CODES | {21610}  # 21610: the resident replied STOP
DELIVERY_OUTCOMES = {"delivered": Outcome.DELIVERED, "undelivered": Outcome.FAILED, "failed": Outcome.FAILED}


def invitation_text(name: str | None, link: str) -> str:
    greeting = f"Chao {fold(name)}" if name else "Xin chao"
    return f"CDC: {greeting}, moi anh/chi tra loi vai cau hoi ve suc khoe (mien phi) tai: {link}"


@dataclass(frozen=True)
class SmsChannel:
    """Sends the SMS of an outreach attempt (campaigns.channels.OutboundChannel)."""

    platform: Platform
    name: str = "sms"

    async def reach(self, contact: Contact) -> Placed:
        link = await asyncio.to_thread(
            new_invite, self.platform.sessions, self.platform.settings.public_url, contact.attempt_id
        )
        try:
            message = await asyncio.to_thread(self._send, contact, invitation_text(contact.name, link))
        except TwilioRestException as error:
            raise channel_error(error, UNTEXTABLE_NUMBER_CODES) from error
        return Placed(message.sid)

    async def reached_since(self, contact: Contact, since: datetime) -> Placed | None:
        """The SMS sent to this person since `since`, if any (a worker died before recording it)."""
        sent = await asyncio.to_thread(twilio_client(self.platform.settings).messages.list, to=contact.phone, limit=20)
        return sent_since(sent, since)

    def _send(self, contact: Contact, body: str):  # noqa: ANN202 (the SDK's MessageInstance)
        settings = self.platform.settings
        return twilio_client(settings).messages.create(
            to=contact.phone,
            from_=settings.twilio_from_number,
            body=body,
            status_callback=f"{settings.public_url}{router.prefix}/status?attempt={contact.attempt_id}",
        )


@router.post("/status")
def status(attempt: int, form: SignedForm, platform: PlatformDep) -> Response:
    """A delivery report; delivered waits for the resident to open the link, a failure is retried."""
    message_sid, message_status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    outcome = DELIVERY_OUTCOMES.get(message_status)
    if outcome is None:
        return Response(status_code=204)  # accepted, queued, sending, sent: not final
    with platform.sessions.begin() as session:
        if first_time(session, "twilio-sms", f"{message_sid}:{message_status}"):
            error = f" (error {form['ErrorCode']})" if form.get("ErrorCode") else ""
            attempts.record_report(
                session, attempt, message_sid, outcome, utcnow(), detail=f"SMS {message_status}{error}"
            )
    return Response(status_code=204)

"""What Twilio's voice and SMS connectors share: the REST client, the channel (its errors as the campaigns see them,
what it sent before a worker died), the webhook signature check."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import ClassVar

from fastapi import HTTPException, Request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance, CallList
from twilio.rest.api.v2010.account.message import MessageInstance, MessageList

from campaigns.channels import ChannelFailed, Contact, Placed, Unreachable
from ground.settings import Settings

# Twilio error codes that mean this number cannot take a call at all: another channel may still reach them.
UNCALLABLE_NUMBER_CODES = frozenset({13223, 13224, 21210, 21211, 21214, 21215, 21217})


def twilio_client(settings: Settings) -> Client:
    """A Twilio REST client; its base URL is a setting so tests (or a proxy) can stand in for api.twilio.com."""
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
    client.api.base_url = settings.twilio_api_base_url.rstrip("/")
    return client


def _channel_error(error: TwilioRestException, unreachable: frozenset[int]) -> Exception:
    """Codes about the person (the number cannot take it) send them to the next channel; the rest is a failed try."""
    if error.code in unreachable:
        return Unreachable(f"Twilio {error.code}: {error.msg}")
    return ChannelFailed(f"Twilio {error.code or error.status}: {error.msg}")


@dataclass(frozen=True)
class TwilioChannel:
    """A campaign channel through Twilio (campaigns.channels.OutboundChannel): it hands attempts to Twilio and finds
    what Twilio sent for a worker that died before recording it (campaigns.dispatch.Reconciling)."""

    settings: Settings

    unreachable_codes: ClassVar[frozenset[int]]  # Twilio's refusals that mean this number cannot take the channel

    def _sent(self, client: Client) -> CallList | MessageList:
        """The Twilio list of what this channel sends."""
        raise NotImplementedError

    async def _hand_over(self, create: Callable[[], CallInstance | MessageInstance]) -> Placed:
        """Place the call or send the message; Twilio's refusals become the channel's errors."""
        try:
            created = await asyncio.to_thread(create)
        except TwilioRestException as error:
            raise _channel_error(error, self.unreachable_codes) from error
        return Placed(created.sid)

    async def reached_since(self, contact: Contact, since: datetime) -> Placed | None:
        """The first call or message to this person created since `since`, if any."""
        listing = self._sent(twilio_client(self.settings)).list
        sent = await asyncio.to_thread(listing, to=contact.phone, limit=20)
        return next((Placed(r.sid) for r in sent if r.date_created and r.date_created >= since), None)


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def public_url(settings: Settings, request: Request) -> str:
    """The URL Twilio requested, rebuilt from the public base URL: behind a proxy `request.url` is not it."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings.public_url}{request.url.path}{query}"


def signature_holds(settings: Settings, url: str, params: dict[str, str], signature: str) -> bool:
    """Whether `X-Twilio-Signature` proves Twilio sent this request (never without an auth token to check it)."""
    token = settings.twilio_auth_token.get_secret_value()
    return bool(token) and _validator(token).validate(url, params, signature)


class TwilioSignature:
    """A dependency of the Twilio webhooks: the form fields, once `X-Twilio-Signature` proves Twilio sent them; else
    403, nothing done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, request: Request) -> dict[str, str]:
        form = {key: str(value) for key, value in (await request.form()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature_holds(self.settings, public_url(self.settings, request), form, signature):
            raise HTTPException(403, "the X-Twilio-Signature header does not match this request")
        return form

"""What Twilio's voice and SMS connectors share: the REST client and the webhook signature check."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from outreach.deps import PlatformDep
from outreach.settings import Settings


def twilio_client(settings: Settings) -> Client:
    """A Twilio REST client; its base URL is a setting so tests (or a proxy) can stand in for api.twilio.com."""
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
    client.api.base_url = settings.twilio_api_base_url.rstrip("/")
    return client


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def public_url(settings: Settings, request: Request) -> str:
    """The URL Twilio requested, rebuilt from the public base URL: behind a proxy `request.url` is not it."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings.public_url}{request.url.path}{query}"


async def signed_form(request: Request, platform: PlatformDep) -> dict[str, str]:
    """The webhook's form fields, once `X-Twilio-Signature` proves Twilio sent them; else 403, nothing done."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    token = platform.settings.twilio_auth_token.get_secret_value()
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not _validator(token).validate(public_url(platform.settings, request), form, signature):
        raise HTTPException(403, "the X-Twilio-Signature header does not match this request")
    return form


SignedForm = Annotated[dict[str, str], Depends(signed_form)]

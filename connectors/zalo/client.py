"""The OA's HTTP side: consultation (CS) messages and ZNS templates, sent with the OA's rotating access token."""

import asyncio
import logging
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from connectors.zalo import store
from connectors.zalo.store import TokenPair
from conversations.engine import BotMessage, Button
from ground.settings import Settings
from models import utcnow

log = logging.getLogger(__name__)

MAX_TEXT = 2000  # characters in one CS message
MAX_BUTTONS = 5
EXPIRY_MARGIN = timedelta(minutes=5)  # refresh a little early rather than send with a token about to die
# -216 invalid / -220 expired (OA API), -124 invalid (ZNS): refresh the token once and try again.
TOKEN_ERRORS = frozenset({-216, -220, -124})
ASK_FOR_PHONE = {
    "title": "Trung tâm Kiểm soát bệnh tật",
    "subtitle": "Xin anh/chị chia sẻ số điện thoại để bắt đầu khai báo y tế (miễn phí).",
}


class ZaloError(RuntimeError):
    """Zalo refused a call (`code` from its envelope) or could not be reached (`code` None)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"Zalo {code}: {message}" if code is not None else f"Zalo: {message}")
        self.code = code


class TokenRefused(ZaloError):
    """The OA has no access token it can use (the refresh token refused, or none set): nothing can be sent."""


def _tokens_from(answer: Any) -> TokenPair:
    """The OAuth answer: the new pair and `expires_in` (seconds, as a string), or Zalo's error."""
    if not isinstance(answer, dict) or not {"access_token", "refresh_token", "expires_in"} <= answer.keys():
        error = answer if isinstance(answer, dict) else {}
        reason = error.get("error_description") or error.get("error_name") or error.get("message") or "no token"
        code = error.get("error")
        raise TokenRefused(code if isinstance(code, int) else None, f"refreshing the OA access token: {reason}")
    expires_at = utcnow() + timedelta(seconds=int(answer["expires_in"]))
    return TokenPair(str(answer["access_token"]), str(answer["refresh_token"]), expires_at)


def _pieces(text: str) -> list[str]:
    return [text[start : start + MAX_TEXT] for start in range(0, len(text), MAX_TEXT)] or [text]


def _with_buttons(buttons: tuple[Button, ...]) -> dict[str, Any]:
    """Quick answers: an `oa.query.hide` button sends its payload back as the user's text, without showing it."""
    if not buttons:
        return {}
    # Zalo shows at most five; a resident can still type any other answer.
    shown = [{"title": b.title, "type": "oa.query.hide", "payload": b.payload} for b in buttons[:MAX_BUTTONS]]
    return {"attachment": {"type": "template", "payload": {"buttons": shown}}}


class ZaloClient:
    """The OA's side of the conversation: CS messages and ZNS templates, with the OA's rotating access token.

    The token pair lives in the store (row "zalo_oa"), bootstrapped from the zalo_refresh_token setting. A refresh
    token works once, so refreshes are serialised and the new pair is committed before it is used.
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._http = httpx.AsyncClient(timeout=10.0)
        self._refreshing = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_replies(self, user_id: str, messages: list[BotMessage]) -> str | None:
        """The bot's messages in order; returns the id of the last one sent."""
        message_id = None
        for message in messages:
            message_id = await self.send_text(user_id, message.text, message.buttons)
        return message_id

    async def send_text(self, user_id: str, text: str, buttons: tuple[Button, ...] = ()) -> str:
        """A CS message (split past 2,000 characters, the buttons under the last piece)."""
        *first, last = _pieces(text)
        for piece in first:
            await self._send_cs(user_id, {"text": piece})
        return await self._send_cs(user_id, {"text": last, **_with_buttons(buttons)})

    async def ask_for_phone(self, user_id: str) -> str:
        """The request_user_info card: the user's answer arrives as a user_submit_info event."""
        card = {"template_type": "request_user_info", "elements": [ASK_FOR_PHONE]}
        return await self._send_cs(user_id, {"attachment": {"type": "template", "payload": card}})

    async def send_zns(self, phone: str, template_id: str, template_data: dict[str, str], tracking_id: str) -> str:
        """A ZNS template to a phone in the 84xxxxxxxxx form; returns Zalo's msg_id."""
        body = {"phone": phone, "template_id": template_id, "template_data": template_data, "tracking_id": tracking_id}
        data = await self._call(f"{self.settings.zalo_zns_base_url.rstrip('/')}/message/template", body)
        return str(data.get("msg_id"))

    async def _send_cs(self, user_id: str, message: dict[str, Any]) -> str:
        url = f"{self.settings.zalo_api_base_url.rstrip('/')}/v3.0/oa/message/cs"
        data = await self._call(url, {"recipient": {"user_id": user_id}, "message": message})
        return str(data.get("message_id"))

    async def _call(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self._access_token()
        try:
            return await self._post(url, body, token)
        except ZaloError as error:
            if error.code not in TOKEN_ERRORS:
                raise
            log.info("Zalo refused the OA access token (%s): refreshing it", error.code)
            return await self._post(url, body, await self._refresh(stale=token))

    async def _post(self, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        """One API call; Zalo's envelope says `error` 0 on success, anything else is a failure even with HTTP 200."""
        try:
            response = await self._http.post(url, json=body, headers={"access_token": token})
            envelope = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ZaloError(None, f"{url}: {error.__class__.__name__} {error}") from error
        code = envelope.get("error") if isinstance(envelope, dict) else None
        if response.status_code != 200 or code is None:
            raise ZaloError(None, f"{url} answered HTTP {response.status_code}")
        if int(code) != 0:
            raise ZaloError(int(code), str(envelope.get("message", "")))
        return envelope.get("data") or {}

    async def _access_token(self) -> str:
        stored = await asyncio.to_thread(store.stored_tokens, self.sessions)
        if stored is None or stored.expires_at <= utcnow() + EXPIRY_MARGIN:
            return await self._refresh(stale=stored.access_token if stored else None)
        return stored.access_token

    async def _refresh(self, stale: str | None) -> str:
        """A new token pair, stored before use. Whoever waited on the lock uses the pair the first caller got."""
        async with self._refreshing:
            stored = await asyncio.to_thread(store.stored_tokens, self.sessions)
            if stored is not None and stored.access_token != stale:
                return stored.access_token
            refresh_token = stored.refresh_token if stored else self.settings.zalo_refresh_token.get_secret_value()
            if not refresh_token:
                raise TokenRefused(None, "no OA refresh token: set OUTREACH_ZALO_REFRESH_TOKEN")
            tokens = await self._exchange(refresh_token)
            await asyncio.to_thread(store.store_tokens, self.sessions, tokens)
            return tokens.access_token

    async def _exchange(self, refresh_token: str) -> TokenPair:
        url = f"{self.settings.zalo_oauth_base_url.rstrip('/')}/v4/oa/access_token"
        form = {"refresh_token": refresh_token, "app_id": self.settings.zalo_app_id, "grant_type": "refresh_token"}
        try:
            response = await self._http.post(
                url, data=form, headers={"secret_key": self.settings.zalo_app_secret_key.get_secret_value()}
            )
            return _tokens_from(response.json())
        except (httpx.HTTPError, ValueError) as error:
            raise ZaloError(None, f"refreshing the OA access token: {error.__class__.__name__} {error}") from error

"""A local Zalo: the OA API, OAuth and ZNS the platform calls, and Zalo's servers posting webhooks to it.

The API side follows reference/protocols.md section 1: `POST /v3.0/oa/message/cs` with the bare `access_token`
header, `POST /v4/oa/access_token` (form body, `secret_key` header, single-use rotating refresh tokens,
`expires_in` as a string), `POST /message/template` (ZNS by phone, template parameters checked); every answer is
HTTP 200 with the `{"error", "message", "data"}` envelope, failures included. The webhook side posts events the
way Zalo does: ids and timestamps as strings, `X-ZEvent-Signature: mac=` + SHA-256(app_id + body + timestamp +
OA secret key), `X-ZEvent-Server: ZNS` on delivery receipts, and no more than 2 s to answer.
"""

import asyncio
import hashlib
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request

from tests.fakes import ServedFake

BUTTON_TYPES = {"oa.query.hide", "oa.query.show", "oa.open.url", "oa.open.phone", "oa.open.sms"}
ZNS_PHONE = re.compile(r"^(84|0)?[35789]\d{8}$")  # ZNS takes 84xxxxxxxxx, 0xxxxxxxxx or the bare 9 digits
WEBHOOK_TIMEOUT_S = 2.0  # Zalo's limit: later than this, it retries
WEBHOOK_TRIES = 3


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def zalo_id() -> str:
    """A Zalo id: a 19-digit number, beyond 2^53 (a float would round it)."""
    return str(secrets.randbelow(9 * 10**18) + 10**18)


def _envelope(error: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": error, "message": message, **({"data": data} if data is not None else {})}


@dataclass(frozen=True)
class SentMessage:
    """A CS message the platform sent and Zalo accepted."""

    user_id: str
    message_id: str
    text: str | None
    attachment: dict[str, Any] | None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return ((self.attachment or {}).get("payload") or {}).get("buttons") or []

    @property
    def template_type(self) -> str | None:
        return ((self.attachment or {}).get("payload") or {}).get("template_type")


@dataclass(frozen=True)
class SentZns:
    phone: str
    template_id: str
    template_data: dict[str, str]
    tracking_id: str
    msg_id: str


def _cs_problem(body: Any) -> str | None:
    """What Zalo would call invalid in a CS message (error -201 names the field)."""
    if not isinstance(body, dict) or not isinstance((body.get("recipient") or {}).get("user_id"), str):
        return "recipient.user_id"
    message = body.get("message")
    if not isinstance(message, dict) or not (message.get("text") or message.get("attachment")):
        return "message"
    if "text" in message and (not isinstance(message["text"], str) or len(message["text"]) > 2000):
        return "message.text"
    attachment = message.get("attachment")
    if attachment is None:
        return None
    payload = attachment.get("payload") or {}
    if attachment.get("type") != "template":
        return "message.attachment.type"
    if payload.get("template_type") == "request_user_info":
        elements = payload.get("elements") or []
        ok = len(elements) == 1 and all(isinstance(elements[0].get(k), str) for k in ("title", "subtitle"))
        return None if ok else "message.attachment.payload.elements"
    buttons = payload.get("buttons")
    if not message.get("text") or not isinstance(buttons, list) or not 1 <= len(buttons) <= 5:
        return "message.attachment.payload.buttons"
    for button in buttons:
        if button.get("type") not in BUTTON_TYPES or not button.get("title"):
            return "message.attachment.payload.buttons.type"
        if button["type"].startswith("oa.query.") and not isinstance(button.get("payload"), str):
            return "message.attachment.payload.buttons.payload"
    return None


class FakeZalo(ServedFake):
    def __init__(self, templates: dict[str, set[str]] | None = None) -> None:
        self.app_id, self.oa_id = zalo_id(), zalo_id()
        self.oa_secret_key, self.app_secret_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.access_token: str | None = None  # none issued yet: the platform starts from its refresh token
        self.refresh_token = secrets.token_urlsafe(32)
        self.templates = templates or {}  # approved ZNS templates: id -> parameter names
        self.messages: list[SentMessage] = []
        self.zns: list[SentZns] = []
        self.cs_requests = 0  # every CS call, refused ones included
        self.refreshes = 0
        self.waiting = 0  # CS calls held by hold_messages()
        self.webhook_url = ""  # the platform's /webhooks/zalo, set once it runs
        self._failures: deque[tuple[int, str]] = deque()
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        self.http = httpx.Client(timeout=WEBHOOK_TIMEOUT_S)
        self.app = self._build_app()

    def settings(self) -> dict[str, str]:
        """What points the platform's Zalo OA and ZNS at this fake, once running (all three APIs answer here)."""
        apis = ("zalo_api_base_url", "zalo_oauth_base_url", "zalo_zns_base_url")
        return {
            "zalo_app_id": self.app_id,
            "zalo_oa_secret_key": self.oa_secret_key,
            "zalo_app_secret_key": self.app_secret_key,
            "zalo_refresh_token": self.refresh_token,
            **dict.fromkeys(apis, self.url),
        }

    # ---- Steering the API side -----------------------------------------------------------------------------

    def expire_access_token(self) -> None:
        """Zalo revokes the current access token: the next call with it gets -216."""
        self.access_token = secrets.token_urlsafe(32)

    def fail_next(self, code: int, message: str) -> None:
        """The next CS or ZNS call is refused with this error (e.g. -230: no interaction in 7 days)."""
        self._failures.append((code, message))

    def hold_messages(self) -> None:
        """CS calls wait (in flight) until release_messages()."""
        self._released.clear()

    def release_messages(self) -> None:
        self._released.set()

    def messages_to(self, user_id: str) -> list[SentMessage]:
        return [m for m in self.messages if m.user_id == user_id]

    # ---- The API -------------------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/v3.0/oa/message/cs", self._message_cs, methods=["POST"])
        app.add_api_route("/v4/oa/access_token", self._access_token, methods=["POST"])
        app.add_api_route("/message/template", self._zns, methods=["POST"])
        return app

    def _refusal(self, request: Request, invalid_token_code: int) -> dict[str, Any] | None:
        token = request.headers.get("access_token")
        if self.access_token is None or token != self.access_token:
            return _envelope(invalid_token_code, "Access token is invalid")
        if self._failures:
            return _envelope(*self._failures.popleft())
        return None

    async def _message_cs(self, request: Request) -> dict[str, Any]:
        self.cs_requests += 1
        if refusal := self._refusal(request, -216):
            return refusal
        body = await request.json()
        if problem := _cs_problem(body):
            return _envelope(-201, f"{problem} is invalid")
        self.waiting += 1
        await asyncio.to_thread(self._released.wait, 30)
        self.waiting -= 1
        sent = SentMessage(
            body["recipient"]["user_id"],
            secrets.token_hex(10),
            body["message"].get("text"),
            body["message"].get("attachment"),
        )
        with self._lock:
            self.messages.append(sent)
        return _envelope(0, "Success", {"message_id": sent.message_id, "user_id": sent.user_id})

    async def _access_token(self, request: Request) -> dict[str, Any]:
        form = await request.form()
        if request.headers.get("secret_key") != self.app_secret_key:
            return {"error": -14002, "error_name": "Invalid app secret key", "error_description": "secret_key"}
        if form.get("app_id") != self.app_id or form.get("grant_type") != "refresh_token":
            return {"error": -14001, "error_name": "Invalid parameter", "error_description": "app_id, grant_type"}
        with self._lock:
            if form.get("refresh_token") != self.refresh_token:  # each refresh token works once
                return {"error": -14014, "error_name": "Invalid refresh token", "error_description": "used or wrong"}
            self.access_token, self.refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self.refreshes += 1
            return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_in": "90000"}

    async def _zns(self, request: Request) -> dict[str, Any]:
        if refusal := self._refusal(request, -124):
            return refusal
        body = await request.json()
        if not ZNS_PHONE.match(str(body.get("phone", ""))):
            return _envelope(-108, "Phone number invalid")
        params = self.templates.get(body.get("template_id"))
        if params is None:
            return _envelope(-109, "Template ID invalid")
        data = body.get("template_data")
        if not data:
            return _envelope(-111, "Template data empty")
        if set(data) != params or not all(isinstance(v, str) and v for v in data.values()):
            return _envelope(-112, "Template data invalid")
        tracking_id = body.get("tracking_id")
        if not isinstance(tracking_id, str) or len(tracking_id) > 48:
            return _envelope(-201, "tracking_id is invalid")
        sent = SentZns(body["phone"], body["template_id"], data, tracking_id, secrets.token_hex(10))
        with self._lock:
            self.zns.append(sent)
            remaining = str(500 - len(self.zns))
        return _envelope(
            0,
            "Success",
            {
                "msg_id": sent.msg_id,
                "sent_time": _now_ms(),
                "quota": {"dailyQuota": "500", "remainingQuota": remaining},
            },
        )

    # ---- Zalo's webhooks -----------------------------------------------------------------------------------

    def signature(self, body: bytes, timestamp: str, first_term: str | None = None) -> str:
        signed = (first_term or self.app_id).encode() + body + timestamp.encode() + self.oa_secret_key.encode()
        return "mac=" + hashlib.sha256(signed).hexdigest()

    def post_webhook(self, body: bytes, signature: str | None, *, zns: bool = False) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-ZEvent-Signature"] = signature
        if zns:
            headers["X-ZEvent-Server"] = "ZNS"
        for _ in range(WEBHOOK_TRIES - 1):
            try:
                return self.http.post(self.webhook_url, content=body, headers=headers)
            except httpx.TimeoutException:
                # Zalo takes an answer later than 2 s as none and sends the same bytes again; the platform must
                # handle the event once all the same (a loaded machine's first request can be that slow).
                continue
        return self.http.post(self.webhook_url, content=body, headers=headers)

    def deliver(self, event: dict[str, Any], *, zns: bool = False) -> httpx.Response:
        """Post a signed event; posting the same event again is Zalo's retry of it (the same bytes)."""
        body = json.dumps(event, ensure_ascii=False).encode()
        return self.post_webhook(body, self.signature(body, event["timestamp"]), zns=zns)

    def _event(self, name: str, **fields: Any) -> dict[str, Any]:
        return {"app_id": self.app_id, "event_name": name, "timestamp": _now_ms(), **fields}

    def text_event(self, user_id: str, text: str, quote_msg_id: str | None = None) -> dict[str, Any]:
        """A message; `quote_msg_id` when the user answered one of the OA's with Zalo's reply."""
        message = {"text": text, "msg_id": secrets.token_hex(10)}
        if quote_msg_id:
            message["quote_msg_id"] = quote_msg_id
        return self._event(
            "user_send_text",
            user_id_by_app=zalo_id(),
            sender={"id": user_id},
            recipient={"id": self.oa_id},
            message=message,
        )

    def follow_event(self, user_id: str, name: str = "follow") -> dict[str, Any]:
        return self._event(
            name, oa_id=self.oa_id, follower={"id": user_id}, user_id_by_app=zalo_id(), source="oa_profile"
        )

    def submit_info_event(self, user_id: str, phone: str, name: str, **address: str) -> dict[str, Any]:
        """The answer to a request_user_info card. `full_address={...}` is today's shape; flat fields the older."""
        info = {"name": name, "phone": phone, "user_dob": "30/10/1985", "gender": "Nam", **address}
        return self._event("user_submit_info", sender={"id": user_id}, recipient={"id": self.oa_id}, info=info)

    def zns_receipt(self, sent: SentZns) -> dict[str, Any]:
        return self._event(
            "user_received_message",
            sender={"id": self.oa_id},
            recipient={"id": sent.phone},
            message={"delivery_time": _now_ms(), "msg_id": sent.msg_id, "tracking_id": sent.tracking_id},
        )

    def received_event(self, sent: SentMessage) -> dict[str, Any]:
        """The receipt of an OA message: the OA as sender, the user as recipient, no tracking id."""
        return self._event(
            "user_received_message",
            sender={"id": self.oa_id},
            recipient={"id": sent.user_id},
            message={"msg_id": sent.message_id},
        )

    def seen_event(self, user_id: str, *sent: SentMessage) -> dict[str, Any]:
        """The user saw these OA messages (Zalo lists every id seen at once)."""
        return self._event(
            "user_seen_message",
            sender={"id": self.oa_id},
            recipient={"id": user_id},
            message={"msg_ids": [m.message_id for m in sent]},
        )

"""The webhook: every Zalo event, signed, answered 200 at once and handled after the answer, each event once."""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request

from connectors.zalo import store
from connectors.zalo.broadcasts import THANKS
from connectors.zalo.conversations import ZaloConversations
from connectors.zalo.events import (
    FollowEvent,
    Receipt,
    SeenEvent,
    SubmitInfoEvent,
    TextEvent,
    ZaloEvent,
    parse_event,
    signed_by,
)
from ground.phones import InvalidPhone, normalize_phone
from ground.settings import Settings
from models import utcnow

log = logging.getLogger(__name__)

PHONE_UNUSABLE = "Xin lỗi, số điện thoại anh/chị chia sẻ không phải số Việt Nam hợp lệ nên chưa khai báo được."


def router(zalo: ZaloConversations, settings: Settings) -> APIRouter:
    inbound = ZaloInbound(zalo, settings)
    routes = APIRouter(tags=["Zalo (webhooks)"], include_in_schema=False)

    @routes.post("/webhooks/zalo")
    async def webhook(request: Request, background: BackgroundTasks) -> dict[str, bool]:
        """Check the signature, remember the event, answer; the work happens after the answer."""
        event = await inbound.receive(await request.body(), request.headers.get("X-ZEvent-Signature"))
        if event is not None:
            background.add_task(inbound.process, event)
        return {"received": True}

    return routes


class ZaloInbound:
    """What each Zalo event does."""

    def __init__(self, zalo: ZaloConversations, settings: Settings) -> None:
        self.zalo = zalo
        self.client = zalo.client
        self.sessions = zalo.sessions
        self.settings = settings
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            TextEvent: self._on_text,
            FollowEvent: self._on_follow,
            SubmitInfoEvent: self._on_submit_info,
            Receipt: self._on_receipt,
            SeenEvent: self._on_seen,
        }

    async def receive(self, raw: bytes, signature: str | None) -> ZaloEvent | None:
        """The event to handle, or None when it is not ours, stale or handled before; 401 when not signed by Zalo.

        An event stamped outside the freshness window (a replay of an old signed event) is answered 200 too, and
        nothing is done or stored: any other answer would only make Zalo send it again."""
        event = parse_event(self._signed_body(raw, signature))
        if event is None:
            return None
        if not event.fresh(utcnow(), self.settings.zalo_event_max_age_s):
            log.warning(
                "Zalo %s stamped %s ignored: outside the %d s window (a replay, or a clock far off)",
                event.event_name,
                event.timestamp,
                self.settings.zalo_event_max_age_s,
            )
            return None
        if not await asyncio.to_thread(store.first_event, self.sessions, event.key):
            log.debug("Zalo retried %s %s: handled already", event.event_name, event.key)
            return None
        return event

    async def process(self, event: ZaloEvent) -> None:
        try:
            # One event at a time per user: messages are answered in order and never open two conversations.
            async with self.zalo.user_lock(event.user_id):
                await self._handlers[type(event)](event)
        except Exception:  # Zalo has its 200 already: the log is the only place a failure can show
            log.exception("Zalo %s could not be handled", event.event_name)

    def _signed_body(self, raw: bytes, header: str | None) -> dict[str, Any]:
        try:
            body = json.loads(raw, parse_int=str)
        except ValueError:
            body = None
        secret = self.settings.zalo_oa_secret_key.get_secret_value()
        signer = signed_by(raw, body, header, secret) if isinstance(body, dict) else None
        if signer is None:
            raise HTTPException(401, "X-ZEvent-Signature does not match this request")
        log.log(logging.INFO if signer == "oa_id" else logging.DEBUG, "Zalo webhook signed with the %s", signer)
        return body

    async def _on_follow(self, event: FollowEvent) -> None:
        await asyncio.to_thread(store.set_following, self.sessions, event.user_id, event.event_name == "follow")

    async def _on_text(self, event: TextEvent) -> None:
        """A message (or a button tap) goes to the user's live conversation; else one is opened, or their phone
        asked."""
        person_id, conversation_id = await asyncio.to_thread(store.heard_from, self.sessions, event.user_id, event.at)
        if team := await self._answer_to_broadcast(event, quoted_only=conversation_id is not None):
            await self.client.send_text(event.user_id, THANKS.format(team=team))
        elif person_id is None:
            await self.client.ask_for_phone(event.user_id)
        elif conversation_id is None:
            await self.zalo.open_for_resident(event.user_id, person_id)
        else:
            await self.zalo.answer(event.user_id, conversation_id, event.message)

    async def _on_submit_info(self, event: SubmitInfoEvent) -> None:
        """The user shared their phone from the card: they are that person from now on."""
        try:
            phone = normalize_phone(event.info.phone)
        except InvalidPhone as error:
            log.warning("Zalo user shared an unusable phone: %s", error)
            await self.client.send_text(event.user_id, PHONE_UNUSABLE)
            return
        person_id, conversation_id = await asyncio.to_thread(
            store.link_person, self.sessions, event.user_id, phone, event.info, event.at
        )
        if conversation_id is None:
            await self.zalo.open_for_resident(event.user_id, person_id)

    async def _answer_to_broadcast(self, event: TextEvent, *, quoted_only: bool) -> str | None:
        """A team member answering a broadcast (a resident mid-declaration only when they quote it)."""
        hours = self.settings.zalo_reply_window_hours
        return await asyncio.to_thread(
            store.answer_broadcast,
            self.sessions,
            event.user_id,
            event.message,
            event.at,
            hours,
            quoted_only=quoted_only,
        )

    async def _on_receipt(self, event: Receipt) -> None:
        await asyncio.to_thread(store.mark_delivered, self.sessions, event.message, event.user_id, event.at)

    async def _on_seen(self, event: SeenEvent) -> None:
        await asyncio.to_thread(store.mark_seen, self.sessions, event.user_id, event.message.msg_ids, event.at)

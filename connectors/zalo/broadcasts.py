"""Broadcasts to community teams over Zalo: each member by OA message when they wrote to the OA within the reply
window (their replies come back by webhook), else by ZNS with a personal link to the message and a reply box."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import teams
from campaigns.teams import Outgoing
from connectors.zalo import store
from connectors.zalo.client import ZaloClient, ZaloError
from connectors.zalo.outbound import CS_UNREACHABLE
from connectors.zalo.store import TRACKING_PREFIX
from ground.settings import Settings
from models import Person, ZaloUser, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
REPLY_HINT = "Anh/chị trả lời ngay tại đây để báo lại cho Trung tâm."
THANKS = "Đã ghi nhận phản hồi của anh/chị cho {team}. Cảm ơn anh/chị!"


def broadcast_text(outgoing: Outgoing) -> str:
    return f"[{outgoing.team}] {outgoing.text}\n\n{REPLY_HINT}"


def link_url(public_url: str, key: str) -> str:
    return f"{public_url}/b/{key}"


@dataclass(frozen=True)
class BroadcastSender:
    """Sends the deliveries the worker claims (one worker per delivery; see campaigns/teams.py)."""

    client: ZaloClient
    sessions: sessionmaker[Session]
    settings: Settings

    async def send_due(self) -> int:
        """Send every queued delivery; returns how many were sent."""
        due = await self._in_store(teams.claim_due, utcnow())
        sent = 0
        for outgoing in due:
            sent += await self.send(outgoing)
        return sent

    async def send(self, outgoing: Outgoing) -> bool:
        user_id = await asyncio.to_thread(self._user_in_window, outgoing)
        why_not_oa = "no Zalo user in the reply window"
        if user_id is not None:
            try:
                message_id = await self.client.send_text(user_id, broadcast_text(outgoing))
            except ZaloError as error:
                if error.code not in CS_UNREACHABLE:
                    return await self._failed(outgoing, str(error))
                why_not_oa = str(error)
            else:
                await self._in_store(teams.record_sent, outgoing.delivery_id, "zalo", message_id, user_id)
                return True
        return await self._by_zns(outgoing, why_not_oa)

    async def _by_zns(self, outgoing: Outgoing, why_not_oa: str) -> bool:
        template_id = self.settings.zalo_broadcast_template_id
        if not template_id:
            return await self._failed(outgoing, f"{why_not_oa}, and no ZNS template set for broadcasts")
        key = await self._in_store(teams.new_link, outgoing.delivery_id)
        values = {"name": outgoing.name, "team": outgoing.team, "link": link_url(self.settings.public_url, key)}
        try:
            data = {p: value.format_map(values) for p, value in self.settings.zalo_broadcast_template_data.items()}
        except (KeyError, ValueError) as error:
            return await self._failed(outgoing, f"zalo_broadcast_template_data may use {sorted(values)}: {error!r}")
        tracking_id = f"{TRACKING_PREFIX}{outgoing.delivery_id}"
        try:
            msg_id = await self.client.send_zns(outgoing.phone.removeprefix("+"), template_id, data, tracking_id)
        except ZaloError as error:
            return await self._failed(outgoing, f"{why_not_oa}; ZNS: {error}")
        await self._in_store(teams.record_sent, outgoing.delivery_id, "zns", msg_id)
        return True

    async def _failed(self, outgoing: Outgoing, error: str) -> bool:
        log.warning("broadcast delivery %s to %s failed: %s", outgoing.delivery_id, outgoing.name, error)
        await self._in_store(teams.record_failed, outgoing.delivery_id, error)
        return False

    async def _in_store(self, work: Callable[..., T], *args: Any) -> T:
        """`work(session, *args)` in one transaction, in a thread."""

        def run() -> T:
            with self.sessions.begin() as session:
                return work(session, *args)

        return await asyncio.to_thread(run)

    def _user_in_window(self, outgoing: Outgoing) -> str | None:
        """The member's Zalo user (the list's id, else the user who shared the member's phone) when they wrote to
        the OA within the reply window."""
        with self.sessions() as session:
            user = session.get(ZaloUser, outgoing.zalo_user_id) if outgoing.zalo_user_id else None
            if user is None:
                user = session.scalars(
                    select(ZaloUser)
                    .join(Person, Person.id == ZaloUser.person_id)
                    .where(Person.phone == outgoing.phone)
                    .order_by(ZaloUser.last_message_at.desc().nulls_last())
                    .limit(1)
                ).first()
            hours = self.settings.zalo_reply_window_hours
            if user is None or not store.in_reply_window(user.last_message_at, utcnow(), hours):
                return None
            return user.user_id

"""Broadcasts to community teams over Zalo: each member by OA message when they wrote to the OA within the reply
window (their answer comes back by webhook), else by ZNS with a personal link to the message and a reply box.

What a failure means decides what happens next (campaigns/teams.py keeps the states): Zalo refusing the OA message
as out of reach moves on to ZNS; ZNS refusing the member (no Zalo, refuses ZNS) fails the delivery; anything else
may pass (a quota, a night-time ban, a bug of ours) and the delivery is tried again later. Zalo out of reach, or
the OA's token refused, is an outage: the rest of the batch goes back untried and the sender rests a minute.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import teams
from campaigns.teams import Outgoing
from connectors.zalo import store
from connectors.zalo.client import MAX_TEXT, TOKEN_ERRORS, TokenRefused, ZaloClient, ZaloError
from connectors.zalo.outbound import CS_UNREACHABLE, ZNS_UNREACHABLE
from connectors.zalo.store import TRACKING_PREFIX
from ground.settings import Settings
from models import Person, ZaloUser, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
REPLY_HINT = "Anh/chị trả lời ngay tại đây để báo lại cho Trung tâm."
READ_ALL = "…\n\nXem toàn bộ và trả lời tại: {link}"
# The member's next message is theirs again: the thanks says so, for one who wrote about their own health.
THANKS = (
    "Đã ghi nhận phản hồi của anh/chị cho {team}. Cảm ơn anh/chị! "
    "Nếu anh/chị cần khai báo y tế hoặc cần hỗ trợ, xin nhắn tin tiếp cho Trung tâm."
)
SHOWN_IN_OA = 1500  # characters of a message too long for one OA message; the link shows the rest
OUTAGE_REST = timedelta(minutes=1)


class _Outage(Exception):
    """Zalo cannot be reached, or refuses the OA itself: no delivery of this batch would fare better."""


class _Lost(Exception):
    """The claim went to another worker before the link was made: that worker sends the message."""


def link_url(public_url: str, key: str) -> str:
    return f"{public_url}/b/{key}"


@dataclass
class BroadcastSender:
    """Sends the deliveries the worker claims (each claimed by one worker; see campaigns/teams.py)."""

    client: ZaloClient
    sessions: sessionmaker[Session]
    settings: Settings
    resting_until: datetime | None = field(default=None)

    async def send_due(self) -> int:
        """Send every due delivery, a few claimed at a time; returns how many were sent."""
        if self.resting_until and utcnow() < self.resting_until:
            return 0
        sent = 0
        while batch := await self._in_store(teams.claim_due, utcnow()):
            for index, outgoing in enumerate(batch):
                try:
                    sent += await self.send(outgoing)
                except _Outage as outage:
                    log.warning("Zalo is out of reach, broadcasts rest a minute: %s", outage)
                    await self._in_store(teams.retry_later, outgoing, str(outage))
                    for untried in batch[index + 1 :]:
                        await self._in_store(teams.retry_later, untried, str(outage), counted=False)
                    self.resting_until = utcnow() + OUTAGE_REST
                    return sent
                except _Lost:
                    continue
                except ZaloError as error:  # a quota, a night-time ban, a request Zalo refused: later
                    log.warning("broadcast delivery %s: %s", outgoing.delivery_id, error)
                    await self._in_store(teams.retry_later, outgoing, str(error))
                except Exception as error:  # one delivery's trouble is not the others': it is tried again later
                    log.exception("broadcast delivery %s could not be sent", outgoing.delivery_id)
                    await self._in_store(teams.retry_later, outgoing, f"{error.__class__.__name__}: {error}")
        return sent

    async def send(self, outgoing: Outgoing) -> bool:
        if not await self._in_store(teams.still_mine, outgoing):
            return False  # another worker took it over: it sends it
        user_id = await asyncio.to_thread(self._user_in_window, outgoing)
        if user_id is None:
            return await self._by_zns(outgoing, "no Zalo user in the reply window")
        try:
            text = await self._oa_text(outgoing)
            message_id = await self.client.send_text(user_id, text)
        except ZaloError as error:
            if error.code in CS_UNREACHABLE:
                return await self._by_zns(outgoing, str(error))
            raise self._failure(error) from error
        await self._in_store(teams.record_sent, outgoing, "zalo", message_id, user_id)
        return True

    async def _oa_text(self, outgoing: Outgoing) -> str:
        """The message in one OA message (its id is the one receipts and quotes name): a long one is cut, with the
        member's link to the rest."""
        text = f"[{outgoing.team}] {outgoing.text}\n\n{REPLY_HINT}"
        if len(text) <= MAX_TEXT:
            return text
        link = link_url(self.settings.public_url, await self._link(outgoing))
        return f"[{outgoing.team}] {outgoing.text[:SHOWN_IN_OA]}{READ_ALL.format(link=link)}"

    async def _by_zns(self, outgoing: Outgoing, why_not_oa: str) -> bool:
        template_id = self.settings.zalo_broadcast_template_id
        if not template_id:
            await self._in_store(teams.record_failed, outgoing, f"{why_not_oa}, and no ZNS template for broadcasts")
            return False
        link = link_url(self.settings.public_url, await self._link(outgoing))
        values = {"name": outgoing.name, "team": outgoing.team, "link": link}
        try:
            data = {p: value.format_map(values) for p, value in self.settings.zalo_broadcast_template_data.items()}
        except Exception as error:  # a setting's mistake: sent again once it is fixed
            problem = f"OUTREACH_ZALO_BROADCAST_TEMPLATE_DATA may use {sorted(values)}: {error!r}"
            await self._in_store(teams.record_failed, outgoing, problem)
            return False
        tracking_id = f"{TRACKING_PREFIX}{outgoing.delivery_id}"
        try:
            msg_id = await self.client.send_zns(outgoing.phone.removeprefix("+"), template_id, data, tracking_id)
        except ZaloError as error:
            if error.code in ZNS_UNREACHABLE:
                await self._in_store(teams.record_failed, outgoing, f"{why_not_oa}; ZNS: {error}")
                return False
            raise self._failure(error) from error
        await self._in_store(teams.record_sent, outgoing, "zns", msg_id)
        return True

    async def _link(self, outgoing: Outgoing) -> str:
        key = await self._in_store(teams.new_link, outgoing)
        if key is None:
            raise _Lost(outgoing.delivery_id)
        return key

    @staticmethod
    def _failure(error: ZaloError) -> Exception:
        outage = isinstance(error, TokenRefused) or error.code is None or error.code in TOKEN_ERRORS
        return _Outage(str(error)) if outage else error

    async def _in_store(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(session, *args)` in one transaction, in a thread."""

        def run() -> T:
            with self.sessions.begin() as session:
                return work(session, *args, **kwargs)

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

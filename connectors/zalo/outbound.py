"""The campaigns' outbound channels on Zalo: an OA message to a user who wrote recently, or a ZNS template by phone."""

import asyncio
from dataclasses import dataclass

from campaigns.channels import ChannelFailed, Contact, Placed, Unreachable
from connectors.zalo import store
from connectors.zalo.client import ZaloClient, ZaloError
from connectors.zalo.conversations import ZaloConversations
from conversations.duty import Member, NotifyFailed
from conversations.outreach import Outreach, OutreachStore
from conversations.service import EngineDown
from models import Channel, utcnow

# OA API answers that mean this user cannot get a CS message now (not following, inactive, no recent interaction,
# -305 is the 2021-era "cannot respond after 48 hours"): another channel may still reach them.
CS_UNREACHABLE = frozenset({-213, -227, -230, -232, -305})
# ZNS answers about the recipient, not about us: -108 the phone cannot take ZNS, -110 their Zalo app is too old,
# -114 inactive / refuses ZNS, -118 no Zalo account on this phone, -119 account cannot receive ZNS. Another channel
# may reach them; retrying ZNS would not (codes past -112 as Zalo's error guide numbers them, unchecked live).
# Everything else (quota, night-time ban, template, token, unknown errors) is on our side or Zalo's: a failed
# try, retried after the campaign's spacing.
ZNS_UNREACHABLE = frozenset({-108, -110, -114, -118, -119})


def _channel_error(error: ZaloError, unreachable: frozenset[int]) -> Exception:
    return Unreachable(str(error)) if error.code in unreachable else ChannelFailed(str(error))


@dataclass(frozen=True)
class ZaloChannel:
    """Opens the conversation by OA message with a person who wrote to the OA recently (OutboundChannel).

    CS messages are replies: only within the reply window after the user's last message. Outside it, or with no
    Zalo user linked to the person, the attempt moves on to the campaign's next channel.
    """

    zalo: ZaloConversations
    reply_window_hours: int
    name: str = Channel.ZALO

    async def reach(self, contact: Contact) -> Placed:
        user_id = await asyncio.to_thread(self._user_in_window, contact.person_id)
        try:
            async with self.zalo.user_lock(user_id):
                message_id = await self.zalo.open(user_id, contact.person_id, Outreach.of_contact(contact))
        except EngineDown as error:
            raise ChannelFailed(f"the dialogue engine is down: {error}") from error
        except ZaloError as error:
            raise _channel_error(error, CS_UNREACHABLE) from error
        return Placed(message_id)

    def _user_in_window(self, person_id: int) -> str:
        user = store.latest_user_of(self.zalo.sessions, person_id)
        if user is None:
            raise Unreachable("no Zalo user has shared this person's phone with the OA")
        if not store.in_reply_window(user.last_message_at, utcnow(), self.reply_window_hours):
            raise Unreachable(f"their last Zalo message is older than the {self.reply_window_hours} h reply window")
        return user.user_id


@dataclass(frozen=True)
class ZnsChannel:
    """Sends the campaign's ZNS template to the person's phone (OutboundChannel); the receipt comes by webhook.

    The tracking id is the attempt's id, so the delivery receipt finds its attempt.
    """

    client: ZaloClient
    outreach: OutreachStore
    name: str = Channel.ZNS

    async def reach(self, contact: Contact) -> Placed:
        rules = contact.rules
        link = await asyncio.to_thread(self.outreach.new_invite, contact.attempt_id)
        values = self._values(contact, link)
        try:
            data = {key: template.format_map(values) for key, template in rules.zns_template_data.items()}
        except (KeyError, ValueError) as error:
            raise ChannelFailed(f"zns_template_data may use {sorted(values)} only: {error!r}") from error
        phone = contact.phone.removeprefix("+")  # 84xxxxxxxxx: the form old and new ZNS rules both accept
        try:
            msg_id = await self.client.send_zns(phone, rules.zns_template_id, data, str(contact.attempt_id))
        except ZaloError as error:
            raise _channel_error(error, ZNS_UNREACHABLE) from error
        return Placed(msg_id)

    @staticmethod
    def _values(contact: Contact, chat_link: str) -> dict[str, str]:
        return {
            "name": contact.name or "anh/chị",
            "phone": "0" + contact.phone.removeprefix("+84"),
            "day": str(contact.follow_up_day),
            "chat_link": chat_link,  # personal: opening it answers this attempt
        }


@dataclass(frozen=True)
class ZaloNotifier:
    """Tells a roster member of an urgent alert by OA message (conversations.duty.Notifier). The OA reaches a member
    who follows it and wrote within the reply window; otherwise Zalo refuses and the member gets an SMS instead."""

    client: ZaloClient
    name: str = "zalo"

    def reaches(self, member: Member) -> bool:
        return member.zalo_user_id is not None

    async def send(self, member: Member, text: str) -> str:
        try:
            return await self.client.send_text(member.zalo_user_id, text)
        except ZaloError as error:
            raise NotifyFailed(str(error)) from error

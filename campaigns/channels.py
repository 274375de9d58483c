"""What the dispatcher asks of a channel: reach one person for one outreach attempt.

A channel either takes the attempt (`Placed`: the call is ringing, the message is on its way; what happens next
arrives later through its webhooks), says it cannot reach this person now (`Unreachable`: the dispatcher hands the
attempt to the next channel of the campaign's fallback order at once), or fails (`ChannelFailed`: counted as a
try, retried after the campaign's spacing).
"""

from dataclasses import dataclass
from typing import Protocol

from campaigns.rules import CampaignRules


@dataclass(frozen=True)
class Contact:
    """Who to reach for one attempt, and what their campaign says."""

    attempt_id: int
    campaign_id: int
    person_id: int
    phone: str  # E.164
    name: str | None
    follow_up_day: int
    rules: CampaignRules


@dataclass(frozen=True)
class Placed:
    provider_ref: str | None  # CallSid, Zalo message id, ...


class Unreachable(Exception):
    """This channel cannot reach this person now (no Zalo follower, reply window closed, ...)."""


class ChannelFailed(Exception):
    """The provider refused or could not be reached; the try counts."""


class OutboundChannel(Protocol):
    name: str

    async def reach(self, contact: Contact) -> Placed: ...

"""What Zalo posts to the webhook: the events the OA handles, and their signature."""

import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError

from models import utcnow

log = logging.getLogger(__name__)


# Ids and timestamps exceed 2^53: the body is parsed with integers kept as text, and only text is accepted here
# (a float would be a rounded id).
UserId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=32)]
EventId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
EpochMs = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{1,20}$")]
Detail = Annotated[str, StringConstraints(strip_whitespace=True)] | None


class _Who(BaseModel):
    id: UserId


class _Event(BaseModel):
    event_name: str
    timestamp: EpochMs

    @property
    def user_id(self) -> str:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """What makes a retry of this event recognisable (events with a msg_id use it)."""
        return f"{self.event_name}:{self.user_id}:{self.timestamp}"

    def fresh(self, now: datetime, max_age_s: int) -> bool:
        """Sent within `max_age_s` of now, either way: the signature covers the timestamp, so an old event replayed
        keeps its age, and a stamp far ahead would outlive any window."""
        return abs(now.timestamp() * 1000 - int(self.timestamp)) <= max_age_s * 1000

    @property
    def at(self) -> datetime:
        """When the user acted (epoch ms), never later than now: a clock running ahead must not stretch the reply
        window."""
        now_ms = int(utcnow().timestamp() * 1000)
        return datetime.fromtimestamp(min(int(self.timestamp), now_ms) / 1000, UTC)


class _SentByResident(_Event):
    sender: _Who

    @property
    def user_id(self) -> str:
        return self.sender.id


class _MessageRef(BaseModel):
    msg_id: EventId


class _AboutMessage(_Event):
    """An event about one message: Zalo retries it with the same msg_id."""

    message: _MessageRef

    @property
    def key(self) -> str:
        return self.message.msg_id


class Message(_MessageRef):
    text: Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
    quote_msg_id: EventId | None = None  # the message the user answered with Zalo's "reply"


class TextEvent(_SentByResident, _AboutMessage):
    event_name: Literal["user_send_text"]
    message: Message


class FollowEvent(_Event):
    event_name: Literal["follow", "unfollow"]
    follower: _Who

    @property
    def user_id(self) -> str:
        return self.follower.id


class _Address(BaseModel):
    user_address: Detail = None
    user_ward: Detail = None
    user_district: Detail = None
    user_city: Detail = None


class SharedInfo(BaseModel):
    phone: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=32)]
    name: Detail = None
    full_address: _Address | None = None
    # The older, flat shape of the same details.
    address: Detail = None
    ward: Detail = None
    district: Detail = None
    city: Detail = None

    def place(self) -> dict[str, str | None]:
        nested = self.full_address
        if nested is not None:
            return {
                "address": nested.user_address,
                "ward": nested.user_ward,
                "district": nested.user_district,
                "province": nested.user_city,
            }
        return {"address": self.address, "ward": self.ward, "district": self.district, "province": self.city}


class SubmitInfoEvent(_SentByResident):
    event_name: Literal["user_submit_info"]
    info: SharedInfo


class Delivery(_MessageRef):
    tracking_id: EventId | None = None  # ours, on ZNS receipts; an OA message's receipt names its msg_id only


class _Recipient(BaseModel):
    id: EventId  # a Zalo user; on ZNS receipts the phone, or its SHA-256 when sent by hashed phone


class Receipt(_AboutMessage):
    """A message the OA sent reached the user: a ZNS template (with our tracking id) or an OA message."""

    event_name: Literal["user_received_message"]
    recipient: _Recipient
    message: Delivery

    @property
    def user_id(self) -> str:
        return self.recipient.id

    @property
    def key(self) -> str:
        return f"received:{self.message.msg_id}"


class _Seen(BaseModel):
    msg_ids: Annotated[list[EventId], Field(min_length=1, max_length=100)]


class SeenEvent(_Event):
    """The user saw the OA's messages (several at once)."""

    event_name: Literal["user_seen_message"]
    recipient: _Who
    message: _Seen

    @property
    def user_id(self) -> str:
        return self.recipient.id


ZaloEvent = TextEvent | FollowEvent | SubmitInfoEvent | Receipt | SeenEvent
_EVENTS: TypeAdapter[ZaloEvent] = TypeAdapter(Annotated[ZaloEvent, Field(discriminator="event_name")])
_RESIDENT_EVENTS = ("user_send_text", "user_submit_info", "follow", "unfollow")
# Events the OA caused itself (its messages echoed, receipts of what it sent) name the OA as their sender.
_SENT_BY_OA = ("oa_send_", "user_received_message", "user_seen_message")


def signed_by(raw: bytes, body: dict[str, Any], header: str | None, oa_secret_key: str) -> str | None:
    """Which id signed the body, 'app_id' or 'oa_id', or None when the signature is missing or wrong.

    X-ZEvent-Signature is `mac=` + SHA-256 (plain, not HMAC) of app_id + the body's exact bytes + timestamp +
    the OA secret key, app_id and timestamp read from the body. Some integrations sign with the OA id instead.
    """
    timestamp = body.get("timestamp")
    if not header or not header.startswith("mac=") or not oa_secret_key or not isinstance(timestamp, str):
        return None
    given = header.removeprefix("mac=").strip().lower().encode()
    for name, first in (("app_id", body.get("app_id")), ("oa_id", _oa_id(body))):
        if isinstance(first, str):
            expected = hashlib.sha256(first.encode() + raw + timestamp.encode() + oa_secret_key.encode())
            if hmac.compare_digest(expected.hexdigest().encode(), given):
                return name
    return None


def _oa_id(body: dict[str, Any]) -> Any:
    if "oa_id" in body:
        return body["oa_id"]
    side = "sender" if str(body.get("event_name", "")).startswith(_SENT_BY_OA) else "recipient"
    party = body.get(side)
    return party.get("id") if isinstance(party, dict) else None


def parse_event(body: dict[str, Any]) -> ZaloEvent | None:
    """The event a signed body holds, or None for one this platform does not handle (or cannot read)."""
    try:
        return _EVENTS.validate_python(body)
    except ValidationError as error:
        name = body.get("event_name")
        # A message or shared phone we cannot read deserves attention; other events are simply not ours to handle.
        level = logging.WARNING if name in _RESIDENT_EVENTS else logging.DEBUG
        log.log(level, "Zalo event %s ignored: %s", name, error.errors(include_input=False))
        return None

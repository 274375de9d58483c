"""What a campaign says: channels in fallback order, calling hours, retries, follow-up days, rate limits.

`next_allowed` is the dialing governor's clock: the first moment at or after a given one that falls inside a
calling window of a working day in the campaign's time zone.
"""

import string
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from models import Channel

ZNS_FIELDS = ("name", "phone", "day", "chat_link")  # what a ZNS template's parameters may be filled with
# Fewer holidays than the days `next_allowed` looks ahead: a calling window is always found.
MAX_HOLIDAYS = 366
# One contact a quarter of an hour at the slowest: a slower rate is a typing slip (its plan would run for centuries).
MIN_RATE = 0.001


class Window(BaseModel):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> "Window":
        if self.start >= self.end:
            raise ValueError(f"a calling window must end after it starts ({self.start}-{self.end})")
        return self


class CampaignRules(BaseModel):
    channels: list[Channel] = Field(
        default=[Channel.VOICE, Channel.SMS], min_length=1, description="fallback order, e.g. voice, zns, sms"
    )
    timezone: str = "Asia/Ho_Chi_Minh"
    calling_hours: list[Window] = Field(
        default=[Window(start=time(8), end=time(11, 30)), Window(start=time(13, 30), end=time(20))], min_length=1
    )
    holidays: list[date] = Field(
        default=[],
        max_length=MAX_HOLIDAYS,
        description="days with no outreach at all (a year's worth at most: a calling window is always ahead)",
    )
    max_attempts_per_day: int = Field(default=3, ge=1, le=10)
    retry_spacing_minutes: int = Field(default=60, ge=5, le=24 * 60)
    follow_up_days: int | list[int] = Field(
        default=14,
        description="N: every day for N days after the exposure date; or a list of day numbers, e.g. [1, 3, 7]",
    )
    new_calls_per_second: float = Field(default=1.0, ge=MIN_RATE, le=100)
    max_concurrent_calls: int = Field(default=10, ge=1, le=1000)
    messages_per_second: float = Field(default=10.0, ge=MIN_RATE, le=1000)
    voice_mode: Literal["gather", "stream"] = Field(
        default="gather",
        description="how calls hear residents: gather (Twilio's recogniser) or stream (our own, over Media Streams)",
    )
    record_voice: bool = Field(
        default=False,
        description="keep each answer spoken on a call in stream mode as audio, for tracers (recording_retention_days)",
    )
    zns_template_id: str | None = Field(default=None, description="the approved ZNS template sent by phone")
    zns_template_data: dict[str, str] = Field(
        default={},
        description="the template's parameters; values may use {name}, {phone}, {day} and {chat_link}",
    )

    @field_validator("channels")
    @classmethod
    def _once_each(cls, channels: list[Channel]) -> list[Channel]:
        if len(set(channels)) != len(channels):
            raise ValueError("each channel may appear once in the fallback order")
        return channels

    @model_validator(mode="after")
    def _zns_needs_a_template(self) -> "CampaignRules":
        if Channel.ZNS in self.channels and not self.zns_template_id:
            raise ValueError("the zns channel needs zns_template_id (an approved template of the OA)")
        for key, value in self.zns_template_data.items():
            if not _plain_fields(value):
                raise ValueError(f"zns_template_data.{key} may use {', '.join(ZNS_FIELDS)} only, as {{name}}")
        return self

    @field_validator("holidays")
    @classmethod
    def _each_once(cls, holidays: list[date]) -> list[date]:
        return sorted(set(holidays))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{zone}'") from None
        return zone

    @field_validator("calling_hours")
    @classmethod
    def _apart(cls, windows: list[Window]) -> list[Window]:
        windows = sorted(windows, key=lambda w: w.start)
        for earlier, later in zip(windows, windows[1:], strict=False):
            if later.start < earlier.end:
                raise ValueError(f"calling windows overlap ({earlier.start}-{earlier.end}, {later.start}-{later.end})")
        return windows

    @field_validator("follow_up_days")
    @classmethod
    def _days(cls, days: int | list[int]) -> int | list[int]:
        if isinstance(days, int) and not 1 <= days <= 60:
            raise ValueError("follow-up lasts 1 to 60 days")
        if isinstance(days, list) and (not days or any(not 0 <= d <= 60 for d in days)):
            raise ValueError("follow-up days are numbers from 0 to 60")
        return days

    def follow_up_offsets(self) -> list[int]:
        """Days after the exposure date on which a person is contacted."""
        days = self.follow_up_days
        return list(range(1, days + 1)) if isinstance(days, int) else sorted(set(days))

    def next_allowed(self, moment: datetime) -> datetime:
        """The first moment at or after `moment` inside calling hours on a working day (in the campaign's zone)."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        holidays = set(self.holidays)
        for day_shift in range(MAX_HOLIDAYS + 4):
            day = local.date() + timedelta(days=day_shift)
            if day in holidays:
                continue
            for window in self.calling_hours:
                opens = datetime.combine(day, window.start, zone)
                closes = datetime.combine(day, window.end, zone)
                if local < closes:
                    return max(local, opens)
        raise ValueError("no calling window in the coming year: check holidays and calling hours")

    def window_close(self, inside: datetime) -> datetime:
        """The end of the calling window that `inside` (a moment `next_allowed` gave) falls in."""
        zone = ZoneInfo(self.timezone)
        local = inside.astimezone(zone)
        end = next(w.end for w in self.calling_hours if w.start <= local.time() < w.end)
        return datetime.combine(local.date(), end, zone)

    def done_at(self, start: datetime, work: timedelta) -> datetime:
        """When `work` begun at `start` is done, counting only time inside calling hours on working days."""
        moment = start
        while True:
            opens = self.next_allowed(moment)
            closes = self.window_close(opens)
            if opens + work <= closes:
                return opens + work
            work -= closes - opens
            moment = closes

    def calling_time(self, start: datetime, end: datetime) -> timedelta:
        """The time inside calling hours on working days between `start` and `end`."""
        total, moment = timedelta(), start
        while (opens := self.next_allowed(moment)) < end:
            closes = min(self.window_close(opens), end)
            total += closes - opens
            moment = closes
        return total


def _plain_fields(template: str) -> bool:
    """The template names only ZNS_FIELDS, each as a plain {field}: no format spec (a width of a billion would build
    a billion-character message), no conversion, no attribute or index."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:  # an unmatched brace
        return False
    return all(
        field is None or (field in ZNS_FIELDS and not spec and not conversion) for _, field, spec, conversion in parts
    )

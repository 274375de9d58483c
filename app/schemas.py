"""What the API returns: the declaration exactly as ../shared/declaration.schema.json says (the API adds where it
came from beside it: DeclarationRecord), and transcripts."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from models import Channel, Conversation, Declaration, DeclarationChange, Person, Turn

# Numbers the store can hold: ids are INTEGER columns (32-bit on PostgreSQL), offsets go to OFFSET (64-bit). A number
# beyond is refused with a 422 naming the parameter before any query, instead of failing in the database driver (a 500).
# Every id and offset the API takes (path, query or body) is one of these.
STORE_ID_MAX = 2**31 - 1
STORE_OFFSET_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=STORE_ID_MAX)]
Offset = Annotated[int, Field(ge=0, le=STORE_OFFSET_MAX, description="rows to skip")]

Symptom = Literal[
    "fever",
    "cough",
    "shortness_of_breath",
    "sore_throat",
    "fatigue",
    "loss_of_taste_or_smell",
    "runny_nose",
    "body_ache",
    "headache",
    "diarrhea",
    "chest_pain",
]


class PersonOut(BaseModel):
    phone: str = Field(description="E.164", examples=["+84912345678"])
    full_name: str | None
    birth_year: int | None
    province: str | None
    ward: str | None

    @classmethod
    def of(cls, person: Person) -> "PersonOut":
        return cls(
            phone=person.phone,
            full_name=person.full_name,
            birth_year=person.birth_year,
            province=person.province or person.province_code,
            ward=person.ward,
        )


class DeclarationAlert(BaseModel):
    """A declaration's alert level and its reasons (the alert queue's items are `app.routers.alerts.AlertOut`)."""

    level: Literal["none", "watch", "urgent"]
    reasons: list[str]


class DeclarationOut(BaseModel):
    id: int
    person: PersonOut
    campaign_id: int | None
    conversation_id: int | None
    channel: Channel
    follow_up_day: int | None = Field(description="day N of the follow-up period, 0 = first contact")
    status: Literal["in_progress", "complete", "refused", "wrong_person", "callback_requested", "unreachable"]
    identity_confirmed: bool | None
    symptoms_asked: bool
    symptoms: list[Symptom] = Field(description="empty with symptoms_asked=true means the resident has none")
    temperature_c: float | None
    symptom_onset: date | None
    contact_with_case: Literal["yes", "no", "unknown"] | None
    test_result: Literal["positive", "negative", "pending", "not_tested"] | None
    test_date: date | None
    vaccine_doses: int | None
    at_registered_address: bool | None
    needs: str | None
    callback_at: datetime | None
    alert: DeclarationAlert
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, declaration: Declaration) -> "DeclarationOut":
        return cls(**_document(declaration))


class CorrectionOut(BaseModel):
    field: str = Field(description="the declaration field corrected")
    value: Any = Field(description="the corrected value (the one the declaration now shows)")
    replaced: Any = Field(description="the value it replaced: the resident's answer, or an earlier correction")
    by: str | None = Field(description="the user who corrected it (null once that user is deleted)")
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, change: DeclarationChange) -> "CorrectionOut":
        by = change.user.name if change.user else None
        return cls(
            field=change.field, value=change.value, replaced=change.replaced, by=by, reason=change.reason, at=change.at
        )


class DeclarationRecord(DeclarationOut):
    """A declaration as the API gives it: the shared document, whether its source proved the phone, and the tracing
    team's corrections (the document shows the corrected values)."""

    phone_verified: bool = Field(
        description="false when the resident only typed the phone into the web chat (nothing proves the answers "
        "are the person's); true for a call to the phone, a personal link sent to it, or Zalo"
    )
    corrections: list[CorrectionOut] = Field(description="oldest first; empty when nobody corrected an answer")

    @classmethod
    def of_source(cls, declaration: Declaration, phone_verified: bool) -> "DeclarationRecord":
        corrections = [CorrectionOut.of(change) for change in declaration.corrections]
        return cls(**_document(declaration), phone_verified=phone_verified, corrections=corrections)


def _document(declaration: Declaration) -> dict:
    """The fields of the shared declaration schema."""
    d = declaration
    return dict(
        id=d.id,
        person=PersonOut.of(d.person),
        campaign_id=d.campaign_id,
        conversation_id=d.conversation_id,
        channel=d.channel,
        follow_up_day=d.follow_up_day,
        status=d.status.value,
        identity_confirmed=d.identity_confirmed,
        symptoms_asked=d.symptoms_asked,
        symptoms=list(d.symptoms or []),
        temperature_c=d.temperature_c,
        symptom_onset=d.symptom_onset,
        contact_with_case=d.contact_with_case,
        test_result=d.test_result,
        test_date=d.test_date,
        vaccine_doses=d.vaccine_doses,
        at_registered_address=d.at_registered_address,
        needs=d.needs,
        callback_at=d.callback_at,
        alert=DeclarationAlert(level=d.alert_level.value, reasons=list(d.alert_reasons or [])),
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


class TurnOut(BaseModel):
    seq: int
    speaker: Literal["resident", "bot", "agent"]
    text: str
    channel: Channel
    at: datetime
    asr_confidence: float | None = Field(description="speech recognition confidence, 0-1, for spoken turns")
    intent: str | None

    @classmethod
    def of(cls, turn: Turn) -> "TurnOut":
        return cls(
            seq=turn.seq,
            speaker=turn.speaker.value,
            text=turn.text,
            channel=turn.channel,
            at=turn.created_at,
            asr_confidence=turn.asr_confidence,
            intent=turn.intent,
        )


class ConversationOut(BaseModel):
    id: int
    person: PersonOut
    channel: Channel
    campaign_id: int | None
    declaration_id: int | None
    started_at: datetime
    ended_at: datetime | None
    turns: list[TurnOut]

    @classmethod
    def of(cls, conversation: Conversation, declaration_id: int | None) -> "ConversationOut":
        return cls(
            id=conversation.id,
            person=PersonOut.of(conversation.person),
            channel=conversation.channel,
            campaign_id=conversation.campaign_id,
            declaration_id=declaration_id,
            started_at=conversation.started_at,
            ended_at=conversation.ended_at,
            turns=[TurnOut.of(t) for t in conversation.turns],
        )


class ErrorOut(BaseModel):
    error: str = Field(description="a stable machine-readable code")
    message: str = Field(description="what went wrong and what to do about it")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that may answer these error codes, each with an ErrorOut body."""
    return {code: {"model": ErrorOut} for code in codes}

"""Rows for tests, written through the real ORM."""

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from campaigns.rules import CampaignRules
from models import (
    AlertLevel,
    Campaign,
    CampaignStatus,
    Channel,
    ContactList,
    ContactListMember,
    Conversation,
    Declaration,
    DeclarationStatus,
    OutreachAttempt,
    Person,
    Speaker,
    Turn,
)


def person(session: Session, phone: str, province_code: str | None = "27", name: str = "Nguyễn Văn An") -> Person:
    row = Person(
        phone=phone,
        full_name=name,
        birth_year=1985,
        province_code=province_code,
        province="Bắc Ninh",
        ward="Phường Suối Hoa",
    )
    session.add(row)
    session.flush()
    return row


def campaign(session: Session, name: str = "F1 Bắc Ninh 26/11", province_code: str = "27") -> Campaign:
    row = Campaign(name=name, province_code=province_code)
    session.add(row)
    session.flush()
    return row


def contact_list(session: Session, who: Person, exposure_date: date, name: str = "BN") -> ContactList:
    """A Bắc Ninh (27) contact list of one person, exposed to a case on `exposure_date`."""
    row = ContactList(name=name, province_code="27")
    session.add(row)
    session.flush()
    session.add(ContactListMember(contact_list_id=row.id, person_id=who.id, exposure_date=exposure_date))
    return row


def conversation(session: Session, who: Person, channel: Channel = Channel.VOICE) -> Conversation:
    row = Conversation(person_id=who.id, channel=channel, engine_sender_id=f"conv-{who.phone}-{channel.value}")
    session.add(row)
    session.flush()
    session.add_all(
        [
            Turn(conversation_id=row.id, seq=1, speaker=Speaker.BOT, text="Có phải anh An không ạ?", channel=channel),
            Turn(
                conversation_id=row.id,
                seq=2,
                speaker=Speaker.RESIDENT,
                text="vâng đúng rồi",
                channel=channel,
                asr_confidence=0.91,
                intent="affirm",
            ),
        ]
    )
    session.flush()
    return row


def complete_declaration(session: Session, who: Person, **overrides) -> Declaration:
    """A declaration with every answer given: fever, cough, a watch alert."""
    fields = dict(
        person_id=who.id,
        channel=Channel.VOICE,
        follow_up_day=3,
        status=DeclarationStatus.COMPLETE,
        identity_confirmed=True,
        symptoms_asked=True,
        symptoms=["fever", "cough"],
        temperature_c=38.5,
        symptom_onset=date(2021, 6, 2),
        contact_with_case="yes",
        test_result="negative",
        test_date=date(2021, 6, 3),
        vaccine_doses=1,
        at_registered_address=True,
        needs="cần thuốc hạ sốt",
        callback_at=datetime(2021, 6, 3, 10, 0, tzinfo=UTC),
        alert_level=AlertLevel.WATCH,
        alert_reasons=["fever 38.5", "cough"],
    )
    fields.update(overrides)
    row = Declaration(**fields)
    session.add(row)
    session.flush()
    return row


def empty_declaration(session: Session, who: Person, **overrides) -> Declaration:
    """A conversation that has only just begun: nothing answered yet."""
    row = Declaration(person_id=who.id, channel=Channel.WEBCHAT, **overrides)
    session.add(row)
    session.flush()
    return row


def zone_at_midday() -> str:
    """A time zone where it is about midday now: retries the same day stay the same day whenever tests run."""
    offset = round(12 - datetime.now(UTC).hour - datetime.now(UTC).minute / 60)
    offset = max(-12, min(14, offset))
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def outreach_attempt(session: Session, phone: str, name: str = "Nguyễn Văn An", **rules) -> OutreachAttempt:
    """A running campaign (any hour a calling hour, retries 5 minutes apart) with one attempt due now."""
    settings = {
        "channels": ["voice"],
        "timezone": zone_at_midday(),
        "retry_spacing_minutes": 5,
        "calling_hours": [{"start": "00:00", "end": "23:59:59"}],
        **rules,
    }
    rules_json = CampaignRules.model_validate(settings).model_dump(mode="json")
    row = Campaign(
        name="F1 Bắc Ninh",
        province_code="27",
        status=CampaignStatus.RUNNING,
        rules=rules_json,
        started_at=datetime.now(UTC),
    )
    session.add(row)
    who = person(session, phone, name=name)
    attempt = OutreachAttempt(campaign=row, person=who, follow_up_day=2, due_at=datetime.now(UTC))
    session.add(attempt)
    session.flush()
    return attempt

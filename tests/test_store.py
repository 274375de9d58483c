"""The declaration store on SQLite and PostgreSQL: migrations, serialisation, constraints."""

from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

import models
from app.schemas import DeclarationOut
from ground.store import make_engine, refresh_statistics
from models.migrate import upgrade
from tests import factories

# Alembic cannot compare expression indexes (one team name per province, NULL included): they are checked by hand.
EXPRESSION_INDEXES = {"uq_teams_scope_name"}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_create_exactly_the_models(store_url):
    engine = make_engine(store_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = compare_metadata(context, models.Base.metadata)
        tables = set(inspect(connection).get_table_names())
        indexes = {index["name"] for table in ("teams",) for index in inspect(connection).get_indexes(table)}
    engine.dispose()
    assert diff == [], "models changed without a migration: write one with alembic revision --autogenerate"
    assert set(models.Base.metadata.tables) <= tables
    modelled = {index.name for table in models.Base.metadata.tables.values() for index in table.indexes}
    assert modelled >= EXPRESSION_INDEXES
    if engine.dialect.name == "postgresql":  # SQLite's reflection leaves expression indexes out
        assert indexes >= EXPRESSION_INDEXES


def _document(sessions, declaration_id):
    with sessions() as session:
        declaration = session.get(models.Declaration, declaration_id)
        return DeclarationOut.of(declaration).model_dump(mode="json")


def test_complete_declaration_serialises_to_the_shared_schema(sessions, declaration_schema):
    with sessions.begin() as session:
        person = factories.person(session, "+84912345678")
        declaration_id = factories.complete_declaration(session, person).id
    document = _document(sessions, declaration_id)

    jsonschema.validate(document, declaration_schema, format_checker=jsonschema.FormatChecker())
    assert set(document) == set(declaration_schema["properties"])
    assert document["person"] == {
        "phone": "+84912345678",
        "full_name": "Nguyễn Văn An",
        "birth_year": 1985,
        "province": "Bắc Ninh",
        "ward": "Phường Suối Hoa",
    }
    assert document["symptoms"] == ["fever", "cough"]
    assert document["temperature_c"] == 38.5
    assert document["symptom_onset"] == "2021-06-02"
    assert datetime.fromisoformat(document["callback_at"]) == datetime(2021, 6, 3, 10, tzinfo=UTC)
    assert document["alert"] == {"level": "watch", "reasons": ["fever 38.5", "cough"]}


def test_unanswered_declaration_is_nulls_and_empty_symptoms(sessions, declaration_schema):
    with sessions.begin() as session:
        declaration_id = factories.empty_declaration(session, factories.person(session, "+84323456789")).id
    document = _document(sessions, declaration_id)

    jsonschema.validate(document, declaration_schema, format_checker=jsonschema.FormatChecker())
    assert document["status"] == "in_progress"
    assert document["symptoms_asked"] is False and document["symptoms"] == []
    answers = ["temperature_c", "symptom_onset", "contact_with_case", "test_result", "vaccine_doses", "needs"]
    assert all(document[field] is None for field in answers)
    assert document["alert"]["level"] == "none"


def test_times_are_stored_in_utc_and_read_back_aware(sessions):
    hanoi = timezone(timedelta(hours=7))
    with sessions.begin() as session:
        person = factories.person(session, "+84912345678")
        declaration = factories.empty_declaration(
            session, person, callback_at=datetime(2021, 6, 3, 17, 0, tzinfo=hanoi)
        )
        declaration_id = declaration.id
    with sessions() as session:
        stored = session.get(models.Declaration, declaration_id).callback_at
    assert stored.tzinfo is not None
    assert stored == datetime(2021, 6, 3, 10, 0, tzinfo=UTC)


def test_naive_times_are_refused_rather_than_guessed(sessions):
    with sessions() as session:
        person = factories.person(session, "+84912345678")
        session.add(
            models.Declaration(person_id=person.id, channel=models.Channel.SMS, callback_at=datetime(2021, 6, 3))
        )
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


def _delivered_turn(conversation_id: int, seq: int) -> models.Turn:
    """The resident's answer as the provider's webhook delivery CA123:3 carries it."""
    return models.Turn(
        conversation_id=conversation_id,
        seq=seq,
        speaker=models.Speaker.RESIDENT,
        text="có",
        channel=models.Channel.VOICE,
        external_id="CA123:3",
    )


def test_a_retried_webhook_turn_lands_once(sessions):
    with sessions.begin() as session:
        conversation_id = factories.conversation(session, factories.person(session, "+84912345678")).id
        session.add(_delivered_turn(conversation_id, seq=3))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(_delivered_turn(conversation_id, seq=4))  # the same delivery retried, numbered as a new turn
    with sessions() as session:
        texts = session.scalars(select(models.Turn.text).where(models.Turn.conversation_id == conversation_id)).all()
    assert len(texts) == 3, "the first delivery stays, the retry adds nothing"


def test_one_person_per_phone(sessions):
    with sessions.begin() as session:
        factories.person(session, "+84912345678")
    with pytest.raises(IntegrityError), sessions.begin() as session:
        factories.person(session, "+84912345678", name="Someone Else")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_web_chats_typed_before_the_trust_revision_become_unverified(backend, tmp_path, request):
    """0006: chats opened by typing a phone proved nothing; chats answering an outreach (a personal link) did."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("test_revision_0006")
    engine = make_engine(url)
    upgrade(engine, "0005")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO people (id, phone, created_at, updated_at) "
                "VALUES (1, '+84912345678', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        for number, channel in ((1, "webchat"), (2, "voice")):
            connection.execute(
                text(
                    "INSERT INTO conversations"
                    " (id, person_id, channel, engine_sender_id, started_at, last_activity_at)"
                    " VALUES (:id, 1, :channel, :sender, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": number, "channel": channel, "sender": f"s{number}"},
            )
    upgrade(engine)
    with engine.connect() as connection:
        verified = dict(connection.execute(text("SELECT channel, phone_verified FROM conversations")).all())
    engine.dispose()
    assert verified == {"webchat": False, "voice": True}


def test_sqlite_statistics_lead_a_ward_page_through_the_ward(tmp_path):
    """Without statistics SQLite gathered a whole province and sorted it (0.8 s at 1.4 M declarations)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO people (phone, province_code, ward, created_at, updated_at) VALUES "
                + ", ".join(
                    f"('+8491{n:07d}', '27', 'Phường {n % 60}', '2021-06-01', '2021-06-01')" for n in range(3000)
                )
            )
        )
    refresh_statistics(engine)
    with engine.connect() as connection:
        stats = dict(connection.execute(text("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'people'")).all())
    assert stats["ix_people_ward"] == "3000 50"

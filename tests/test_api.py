"""The console API over real HTTP, on SQLite and PostgreSQL: tokens, filters, paging, scope, audit."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from access import auth
from models import AlertLevel, AuditLog, Declaration, DeclarationStatus, Role
from tests import factories


@pytest.fixture
def seeded(api):
    """Two provinces: Bắc Ninh (27) with three residents, Hà Nội (01) with one; a user of each, a national admin."""
    with api.sessions.begin() as session:
        an = factories.person(session, "+84912345678")
        binh = factories.person(session, "+84323456789", name="Trần Thị Bình")
        cuong = factories.person(session, "+84987654321", name="Lê Văn Cường")
        hanoi = factories.person(session, "+84901234567", province_code="01", name="Phạm Hà")
        campaign = factories.campaign(session)
        conversation = factories.conversation(session, an)
        ids = {
            "an": factories.complete_declaration(
                session, an, campaign_id=campaign.id, conversation_id=conversation.id
            ).id,
            "binh": factories.empty_declaration(session, binh).id,
            "cuong": factories.complete_declaration(
                session,
                cuong,
                status=DeclarationStatus.REFUSED,
                alert_level=AlertLevel.URGENT,
                alert_reasons=["chest_pain"],
            ).id,
            "hanoi": factories.complete_declaration(session, hanoi, campaign_id=campaign.id).id,
            "conversation": conversation.id,
            "hanoi_conversation": factories.conversation(session, hanoi).id,
            "campaign": campaign.id,
        }
        tokens = {
            "bacninh": auth.add_user(session, "tracer-27", Role.TRACER, "27").token,
            "hanoi": auth.add_user(session, "tracer-01", Role.TRACER, "01").token,
            "admin": auth.add_user(session, "admin", Role.ADMIN, None).token,
            "viewer": auth.add_user(session, "viewer-27", Role.VIEWER, "27").token,
        }
    return ids, tokens


def _ids(response):
    assert response.status_code == 200, response.text
    return {d["id"] for d in response.json()}


def test_no_token_or_a_wrong_one_is_401(api, seeded):
    for token in (None, "otk_not-a-real-token"):
        response = api.get("/api/v1/declarations", token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["message"].lower()


def test_the_list_is_json_and_filters_combine(api, seeded):
    ids, tokens = seeded
    admin = tokens["admin"]
    everything = api.get("/api/v1/declarations", admin)
    assert _ids(everything) == {ids["an"], ids["binh"], ids["cuong"], ids["hanoi"]}
    assert everything.headers["x-total-count"] == "4"
    assert _ids(api.get("/api/v1/declarations", admin, status="refused")) == {ids["cuong"]}
    assert _ids(api.get("/api/v1/declarations", admin, alert_level="urgent")) == {ids["cuong"]}
    assert _ids(api.get("/api/v1/declarations", admin, campaign_id=ids["campaign"])) == {ids["an"], ids["hanoi"]}
    assert _ids(
        api.get("/api/v1/declarations", admin, campaign_id=ids["campaign"], status="complete", phone="0901 234 567")
    ) == {ids["hanoi"]}


@pytest.mark.parametrize("phone", ["0912345678", "0912 345 678", "84912345678", "+84 91 234 5678", "0912.345.678"])
def test_phone_filter_takes_any_common_form(api, seeded, phone):
    ids, tokens = seeded
    assert _ids(api.get("/api/v1/declarations", tokens["admin"], phone=phone)) == {ids["an"]}


def test_legacy_eleven_digit_phone_finds_the_converted_number(api, seeded):
    ids, tokens = seeded
    assert _ids(api.get("/api/v1/declarations", tokens["admin"], phone="0162 345 6789")) == {ids["binh"]}


def test_updated_since_returns_only_later_changes(api, seeded):
    ids, tokens = seeded
    later = datetime.now(UTC) + timedelta(seconds=1)
    with api.sessions.begin() as session:
        session.get(Declaration, ids["binh"]).updated_at = later + timedelta(minutes=5)
    since = later.isoformat()
    assert _ids(api.get("/api/v1/declarations", tokens["admin"], updated_since=since)) == {ids["binh"]}
    # Without an offset the time is read in Asia/Ho_Chi_Minh (UTC+7).
    local = (later + timedelta(hours=7)).replace(tzinfo=None).isoformat()
    assert _ids(api.get("/api/v1/declarations", tokens["admin"], updated_since=local)) == {ids["binh"]}


def test_pages_follow_link_headers_and_cover_everything_once(api, seeded):
    _, tokens = seeded
    seen, url, pages = [], f"{api.url}/api/v1/declarations?limit=3", 0
    while url:
        response = httpx.get(url, headers={"Authorization": f"Bearer {tokens['admin']}"})
        seen += [d["id"] for d in response.json()]
        pages += 1
        url = response.links.get("next", {}).get("url")
    assert pages == 2
    assert len(seen) == len(set(seen)) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phone": "not a phone"}, "phone"),
        ({"status": "sick"}, "status"),
        ({"alert_level": "red"}, "alert_level"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"limit": 0}, "limit"),
        ({"limit": 100000}, "limit"),
        ({"campaign_id": "abc"}, "campaign_id"),
        ({"offset": -1}, "offset"),
    ],
)
def test_bad_filters_are_422_naming_the_field(api, seeded, params, field):
    _, tokens = seeded
    response = api.get("/api/v1/declarations", tokens["admin"], **params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["message"].startswith(f"{field}:")


def test_unknown_ids_are_404_with_a_message(api, seeded):
    _, tokens = seeded
    for path in ("/api/v1/declarations/999999", "/api/v1/conversations/999999"):
        response = api.get(path, tokens["admin"])
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "message": response.json()["message"]}
        assert "999999" in response.json()["message"]


def test_a_province_user_never_sees_another_provinces_rows(api, seeded):
    ids, tokens = seeded
    bac_ninh = {ids["an"], ids["binh"], ids["cuong"]}
    assert _ids(api.get("/api/v1/declarations", tokens["bacninh"])) == bac_ninh
    assert _ids(api.get("/api/v1/declarations", tokens["hanoi"])) == {ids["hanoi"]}
    assert _ids(api.get("/api/v1/declarations", tokens["bacninh"], phone="0901234567")) == set()
    assert api.get(f"/api/v1/declarations/{ids['hanoi']}", tokens["bacninh"]).status_code == 404
    assert api.get(f"/api/v1/conversations/{ids['hanoi_conversation']}", tokens["bacninh"]).status_code == 404
    assert api.get(f"/api/v1/conversations/{ids['conversation']}", tokens["hanoi"]).status_code == 404
    assert api.get(f"/api/v1/declarations/{ids['an']}", tokens["bacninh"]).status_code == 200


def test_people_without_a_province_are_hidden_from_province_users(api, seeded):
    _, tokens = seeded
    with api.sessions.begin() as session:
        stray = factories.empty_declaration(session, factories.person(session, "+84977777777", province_code=None)).id
    assert stray not in _ids(api.get("/api/v1/declarations", tokens["bacninh"]))
    assert stray in _ids(api.get("/api/v1/declarations", tokens["admin"]))


def test_transcript_has_speakers_times_and_asr_confidence(api, seeded):
    ids, tokens = seeded
    response = api.get(f"/api/v1/conversations/{ids['conversation']}", tokens["bacninh"])
    assert response.status_code == 200
    body = response.json()
    assert body["declaration_id"] == ids["an"]
    assert body["person"]["phone"] == "+84912345678"
    assert [(t["speaker"], t["text"], t["asr_confidence"]) for t in body["turns"]] == [
        ("bot", "Có phải anh An không ạ?", None),
        ("resident", "vâng đúng rồi", 0.91),
    ]
    assert all(t["channel"] == "voice" and datetime.fromisoformat(t["at"]) for t in body["turns"])


def test_viewers_read_declarations_but_not_transcripts(api, seeded):
    ids, tokens = seeded
    assert api.get(f"/api/v1/declarations/{ids['an']}", tokens["viewer"]).status_code == 200
    response = api.get(f"/api/v1/conversations/{ids['conversation']}", tokens["viewer"])
    assert response.status_code == 403
    assert "viewer" in response.json()["message"]


def test_every_read_is_in_the_audit_log(api, seeded):
    ids, tokens = seeded
    api.get("/api/v1/declarations", tokens["bacninh"], status="complete")
    api.get(f"/api/v1/declarations/{ids['an']}", tokens["bacninh"])
    api.get(f"/api/v1/conversations/{ids['conversation']}", tokens["bacninh"])
    api.get(f"/api/v1/declarations/{ids['hanoi']}", tokens["bacninh"])  # refused: nothing was read
    with api.sessions() as session:
        entries = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        users = {e.user_id for e in entries}
    assert [(e.action, e.object_ids) for e in entries] == [
        ("declaration.list", [ids["an"]]),
        ("declaration.read", [ids["an"]]),
        ("transcript.read", [ids["conversation"]]),
    ]
    assert len(users) == 1 and all(e.client_ip == "127.0.0.1" for e in entries)


def test_openapi_documents_the_api(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/healthz",
        "/api/v1/declarations",
        "/api/v1/declarations/{declaration_id}",
        "/api/v1/conversations/{conversation_id}",
    } <= set(paths)
    assert api.get("/docs").status_code == 200


# No input gives a 500: numbers beyond the store's 64-bit integers, text that is not Unicode, anything unexpected.

TOO_BIG = 2**64  # 18446744073709551616: past any integer PostgreSQL or SQLite holds


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", f"/api/v1/declarations/{TOO_BIG}", "declaration_id"),
        ("GET", f"/api/v1/declarations/{2**31}", "declaration_id"),  # ids are 32-bit INTEGER columns on PostgreSQL
        ("GET", f"/api/v1/declarations?offset={2**63}", "offset"),
        ("GET", f"/api/v1/declarations?offset={TOO_BIG}", "offset"),
        ("GET", f"/api/v1/declarations?campaign_id={TOO_BIG}", "campaign_id"),
        ("GET", f"/api/v1/conversations/{TOO_BIG}", "conversation_id"),
        ("GET", f"/api/v1/alerts?offset={TOO_BIG}", "offset"),
        ("POST", f"/api/v1/alerts/{TOO_BIG}/ack", "alert_id"),
        ("GET", f"/api/v1/campaigns/{TOO_BIG}", "campaign_id"),
        ("GET", f"/api/v1/campaigns/{TOO_BIG}/export.csv", "campaign_id"),
        ("POST", f"/api/v1/campaigns/{TOO_BIG}/pause", "campaign_id"),
        ("GET", "/api/v1/declarations/-1", "declaration_id"),
    ],
)
def test_numbers_beyond_the_store_are_422_naming_the_parameter(api, seeded, method, path, field):
    _, tokens = seeded
    response = httpx.request(method, f"{api.url}{path}", headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(f"{field}:")


def test_the_largest_id_the_store_holds_is_simply_not_found(api, seeded):
    _, tokens = seeded
    response = api.get(f"/api/v1/declarations/{2**31 - 1}", tokens["admin"])
    assert response.status_code == 404
    assert api.get("/api/v1/declarations", tokens["admin"], offset=2**63 - 1).json() == []


def test_a_campaign_over_a_list_id_beyond_the_store_is_422(api, seeded):
    _, tokens = seeded
    response = httpx.post(
        f"{api.url}/api/v1/campaigns",
        json={"name": "F1", "contact_list_ids": [TOO_BIG]},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    )
    assert response.status_code == 422
    assert response.json()["message"].startswith("contact_list_ids.0:")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"text": "\\ud800"}', "text"),
        (b'{"text": "ok \\udfff ok"}', "text"),
        (b'{"text": "x", "payload": "/affirm{\\"a\\": [\\"\\ud83d\\"]}"}', "payload"),
        (b'{"text": "x", "extra": {"deep": ["fine", "\\udc00"]}}', "extra.deep.1"),
        (b'{"text": "raw \xed\xa0\x80 bytes"}', "text"),
    ],  # a surrogate's UTF-8 bytes, unescaped
)
def test_a_lone_surrogate_in_a_chat_message_is_422_and_nothing_is_stored(api, body, where):
    from models import Channel, Turn

    with api.sessions.begin() as session:
        who = factories.person(session, "+84912345678")
        conversation = factories.conversation(session, who, channel=Channel.WEBCHAT)
        conversation.resident_token_hash = auth.hash_token("session-key")
    url = f"{api.url}/api/v1/webchat/sessions/session-key/messages"
    response = httpx.post(url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(f"{where}: not valid Unicode")
    with api.sessions() as session:
        assert len(session.scalars(select(Turn)).all()) == 2  # the two the factory wrote
    # A well-formed pair (an emoji) is text like any other: it reaches the conversation (kept, the engine being down).
    response = httpx.post(url, content=b'{"text": "\\ud83d\\ude37 ho"}', headers={"content-type": "application/json"})
    assert response.status_code == 503
    with api.sessions() as session:
        assert session.scalars(select(Turn).order_by(Turn.id)).all()[-1].text == "😷 ho"


def test_a_lone_surrogate_in_a_webchat_opening_stores_no_person(api):
    from models import Person

    for body in (
        b'{"phone": "0912345678", "name": "\\ud800"}',
        b'{"phone": "0912345678\\udfff"}',
        b'{"phone": "0912345678", "name": "\xed\xb0\x80"}',
    ):
        response = httpx.post(f"{api.url}/api/v1/webchat/sessions", content=body)  # no content type: read as JSON
        assert response.status_code == 422
    with api.sessions() as session:
        assert session.scalars(select(Person)).all() == []


def test_a_json_body_over_a_megabyte_is_413(api):
    response = httpx.post(f"{api.url}/api/v1/webchat/sessions", json={"name": "x" * (1 << 20)})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_errors_past_the_routes_are_json_and_reveal_nothing():
    """The handlers behind the declared bounds: values the store cannot hold are 422, anything else a bare 500."""
    from fastapi import FastAPI

    from app import errors
    from tests.support.net import serving

    app = FastAPI()
    errors.install(app)

    @app.get("/overflow")
    def overflow():
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @app.get("/surrogate")
    def surrogate():
        return "\ud800".encode()

    @app.get("/bug")
    def bug():
        raise RuntimeError("password=hunter2 in /srv/outreach/secret.py")

    with serving(app) as url:
        assert httpx.get(f"{url}/overflow").json() == {"error": "invalid_request", "message": errors.OUT_OF_RANGE}
        assert httpx.get(f"{url}/surrogate").status_code == 422
        response = httpx.get(f"{url}/bug")
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "message": errors.SERVER_ERROR}
    assert "hunter2" not in response.text and "secret" not in response.text

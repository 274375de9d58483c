"""Province scope on every write, over real HTTP on SQLite and PostgreSQL.

The matrix: every role (admin, manager, tracer, viewer) x every province relation (national, the row's province,
another province) x every write endpoint of the API, each allowed or refused as the role table says; a refused write
leaves every table of the store exactly as it was. Then what an import does with another province's people, and the
one audited way to move a person between provinces.
"""

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from access import auth
from campaigns.rules import CampaignRules
from models import (
    Alert,
    AlertLevel,
    AuditLog,
    Base,
    Broadcast,
    BroadcastDelivery,
    Campaign,
    CampaignStatus,
    ContactList,
    ContactListMember,
    DeliveryStatus,
    Person,
    Role,
    Team,
    TeamMember,
)
from tests import factories
from tests.test_cli import outreach

ROLES = [Role.ADMIN, Role.MANAGER, Role.TRACER, Role.VIEWER]
PROVINCES = {"national": None, "same": "27", "other": "01"}  # the rows written to are all of province 27
_phones = (f"+8491{n:07d}" for n in itertools.count(1000))


@dataclass
class Case:
    """One write endpoint: how to make what it writes to (in province 27), and the request."""

    method: str
    path: str  # as the OpenAPI document names it
    request: Callable[[httpx.Client, dict], httpx.Response]
    setup: Callable[[object], dict]
    allowed: Callable[[Role, str], int]  # (role, province relation) -> the status code expected


def _person(session) -> Person:
    return factories.person(session, next(_phones))


def _list(session) -> dict:
    contact_list = ContactList(name="F1 Bắc Ninh", province_code="27")
    contact_list.members.append(ContactListMember(person=_person(session)))
    session.add(contact_list)
    session.flush()
    return {"list": contact_list.id}


def _campaign(status: CampaignStatus) -> Callable[[object], dict]:
    def setup(session) -> dict:
        contact_list = session.get(ContactList, _list(session)["list"])
        campaign = Campaign(
            name="F1",
            province_code="27",
            status=status,
            rules=CampaignRules().model_dump(mode="json"),
            contact_lists=[contact_list],
        )
        session.add(campaign)
        session.flush()
        return {"campaign": campaign.id}

    return setup


def _alert(session) -> dict:
    person = _person(session)
    declaration = factories.complete_declaration(session, person, alert_level=AlertLevel.URGENT)
    alert = Alert(declaration_id=declaration.id, person_id=person.id, level=AlertLevel.URGENT, reasons=["chest_pain"])
    session.add(alert)
    session.flush()
    return {"alert": alert.id}


def _upload(client: httpx.Client, ids: dict) -> httpx.Response:
    text = f"Họ và tên,Số điện thoại\nNguyễn Văn Mới,{next(_phones)}\n"
    return client.post(
        "/api/v1/contact-lists", files={"file": ("f1.csv", text.encode())}, data={"name": "F1", "province": "27"}
    )


def _managers(code_if_allowed: int, refused_other: int) -> Callable[[Role, str], int]:
    """Lists and campaigns: admins and managers of the province or national; others 403."""

    def expected(role: Role, relation: str) -> int:
        if role not in (Role.ADMIN, Role.MANAGER):
            return 403
        return refused_other if relation == "other" else code_if_allowed

    return expected


def _alert_handlers(role: Role, relation: str) -> int:
    if role == Role.VIEWER:
        return 403
    return 404 if relation == "other" else 200


def _national_managers(role: Role, relation: str) -> int:
    return 200 if role in (Role.ADMIN, Role.MANAGER) and relation == "national" else 403


def _list_managers_anywhere(role: Role, relation: str) -> int:
    """Results and vaccinations: new people join the uploader's province, the province's own are theirs to update."""
    return 200 if role in (Role.ADMIN, Role.MANAGER) else 403


CHECKINS = b"venue_id,phone,checked_in_at\nCHO,0912000001,2021-06-02 08:00\n"  # the same bytes: stored once


def _checkins(client: httpx.Client, ids: dict) -> httpx.Response:
    return client.post("/api/v1/checkins", files={"file": ("checkins.csv", CHECKINS)})


def _derive(client: httpx.Client, ids: dict) -> httpx.Response:
    _checkins(client, ids)  # a national user's check-ins to derive from (refused like the derivation otherwise)
    cases = b"phone,infectious_from,infectious_to,case_code\n0912000001,2021-06-01,2021-06-03,BN1\n"
    return client.post(
        "/api/v1/f1/derive", files={"cases": ("cases.csv", cases)}, data={"name": "F1", "province": "27"}
    )


def _records(path: str, header: str, row: str) -> Callable[[httpx.Client, dict], httpx.Response]:
    def request(client: httpx.Client, ids: dict) -> httpx.Response:
        text = f"{header}\n{next(_phones)},{row}\n"
        return client.post(path, files={"file": ("records.csv", text.encode())})

    return request


def _team_list(client: httpx.Client, ids: dict) -> httpx.Response:
    text = f"Họ và tên,Số điện thoại\nNguyễn Văn Tổ,{next(_phones)}\n"
    return client.post(
        "/api/v1/teams", files={"file": ("team.csv", text.encode())}, data={"name": "Tổ", "province": "27"}
    )


def _team(session) -> dict:
    phone = next(_phones)
    team = Team(name=f"Tổ {phone}", province_code="27", members=[TeamMember(name="An", phone=phone)])
    session.add(team)
    session.flush()
    return {"team": team.id}


def _broadcast(status: DeliveryStatus) -> Callable[[object], dict]:
    def setup(session) -> dict:
        team = session.get(Team, _team(session)["team"])
        member = team.members[0]
        delivery = BroadcastDelivery(member_id=member.id, member_name=member.name, member_phone=member.phone)
        broadcast = Broadcast(team_id=team.id, text="Hướng dẫn", deliveries=[delivery])
        delivery.status = status
        session.add(broadcast)
        session.flush()
        return {"broadcast": broadcast.id}

    return setup


CAMPAIGN_ACTION = "/api/v1/campaigns/{campaign_id}/{action}"
CASES = {
    "upload a list": Case("post", "/api/v1/contact-lists", _upload, lambda session: {}, _managers(200, 403)),
    "create a campaign": Case(
        "post",
        "/api/v1/campaigns",
        lambda client, ids: client.post("/api/v1/campaigns", json={"name": "F1", "contact_list_ids": [ids["list"]]}),
        _list,
        _managers(201, 422),  # the list is named in the body: 422 "no contact list [id] in your scope"
    ),
    "plan a campaign's capacity": Case(
        "post",
        "/api/v1/campaigns/capacity-plan",
        lambda client, ids: client.post("/api/v1/campaigns/capacity-plan", json={"contact_list_ids": [ids["list"]]}),
        _list,
        _managers(200, 422),  # it writes nothing, but it is the first step of a campaign: who may run one
    ),
    **{
        f"{action} a campaign": Case(
            "post",
            CAMPAIGN_ACTION,
            lambda client, ids, action=action: client.post(f"/api/v1/campaigns/{ids['campaign']}/{action}"),
            _campaign(status),
            _managers(200, 404),
        )
        for action, status in [
            ("start", CampaignStatus.DRAFT),
            ("pause", CampaignStatus.RUNNING),
            ("resume", CampaignStatus.PAUSED),
            ("cancel", CampaignStatus.RUNNING),
        ]
    },
    "acknowledge an alert": Case(
        "post",
        "/api/v1/alerts/{alert_id}/ack",
        lambda client, ids: client.post(f"/api/v1/alerts/{ids['alert']}/ack"),
        _alert,
        _alert_handlers,
    ),
    "import check-ins": Case("post", "/api/v1/checkins", _checkins, lambda session: {}, _national_managers),
    "derive an F1 list": Case("post", "/api/v1/f1/derive", _derive, lambda session: {}, _national_managers),
    "import test results": Case(
        "post",
        "/api/v1/results",
        _records("/api/v1/results", "phone,sample_date,result,lab", "2021-06-02,negative,CDC"),
        lambda session: {},
        _list_managers_anywhere,
    ),
    "import vaccinations": Case(
        "post",
        "/api/v1/vaccinations",
        _records("/api/v1/vaccinations", "phone,doses,last_dose_date", "2,15/09/2021"),
        lambda session: {},
        _list_managers_anywhere,
    ),
    "import a team list": Case("post", "/api/v1/teams", _team_list, lambda session: {}, _managers(200, 403)),
    "broadcast to a team": Case(
        "post",
        "/api/v1/teams/{team_id}/broadcasts",
        lambda client, ids: client.post(f"/api/v1/teams/{ids['team']}/broadcasts", json={"text": "Hướng dẫn mới"}),
        _team,
        _managers(409, 404),  # allowed, and refused all the same: this platform has no Zalo OA set up
    ),
    **{
        f"{action} a broadcast": Case(
            "post",
            f"/api/v1/broadcasts/{{broadcast_id}}/{action}",
            lambda client, ids, action=action: client.post(f"/api/v1/broadcasts/{ids['broadcast']}/{action}"),
            _broadcast(status),
            _managers(200, 404),
        )
        for action, status in [("cancel", DeliveryStatus.QUEUED), ("resend", DeliveryStatus.FAILED)]
    },
    "move a person": Case(
        "post",
        "/api/v1/people/{person_id}/province",
        lambda client, ids: client.post(
            f"/api/v1/people/{ids['person']}/province", json={"province_code": "01", "reason": "moved house"}
        ),
        lambda session: {"person": _person(session).id},
        _national_managers,
    ),
}


def _store_snapshot(sessions) -> dict[str, list[tuple]]:
    """Every row of every table, but for API tokens (each request stamps its token's last use)."""
    with sessions() as session:
        return {
            table.name: sorted(map(tuple, session.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name != "api_tokens"
        }


@pytest.fixture
def users(api) -> dict[tuple[Role, str], str]:
    with api.sessions.begin() as session:
        return {
            (role, relation): auth.add_user(session, f"{role.value}-{relation}", role, code).token
            for role in ROLES
            for relation, code in PROVINCES.items()
        }


def test_the_matrix_covers_every_write_endpoint(api):
    paths = api.get("/openapi.json").json()["paths"]
    writes = {
        (method, path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch", "delete") and path.startswith("/api/v1") and operation.get("security")
    }
    assert writes == {(case.method, case.path) for case in CASES.values()}, "a write endpoint is not in the matrix"


def test_roles_by_provinces_by_write_endpoints(api, users):
    wrong = []
    for (name, case), role, relation in itertools.product(CASES.items(), ROLES, PROVINCES):
        with api.sessions.begin() as session:
            ids = case.setup(session)
        expected = case.allowed(role, relation)
        before = _store_snapshot(api.sessions) if expected >= 400 else None
        headers = {"Authorization": f"Bearer {users[role, relation]}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
            response = case.request(client, ids)
        if response.status_code != expected:
            wrong.append(
                f"{name} as {role.value} ({relation}): {response.status_code}, expected {expected}: "
                f"{response.text[:200]}"
            )
        elif before is not None and _store_snapshot(api.sessions) != before:
            wrong.append(f"{name} as {role.value} ({relation}): refused with {expected} but the store changed")
    assert not wrong, "\n".join(wrong)


# Imports and another province's people


@pytest.fixture
def two_provinces(api):
    """A resident followed by Bắc Ninh (27) with an urgent alert, one met only through web chat (no province), and
    a manager of Hà Nội (01), a tracer of Bắc Ninh and a national manager."""
    with api.sessions.begin() as session:
        bac_ninh = factories.person(session, "+84912345678", name="Nguyễn Văn An")
        alert = _alert_for(session, bac_ninh)
        factories.person(session, "+84977777777", province_code=None, name="khách web chat")
        tokens = {
            "hanoi": auth.add_user(session, "m01", Role.MANAGER, "01").token,
            "tracer27": auth.add_user(session, "t27", Role.TRACER, "27").token,
            "national": auth.add_user(session, "nat", Role.MANAGER, None).token,
        }
    return bac_ninh.id, alert, tokens


def _alert_for(session, person: Person) -> int:
    declaration = factories.complete_declaration(session, person, alert_level=AlertLevel.URGENT)
    alert = Alert(declaration_id=declaration.id, person_id=person.id, level=AlertLevel.URGENT, reasons=["chest_pain"])
    session.add(alert)
    session.flush()
    return alert.id


HANOI_LIST = """\
Họ và tên,Số điện thoại,Tỉnh
Tên Hà Nội đặt cho An,0912 345 678,
Người ở Bắc Ninh,0987 000 111,Bắc Ninh
Người Hà Nội,0904 000 222,Hà Nội
Khách web chat,0977 777 777,
"""


def _post_list(api, token: str, text: str, **form) -> httpx.Response:
    return httpx.post(
        f"{api.url}/api/v1/contact-lists",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("f1.csv", text.encode())},
        data={"name": "F1", **form},
        timeout=60,
    )


def test_a_provincial_import_never_moves_another_provinces_people(api, two_provinces):
    an_id, alert_id, tokens = two_provinces
    response = _post_list(api, tokens["hanoi"], HANOI_LIST)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["duplicates"], body["rejected"]) == (1, 1, 2)
    rejects = httpx.get(f"{api.url}{body['rejects_url']}", headers={"Authorization": f"Bearer {tokens['hanoi']}"})
    rows = list(csv.DictReader(io.StringIO(rejects.content.decode("utf-8-sig"))))
    assert [(r["line"], r["Họ và tên"]) for r in rows] == [("2", "Tên Hà Nội đặt cho An"), ("3", "Người ở Bắc Ninh")]
    assert "belongs to a person followed by another province" in rows[0]["reason"]
    assert "outside your province (01)" in rows[1]["reason"]
    with api.sessions() as session:
        an = session.get(Person, an_id)
        assert (an.province_code, an.full_name) == ("27", "Nguyễn Văn An"), "An stays Bắc Ninh's, under their name"
        assert session.scalar(select(Person).where(Person.phone == "+84987000111")) is None
        members = session.scalars(
            select(ContactListMember.person_id).where(ContactListMember.contact_list_id == body["list_id"])
        ).all()
        assert an_id not in members and len(members) == 2
        guest = session.scalar(select(Person).where(Person.phone == "+84977777777"))
        assert (guest.province_code, guest.full_name) == ("01", "Khách web chat"), "no province yet: Hà Nội's now"
        claims = session.scalars(select(AuditLog).where(AuditLog.action == "person.move")).all()
        assert [(c.object_ids, c.detail["moves"]) for c in claims] == [([guest.id], [[guest.id, None, "01"]])]
    alerts = api.get("/api/v1/alerts", tokens["tracer27"]).json()
    assert [a["id"] for a in alerts] == [alert_id], "Bắc Ninh's tracer keeps An's urgent alert"


def test_a_national_import_may_move_people_and_each_move_is_audited(api, two_provinces):
    an_id, _, tokens = two_provinces
    response = _post_list(api, tokens["national"], "SĐT,Tỉnh\n0912345678,Hà Nội\n")
    assert response.status_code == 200 and response.json()["rejected"] == 0
    with api.sessions() as session:
        assert session.get(Person, an_id).province_code == "01"
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "person.move"))
        assert entry.detail == {"contact_list_id": response.json()["list_id"], "moves": [[an_id, "27", "01"]]}


def test_a_national_import_moves_nobody_by_its_lists_province_alone(api, two_provinces):
    """The list's province is a default for people new to the store (or without a province), not a move."""
    an_id, _, tokens = two_provinces
    response = _post_list(api, tokens["national"], "SĐT,Họ và tên\n0912345678,An\n0903000111,Mới\n", province="01")
    assert response.status_code == 200 and response.json()["rejected"] == 0
    with api.sessions() as session:
        assert session.get(Person, an_id).province_code == "27"
        assert session.scalar(select(Person.province_code).where(Person.phone == "+84903000111")) == "01"
        assert session.scalar(select(AuditLog).where(AuditLog.action == "person.move")) is None


# Moving a person


def test_a_national_manager_moves_a_person_on_the_record(api, two_provinces):
    an_id, alert_id, tokens = two_provinces
    headers = {"Authorization": f"Bearer {tokens['national']}"}
    moved = httpx.post(
        f"{api.url}/api/v1/people/{an_id}/province",
        headers=headers,
        json={"province_code": "01", "reason": "chuyển về Hà Nội"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json() == {
        "id": an_id,
        "phone": "+84912345678",
        "province_code": "01",
        "province": "Hà Nội",
        "moved_from": "27",
    }
    assert api.get("/api/v1/alerts", tokens["tracer27"]).json() == [], "Bắc Ninh no longer follows An"
    with api.sessions() as session:
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "person.move"))
        assert (entry.object_ids, entry.detail) == ([an_id], {"from": "27", "to": "01", "reason": "chuyển về Hà Nội"})
        assert entry.client_ip == "127.0.0.1"
    unknown = httpx.post(f"{api.url}/api/v1/people/{an_id}/province", headers=headers, json={"province_code": "99"})
    assert unknown.status_code == 422 and "99" in unknown.json()["message"]
    missing = httpx.post(f"{api.url}/api/v1/people/999999/province", headers=headers, json={"province_code": "01"})
    assert missing.status_code == 404


def test_the_cli_moves_a_person_on_the_record(store_url, sessions):
    with sessions.begin() as session:
        an_id = factories.person(session, "+84912345678").id
    moved = outreach(
        "people", "move", "0912 345 678", "--province", "01", "--reason", "chuyển nhà", database_url=store_url
    )
    assert moved.returncode == 0, moved.stderr
    assert "27 -> 01" in moved.stdout
    with sessions() as session:
        assert session.get(Person, an_id).province_code == "01"
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "person.move"))
        assert (entry.user_id, entry.detail) == (None, {"from": "27", "to": "01", "reason": "chuyển nhà"})
    unknown = outreach("people", "move", "0999 999 999", "--province", "01", database_url=store_url)
    assert unknown.returncode == 1 and "no person" in unknown.stderr

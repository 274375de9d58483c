"""Community teams and Zalo broadcasts to them, through the local Zalo (tests/fakes/zalo.py): a member who wrote to
the OA gets an OA message and answers in Zalo; the others get the ZNS template with a personal link, read the whole
message in a real Chromium and answer there; receipts and "seen" events fill in the report of who received, read and
answered, by API and CLI."""

import asyncio
import html
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from openpyxl import Workbook
from playwright.sync_api import expect
from sqlalchemy import delete, event, func, select, update

from access import auth, console
from access.errors import Forbidden, InvalidValue, NotFound
from app.platform import broadcast_sender, build_platform
from campaigns import teams
from campaigns.listfile import UnusableFile
from models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastReply,
    DeliveryStatus,
    Role,
    Team,
    TeamMember,
    ZaloUser,
    utcnow,
)
from tests.conftest import RunningApp, run_public_app
from tests.fakes.zalo import FakeZalo, zalo_id
from tests.support.net import free_port
from tests.support.waiting import wait_until
from tests.test_cli import outreach

TEMPLATE_ID = "a1b2c3d4e5f60718293a"
TEMPLATE = {"member": "{name}", "team": "{team}", "link": "{link}"}
PASSWORD = "mật-khẩu-đủ-dài-2021"
TEAM = "Tổ COVID cộng đồng phường Suối Hoa"
MESSAGE = "Từ 18h hôm nay, các tổ kiểm tra 100% hộ có F1 trên địa bàn và báo lại số hộ chưa liên lạc được."
T = TypeVar("T")


def team_file(tmp_path: Path, rows: list[str], name: str = "team.csv") -> Path:
    path = tmp_path / name
    path.write_text("Họ và tên,Số điện thoại,Mã Zalo\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


# ---- Team lists -------------------------------------------------------------------------------------------------


def test_a_team_list_is_the_team_and_a_bad_file_changes_nothing(sessions, tmp_path):
    first = team_file(
        tmp_path,
        [
            "Nguyễn Văn An,0912 345 678,",
            f"Trần Thị Bình,+84 983 000 111,{zalo_id()}",
            "Lê Văn Cường,12345,",  # not a phone
            "Nguyễn Văn An (lần 2),0912345678,",  # the same phone again
            "Phạm Thị Dung,0977000222,không-phải-số",
        ],
    )
    with sessions.begin() as session:
        manager = auth.add_user(session, "m27", Role.MANAGER, "27").user
        summary = teams.import_team(session, manager, first, TEAM)
    assert (summary.members, summary.added, summary.removed, summary.rejected) == (2, 2, 0, 3)
    reasons = dict(summary.first_rejects)
    assert set(reasons) == {4, 5, 6}  # lines of the file, the header being line 1
    assert "earlier row" in reasons[5] and "Zalo user id" in reasons[6]

    second = team_file(tmp_path, ["Trần Thị Bình,0983000111,", "Võ Văn Em,0388 123 456,"], "team2.csv")
    with sessions.begin() as session:
        manager = session.merge(manager)
        again = teams.import_team(session, manager, second, TEAM)
    assert again.team_id == summary.team_id and (again.members, again.added, again.removed) == (2, 1, 1)

    unusable = team_file(tmp_path, ["Không số,abc,"], "bad.csv")
    with sessions.begin() as session, pytest.raises(UnusableFile, match="no usable member"):
        teams.import_team(session, session.merge(manager), unusable, TEAM)
    with sessions() as session:
        phones = set(session.scalars(select(TeamMember.phone).where(TeamMember.team_id == summary.team_id)))
    assert phones == {"+84983000111", "+84388123456"}


def test_who_may_manage_teams(sessions, tmp_path):
    path = team_file(tmp_path, ["An,0912345678,"])
    with sessions.begin() as session:
        tracer = auth.add_user(session, "t27", Role.TRACER, "27").user
        hanoi = auth.add_user(session, "m01", Role.MANAGER, "01").user
        with pytest.raises(Forbidden):
            teams.import_team(session, tracer, path, TEAM)
        with pytest.raises(Forbidden):
            teams.import_team(session, hanoi, path, TEAM, province="27")
        team_id = teams.import_team(session, auth.operator(), path, TEAM, province="27").team_id
        with pytest.raises(NotFound):
            teams.start_broadcast(session, hanoi, team_id, MESSAGE)
        with pytest.raises(Forbidden):
            teams.start_broadcast(session, tracer, team_id, MESSAGE)
        assert [t.id for t in teams.teams(session, tracer)] == [team_id]
        assert teams.teams(session, hanoi) == []


def test_a_delivery_is_claimed_by_one_worker_and_a_stale_claim_is_taken_over(sessions, tmp_path):
    path = team_file(tmp_path, [f"Thành viên {n},09120000{n:02d}," for n in range(10)])
    with sessions.begin() as session:
        team_id = teams.import_team(session, auth.operator(), path, TEAM, province="27").team_id
        teams.start_broadcast(session, auth.operator(), team_id, MESSAGE)
    now = utcnow()
    with sessions.begin() as first, sessions.begin() as second:
        taken = teams.claim_due(first, now, limit=6)
    with sessions.begin() as second:
        others = teams.claim_due(second, now, limit=10)
    assert len(taken) == 6 and len(others) == 4
    assert not {o.delivery_id for o in taken} & {o.delivery_id for o in others}
    with sessions.begin() as session:
        assert teams.claim_due(session, now + timedelta(seconds=30)) == []  # claims still fresh
        retaken = teams.claim_due(session, now + teams.CLAIM_LEASE + timedelta(seconds=1), limit=10)
    assert len(retaken) == 10  # a worker that died after claiming leaves its deliveries to another
    late = taken[0]  # the first worker, back from a long wait: what it writes now changes nothing
    with sessions.begin() as session:
        assert not teams.still_mine(session, late)
        teams.record_failed(session, late, "too late")
        teams.record_sent(session, next(o for o in retaken if o.delivery_id == late.delivery_id), "zns", "msg-b")
        teams.record_failed(session, late, "too late again")
    with sessions() as session:
        delivery = session.get(BroadcastDelivery, late.delivery_id)
        assert (delivery.status, delivery.provider_ref, delivery.error) == (DeliveryStatus.SENT, "msg-b", None)


def test_a_quoted_message_alone_answers_a_broadcast_during_a_conversation(sessions, tmp_path):
    member_user = zalo_id()
    path = team_file(tmp_path, [f"An,0912345678,{member_user}"])
    with sessions.begin() as session:
        team_id = teams.import_team(session, auth.operator(), path, TEAM, province="27").team_id
        teams.start_broadcast(session, auth.operator(), team_id, MESSAGE)
        (outgoing,) = teams.claim_due(session, utcnow())
        teams.record_sent(session, outgoing, "zalo", "oa-msg-1", member_user)
    since = utcnow() - timedelta(hours=48)
    with sessions() as session:
        assert teams.awaiting_reply(session, member_user, since, quoted_only=True) is None
        assert teams.awaiting_reply(session, member_user, since, "another-msg", quoted_only=True) is None
        assert teams.awaiting_reply(session, member_user, since, "oa-msg-1", quoted_only=True) == outgoing.delivery_id
        assert teams.awaiting_reply(session, member_user, since) == outgoing.delivery_id
        assert teams.awaiting_reply(session, member_user, utcnow() + timedelta(seconds=1)) is None  # window past
    with sessions.begin() as session:
        teams.record_reply(session, outgoing.delivery_id, "Đã nhận.", "zalo", utcnow(), external_id="m1")
        # Answered: their next messages are theirs again (a declaration, a question), unless they quote it.
        assert teams.awaiting_reply(session, member_user, since) is None
        assert teams.awaiting_reply(session, member_user, since, "oa-msg-1") == outgoing.delivery_id
        assert not teams.record_reply(session, outgoing.delivery_id, "Đã nhận.", "zalo", utcnow(), external_id="m1")


def queued_broadcast(session, tmp_path: Path, rows: list[str], text: str = MESSAGE, team: str = TEAM) -> int:
    team_id = teams.import_team(session, auth.operator(), team_file(tmp_path, rows), team, province="27").team_id
    return teams.start_broadcast(session, auth.operator(), team_id, text).id


def test_failures_that_may_pass_are_tried_later_and_a_member_who_left_is_not_sent_to(sessions, tmp_path):
    with sessions.begin() as session:
        broadcast_id = queued_broadcast(session, tmp_path, ["An,0912345678,", "Bình,0983000111,", "Cường,0388123456,"])
    now = utcnow()
    with sessions.begin() as session:
        an, binh, cuong = sorted(teams.claim_due(session, now), key=lambda o: o.name)
        teams.retry_later(session, an, "Zalo -1124: out of quota")
        teams.retry_later(session, binh, "not tried", counted=False)
        teams.record_failed(session, cuong, "ZNS -118: no Zalo account")
    with sessions.begin() as session:
        (again,) = teams.claim_due(session, utcnow())  # Bình at once; An waits a minute
        assert again.name == "Bình"
        later = teams.claim_due(session, utcnow() + teams.RETRY_AFTER[0] + timedelta(seconds=1))
        assert [o.name for o in later] == ["An"]
        for _ in range(teams.MAX_TRIES - 1):
            teams.retry_later(session, later[0], "Zalo -1124: out of quota")
            later = teams.claim_due(session, utcnow() + timedelta(days=1)) or later
    with sessions() as session:
        rows = {row.name: row for row in teams.report(session, auth.operator(), broadcast_id).members}
    assert rows["An"].status == "failed" and rows["An"].tries == teams.MAX_TRIES
    assert rows["An"].error.startswith(f"gave up after {teams.MAX_TRIES} tries")
    assert rows["Cường"].status == "failed" and rows["Cường"].tries == 0

    with sessions.begin() as session:
        assert teams.resend_failed(session, auth.operator(), broadcast_id) == 2
        session.execute(delete(TeamMember).where(TeamMember.name == "Cường"))  # left the team meanwhile
        claimed = teams.claim_due(session, utcnow())
        assert sorted(o.name for o in claimed) == ["An"]
        assert teams.cancel(session, auth.operator(), broadcast_id) == 0  # Bình is being sent, An claimed
    with sessions() as session:
        found = teams.report(session, auth.operator(), broadcast_id)
    assert {row.name: row.status for row in found.members} == {"An": "queued", "Bình": "queued", "Cường": "canceled"}
    assert found.counts["canceled"] == 1 and found.counts["queued"] == 2


def test_a_report_reads_the_store_a_few_times_however_large_the_team(sessions, tmp_path):
    rows = [f"Thành viên {n},0912{n:06d}," for n in range(300)]
    with sessions.begin() as session:
        broadcast_id = queued_broadcast(session, tmp_path, rows)
        team_id = session.get(Broadcast, broadcast_id).team_id
    statements = []
    engine = sessions.kw["bind"]
    listen = lambda *args: statements.append(args[2])  # noqa: E731 - the statement of each cursor execution
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with sessions() as session:
            found = teams.report(session, auth.operator(), broadcast_id)
            (summary,) = teams.summaries(session, auth.operator(), team_id)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert len(found.members) == 300 and summary.counts == found.counts
    assert len(statements) <= 8, statements


def test_names_and_texts_are_read_as_people_meant_them(sessions, tmp_path):
    with sessions.begin() as session:
        first = teams.import_team(session, auth.operator(), team_file(tmp_path, ["An,0912345678,"]), "Tổ A", "27")
        again = teams.import_team(
            session, auth.operator(), team_file(tmp_path, ["An,0912345678,"]), "Tổ\u200b  A\u202e", "27"
        )
        assert again.team_id == first.team_id
        with pytest.raises(InvalidValue):
            teams.start_broadcast(session, auth.operator(), first.team_id, "\u200b\u200b \x00")
        national = teams.import_team(session, auth.operator(), team_file(tmp_path, ["An,0912345678,"]), "Tổ Q")
        assert teams.import_team(
            session, auth.operator(), team_file(tmp_path, ["Bình,0983000111,"]), "Tổ Q"
        ).team_id == (national.team_id)  # one national team of a name, though its province is NULL


def test_an_id_excel_rounded_is_refused_with_the_reason(sessions, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Họ tên", "Số điện thoại", "Mã Zalo"])
    sheet.append(["An", 912345678, 1234567890123456789])  # a number cell: a float, its last digits gone
    sheet.append(["Bình", "0983000111", "1234567890123456789"])  # a text cell keeps them
    book.save(tmp_path / "team.xlsx")
    with sessions.begin() as session:
        summary = teams.import_team(session, auth.operator(), tmp_path / "team.xlsx", TEAM, "27")
        members = {m.name: m.zalo_user_id for m in teams.team(session, auth.operator(), summary.team_id).members}
    assert members == {"Bình": "1234567890123456789"}
    assert "format that column as text" in dict(summary.first_rejects)[2]


# ---- Broadcasting through the local Zalo ------------------------------------------------------------------------


@pytest.fixture
def zalo():
    fake = FakeZalo(templates={TEMPLATE_ID: set(TEMPLATE)})
    with fake.running():
        yield fake


@pytest.fixture
def app(store_url, zalo):
    settings = {
        **zalo.settings(),
        "zalo_broadcast_template_id": TEMPLATE_ID,
        "zalo_broadcast_template_data": TEMPLATE,
    }
    # Members answer broadcasts without the dialogue engine: its URL points nowhere.
    for running in run_public_app(store_url, f"http://127.0.0.1:{free_port()}", **settings):
        zalo.webhook_url = f"{running.url}/webhooks/zalo"
        yield running


def send_due(app: RunningApp, **settings: Any) -> int:
    """What the worker's broadcast job does, on a platform of its own as the worker has (with other `settings`)."""

    async def run() -> int:
        platform = build_platform(app.settings.model_copy(update=settings))
        try:
            return await broadcast_sender(platform).send_due()
        finally:
            await platform.aclose_clients()
            platform.db_engine.dispose()

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        return thread.submit(asyncio.run, run()).result()


def deliver(zalo: FakeZalo, event: dict[str, Any], *, zns: bool = False) -> None:
    response = zalo.deliver(event, zns=zns)
    assert response.status_code == 200, response.text


def api(app: RunningApp, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{app.url}{path}", headers=headers, timeout=10, **kwargs)


def test_a_broadcast_reaches_every_member_and_the_report_says_who_read_and_answered(app, zalo, browser, tmp_path):
    writer, listed = zalo_id(), zalo_id()  # `writer` wrote to the OA a minute ago; `listed` three days ago
    with app.sessions.begin() as session:
        tokens = {
            "manager": auth.add_user(session, "m27", Role.MANAGER, "27").token,
            "tracer": auth.add_user(session, "t27", Role.TRACER, "27").token,
            "hanoi": auth.add_user(session, "m01", Role.MANAGER, "01").token,
            "viewer": auth.add_user(session, "v27", Role.VIEWER, "27").token,
        }
        session.add(ZaloUser(user_id=listed, last_message_at=utcnow() - timedelta(days=3)))
    rows = [f"An Writer,0912 345 678,{writer}", "Bình Link,0983000111,", f"Cường Stale,0388123456,{listed}"]
    with team_file(tmp_path, rows).open("rb") as upload:
        imported = api(app, "POST", "/api/v1/teams", tokens["manager"], files={"file": upload}, data={"name": TEAM})
    assert imported.status_code == 200, imported.text
    team_id = imported.json()["team_id"]
    assert imported.json()["members"] == 3

    deliver(zalo, zalo.text_event(writer, "chào trung tâm"))  # unknown to the store: asked for their phone
    wait_until(lambda: zalo.messages_to(writer), "the OA's answer to the member")

    refused = api(app, "POST", f"/api/v1/teams/{team_id}/broadcasts", tokens["tracer"], json={"text": MESSAGE})
    assert refused.status_code == 403
    started = api(app, "POST", f"/api/v1/teams/{team_id}/broadcasts", tokens["manager"], json={"text": MESSAGE})
    assert started.status_code == 201, started.text
    broadcast_id = started.json()["id"]
    assert started.json()["counts"]["queued"] == 3
    assert api(app, "GET", f"/api/v1/broadcasts/{broadcast_id}", tokens["hanoi"]).status_code == 404
    assert api(app, "GET", f"/api/v1/broadcasts/{broadcast_id}", tokens["viewer"]).status_code == 403  # answers

    assert send_due(app) == 3
    assert send_due(app) == 0  # each delivery once
    (oa_message,) = [m for m in zalo.messages_to(writer) if m.text and MESSAGE in m.text]
    assert oa_message.text.startswith(f"[{TEAM}]")
    by_phone = {sent.phone: sent for sent in zalo.zns}
    assert set(by_phone) == {"84983000111", "84388123456"}  # no OA message outside the reply window
    link = by_phone["84983000111"].template_data["link"]
    assert by_phone["84983000111"].template_data["member"] == "Bình Link"
    assert link.startswith(f"{app.url}/b/") and by_phone["84983000111"].tracking_id.startswith("b")

    # Zalo's receipts: the OA message received and seen, one ZNS received; each event handled once.
    deliver(zalo, zalo.received_event(oa_message))
    deliver(zalo, zalo.zns_receipt(by_phone["84388123456"]), zns=True)
    deliver(zalo, zalo.seen_event(listed, oa_message))  # someone else's message id: not theirs to have seen
    seen = zalo.seen_event(writer, oa_message)
    deliver(zalo, seen)
    deliver(zalo, seen)

    answer = zalo.text_event(writer, "Tổ đã nhận, còn 3 hộ chưa liên lạc được.")
    deliver(zalo, answer)
    thanks = wait_until(lambda: [m for m in zalo.messages_to(writer) if m.text and "Đã ghi nhận" in m.text], "thanks")
    deliver(zalo, answer)  # Zalo's retry of the same message adds no second reply
    before = len(zalo.messages_to(writer))
    deliver(zalo, zalo.text_event(writer, "Cho tôi hỏi lịch tiêm của phường"))  # answered: theirs again
    asked = wait_until(lambda: zalo.messages_to(writer)[before:], "the OA's usual answer")
    assert asked[0].template_type == "request_user_info"  # the usual path: an unknown user is asked their phone

    def row_of(name: str) -> dict[str, Any]:
        found = api(app, "GET", f"/api/v1/broadcasts/{broadcast_id}", tokens["tracer"]).json()["members"]
        return next(row for row in found if row["name"] == name)

    assert httpx.get(link, timeout=10).status_code == 200  # a link preview's fetch runs no script: not a reading
    assert row_of("Bình Link")["read_at"] is None
    page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name=TEAM)).to_be_visible()
    expect(page.locator("#message")).to_have_text(MESSAGE)
    expect(page.locator("body")).to_have_attribute("data-read", "yes")
    assert row_of("Bình Link")["status"] == "read"
    page.get_by_role("button", name="Gửi phản hồi").click()  # empty: the browser asks for text first
    expect(page.locator("#sent")).to_have_count(0)
    page.get_by_label("Phản hồi cho Trung tâm").fill("Đã rõ, tối nay tổ đi từng nhà.")
    page.get_by_role("button", name="Gửi phản hồi").click()
    expect(page.locator("#sent")).to_be_visible()
    expect(page.locator(".reply")).to_have_text(["Đã rõ, tối nay tổ đi từng nhà."])
    page.screenshot(path=str(tmp_path / "member-page.png"), full_page=True)
    assert httpx.get(f"{app.url}/b/not-a-key", timeout=10).status_code == 404

    def report() -> dict[str, Any]:
        return api(app, "GET", f"/api/v1/broadcasts/{broadcast_id}", tokens["tracer"]).json()

    done = wait_until(lambda: (r := report())["counts"]["answered"] == 2 and r, "both answers in the report")
    assert done["counts"] == {
        "members": 3, "queued": 0, "canceled": 0, "failed": 0, "sent": 3, "received": 3, "read": 2, "answered": 2
    }  # fmt: skip
    members = {row["name"]: row for row in done["members"]}
    assert members["An Writer"]["status"] == "answered" and members["An Writer"]["channel"] == "zalo"
    assert members["An Writer"]["replies"] == ["Tổ đã nhận, còn 3 hộ chưa liên lạc được."]
    assert members["Bình Link"]["status"] == "answered" and members["Bình Link"]["channel"] == "zns"
    assert members["Cường Stale"]["status"] == "received" and members["Cường Stale"]["channel"] == "zns"
    assert len(thanks) == 1
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BroadcastReply)) == 2


def report_rows(app: RunningApp, broadcast_id: int) -> dict[str, Any]:
    with app.sessions() as session:
        return {row.name: row for row in teams.report(session, auth.operator(), broadcast_id).members}


def test_what_each_failure_means_and_sending_the_failed_ones_again(app, zalo, tmp_path):
    with app.sessions.begin() as session:
        broadcast_id = queued_broadcast(session, tmp_path, ["An,0912345678,", "Bình,0983000111,"])
    zalo.fail_next(-1124, "Out of quota")  # An's ZNS: ours to wait out
    zalo.fail_next(-118, "Phone has no Zalo account")  # Bình's: about Bình, final
    assert send_due(app) == 0
    rows = report_rows(app, broadcast_id)
    assert (rows["An"].status, rows["An"].tries) == ("queued", 1) and "-1124" in rows["An"].error
    assert (rows["Bình"].status, rows["Bình"].tries) == ("failed", 0) and "-118" in rows["Bình"].error
    assert send_due(app) == 0  # An waits a minute before the next try
    with app.sessions.begin() as session:
        session.execute(update(BroadcastDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert send_due(app) == 1 and report_rows(app, broadcast_id)["An"].status == "sent"

    with app.sessions.begin() as session:
        template_broken = queued_broadcast(session, tmp_path, ["Cường,0388123456,"], "Họp tổ lúc 19h.", "Tổ 2")
    assert send_due(app, zalo_broadcast_template_data={"link": "{link.url}"}) == 0
    assert "OUTREACH_ZALO_BROADCAST_TEMPLATE_DATA" in report_rows(app, template_broken)["Cường"].error
    with app.sessions.begin() as session:
        no_template = queued_broadcast(session, tmp_path, ["Dũng,0388123457,"], "Họp tổ lúc 20h.", "Tổ 3")
    assert send_due(app, zalo_broadcast_template_id="") == 0
    assert "no ZNS template for broadcasts" in report_rows(app, no_template)["Dũng"].error
    with app.sessions.begin() as session:
        assert teams.resend_failed(session, auth.operator(), template_broken) == 1
        assert teams.resend_failed(session, auth.operator(), no_template) == 1
    assert send_due(app) == 2 and report_rows(app, template_broken)["Cường"].status == "sent"
    assert zalo.messages == []  # nobody here wrote to the OA: ZNS alone


def test_an_outage_sends_nothing_and_burns_one_try_not_the_whole_team(app, zalo, tmp_path):
    with app.sessions.begin() as session:
        broadcast_id = queued_broadcast(session, tmp_path, [f"Thành viên {n},09120000{n:02d}," for n in range(12)])
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert send_due(app, zalo_api_base_url=nowhere, zalo_oauth_base_url=nowhere, zalo_zns_base_url=nowhere) == 0
    rows = report_rows(app, broadcast_id).values()
    assert sorted(row.tries for row in rows) == [0] * 11 + [1] and {row.status for row in rows} == {"queued"}
    with app.sessions.begin() as session:
        session.execute(update(BroadcastDelivery).values(next_attempt_at=None))
    assert send_due(app) == 12 and zalo.zns and len(zalo.zns) == 12  # Zalo back: everyone, once


def test_a_long_message_goes_in_one_oa_message_with_a_link_to_the_rest(app, zalo, tmp_path):
    member = zalo_id()
    long_text = "Hướng dẫn chi tiết cho tổ. " * 140  # 3,780 characters
    with app.sessions.begin() as session:
        session.add(ZaloUser(user_id=member, last_message_at=utcnow()))
        broadcast_id = queued_broadcast(session, tmp_path, [f"An,0912345678,{member}"], text=long_text)
    assert send_due(app) == 1
    (message,) = zalo.messages_to(member)
    assert len(message.text) <= 2000 and "Xem toàn bộ và trả lời tại:" in message.text
    link = message.text.rsplit(" ", 1)[-1]
    page = httpx.get(link, timeout=10)
    assert page.status_code == 200 and long_text.strip()[-200:] in html.unescape(page.text)
    for n in range(teams.MAX_REPLIES):
        assert httpx.post(link, data={"text": f"Trả lời {n}"}, timeout=10).status_code == 303
    too_many = httpx.post(link, data={"text": "Thêm nữa"}, timeout=10)
    assert too_many.status_code == 422 and "20 answers" in too_many.text
    assert len(report_rows(app, broadcast_id)["An"].replies) == teams.MAX_REPLIES


def test_the_same_new_team_imported_four_times_at_once_is_one_team(app, tmp_path):
    with app.sessions.begin() as session:
        token = auth.add_user(session, "m27", Role.MANAGER, "27").token
    body = team_file(tmp_path, ["An,0912345678,", "Bình,0983000111,"]).read_bytes()

    def upload(_: int) -> int:
        files = {"file": ("team.csv", body)}
        return api(app, "POST", "/api/v1/teams", token, files=files, data={"name": "Tổ mới"}).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(upload, range(4))) == [200] * 4
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Team)) == 1
        assert session.scalar(select(func.count()).select_from(TeamMember)) == 2


def test_the_cli_imports_a_team_broadcasts_and_reports(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'outreach.db'}"  # each command starts the CLI: one store is enough
    path = team_file(tmp_path, ["Nguyễn Văn An,0912345678,", "Trần Thị Bình,0983000111,", "sai,123,"])
    env = {"OUTREACH_ZALO_APP_ID": "123"}
    imported = outreach("teams", "import", str(path), "--team", TEAM, "--province", "27", database_url=store_url)
    assert imported.returncode == 0, imported.stderr
    assert "2 members (2 added, 0 removed), 1 rows rejected" in imported.stdout and "row 4:" in imported.stdout
    listed = outreach("teams", "list", database_url=store_url)
    assert TEAM in listed.stdout
    sent = outreach("teams", "broadcast", "1", "--message", MESSAGE, database_url=store_url, **env)
    assert sent.returncode == 0, sent.stderr
    assert "queued for 2 members" in sent.stdout
    empty = outreach("teams", "broadcast", "1", "--message", "   ", database_url=store_url, **env)
    assert empty.returncode == 1 and "text" in empty.stderr
    reported = outreach("teams", "report", "1", "--json", database_url=store_url)
    assert reported.returncode == 0, reported.stderr
    report = json.loads(reported.stdout)
    assert report["counts"]["queued"] == 2 and report["text"] == MESSAGE
    canceled = outreach("teams", "cancel", "1", database_url=store_url)
    assert canceled.returncode == 0 and "2 deliveries canceled" in canceled.stdout
    missing = outreach("teams", "report", "99", database_url=store_url)
    assert missing.returncode == 1 and "no broadcast 99" in missing.stderr


def test_the_console_imports_a_team_broadcasts_and_shows_who_answered(app, zalo, browser, tmp_path):
    with app.sessions.begin() as session:
        console.set_password(auth.add_user(session, "manager-bn", Role.MANAGER, "27").user, PASSWORD)
    page = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN").new_page()
    page.goto(f"{app.url}/console/login?next=/console/teams")
    page.get_by_label("Tên đăng nhập").fill("manager-bn")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("heading", name="Tổ COVID cộng đồng")).to_be_visible()

    (tmp_path / "not-a-list.csv").write_text("Họ tên,Ghi chú\nAn,abc\n", encoding="utf-8")
    page.get_by_label("Tệp danh sách").set_input_files(str(tmp_path / "not-a-list.csv"))
    page.get_by_label("Tên tổ").fill(TEAM)
    page.get_by_role("button", name="Tải lên").click()
    expect(page.locator("#team-error")).to_contain_text("no phone column")

    page.get_by_label("Tệp danh sách").set_input_files(
        str(team_file(tmp_path, ["An,0912345678,", "Bình,0983000111,", "x,1,"]))
    )
    page.get_by_label("Tên tổ").fill(TEAM)
    page.get_by_role("button", name="Tải lên").click()
    expect(page.get_by_role("heading", name=TEAM)).to_be_visible()
    expect(page.locator("#rejected")).to_contain_text("1 dòng")
    expect(page.locator("#members tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Gửi cho 2 thành viên").click()  # empty: the browser asks for text first
    expect(page.get_by_role("heading", name=TEAM)).to_be_visible()
    page.get_by_label("Nội dung").fill(MESSAGE)
    page.get_by_role("button", name="Gửi cho 2 thành viên").click()
    expect(page.locator("#broadcast-text")).to_have_text(MESSAGE)
    expect(page.locator("#count-queued")).to_have_text("2")

    assert send_due(app) == 2
    (to_an,) = [sent for sent in zalo.zns if sent.phone == "84912345678"]
    answered = httpx.post(to_an.template_data["link"], data={"text": "Tổ đã nhận."}, timeout=10)
    assert answered.status_code == 303
    page.get_by_role("link", name="Làm mới").click()
    expect(page.locator("#count-answered")).to_have_text("1")
    expect(page.locator("#count-sent")).to_have_text("2")
    expect(page.locator("#deliveries [data-status=answered]")).to_contain_text("Tổ đã nhận.")
    page.screenshot(path=str(tmp_path / "broadcast-report.png"), full_page=True)
    page.get_by_role("link", name="‹ Về tổ").click()
    expect(page.locator("#broadcasts tbody tr")).to_have_count(1)

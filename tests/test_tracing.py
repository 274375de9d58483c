"""QR check-ins in, F1 lists out: the co-presence rule at its edges, against a plain-Python reading of the rule on
random data, on Spark in local mode, through the CLI and over the API."""

import csv
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from access import auth
from access.auth import operator
from access.errors import Forbidden
from app.routers import contact_lists
from campaigns.importer import ReadLimits
from ground.settings import PROJECT_ROOT, Settings
from ground.store import make_engine, make_session_factory
from models import AuditLog, ContactList, ContactListMember, Person, Role
from tests import factories
from tests.conftest import run_app
from tests.support.net import free_port
from tests.test_cli import OUTREACH, outreach
from tracing.analytics import connection, quoted
from tracing.checkins import import_checkins, stored_checkins
from tracing.copresence import Case, Exposure, derive_f1, exposures, fold, read_cases

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
CASE_PHONE, OTHER_CASE = "0912000001", "0912000002"
CHECKIN_HEADER = ["venue_id", "phone", "checked_in_at", "checked_out_at"]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(checkins_dir=tmp_path / "checkins", analytics_memory_mb=512)


@pytest.fixture
def store(migrated_sqlite, tmp_path):
    path = tmp_path / "store.db"
    shutil.copyfile(migrated_sqlite, path)
    engine = make_engine(f"sqlite:///{path}")
    yield make_session_factory(engine)
    engine.dispose()


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as sink:
        csv.writer(sink).writerows([header, *rows])
    return path


def cases_file(tmp_path: Path, *cases: tuple[str, str, str, str]) -> Path:
    return write_csv(tmp_path / "cases.csv", ["phone", "infectious_from", "infectious_to", "case_code"], list(cases))


class World:
    """Check-ins imported from a CSV, and F1 lists derived from them as the operator."""

    def __init__(self, store, settings: Settings, tmp_path: Path) -> None:
        self.store, self.settings, self.tmp_path = store, settings, tmp_path
        self.files = 0

    def checkins(self, *rows: tuple[str, str, str, str]) -> None:
        self.files += 1
        path = write_csv(self.tmp_path / f"checkins-{self.files}.csv", CHECKIN_HEADER, [list(row) for row in rows])
        summary = import_checkins(self.store, operator(), path, self.settings)
        assert summary.rejected == 0, summary.first_rejects

    def f1(self, *cases: tuple[str, str, str, str], dwell: int = 60, **options):
        derivation = derive_f1(
            self.store,
            operator(),
            self.settings,
            read_cases(cases_file(self.tmp_path, *cases), ReadLimits()),
            f"F1 {len(cases)} cases",
            source="cases.csv",
            dwell_minutes=dwell,
            **options,
        )
        return {f1.phone: f1 for f1 in derivation.f1s}


@pytest.fixture
def world(store, settings, tmp_path) -> World:
    return World(store, settings, tmp_path)


CASE = (CASE_PHONE, "2021-06-01", "2021-06-03", "BN100")
CASE_OF_BN100 = Case("+84912000001", "BN100", date(2021, 6, 1), date(2021, 6, 3))


def test_people_there_at_the_same_time_as_a_case_are_its_f1s_once_each(world):
    world.checkins(
        ("CHO-DONG", CASE_PHONE, "2021-06-02 08:00", "2021-06-02 09:00"),
        ("CHO-DONG", "0987000001", "2021-06-02 08:30", "2021-06-02 10:00"),  # overlaps
        ("CHO-DONG", "0987000001", "2021-06-02 08:45", ""),  # again, same case and venue: still one F1
        ("CHO-DONG", "0987000002", "2021-06-02 07:00", "2021-06-02 08:00"),  # left as the case came: touching only
        ("CHO-DONG", "0987000003", "2021-06-02 09:00", "2021-06-02 09:30"),  # came as the case left: touching only
        ("BENH-VIEN", "0987000004", "2021-06-02 08:30", "2021-06-02 09:00"),  # same time, another venue
    )
    found = world.f1(CASE)
    assert list(found) == ["+84987000001"]
    assert found["+84987000001"].case_codes == ["BN100"]
    assert found["+84987000001"].venues == ["CHO-DONG"]
    assert found["+84987000001"].exposure_date == date(2021, 6, 2)


def test_a_missing_check_out_lasts_the_dwell_time(world):
    world.checkins(
        ("QUAN-AN", CASE_PHONE, "2021-06-02 12:00", ""),
        ("QUAN-AN", "0987000001", "2021-06-02 12:59", ""),  # the case is there until 13:00
        ("QUAN-AN", "0987000002", "2021-06-02 13:00", ""),
        ("QUAN-AN", "0987000003", "2021-06-02 11:00", ""),  # gone at 12:00 as the case came
    )
    assert set(world.f1(CASE)) == {"+84987000001"}
    assert set(world.f1(CASE, dwell=30)) == set(), "a shorter dwell: the case left at 12:30"
    assert set(world.f1(CASE, dwell=120)) == {"+84987000001", "+84987000002", "+84987000003"}


def test_only_the_infectious_period_counts_whole_local_days_both_ends_included(world):
    world.checkins(
        ("NHA-VAN-HOA", CASE_PHONE, "2021-05-31 23:00", "2021-06-01 01:00"),  # straddles the first midnight
        ("NHA-VAN-HOA", "0987000001", "2021-05-31 23:10", "2021-05-31 23:50"),  # before the period: not an F1
        ("NHA-VAN-HOA", "0987000002", "2021-05-31 23:30", "2021-06-01 00:10"),  # into the period: an F1
        ("SIEU-THI", CASE_PHONE, "2021-06-03 23:00", "2021-06-04 01:00"),  # the last day, into the next
        ("SIEU-THI", "0987000003", "2021-06-03 23:50", "2021-06-04 00:30"),  # an F1, last together on the 3rd
        ("SIEU-THI", "0987000004", "2021-06-04 00:00", "2021-06-04 00:30"),  # after the period ended
        ("CHUA", CASE_PHONE, "2021-05-20 08:00", "2021-05-20 09:00"),  # long before
        ("CHUA", "0987000005", "2021-05-20 08:00", "2021-05-20 09:00"),
    )
    found = world.f1(CASE)
    assert set(found) == {"+84987000002", "+84987000003"}
    assert found["+84987000002"].exposure_date == date(2021, 6, 1)
    assert found["+84987000003"].exposure_date == date(2021, 6, 3), "together until midnight, not on the 4th"


def test_times_with_an_offset_are_instants_and_dates_are_local(world):
    world.checkins(
        ("GA", CASE_PHONE, "2021-06-01T23:00:00Z", "2021-06-02T00:00:00+00:00"),  # 06:00-07:00 on the 2nd in Hà Nội
        ("GA", "0987000001", "2021-06-02 06:30", "2021-06-02 07:30"),  # local
        ("GA", "0987000002", "02/06/2021 07:00", ""),  # local, day first: touching the end
    )
    found = world.f1(CASE)
    assert set(found) == {"+84987000001"}
    assert found["+84987000001"].exposure_date == date(2021, 6, 2)


def test_cases_are_not_f1s_and_an_f1_of_several_cases_is_listed_once_with_all(world, tmp_path):
    world.checkins(
        ("CHO", CASE_PHONE, "2021-06-02 08:00", "2021-06-02 09:00"),
        ("CHO", OTHER_CASE, "2021-06-02 08:00", "2021-06-02 09:00"),  # a case with a case: neither is an F1
        ("CHO", "0987000001", "2021-06-02 08:30", "2021-06-02 09:30"),
        ("QUAN", OTHER_CASE, "2021-06-03 18:00", "2021-06-03 19:00"),
        ("QUAN", "0987000001", "2021-06-03 18:30", "2021-06-03 19:00"),
    )
    other = (OTHER_CASE, "2021-06-01", "2021-06-05", "BN101")
    found = world.f1(CASE, other, out=tmp_path / "f1.csv")
    assert list(found) == ["+84987000001"]
    assert found["+84987000001"].case_codes == ["BN100", "BN101"]
    assert found["+84987000001"].venues == ["CHO", "QUAN"]
    assert found["+84987000001"].exposure_date == date(2021, 6, 3), "the latest exposure"
    with (tmp_path / "f1.csv").open(encoding="utf-8") as written:
        assert list(csv.reader(written)) == [
            ["phone", "exposure_date", "case_codes", "venues"],
            ["+84987000001", "2021-06-03", "BN100; BN101", "CHO; QUAN"],
        ]
    assert stat.S_IMODE(os.stat(tmp_path / "f1.csv").st_mode) == 0o600


def test_the_f1s_become_a_contact_list_ready_for_a_campaign(sessions, settings, tmp_path):
    with sessions.begin() as session:
        factories.person(session, "+84987000002", name="Trần Bình", province_code="27")  # known already
    world = World(sessions, settings, tmp_path)
    world.checkins(
        ("CHO", CASE_PHONE, "2021-06-02 08:00", "2021-06-02 09:00"),
        ("CHO", "0987000001", "2021-06-02 08:30", ""),
        ("CHO", "0987 000 002", "2021-06-02 08:10", "2021-06-02 08:20"),
    )
    derivation = derive_f1(sessions, operator(), settings, [CASE_OF_BN100], "F1 của BN100", source="t", province="27")
    summary = derivation.contact_list
    assert (summary.imported, summary.duplicates, summary.rejected) == (1, 1, 0)
    with sessions() as session:
        listed = session.get(ContactList, summary.list_id)
        assert (listed.name, listed.province_code) == ("F1 của BN100", "27")
        members = session.execute(
            select(Person.phone, Person.full_name, ContactListMember.exposure_date, ContactListMember.source_case)
            .join(ContactListMember, ContactListMember.person_id == Person.id)
            .where(ContactListMember.contact_list_id == listed.id)
            .order_by(Person.phone)
        ).all()
    assert [tuple(member) for member in members] == [
        ("+84987000001", None, date(2021, 6, 2), "BN100"),
        ("+84987000002", "Trần Bình", date(2021, 6, 2), "BN100"),
    ]


def test_deriving_is_a_national_action(store, settings, tmp_path):
    """The check-ins are the whole country's: a province naming anyone a case would learn who they were with."""
    with store.begin() as session:
        bac_ninh = auth.add_user(session, "manager-27", Role.MANAGER, "27").user
    World(store, settings, tmp_path).checkins(("CHO", CASE_PHONE, "2021-06-02 08:00", ""))
    with pytest.raises(Forbidden, match="national"):
        derive_f1(store, bac_ninh, settings, [CASE_OF_BN100], "F1 BN100", source="t")


def test_a_check_out_at_the_check_in_is_none_and_a_stay_of_days_is_a_mistake(world, store, settings, tmp_path):
    world.checkins(
        ("CHO", CASE_PHONE, "2021-06-02 08:00", "2021-06-02 08:00"),  # no length: the dwell time instead
        ("CHO", "0987000001", "2021-06-02 08:30", ""),
    )
    assert set(world.f1(CASE)) == {"+84987000001"}
    path = write_csv(tmp_path / "typo.csv", CHECKIN_HEADER, [["CHO", "0987000002", "2021-06-02 08:00", "2022-06-02"]])
    summary = import_checkins(store, operator(), path, settings)
    assert summary.rejected == 1 and "more than 24 hours" in summary.first_rejects[0][1]


def test_exposure_is_today_at_the_latest():
    tomorrow = datetime.now(UTC) + timedelta(days=1, hours=2)
    (f1,) = fold([Exposure("+84987000001", "BN1", "CHO", tomorrow)], HANOI)
    assert f1.exposure_date == datetime.now(HANOI).date()


def test_a_file_name_duckdb_would_take_for_a_pattern_is_refused(store, settings, tmp_path):
    path = write_csv(tmp_path / "day[1].csv", CHECKIN_HEADER, [["CHO", "0912345678", "2021-06-02 08:00", ""]])
    with pytest.raises(ValueError, match="rename the file"):
        import_checkins(store, operator(), path, settings)


def test_many_case_codes_are_cut_to_what_the_list_keeps_and_all_are_in_the_file(world, tmp_path):
    cases = [(f"09120000{i:02d}", "2021-06-01", "2021-06-03", f"BN-2021-06-{i:05d}") for i in range(10, 30)]
    world.checkins(
        *[("CHO", phone, "2021-06-02 08:00", "") for phone, *_ in cases], ("CHO", "0987000001", "2021-06-02 08:10", "")
    )
    found = world.f1(*cases, out=tmp_path / "f1.csv")
    assert len(found["+84987000001"].case_codes) == 20
    with world.store() as session:
        (kept,) = session.scalars(select(ContactListMember.source_case)).all()
    assert len(kept) <= ContactListMember.source_case.type.length
    assert kept.startswith("BN-2021-06-00010; ") and kept.endswith(")"), kept


# ---- against the rule read plainly ----------------------------------------------------------------------------------


def plain_f1s(visits, cases: list[Case], dwell: int) -> dict[str, tuple[date, list[str], list[str]]]:
    """The rule as a tracer would apply it by hand: every pair of visits, one by one."""
    case_phones = {case.phone for case in cases}
    found: dict[str, tuple[date, set[str], set[str]]] = {}
    for case in cases:
        start = datetime.combine(case.infectious_from, datetime.min.time(), HANOI)
        end = datetime.combine(case.infectious_to + timedelta(days=1), datetime.min.time(), HANOI)
        for venue, phone, arrived, left in visits:
            if phone != case.phone:
                continue
            there_from, there_to = max(arrived, start), min(left or arrived + timedelta(minutes=dwell), end)
            if there_from >= there_to:  # this visit was outside the infectious period
                continue
            for other_venue, other, came, went in visits:
                went = went or came + timedelta(minutes=dwell)
                if other in case_phones or other_venue != venue or not (came < there_to and there_from < went):
                    continue
                day = (min(went, there_to) - timedelta(microseconds=1)).astimezone(HANOI).date()
                before, codes, venues = found.get(other, (day, set(), set()))
                found[other] = (max(before, day), codes | {case.case_code}, venues | {venue})
    return {phone: (day, sorted(codes), sorted(venues)) for phone, (day, codes, venues) in found.items()}


def random_checkins(seed: int, path: Path) -> tuple[list, list[Case]]:
    """A week of check-ins at a few venues by a few hundred people, some without a check-out; five cases."""
    chance = random.Random(seed)
    phones = [f"+8491{n:07d}" for n in range(300)]
    start = datetime(2021, 6, 1, tzinfo=UTC)
    visits = []
    for _ in range(4000):
        arrived = start + timedelta(minutes=chance.randrange(7 * 24 * 60))
        left = None if chance.random() < 0.3 else arrived + timedelta(minutes=chance.randrange(1, 240))
        visits.append((f"V{chance.randrange(30)}", chance.choice(phones), arrived, left))
    column = list(zip(*visits, strict=True))
    table = pa.table(
        {
            "venue_id": column[0],
            "phone": column[1],
            "checked_in_at": pa.array(column[2], pa.timestamp("us", tz="UTC")),
            "checked_out_at": pa.array(column[3], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path)
    first = date(2021, 6, 1)
    cases = [
        Case(phone, f"BN{n}", first + timedelta(days=n), first + timedelta(days=n + chance.randrange(3)))
        for n, phone in enumerate(chance.sample(phones, 5))
    ]
    return visits, cases


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_query_finds_what_the_rule_read_plainly_finds(seed, settings, tmp_path):
    visits, cases = random_checkins(seed, tmp_path / "checkins.parquet")
    dwell = [60, 30, 90][seed - 1]
    derived = fold(exposures(settings, cases, dwell, [tmp_path / "checkins.parquet"]), HANOI)
    expected = plain_f1s(visits, cases, dwell)
    assert len(expected) > 10, "the random week has F1s to find"
    assert {f1.phone: (f1.exposure_date, f1.case_codes, f1.venues) for f1 in derived} == expected


@pytest.mark.processes
def test_spark_in_local_mode_finds_the_same_list(settings, tmp_path):
    """The query written once runs on Spark unchanged: the cluster's job, submitted to a JVM in local mode."""
    visits, cases = random_checkins(7, tmp_path / "checkins.parquet")
    on_duckdb = fold(exposures(settings, cases, 60, [tmp_path / "checkins.parquet"]), HANOI)
    rows = [[case.phone, str(case.infectious_from), str(case.infectious_to), case.case_code] for case in cases]
    write_csv(tmp_path / "cases.csv", ["phone", "infectious_from", "infectious_to", "case_code"], rows)
    submit = [str(PROJECT_ROOT / ".venv" / "bin" / "spark-submit"), "--master", "local[2]"]
    job = [str(PROJECT_ROOT / "tracing" / "spark_job.py"), "--checkins", str(tmp_path / "checkins.parquet")]
    environment = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(PROJECT_ROOT)}
    submitted = subprocess.run(
        [*submit, "--conf", "spark.ui.enabled=false", *job, "--cases", str(tmp_path / "cases.csv"),
         "--out", str(tmp_path / "f1.csv")],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    with (tmp_path / "f1.csv").open(encoding="utf-8") as written:
        on_spark = [
            (row["phone"], row["exposure_date"], row["case_codes"], row["venues"]) for row in csv.DictReader(written)
        ]
    assert len(on_duckdb) > 10
    assert on_spark == [tuple(f1.row()) for f1 in on_duckdb]
    imported = outreach(
        "contacts", "import", str(tmp_path / "f1.csv"), "--list", "F1 from Spark",
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
    )  # fmt: skip
    assert f"list 1: {len(on_duckdb)} imported, 0 merged duplicates, 0 rejected" in imported.stdout, imported.stderr


# ---- importing check-ins ---------------------------------------------------------------------------------------------


def test_unusable_rows_are_rejected_with_their_reason_and_the_rest_land(store, settings, tmp_path):
    path = write_csv(
        tmp_path / "day.csv",
        ["Venue_ID", "PHONE", "Checked_In_At"],  # no check-out column; headers in any case
        [
            ["CHO", "0912 345 678", "2021-06-02 08:00"],
            ["CHO", "84912345679", "2021-06-02T08:00:00+07:00"],
            ["", "0912345678", "2021-06-02 08:00"],
            ["CHO", "", "2021-06-02 08:00"],
            ["CHO", "09123", "2021-06-02 08:00"],
            ["CHO", "=cmd|' /C calc'!A0", "2021-06-02 08:00"],
            ["CHO", "0912345678", "hôm qua"],
            ["CHO", "0912345678", "2031-06-02 08:00"],
            ["X" * 65, "0912345678", "2021-06-02 08:00"],
        ],
    )
    summary = import_checkins(store, operator(), path, settings)
    assert (summary.imported, summary.rejected) == (2, 7)
    reasons = dict(summary.first_rejects)
    assert reasons[3] == "no venue_id"
    assert reasons[4] == "no phone number"
    assert "09123" in reasons[5]
    assert "letters" in reasons[6]
    assert "not a time" in reasons[7]
    assert "future" in reasons[8]
    assert "longer than 64" in reasons[9]
    with open(summary.rejects_file, encoding="utf-8-sig") as rejects:
        rows = list(csv.reader(rejects))
    assert rows[0] == ["row", "reason", *CHECKIN_HEADER]
    assert [row[0] for row in rows[1:]] == ["3", "4", "5", "6", "7", "8", "9"]
    assert rows[4][3] == "'=cmd|' /C calc'!A0", "a formula is shown as text, never run by a spreadsheet"
    assert stat.S_IMODE(os.stat(summary.rejects_file).st_mode) == 0o600
    stored = pq.read_table(summary.stored_file).to_pylist()
    assert [row["phone"] for row in stored] == ["+84912345678", "+84912345679"]
    assert stored[0]["checked_in_at"] == datetime(2021, 6, 2, 1, 0, tzinfo=UTC) == stored[1]["checked_in_at"]
    assert stat.S_IMODE(os.stat(summary.stored_file).st_mode) == 0o600
    with store() as session:
        (logged,) = session.scalars(select(AuditLog).where(AuditLog.action == "checkins.import")).all()
    assert (logged.detail["imported"], logged.detail["rejected"], logged.detail["source"]) == (2, 7, "day.csv")


def test_the_same_file_twice_adds_nothing(store, settings, tmp_path):
    path = write_csv(tmp_path / "day.csv", CHECKIN_HEADER, [["CHO", "0912345678", "2021-06-02 08:00", ""]])
    first = import_checkins(store, operator(), path, settings)
    again = import_checkins(store, operator(), path, settings)
    assert (again.already_imported, again.imported, again.stored_file) == (True, 1, first.stored_file)
    assert len(list(settings.checkins_dir.glob("*.parquet"))) == 1


def test_parquet_with_typed_columns_is_read_as_the_national_platform_writes_it(store, settings, tmp_path):
    table = pa.table(
        {
            "venue_id": ["CHO", "CHO"],
            "phone": pa.array([912345678, 84912345679], pa.int64()),  # a number column: the leading 0 is lost
            "checked_in_at": pa.array([datetime(2021, 6, 2, 8, 0)] * 2, pa.timestamp("us")),  # local, no zone
            "checked_out_at": pa.array([datetime(2021, 6, 2, 2, 0, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, tmp_path / "day.parquet")
    summary = import_checkins(store, operator(), tmp_path / "day.parquet", settings)
    assert (summary.imported, summary.rejected) == (2, 0)
    stored = pq.read_table(summary.stored_file).to_pylist()
    assert [row["phone"] for row in stored] == ["+84912345678", "+84912345679"]
    assert stored[0]["checked_in_at"] == datetime(2021, 6, 2, 1, 0, tzinfo=UTC)
    assert stored[0]["checked_out_at"] == datetime(2021, 6, 2, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("day.xlsx", b"PK", "come as .csv or .parquet"),
        ("day.csv", b"venue,phone\nCHO,0912345678\n", "no column venue_id, checked_in_at"),
        ("day.csv", b"venue_id,phone,checked_in_at\n", "has no rows"),
        ("day.parquet", b"PAR1 this is not parquet", "cannot be read"),
        ("day.csv", b"\xff\xfe\x00\x00garbage\x00\x01", "cannot be read"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_with_the_reason_and_nothing_stored(
    store, settings, tmp_path, name, content, message
):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        import_checkins(store, operator(), path, settings)
    assert not settings.checkins_dir.exists() or not any(settings.checkins_dir.iterdir())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["0912000001", "2021-06-05", "2021-06-01", "BN1"], "before infectious_from"),
        (["0912000001", "mai", "2021-06-01", "BN1"], "infectious_from 'mai' is not a date"),
        (["abc", "2021-06-01", "2021-06-02", "BN1"], "letters"),
        (["0912000001", "2021-06-01", "2021-06-02", ""], "case_code"),
    ],
)
def test_a_cases_file_with_a_bad_row_is_refused_whole(tmp_path, row, message):
    good = ["0912000002", "2021-06-01", "2021-06-02", "BN2"]
    path = cases_file(tmp_path, good, row)
    with pytest.raises(ValueError, match=message) as refused:
        read_cases(path, ReadLimits())
    assert "line 3" in str(refused.value)


def test_deriving_before_any_import_says_what_to_do(store, settings, tmp_path):
    with pytest.raises(ValueError, match="no check-ins have been imported yet"):
        derive_f1(store, operator(), settings, [CASE_OF_BN100], "F1", source="t")


# ---- the commands and the API ---------------------------------------------------------------------------------------


@pytest.mark.processes
def test_the_commands_import_check_ins_and_derive_a_list(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {"OUTREACH_CHECKINS_DIR": str(tmp_path / "checkins")}
    day = write_csv(
        tmp_path / "day.csv",
        CHECKIN_HEADER,
        [
            ["CHO", CASE_PHONE, "2021-06-02 08:00", ""],
            ["CHO", "0987000001", "2021-06-02 08:30", ""],
            ["CHO", "x", "", ""],
        ],
    )
    imported = outreach("checkins", "import", str(day), database_url=url, **env)
    assert imported.returncode == 0, imported.stderr
    assert "2 check-ins imported, 1 rejected" in imported.stdout
    again = outreach("checkins", "import", str(day), "--json", database_url=url, **env)
    assert '"already_imported": true' in again.stdout
    cases = cases_file(tmp_path, CASE)
    derived = outreach(
        "f1", "derive", "--cases", str(cases), "--list", "F1 BN100", "--province", "27",
        "--out", str(tmp_path / "f1.csv"), database_url=url, **env,
    )  # fmt: skip
    assert derived.returncode == 0, derived.stderr
    assert "1 F1s of 1 cases" in derived.stdout
    assert "list 1: 1 imported, 0 merged duplicates, 0 rejected" in derived.stdout
    assert (tmp_path / "f1.csv").read_text(encoding="utf-8").splitlines()[1] == "+84987000001,2021-06-02,BN100,CHO"
    refused = outreach("f1", "derive", "--cases", str(day), "--list", "x", database_url=url, **env)
    assert refused.returncode == 1
    assert "no column infectious_from" in refused.stderr


@pytest.fixture
def national_api(store_url, tmp_path):
    settings = Settings(
        database_url=store_url,
        engine_url=f"http://127.0.0.1:{free_port()}",
        checkins_dir=tmp_path / "checkins",
        checkins_max_upload_bytes=4096,
    )
    yield from run_app(settings)


def post(running, path: str, token: str, files: dict, data: dict | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{running.url}{path}", files=files, data=data or {}, headers=headers, timeout=30)


def test_national_data_by_api_imports_checkins_and_derives_for_a_province(national_api, tmp_path, monkeypatch):
    uploads = tmp_path / "uploads"  # this test's own: another test's upload in flight is no leftover of this one
    monkeypatch.setattr(contact_lists, "UPLOADS", uploads)
    with national_api.sessions.begin() as session:
        national = auth.add_user(session, "national", Role.MANAGER, None).token
        provincial = auth.add_user(session, "manager-27", Role.MANAGER, "27").token
        tracer = auth.add_user(session, "tracer", Role.TRACER, None).token
    day = b"venue_id,phone,checked_in_at\nCHO,0912000001,2021-06-02 08:00\nCHO,0987000001,2021-06-02 08:30\nCHO,,x\n"
    for token in (provincial, tracer):
        refused = post(national_api, "/api/v1/checkins", token, {"file": ("day.csv", day)})
        assert refused.status_code == 403, refused.text
    imported = post(national_api, "/api/v1/checkins", national, {"file": ("day.csv", day)})
    assert imported.status_code == 200, imported.text
    assert imported.json() == {
        "imported": 2,
        "rejected": 1,
        "already_imported": False,
        "first_rejects": [{"row": 3, "reason": "no phone number"}],
    }
    assert list(uploads.glob("*")) == [], "neither the upload nor its rejects are left behind"
    big = post(national_api, "/api/v1/checkins", national, {"file": ("big.csv", day * 100)})
    assert big.status_code == 413
    unusable = post(national_api, "/api/v1/checkins", national, {"file": ("day.txt", day)})
    assert unusable.status_code == 422 and unusable.json()["message"].startswith("day.txt: check-ins come as .csv")
    cases = b"phone,infectious_from,infectious_to,case_code\n0912000001,2021-06-01,2021-06-03,BN100\n"
    refused = post(national_api, "/api/v1/f1/derive", provincial, {"cases": ("cases.csv", cases)}, {"name": "F1"})
    assert refused.status_code == 403, "who met whom, country-wide, is not a province's to derive"
    for_bac_ninh = {"name": "F1", "province": "27"}
    derived = post(national_api, "/api/v1/f1/derive", national, {"cases": ("cases.csv", cases)}, for_bac_ninh)
    assert derived.status_code == 200, derived.text
    body = derived.json()
    assert (body["f1"], body["cases"], body["contact_list"]["imported"]) == (1, 1, 1)
    with national_api.sessions() as session:
        assert session.get(ContactList, body["contact_list"]["list_id"]).province_code == "27"
    bad = post(national_api, "/api/v1/f1/derive", national, {"cases": ("cases.csv", b"phone\n1\n")}, {"name": "F1"})
    assert bad.status_code == 422 and bad.json()["message"].startswith("cases.csv has no column infectious_from")


def test_an_import_killed_while_writing_leaves_nothing_half_and_the_next_one_lands_whole(store, settings, tmp_path):
    """SIGKILL the import command the moment its Parquet file starts to be written: readers see no check-in of it,
    the same file imported again lands whole, and the orphaned partial file goes once it is stale."""
    rows = 3_000_000
    big = tmp_path / "big.csv"
    with connection(settings) as database:  # generated fast: 1,000 phones, 5,000 venues, every minute of a day
        database.execute(
            f"COPY (SELECT 'V' || (i % 5000) AS venue_id, '0912' || lpad(CAST(i % 1000 AS VARCHAR), 6, '0') AS phone,"
            f" strftime(TIMESTAMP '2021-06-02 00:00' + to_minutes(CAST(i % 1440 AS BIGINT)), '%Y-%m-%d %H:%M')"
            f" AS checked_in_at, '' AS checked_out_at FROM range({rows}) t(i)) TO {quoted(big)} (HEADER)"
        )
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "OUTREACH_DATABASE_URL": url, "OUTREACH_CHECKINS_DIR": str(settings.checkins_dir)}
    command = subprocess.Popen([OUTREACH, "checkins", "import", str(big)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(settings.checkins_dir.glob(".*.partial")):
            assert command.poll() is None, "the import ended before it began writing: make the file larger"
            assert time.monotonic() < deadline, "the import never began writing"
            time.sleep(0.005)
        command.send_signal(signal.SIGKILL)
    finally:
        command.wait(30)
    assert stored_checkins(settings) == []
    (orphan,) = settings.checkins_dir.glob(".*.partial")

    summary = import_checkins(store, operator(), big, settings)
    assert (summary.imported, summary.rejected, summary.already_imported) == (rows, 0, False)
    assert len(stored_checkins(settings)) == 1 and orphan.exists()  # a fresh partial may be a running import's
    stale = time.time() - 7 * 3600
    os.utime(orphan, (stale, stale))
    small = write_csv(tmp_path / "small.csv", CHECKIN_HEADER, [["CHO", CASE_PHONE, "2021-06-02 08:00", ""]])
    import_checkins(store, operator(), small, settings)
    assert not orphan.exists() and len(stored_checkins(settings)) == 2

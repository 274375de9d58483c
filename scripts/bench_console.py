"""The tracing teams' console at provincial scale, on SQLite and PostgreSQL side by side (part of `make bench`).

    .venv/bin/python scripts/bench_console.py --people 100000 --days 14 --runs 3

A province of `people` residents in 60 wards, each with one declaration on each of the last `days` days
(100,000 x 14 = 1.4 million declarations), one in twenty with an alert. Measured through the console's own pages
(in-process ASGI, a signed-in provincial tracer; templates rendered):

- the declarations list: first page, a filtered page, a deep page, urgent-first, a phone search (p95 per page);
- the dashboard: the past days kept once as they settle (timed apart), then views (p95).

Each figure is the median of `runs` runs; goals: list p95 < 300 ms, dashboard < 500 ms.
"""

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from fastapi.testclient import TestClient  # noqa: E402

from access import auth, console  # noqa: E402
from app.web import create_app  # noqa: E402
from ground.settings import Settings  # noqa: E402
from ground.store import refresh_statistics  # noqa: E402
from models import Declaration, Person, Role  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tests.support.postgres import ThrowawayPostgres  # noqa: E402

PASSWORD = "mật-khẩu-đủ-dài-2021"
WARDS = [f"Phường {n}" for n in range(1, 61)]
CHUNK = 20_000
STATUSES = ["complete"] * 8 + ["refused", "in_progress"]


def fill(url: str, people: int, days: int) -> float:
    """The generated province; returns the seconds it took."""
    started = time.perf_counter()
    settings = Settings(database_url=url)
    app = create_app(settings)
    sessions = app.state.platform.sessions
    upgrade(app.state.platform.db_engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        console.set_password(auth.add_user(session, "tracer-bn", Role.TRACER, "27").user, PASSWORD)
        for first in range(0, people, CHUNK):
            rows = [
                {
                    "phone": f"+8491{n:07d}",
                    "full_name": f"Nguyễn Văn {n}",
                    "province_code": "27",
                    "province": "Bắc Ninh",
                    "ward": WARDS[n % len(WARDS)],
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(first, min(first + CHUNK, people))
            ]
            session.execute(insert(Person), rows)
        ids = list(session.scalars(select(Person.id).order_by(Person.id)))
    for day in range(days):
        moment = now - timedelta(days=day, minutes=5)
        with sessions.begin() as session:
            for first in range(0, len(ids), CHUNK):
                rows = []
                for person_id in ids[first : first + CHUNK]:
                    level = rng.choices(["none", "watch", "urgent"], [95, 4, 1])[0]
                    rows.append(
                        {
                            "person_id": person_id,
                            "channel": "voice",
                            "follow_up_day": days - day,
                            "status": rng.choice(STATUSES),
                            "symptoms_asked": True,
                            "symptoms": ["cough"] if level != "none" else [],
                            "alert_level": level,
                            "alert_reasons": ["cough"] if level != "none" else [],
                            "created_at": moment,
                            "updated_at": moment,
                        }
                    )
                session.execute(insert(Declaration), rows)
    refresh_statistics(app.state.platform.db_engine)  # as the worker's planning job does every few minutes
    if not url.startswith("sqlite"):  # what PostgreSQL's autovacuum does within a minute of a bulk load
        with app.state.platform.db_engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    app.state.platform.db_engine.dispose()
    return time.perf_counter() - started


def _signed_in(client: TestClient) -> None:
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/console/login",
        data={"username": "tracer-bn", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _p95(client: TestClient, path: str, times: int) -> float:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        answer = client.get(path)
        took.append(time.perf_counter() - started)
        assert answer.status_code == 200, f"{path}: {answer.status_code}"
    took.sort()
    return took[max(0, round(0.95 * len(took)) - 1)] * 1000


PAGES = {
    "first page (newest)": "/console/declarations",
    "filtered (complete, a ward)": "/console/declarations?status=complete&ward=Ph%C6%B0%E1%BB%9Dng%207",
    "page 200": "/console/declarations?page=200",
    "urgent first": "/console/declarations?sort=alert",
    "phone search": "/console/declarations?q=0910001234",
}


def measure(url: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        _signed_in(client)
        for name, path in PAGES.items():
            client.get(path)  # warm the caches of the database
            figures[f"list: {name}"] = _p95(client, path, 20)
        started = time.perf_counter()
        client.get("/console/dashboard")  # the first view settles the past days
        figures["dashboard: first view (settles 13 days)"] = (time.perf_counter() - started) * 1000
        figures["dashboard: view"] = _p95(client, "/console/dashboard", 10)
        figures["dashboard: by province"] = _p95(client, "/console/dashboard?level=province", 10)
    app.state.platform.db_engine.dispose()
    return figures


def _clear_days(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM area_days"))
        connection.execute(text("DELETE FROM settled_days"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="outreach-console-bench-"))
    postgres = ThrowawayPostgres()
    postgres.start()
    try:
        stores = {"sqlite": f"sqlite:///{workdir / 'console.db'}", "postgresql": postgres.create_database("console")}
        results: dict[str, list[dict[str, float]]] = {}
        for name, url in stores.items():
            took = fill(url, args.people, args.days)
            print(f"{name}: {args.people:,} people, {args.people * args.days:,} declarations written in {took:.0f} s")
            results[name] = []
            for _ in range(args.runs):
                _clear_days(url)
                results[name].append(measure(url))
        print(f"\nconsole at {args.people:,} people x {args.days} days (median of {args.runs} runs, ms)")
        print(f"{'measure':45} {'sqlite':>10} {'postgresql':>12}")
        for measure_name in results["sqlite"][0]:
            medians = [statistics.median(run[measure_name] for run in results[name]) for name in stores]
            print(f"{measure_name:45} {medians[0]:>10.0f} {medians[1]:>12.0f}")
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()

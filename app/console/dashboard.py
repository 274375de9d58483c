"""The commune dashboard: the table by area, a chart of the last 14 days drawn on the server (SVG, no script, no
CDN), and the table as CSV."""

import csv
import io
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from access.auth import audit
from app.client_address import ClientIpDep
from app.console.session import ConsoleRoute, SignedDep
from app.console.views import render
from app.deps import PlatformDep, SessionDep
from campaigns.dashboard import LEVELS, Dashboard, DayPoint, dashboard
from models import utcnow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
LEVEL_NAMES = {"province": "Tỉnh", "district": "Quận, huyện", "ward": "Phường, xã"}
SERIES = (("reached", "Đã liên lạc được"), ("symptomatic", "Có triệu chứng, cần theo dõi"), ("urgent", "Khẩn cấp"))
CHART_W, CHART_H, PAD = 700, 220, 30


def _chart(days: list[DayPoint]) -> dict:
    """Bars of each day's three series, scaled to the largest value, as coordinates for the template."""
    top = max([max(d.reached, d.symptomatic, d.urgent) for d in days] + [1])
    slot = (CHART_W - PAD) / len(days)
    bar = slot / 4
    groups = []
    for n, day in enumerate(days):
        bars = []
        for k, (name, label) in enumerate(SERIES):
            value = getattr(day, name)
            height = (CHART_H - PAD) * value / top
            x = PAD + n * slot + k * bar + bar / 2
            bars.append(
                {
                    "name": name,
                    "label": label,
                    "value": value,
                    "x": x,
                    "y": CHART_H - PAD - height,
                    "w": bar,
                    "h": height,
                }
            )
        groups.append({"day": day.day, "x": PAD + n * slot + slot / 2, "bars": bars})
    return {"w": CHART_W, "h": CHART_H, "pad": PAD, "top": top, "groups": groups, "series": SERIES}


def _read(session, signed, platform, ip, level: str, province: str | None) -> Dashboard:
    board = dashboard(session, signed.user, platform.settings.timezone, utcnow(), level, province or None)
    audit(session, signed.user, "dashboard.read", "area", [], ip, {"level": level, "province": province})
    return board


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    signed: SignedDep,
    session: SessionDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    level: str = "ward",
    province: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    board = _read(session, signed, platform, ip, level, province)
    context = {
        "signed": signed,
        "board": board,
        "chart": _chart(board.days),
        "levels": {name: LEVEL_NAMES[name] for name in LEVELS},
        "query": dict(request.query_params),
    }
    return render(request, "dashboard.html", context)


@router.get("/dashboard.csv")
def dashboard_csv(
    signed: SignedDep,
    session: SessionDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    level: str = "ward",
    province: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    board = _read(session, signed, platform, ip, level, province)
    out = io.StringIO()
    writer = csv.writer(out)
    figures = list(asdict(board.total))
    writer.writerow(["province_code", "district", "ward", *figures])
    for (province_code, district, ward), row in board.rows:
        writer.writerow([province_code, district, ward, *asdict(row).values()])
    name = f"dashboard-{board.today.isoformat()}-{level}.csv"
    return Response(
        "\ufeff" + out.getvalue(),  # a BOM: Excel then reads the Vietnamese names as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )

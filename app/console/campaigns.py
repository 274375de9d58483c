"""The provincial centres' campaigns: the list of campaigns, a form for every rule with a capacity plan before
starting, and a campaign's page with its progress polled live, its actions (each confirmed) and its exports.
Managers and admins act; every other role reads."""

import re
from datetime import date, datetime, time
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access.auth import CAN_MANAGE_LISTS, audit, check_manages_lists, get_in_scope
from access.errors import InvalidValue
from app.client_address import ClientIpDep
from app.console.session import ConsoleRoute, FormDep, Signed, SignedDep
from app.console.views import render
from app.deps import PlatformDep, SessionDep
from app.exports import csv_response, xlsx_response
from app.schemas import Id
from campaigns import creation
from campaigns.capacity import DEFAULT_CALL_SECONDS, capacity_plan
from campaigns.creation import lists_in_scope
from campaigns.export import begin_export
from campaigns.lifecycle import TRANSITIONS, transition
from campaigns.progress import Progress, progress
from campaigns.rules import CampaignRules
from connectors.call_lines import ahead_of_calls
from models import Campaign, ContactList, ContactListMember, User, utcnow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
NAME_CHARS = 200
FIELD_CHARS = 2000  # the longest field: a ZNS template's parameters, a line each
WINDOWS = 3  # calling windows offered by the form
CHANNEL_CHOICES = {"voice": "Cuộc gọi tự động", "zalo": "Zalo OA", "zns": "Zalo ZNS", "sms": "SMS (link web chat)"}
CAMPAIGN_STATUS = {
    "draft": "Bản nháp",
    "running": "Đang chạy",
    "paused": "Tạm dừng",
    "canceled": "Đã hủy",
    "completed": "Đã hoàn thành",
}
ACTIONS = {
    "start": ("Bắt đầu", "Bắt đầu chiến dịch: hệ thống lên lịch và liên hệ người dân trong khung giờ gọi."),
    "pause": ("Tạm dừng", "Tạm dừng: không liên hệ thêm ai cho tới khi tiếp tục."),
    "resume": ("Tiếp tục", "Tiếp tục chiến dịch đã tạm dừng."),
    "cancel": ("Hủy", "Hủy chiến dịch: không ai được liên hệ thêm nữa. Không thể hoàn tác."),
}
OUTCOME = {
    "SEEN_OK": "Đã khai báo, bình thường",
    "SEEN_NOT_OK": "Đã khai báo, có dấu hiệu",
    "MISSED": "Không khai báo được",
    "NOT_ATTEMPTED": "Chưa liên hệ",
    "NOT_PERFORMED": "Chưa tới lượt",
}
FINAL = {
    "BECAME_CASE": "Đã thành ca bệnh",
    "UNDER_FOLLOW_UP": "Đang theo dõi",
    "FOLLOW_UP_COMPLETED": "Hoàn tất theo dõi",
    "LOST_TO_FOLLOW_UP": "Mất dấu",
}
# Why a rule was refused, said next to its field.
RULE_PROBLEMS = {
    "channels": "Chọn ít nhất một kênh, mỗi kênh một lần.",
    "calling_hours": "Mỗi khung giờ phải kết thúc sau khi bắt đầu, và các khung không được chồng lên nhau.",
    "holidays": "Ngày nghỉ viết dạng dd/mm/yyyy, cách nhau bằng dấu phẩy; tối đa 366 ngày.",
    "max_attempts_per_day": "Số lần gọi mỗi ngày từ 1 đến 10.",
    "retry_spacing_minutes": "Khoảng cách giữa hai lần gọi từ 5 đến 1.440 phút.",
    "follow_up_days": "Một số từ 1 đến 60 (mỗi ngày), hoặc danh sách ngày từ 0 đến 60, ví dụ 1, 3, 7.",
    "new_calls_per_second": "Số cuộc gọi mới mỗi giây: từ 0,001 đến 100.",
    "max_concurrent_calls": "Số cuộc gọi cùng lúc từ 1 đến 1.000.",
    "messages_per_second": "Số tin nhắn mỗi giây: từ 0,001 đến 1.000.",
    "zns_template_id": "Kênh ZNS cần mã mẫu tin ZNS đã được duyệt.",
    "zns_template_data": "Mỗi dòng một tham số: tên=giá trị; giá trị chỉ dùng {name}, {phone}, {day}, {chat_link}.",
    "timezone": "Múi giờ không hợp lệ.",
}


def _can_act(user: User) -> bool:
    return user.role in CAN_MANAGE_LISTS


def _campaign(session: Session, signed: Signed, campaign_id: int) -> Campaign:
    return get_in_scope(session, signed.user, Campaign, campaign_id, "campaign")


@router.get("/campaigns")
def campaigns_page(request: Request, signed: SignedDep, session: SessionDep, page: int = 1) -> Response:
    page = max(1, min(page, 10_000))
    stmt = select(Campaign).order_by(Campaign.id.desc())
    if signed.user.province_code:
        stmt = stmt.where(Campaign.province_code == signed.user.province_code)
    rows = session.scalars(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    context = {
        "signed": signed,
        "campaigns": rows[:PAGE_SIZE],
        "more": len(rows) > PAGE_SIZE,
        "page": page,
        "can_act": _can_act(signed.user),
        "CAMPAIGN_STATUS": CAMPAIGN_STATUS,
    }
    return render(request, "campaigns.html", context)


def _lists(session: Session, user: User) -> list[tuple[ContactList, int]]:
    """The newest lists of the user's scope with how many people each holds."""
    people = (
        select(ContactListMember.contact_list_id, func.count().label("people"))
        .group_by(ContactListMember.contact_list_id)
        .subquery()
    )
    stmt = select(ContactList, func.coalesce(people.c.people, 0)).outerjoin(
        people, people.c.contact_list_id == ContactList.id
    )
    if user.province_code:
        stmt = stmt.where(ContactList.province_code == user.province_code)
    return [tuple(row) for row in session.execute(stmt.order_by(ContactList.id.desc()).limit(PAGE_SIZE))]


def _form_page(
    request: Request,
    signed: Signed,
    session: Session,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    plan: Any = None,
) -> Response:
    check_manages_lists(signed.user)
    context = {
        "signed": signed,
        "form": form,
        "errors": errors or {},
        "plan": plan,
        "lists": _lists(session, signed.user),
        "channels": CHANNEL_CHOICES,
        "windows": WINDOWS,
    }
    return render(request, "campaign_new.html", context, status_code=422 if errors else 200)


DEFAULT_FORM = {
    "name": "",
    "lists": [],
    "channel_1": "voice",
    "channel_2": "sms",
    "channel_3": "",
    "window_1_start": "08:00",
    "window_1_end": "11:30",
    "window_2_start": "13:30",
    "window_2_end": "20:00",
    "holidays": "",
    "max_attempts_per_day": "3",
    "retry_spacing_minutes": "60",
    "follow_up_days": "14",
    "new_calls_per_second": "1",
    "max_concurrent_calls": "10",
    "messages_per_second": "10",
    "zns_template_id": "",
    "zns_template_data": "",
    "finish_by": "",
    "call_seconds": str(DEFAULT_CALL_SECONDS),
}


@router.get("/campaigns/new")
def new_campaign_page(request: Request, signed: SignedDep, session: SessionDep, list: int | None = None) -> Response:  # noqa: A002 - the query parameter's name
    return _form_page(request, signed, session, {**DEFAULT_FORM, "lists": [str(list)] if list else []})


@router.post("/campaigns")
async def create_or_plan(request: Request, signed: FormDep, session: SessionDep) -> Response:
    """One form, two buttons: see the capacity plan of these lists and rules, or create the campaign (a draft)."""
    submitted = await request.form()
    form = {key: str(submitted.get(key, "")).strip()[:FIELD_CHARS] for key in DEFAULT_FORM if key != "lists"}
    form["lists"] = [str(v) for v in submitted.getlist("lists")][:PAGE_SIZE]
    rules, errors = read_rules(form)
    list_ids = [int(v) for v in form["lists"] if re.fullmatch(r"[0-9]{1,9}", v)]
    if not list_ids:
        errors["lists"] = "Chọn ít nhất một danh sách F1."
    if submitted.get("action") == "create" and not form["name"]:
        errors["name"] = "Đặt tên cho chiến dịch."
    if len(form["name"]) > NAME_CHARS:
        errors["name"] = f"Tên chiến dịch dài tối đa {NAME_CHARS} ký tự."
    finish_by, call_seconds = _plan_options(form, errors)
    if errors:
        return _form_page(request, signed, session, form, errors)
    try:
        lists = lists_in_scope(session, signed.user, list_ids)
    except InvalidValue:
        return _form_page(request, signed, session, form, {"lists": "Có danh sách không thuộc phạm vi của bạn."})
    if submitted.get("action") != "create":
        plan = capacity_plan(session, [c.id for c in lists], rules, utcnow(), finish_by, call_seconds)
        return _form_page(request, signed, session, form, plan=plan)
    campaign = creation.create_campaign(session, signed.user, form["name"], list_ids, rules)
    return RedirectResponse(f"/console/campaigns/{campaign.id}", status_code=303)


def read_rules(form: dict[str, Any]) -> tuple[CampaignRules, dict[str, str]]:
    """The campaign's rules from the form's text, and what is wrong with them by field (in Vietnamese)."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"channels": [form[f"channel_{n}"] for n in (1, 2, 3) if form.get(f"channel_{n}")]}
    if any(channel not in CHANNEL_CHOICES for channel in values["channels"]):
        errors["channels"] = RULE_PROBLEMS["channels"]
    windows = []
    for n in range(1, WINDOWS + 1):
        start, end = form.get(f"window_{n}_start", ""), form.get(f"window_{n}_end", "")
        if start or end:
            try:
                windows.append({"start": hour(start), "end": hour(end)})
            except ValueError:
                errors["calling_hours"] = f"Khung giờ {n}: giờ viết dạng HH:MM, có cả giờ bắt đầu và kết thúc."
    values["calling_hours"] = windows
    try:
        values["holidays"] = [_day(text) for text in re.split(r"[,;\s]+", form.get("holidays", "")) if text]
    except ValueError:
        errors["holidays"] = RULE_PROBLEMS["holidays"]
    days = [part for part in re.split(r"[,;\s]+", form.get("follow_up_days", "")) if part]
    if not days or not all(re.fullmatch(r"[0-9]{1,2}", part) for part in days):
        errors["follow_up_days"] = RULE_PROBLEMS["follow_up_days"]
    else:
        values["follow_up_days"] = int(days[0]) if len(days) == 1 else [int(part) for part in days]
    for field in ("max_attempts_per_day", "retry_spacing_minutes", "max_concurrent_calls"):
        values[field] = form.get(field, "")
    for field in ("new_calls_per_second", "messages_per_second"):
        values[field] = form.get(field, "").replace(",", ".")
    values["zns_template_id"] = form.get("zns_template_id") or None
    if "zns" in values["channels"] and not values["zns_template_id"]:  # said now, not only once the rest is right
        errors["zns_template_id"] = RULE_PROBLEMS["zns_template_id"]
    lines = [line.strip() for line in form.get("zns_template_data", "").splitlines() if line.strip()]
    if any("=" not in line for line in lines):
        errors["zns_template_data"] = RULE_PROBLEMS["zns_template_data"]
    values["zns_template_data"] = dict(line.split("=", 1) for line in lines if "=" in line)
    try:
        rules = CampaignRules.model_validate(values)
    except ValidationError as problems:
        for problem in problems.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "zns_template_id"
            errors.setdefault(field, RULE_PROBLEMS.get(field, "Giá trị không hợp lệ."))
        rules = CampaignRules()
    return rules, errors


def hour(text: str) -> time:
    """An hour as people type it: 08:00, 8:00, 8h, 8h30, 13.30 (24-hour); ValueError otherwise."""
    found = re.fullmatch(r"(\d{1,2})(?:[:h.](\d{2})?)?h?", text.strip().lower())
    if not found:
        raise ValueError(text)
    return time(int(found.group(1)), int(found.group(2) or 0))


def _day(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def _plan_options(form: dict[str, Any], errors: dict[str, str]) -> tuple[time | None, int]:
    finish_by = None
    if form.get("finish_by"):
        try:
            finish_by = hour(form["finish_by"])
        except ValueError:
            errors["finish_by"] = "Giờ viết dạng HH:MM."
    seconds = form.get("call_seconds") or str(DEFAULT_CALL_SECONDS)
    if not re.fullmatch(r"[0-9]{1,4}", seconds) or not 10 <= int(seconds) <= 3600:
        errors["call_seconds"] = "Thời lượng một cuộc gọi từ 10 đến 3.600 giây."
        return finish_by, DEFAULT_CALL_SECONDS
    return finish_by, int(seconds)


def _progress_context(session: Session, campaign: Campaign) -> dict[str, Any]:
    figures = progress(session, campaign, utcnow())
    return {
        "campaign": campaign,
        "progress": figures,
        "chart": _chart(figures),
        "OUTCOME": OUTCOME,
        "FINAL": FINAL,
        "CAMPAIGN_STATUS": CAMPAIGN_STATUS,
    }


@router.get("/campaigns/{campaign_id}")
def campaign_page(
    request: Request, campaign_id: Id, signed: SignedDep, session: SessionDep, ip: ClientIpDep
) -> Response:
    campaign = _campaign(session, signed, campaign_id)
    audit(session, signed.user, "campaign.read", "campaign", [campaign.id], ip)
    context = {
        "signed": signed,
        "can_act": _can_act(signed.user),
        "actions": {a: ACTIONS[a] for a, (sources, _) in TRANSITIONS.items() if campaign.status in sources},
        "lists": campaign.contact_lists,
        "rules": CampaignRules.model_validate(campaign.rules),
        "CHANNEL": CHANNEL_CHOICES,
        **_progress_context(session, campaign),
    }
    return render(request, "campaign.html", context)


@router.get("/campaigns/{campaign_id}/progress.json")
def campaign_progress(request: Request, campaign_id: Id, signed: SignedDep, session: SessionDep) -> Response:
    """What the campaign's page polls: its progress section rendered again, and the status."""
    campaign = _campaign(session, signed, campaign_id)
    context = _progress_context(session, campaign)
    html = request.app.state.console_views.fragment("campaign_progress.html", context)
    return JSONResponse({"status": campaign.status.value, "html": html})


@router.get("/campaigns/{campaign_id}/confirm/{action}")
def confirm_page(request: Request, campaign_id: Id, action: str, signed: SignedDep, session: SessionDep) -> Response:
    check_manages_lists(signed.user)
    campaign = _campaign(session, signed, campaign_id)
    if action not in ACTIONS:
        raise InvalidValue("action", "Thao tác không có.")
    context = {"signed": signed, "campaign": campaign, "action": action, "label": ACTIONS[action]}
    return render(request, "campaign_confirm.html", context)


@router.post("/campaigns/{campaign_id}/{action}")
def change(
    campaign_id: Id,
    action: str,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    background: BackgroundTasks,
) -> Response:
    check_manages_lists(signed.user)
    campaign = _campaign(session, signed, campaign_id)
    if action not in ACTIONS:
        raise InvalidValue("action", "Thao tác không có.")
    transition(session, campaign, action, utcnow())
    audit(session, signed.user, f"campaign.{action}", "campaign", [campaign.id], ip)
    if action in ("start", "resume"):  # calls begin soon: every fixed prompt is on disk before the first rings
        background.add_task(platform.prompts.render_ahead, ahead_of_calls())
    return RedirectResponse(f"/console/campaigns/{campaign.id}", status_code=303)


@router.get("/campaigns/{campaign_id}/export.{file_format}")
def export(
    campaign_id: Id, file_format: str, signed: SignedDep, session: SessionDep, platform: PlatformDep, ip: ClientIpDep
) -> Response:
    started = begin_export(session, signed.user, campaign_id, file_format, utcnow(), ip, {"from": "console"})
    if file_format == "xlsx":
        return xlsx_response(session, started)
    return csv_response(platform.sessions, started)


CHART_W, CHART_H, PAD = 700, 220, 30
CHART_OUTCOMES = ("SEEN_OK", "SEEN_NOT_OK", "MISSED", "NOT_ATTEMPTED", "NOT_PERFORMED")


def _chart(figures: Progress) -> dict[str, Any]:
    """Each date's follow-up days stacked by outcome, scaled to the busiest date, as coordinates for the template."""
    days = figures.outcomes_by_day[-30:]
    top = max([sum(d.outcomes.values()) for d in days] + [1])
    slot = min((CHART_W - PAD) / max(len(days), 1), 60)  # a few days' bars stay bars
    bars = []
    for n, day in enumerate(days):
        y = CHART_H - PAD
        for outcome in CHART_OUTCOMES:
            value = day.outcomes.get(outcome, 0)
            height = (CHART_H - PAD) * value / top
            y -= height
            if value:
                bars.append(
                    {"outcome": outcome, "day": day.day, "value": value, "x": PAD + n * slot + slot * 0.15,
                     "y": y, "w": slot * 0.7, "h": height}
                )  # fmt: skip
    labels = [{"day": d.day, "x": PAD + n * slot + slot / 2} for n, d in enumerate(days)]
    return {"w": CHART_W, "h": CHART_H, "pad": PAD, "top": top, "bars": bars, "labels": labels}

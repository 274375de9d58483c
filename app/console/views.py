"""The console's templates and how they say things: Vietnamese labels, dates as dd/mm/yyyy in the platform's time
zone, ages of alerts. Templates are autoescaped: whatever a resident typed is shown as text, never as markup."""

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from conversations.alerts import SYMPTOMS_VI, reason_vi
from models import utcnow

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

STATUS = {
    "in_progress": "Đang khai báo",
    "complete": "Hoàn tất",
    "refused": "Từ chối",
    "wrong_person": "Nhầm người",
    "callback_requested": "Hẹn gọi lại",
    "unreachable": "Không liên lạc được",
}
LEVEL = {"none": "Bình thường", "watch": "Theo dõi", "urgent": "Khẩn cấp"}
SYMPTOM = SYMPTOMS_VI
FIELD = {
    "status": "Trạng thái",
    "identity_confirmed": "Đúng người",
    "symptoms": "Triệu chứng",
    "temperature_c": "Nhiệt độ (°C)",
    "symptom_onset": "Ngày bắt đầu có triệu chứng",
    "contact_with_case": "Tiếp xúc gần với ca bệnh",
    "test_result": "Kết quả xét nghiệm",
    "test_date": "Ngày xét nghiệm",
    "vaccine_doses": "Số mũi vắc xin",
    "at_registered_address": "Đang ở địa chỉ đăng ký",
    "needs": "Cần hỗ trợ",
    "callback_at": "Hẹn gọi lại lúc",
    "answered_by": "Người trả lời",
}
CHOICES = {
    "contact_with_case": {"yes": "Có", "no": "Không", "unknown": "Không rõ"},
    "test_result": {
        "positive": "Dương tính",
        "negative": "Âm tính",
        "pending": "Chờ kết quả",
        "not_tested": "Chưa xét nghiệm",
    },
    "answered_by": {"resident": "Chính người dân", "relative": "Người nhà trả lời thay"},
    "status": STATUS,
}
SPEAKER = {"resident": "Người dân", "bot": "Tổng đài tự động", "agent": "Cán bộ"}
CHANNEL = {"voice": "Cuộc gọi", "zalo": "Zalo", "zns": "Zalo ZNS", "sms": "SMS", "webchat": "Web chat"}
ATTEMPT = {
    "scheduled": "Đã lên lịch",
    "claimed": "Đang chuẩn bị",
    "contacting": "Đang liên hệ",
    "in_progress": "Đang trò chuyện",
    "completed": "Đã trả lời",
    "retry_wait": "Chờ gọi lại",
    "failed": "Không liên lạc được",
    "canceled": "Đã hủy",
}
DELIVERY = {
    "queued": "Chờ gửi",
    "sent": "Đã gửi",
    "received": "Đã nhận",
    "read": "Đã đọc",
    "answered": "Đã trả lời",
    "failed": "Không gửi được",
    "canceled": "Đã hủy",
}


def value_label(field: str, value: Any) -> str:
    """A declaration field's value as a person reads it ("—" when unknown)."""
    if value is None or value == "":
        return "—"
    if field == "symptoms":
        return ", ".join(SYMPTOM.get(code, code) for code in value) or "không có"
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if field in CHOICES:
        return CHOICES[field].get(str(value), str(value))
    if field == "temperature_c":
        return f"{float(value):.1f}".replace(".", ",")
    if field in ("symptom_onset", "test_date") and isinstance(value, str | date):
        return day(date.fromisoformat(value) if isinstance(value, str) else value)
    return str(value)


class Views:
    """The templates with the platform's time zone."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.templates = Jinja2Templates(directory=TEMPLATES_DIR)
        env = self.templates.env
        env.filters.update(
            when=self.when, day=day, age=self.age, reason=reason_vi, value=value_label, per_minute=per_minute
        )
        env.globals.update(
            STATUS=STATUS, LEVEL=LEVEL, SYMPTOM=SYMPTOM, FIELD=FIELD, CHOICES=CHOICES, SPEAKER=SPEAKER, CHANNEL=CHANNEL
        )
        env.globals.update(ATTEMPT=ATTEMPT, DELIVERY=DELIVERY)

    def fragment(self, template: str, context: dict[str, Any]) -> str:
        """A piece of a page as HTML text (a row pushed to a live page)."""
        return self.templates.get_template(template).render(context)

    def when(self, moment: datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%d/%m/%Y %H:%M") if moment else "—"

    def age(self, moment: datetime) -> str:
        minutes = int((utcnow() - moment).total_seconds() // 60)
        if minutes < 1:
            return "vừa xong"
        if minutes < 60:
            return f"{minutes} phút trước"
        if minutes < 48 * 60:
            return f"{minutes // 60} giờ trước"
        return f"{minutes // (24 * 60)} ngày trước"


def per_minute(per_second: float) -> str:
    """A pace per second as people plan it: per minute, with a decimal comma."""
    return f"{per_second * 60:,.1f}".replace(",", " ").replace(".", ",")


def day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else "—"


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    views: Views = request.app.state.console_views
    return views.templates.TemplateResponse(request, template, context, status_code=status_code)

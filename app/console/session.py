"""Who is signed in to the console, the CSRF check of its forms, and the route class that turns every refusal into a
page a person can read (or a redirect to the login form)."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from access import console
from access.errors import Forbidden, InvalidValue, NotFound, Refused
from app.console.views import render
from app.deps import PlatformDep, SessionDep
from ground.ratelimit import RateLimiter
from models import User

SESSION_COOKIE = "outreach_console"
LOGIN_COOKIE = "outreach_console_login"  # the login form's own CSRF secret, before any session exists


class LoginRequired(Exception):
    """No live console session: the browser goes to the login form, and back here after it."""


@dataclass(frozen=True)
class LoginLimits:
    """Wrong passwords counted per user name and per address: past either limit, logins wait."""

    per_name: RateLimiter
    per_address: RateLimiter


@dataclass(frozen=True)
class Signed:
    """The signed-in user of this request and the CSRF token their forms carry."""

    user: User
    csrf: str
    token: str


def signed_in(request: Request, session: SessionDep, platform: PlatformDep) -> Signed:
    token = request.cookies.get(SESSION_COOKIE)
    idle = timedelta(minutes=platform.settings.console_idle_minutes)
    user = console.signed_in(session, token, idle) if token else None
    if user is None:
        session.commit()  # an idle session found here is ended for good
        raise LoginRequired
    return Signed(user, console.csrf_token(token), token)


SignedDep = Annotated[Signed, Depends(signed_in)]


def checked_form(signed: SignedDep, csrf_token: Annotated[str | None, Form()] = None) -> Signed:
    """A POST of a console form: a live session, and the CSRF token of that session (else 403)."""
    if not console.csrf_valid(signed.token, csrf_token):
        raise HTTPException(403, "Biểu mẫu đã hết hạn hoặc không gửi từ bảng điều khiển. Tải lại trang và thử lại.")
    return signed


FormDep = Annotated[Signed, Depends(checked_form)]


def cookie_options(request: Request) -> dict[str, Any]:
    """HttpOnly (no script reads it), SameSite=Lax (no other site's POST carries it), Secure where the platform's
    public address is https, scoped to the console's pages."""
    https = request.app.state.platform.settings.public_url.lower().startswith("https://")
    return {"httponly": True, "samesite": "lax", "secure": https, "path": "/console"}


def login_url(request: Request) -> str:
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/console/login?next={quote(back, safe='')}"


_STATUS_OF_REFUSAL = {NotFound: 404, InvalidValue: 422, Forbidden: 403}
_TITLES = {403: "Không được phép", 404: "Không tìm thấy", 422: "Dữ liệu chưa đúng", 429: "Thử lại sau"}


def error_page(request: Request, status_code: int, message: str) -> Response:
    title = _TITLES.get(status_code, "Có lỗi")
    return render(request, "error.html", {"title": title, "message": message}, status_code=status_code)


class ConsoleRoute(APIRoute):
    """Console routes answer people: a missing session redirects to the login form, a refusal is a page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return RedirectResponse(login_url(request), status_code=303)
            except Refused as refusal:
                status_code = next((c for kind, c in _STATUS_OF_REFUSAL.items() if isinstance(refusal, kind)), 409)
                return error_page(request, status_code, _message(refusal))
            except HTTPException as error:
                return error_page(request, error.status_code, str(error.detail))
            except RequestValidationError as error:
                problems = "; ".join(_describe(problem) for problem in error.errors())
                return error_page(request, 422, problems)
            except (DataError, UnicodeEncodeError):  # a value the store cannot hold: a safety net behind the checks
                return error_page(request, 422, "Dữ liệu có ký tự không lưu được (ký tự rỗng hoặc mã hóa sai).")

        return page


def _message(refusal: Refused) -> str:
    if isinstance(refusal, NotFound):
        return "Không có mục này trong phạm vi của bạn."
    return str(refusal)


def _describe(problem: dict) -> str:
    where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("query", "body", "path"))
    return f"{where}: {problem.get('msg', 'giá trị không hợp lệ')}"

"""Signing in and out of the console."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from access import console
from app.client_address import ClientIpDep
from app.console.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ConsoleRoute,
    FormDep,
    LoginLimits,
    cookie_options,
    error_page,
)
from app.console.views import render
from app.deps import SessionDep

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
HOME = "/console/alerts"
WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."


def _safe_next(target: str | None) -> str:
    """Back to the console page the user asked for, never to another site ("//evil.example", "/\\evil")."""
    if target and target.startswith("/console/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return HOME


def _login_form(request: Request, next_url: str, error: str | None = None, status_code: int = 200) -> Response:
    secret = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    context = {"csrf_token": console.csrf_token(secret), "next": next_url, "error": error}
    response = render(request, "login.html", context, status_code=status_code)
    response.set_cookie(LOGIN_COOKIE, secret, max_age=3600, **cookie_options(request))
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str | None, Form()] = None,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    next_url = _safe_next(next)
    secret = request.cookies.get(LOGIN_COOKIE)
    if not secret or not console.csrf_valid(secret, csrf_token):
        return error_page(request, 403, "Biểu mẫu đăng nhập đã hết hạn. Tải lại trang đăng nhập và thử lại.")
    limits: LoginLimits = request.app.state.console_logins
    name_key, address_key = username.strip().lower(), ip or "unknown"
    wait = limits.per_name.exhausted_for(name_key) or limits.per_address.exhausted_for(address_key)
    if wait:
        message = f"Đăng nhập sai quá nhiều lần. Thử lại sau {int(wait // 60) + 1} phút."
        response = _login_form(request, next_url, message, status_code=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = console.check_password(session, username, password)
    if user is None:
        limits.per_name.count(name_key)
        limits.per_address.count(address_key)
        return _login_form(request, next_url, WRONG, status_code=401)
    token = console.open_session(session, user, ip)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, **cookie_options(request))
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
def logout(signed: FormDep, session: SessionDep, request: Request) -> Response:
    console.end_session(session, signed.token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse(HOME, status_code=303)

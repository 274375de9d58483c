"""The tracing teams' console: server-rendered pages under /console/, signed in with a password, every form
CSRF-checked, every read of a declaration or transcript on the audit log, in the user's province only."""

from fastapi import FastAPI

from app.console import alerts, campaigns, conversations, dashboard, declarations, lists, login, roster, teams
from app.console.session import LoginLimits
from app.console.views import Views
from app.platform import Platform
from ground.ratelimit import RateLimiter, limit_storage

FAILURE_WINDOW_MINUTES = 15


def install(app: FastAPI, platform: Platform) -> None:
    settings = platform.settings
    storage = limit_storage(settings.rate_limit_storage_uri)
    app.state.console_views = Views(settings.timezone)
    app.state.console_logins = LoginLimits(
        per_name=RateLimiter(
            storage, "console-login-name", settings.console_login_failures_per_name, FAILURE_WINDOW_MINUTES
        ),
        per_address=RateLimiter(
            storage, "console-login-address", settings.console_login_failures_per_address, FAILURE_WINDOW_MINUTES
        ),
    )
    for module in (login, alerts, declarations, roster, conversations, dashboard, lists, campaigns, teams):
        app.include_router(module.router)
    app.include_router(teams.member_router)

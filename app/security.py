"""What every request and response goes through: security headers out, hostile JSON text refused on the way in.

Both are plain ASGI middleware (no request object is built, nothing is copied that need not be), installed by the app
factory around every route, the web chat page, the API docs and the static files alike.
"""

import json
import re
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import LONE_SURROGATE, error_body

# Pages load only what the platform serves itself: no inline script or style, no plugins, no framing by another site
# (clickjacking), no <base> rewriting, forms post back here only. `data:` images are the icons Swagger UI's CSS embeds.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
HSTS = "max-age=31536000"
BODILESS = ("GET", "HEAD", "OPTIONS")  # FastAPI reads no body of these
JSON_BODY_MAX_BYTES = 1 << 20  # the API's JSON bodies are a few KB; files come as multipart and are not read here


def security_headers(https: bool) -> list[tuple[str, str]]:
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        # A personal chat link carries its key in the query: no other site ever sees a page's address.
        ("Referrer-Policy", "no-referrer"),
    ]
    if https:  # only where the platform is reached over https: HSTS on plain http would lock a test install out
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp, headers: Iterable[tuple[str, str]]) -> None:
        self.app = app
        self.headers = list(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# A JSON string may spell any UTF-16 code unit as an escape, so "\ud800" alone parses into a Python string that no
# encoder accepts: the store, the engine and the log would each fail on it later. Valid pairs (emoji) are fine.
# Raw UTF-8 bytes of a surrogate (ED A0-BF ..) are no valid UTF-8 either, but json.loads lets them through.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_at(body: bytes) -> str | None:
    """Where a JSON body holds a string with a lone surrogate ("" for the top level), or None if it holds none.

    Bodies without a surrogate escape (almost all) are not parsed here; one that is not JSON is left to the route,
    which answers it as usual.
    """
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    pending: list[tuple[str, object]] = [("", document)]
    while pending:  # iterative: a deeply nested body must not exhaust the stack here
        where, value = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                inner = f"{where}.{key}" if where else key
                if _SURROGATE.search(key):
                    return inner.encode("utf-8", "backslashreplace").decode()
                pending.append((inner, item))
        elif isinstance(value, list):
            pending.extend((f"{where}.{index}" if where else str(index), item) for index, item in enumerate(value))
    return None


def _is_json(headers: Headers) -> bool:
    """The bodies FastAPI parses as JSON: application/json, application/*+json, or no content type at all."""
    content_type = headers.get("content-type")
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class RejectLoneSurrogates:
    """Refuses (422) a JSON body holding text that is not valid Unicode, before any route sees it: nothing of such a
    request is stored or sent on. JSON bodies are also capped (413), since they are read whole here."""

    def __init__(self, app: ASGIApp, max_bytes: int = JSON_BODY_MAX_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODILESS or not _is_json(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the route sees the same
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                body = error_body(413, f"a JSON body may hold at most {self.max_bytes // 1024} KB")
                await JSONResponse(body, status_code=413)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        where = lone_surrogate_at(b"".join(m.get("body", b"") for m in received if m["type"] == "http.request"))
        if where is not None:
            message = f"{where}: {LONE_SURROGATE}" if where else LONE_SURROGATE
            await JSONResponse(error_body(422, message), status_code=422)(scope, receive, send)
            return

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


def install(app: ASGIApp, *, https: bool) -> None:
    """The surrogate check inside, the headers outermost (so its refusals carry them too)."""
    app.add_middleware(RejectLoneSurrogates)
    app.add_middleware(SecurityHeaders, headers=security_headers(https))

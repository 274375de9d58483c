"""Every error as JSON with a message a person can act on: {"error": code, "message": text}.

No input should give a 500: parameters are bounded where they are declared (ids and offsets fit the store's 64-bit
integers, see `app.schemas.Id`) and bodies are checked as they arrive (`app.security`). The handlers for
values the store cannot hold are a safety net behind those: a 422 instead of a 500. Anything else unexpected is a 500
whose body says nothing of the server's insides (the traceback goes to the log).
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from access.errors import Conflict, Forbidden, InvalidValue, NotFound, Refused

log = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}
# What each refusal of the domain is in HTTP, so that no route maps them by hand.
REFUSAL_STATUS: dict[type[Refused], int] = {NotFound: 404, InvalidValue: 422, Forbidden: 403, Conflict: 409}
LONE_SURROGATE = "not valid Unicode: a lone surrogate (a \\ud800-\\udfff escape without its pair) cannot be stored"
OUT_OF_RANGE = "a value in the request is out of the range the store can hold"
SERVER_ERROR = "something went wrong on the server; it is logged. Try again, and tell the operator if it persists"


def error_body(status_code: int, message: str, **extra) -> dict:
    return {"error": ERROR_CODES.get(status_code, "error"), "message": message, **extra}


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "body", "path"))
    return f"{where}: {error.get('msg', 'invalid value')}" if where else error.get("msg", "invalid value")


async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    body = error_body(exc.status_code, str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def refused(_: Request, exc: Refused) -> JSONResponse:
    status_code = next((code for kind, code in REFUSAL_STATUS.items() if isinstance(exc, kind)), 400)
    return JSONResponse(error_body(status_code, str(exc)), status_code=status_code)


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_describe(e) for e in exc.errors()]
    body = {"error": "invalid_request", "message": "; ".join(problems), "problems": problems}
    return JSONResponse(body, status_code=422)


async def not_unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
    log.warning("%s %s: refused text that is not valid Unicode (%s)", request.method, request.url.path, exc.reason)
    return JSONResponse(error_body(422, LONE_SURROGATE), status_code=422)


async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # Logged with its traceback: a value the API let through to the store is a missing bound to add where declared.
    log.warning("%s %s: a value the store cannot hold", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body(422, OUT_OF_RANGE), status_code=422)


async def server_error(_: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises the exception after this answer is sent, so the server logs its traceback.
    return JSONResponse(error_body(500, SERVER_ERROR), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(UnicodeEncodeError, not_unicode)
    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(DataError, out_of_range)
    app.add_exception_handler(Exception, server_error)

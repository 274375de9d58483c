"""A local Twilio: the REST API the platform calls, and the phone network that calls the platform back.

The REST side follows api.twilio.com's wire protocol: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` and
`Messages.json`, form-encoded, HTTP Basic auth (AccountSid:AuthToken), 201 with the resource as JSON, errors as
`{"code", "message", "more_info", "status"}`. The network side posts what Twilio posts: the voice URL when a call
connects (with `AnsweredBy` when answering-machine detection is on), the `<Gather>` action with `SpeechResult` and
`Confidence` or `Digits` (or nothing, with actionOnEmptyResult), status callbacks with `SequenceNumber`, every
request signed with `X-Twilio-Signature` (HMAC-SHA1 over the URL and sorted parameters), and it fetches each
`<Play>` URL as Twilio does.
"""

import base64
import itertools
import secrets
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate

import httpx
import phonenumbers
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from tests.fakes import ServedFake


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


@dataclass
class Prompt:
    """What one TwiML document asked of the caller."""

    plays: list[str]  # URLs of the audio played
    says: list[str]  # text Twilio itself would speak
    gather: dict[str, str] | None  # the <Gather> attributes, None when the call is hanging up
    hangs_up: bool  # at once (a <Connect><Stream> hangs up only when its stream ends)
    latency_s: float  # webhook in, TwiML out
    stream: dict[str, str] | None = None  # <Connect><Stream>: its url, and its <Parameter>s by name


@dataclass
class FakeCall:
    twilio: "FakeTwilio"
    sid: str
    params: dict[str, list[str]]
    status: str = "queued"
    direction: str = "outbound-api"  # "inbound": a resident called the platform's number
    prompts: list[Prompt] = field(default_factory=list)
    _sequence: Iterator[int] = field(default_factory=itertools.count)

    def param(self, name: str) -> str | None:
        return (self.params.get(name) or [None])[0]

    @property
    def prompt(self) -> Prompt:
        return self.prompts[-1]

    def _caller_fields(self) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": self.twilio.account_sid,
            "From": self.param("From"),
            "To": self.param("To"),
            "Direction": self.direction,
            "ApiVersion": "2010-04-01",
        }

    def _status_callback(self, status: str, **extra: str) -> httpx.Response | None:
        self.status = status
        wanted = self.params.get("StatusCallbackEvent") or ["completed"]
        event = {"in-progress": "answered"}.get(status, status)
        final = status in ("completed", "busy", "no-answer", "failed", "canceled")
        if not self.param("StatusCallback") or (event not in wanted and not final):
            return None
        fields = {
            **self._caller_fields(),
            "CallStatus": status,
            "SequenceNumber": str(next(self._sequence)),
            "CallbackSource": "call-progress-events",
            "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            **extra,
        }
        return self.twilio.post_signed(self.param("StatusCallback"), fields)

    def ring(self) -> None:
        self._status_callback("initiated")
        self._status_callback("ringing")

    def answer(self, answered_by: str | None = None) -> Prompt:
        """The phone is picked up: Twilio fetches the voice URL (AnsweredBy when detection is on)."""
        self.ring()
        self._status_callback("in-progress")
        detection = {"AnsweredBy": answered_by or "human"} if self.param("MachineDetection") else {}
        return self._fetch(self.param("Url"), {**self._caller_fields(), "CallStatus": "in-progress", **detection})

    def say(self, speech: str, confidence: float = 0.92, retried: bool = False) -> Prompt:
        return self._gather_result({"SpeechResult": speech, "Confidence": f"{confidence:.8f}"}, retried)

    def press(self, digits: str, retried: bool = False) -> Prompt:
        return self._gather_result({"Digits": digits}, retried)

    def stay_silent(self) -> Prompt:
        return self._gather_result({}, retried=False)

    def hang_up(self) -> None:
        """The resident hangs up (or Twilio did, after a <Hangup/>): the final status callback."""
        self._status_callback("completed", CallDuration="42")

    def end_unanswered(self, status: str) -> None:
        """busy, no-answer, failed or canceled: the call never connected."""
        self.ring()
        self._status_callback(status, CallDuration="0")

    def _gather_result(self, result: dict[str, str], retried: bool) -> Prompt:
        gather = self.prompt.gather
        assert gather is not None, "the call is not listening"
        fields = {**self._caller_fields(), "CallStatus": "in-progress", **result}
        if retried:  # Twilio retries a webhook it timed out on: the same request again
            self._fetch(gather["action"], fields)
        return self._fetch(gather["action"], fields)

    def _fetch(self, url: str, fields: dict[str, str]) -> Prompt:
        started = time.perf_counter()
        response = self.twilio.post_signed(url, fields)
        latency = time.perf_counter() - started
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(("application/xml", "text/xml"))
        prompt = _parse_twiml(response.text, latency)
        self.twilio.fetch_audio(prompt.plays)
        self.prompts.append(prompt)
        if prompt.hangs_up:
            self.hang_up()
        return prompt


def _parse_twiml(document: str, latency_s: float) -> Prompt:
    root = ElementTree.fromstring(document)
    assert root.tag == "Response", document
    gather = root.find("Gather")
    spoken = [*root.findall("Play"), *root.findall("Say"), *(gather if gather is not None else [])]
    stream = root.find("Connect/Stream")
    return Prompt(
        plays=[e.text.strip() for e in spoken if e.tag == "Play"],
        says=[e.text for e in spoken if e.tag == "Say"],
        gather=dict(gather.attrib) if gather is not None else None,
        hangs_up=gather is None and stream is None,
        latency_s=latency_s,
        stream=_stream(stream) if stream is not None else None,
    )


def _stream(element: ElementTree.Element) -> dict[str, str]:
    parameters = {p.attrib["name"]: p.attrib["value"] for p in element.findall("Parameter")}
    return {"url": element.attrib["url"], **parameters}


class FakeTwilio(ServedFake):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-auth-token") -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.calls: list[FakeCall] = []
        self.messages: list[dict[str, list[str]]] = []
        self.calls_made: list[dict] = []  # the resources as the REST API lists them
        self.messages_sent: list[dict] = []
        self.call_times: list[float] = []  # when each call request arrived (time.monotonic), for pacing measures
        self.audio: dict[str, tuple[str, int]] = {}  # URL -> (content type, bytes) of every <Play> fetched
        self.refuse_calls: dict[str, int] = {}  # To -> the Twilio error code a call to it gets
        self._lock = threading.Lock()
        self.http = httpx.Client(timeout=30)
        self.app = self._build_app()

    def settings(self) -> dict[str, str]:
        """What points the platform's calls and texts at this fake, once running."""
        return {
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_from_number": "+15005550006",  # Twilio's test number for a valid sender
            "twilio_api_base_url": self.url,
        }

    def signature(self, url: str, fields: dict[str, str]) -> str:
        return RequestValidator(self.auth_token).compute_signature(url, fields)

    def post_signed(self, url: str, fields: dict[str, str]) -> httpx.Response:
        return self.http.post(url, data=fields, headers={"X-Twilio-Signature": self.signature(url, fields)})

    def fetch_audio(self, urls: list[str]) -> None:
        for url in urls:
            if url not in self.audio:
                response = self.http.get(url)
                assert response.status_code == 200, f"{url}: {response.status_code}"
                self.audio[url] = (response.headers["content-type"], len(response.content))

    def call_in(self, voice_url: str, caller: str, status_callback: str | None = None) -> FakeCall:
        """A resident dials the platform's number, whose voice URL (and status callback) are set on the number."""
        params = {"Url": [voice_url], "From": [caller], "To": ["+15005550006"]}
        if status_callback:
            params["StatusCallback"] = [status_callback]
        call = FakeCall(self, _sid("CA"), params, direction="inbound")
        with self._lock:
            self.calls.append(call)
        return call

    def _authenticated(self, request: Request, account_sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return account_sid == self.account_sid and request.headers.get("authorization") == f"Basic {expected}"

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        async def create(request: Request, account_sid: str, kind: str) -> JSONResponse:
            if not self._authenticated(request, account_sid):
                return _error(401, 20003, "Authenticate")
            params: dict[str, list[str]] = {}
            for key, value in (await request.form()).multi_items():
                params.setdefault(key, []).append(str(value))
            to = (params.get("To") or [""])[0]
            if not _valid_e164(to):
                return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            if kind == "Calls" and to in self.refuse_calls:
                return _error(400, self.refuse_calls[to], f"Account not authorized to call {to}.")
            with self._lock:
                if kind == "Calls":
                    self.call_times.append(time.monotonic())
                    call = FakeCall(self, _sid("CA"), params)
                    self.calls.append(call)
                    resource = {"sid": call.sid, "status": call.status}
                else:
                    self.messages.append(params)
                    resource = {"sid": _sid("SM"), "status": "queued", "body": params["Body"][0]}
                    params["Sid"] = [resource["sid"]]
                resource |= {
                    "account_sid": account_sid,
                    "to": to,
                    "from": params["From"][0],
                    "date_created": formatdate(usegmt=True),
                    "uri": f"/2010-04-01/Accounts/{account_sid}/{kind}/{resource['sid']}.json",
                }
                (self.calls_made if kind == "Calls" else self.messages_sent).append(resource)
            return JSONResponse(resource, status_code=201)

        async def listing(request: Request, account_sid: str, kind: str) -> JSONResponse:
            if not self._authenticated(request, account_sid):
                return _error(401, 20003, "Authenticate")
            to = request.query_params.get("To")
            with self._lock:
                rows = self.calls_made if kind == "Calls" else self.messages_sent
                found = [r for r in rows if to is None or r["to"] == to]
            uri = f"/2010-04-01/Accounts/{account_sid}/{kind}.json"
            return JSONResponse(
                {
                    kind.lower(): found[::-1],
                    "first_page_uri": uri,
                    "next_page_uri": None,
                    "previous_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                    "start": 0,
                    "end": max(0, len(found) - 1),
                    "uri": uri,
                }
            )

        app.add_api_route("/2010-04-01/Accounts/{account_sid}/{kind}.json", create, methods=["POST"])
        app.add_api_route("/2010-04-01/Accounts/{account_sid}/{kind}.json", listing, methods=["GET"])
        return app

    def deliver_message(self, index: int, status: str, error_code: str | None = None) -> httpx.Response:
        """A delivery report of an SMS (sent, delivered, undelivered, failed) to its StatusCallback."""
        message = self.messages[index]
        fields = {
            "MessageSid": message["Sid"][0],
            "SmsSid": message["Sid"][0],
            "AccountSid": self.account_sid,
            "From": message["From"][0],
            "To": message["To"][0],
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
            **({"ErrorCode": error_code} if error_code else {}),
        }
        return self.post_signed(message["StatusCallback"][0], fields)


def _valid_e164(number: str) -> bool:
    try:
        return number.startswith("+") and phonenumbers.is_possible_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return False

"""The platform's client of the dialogue engine (platform environment; talks HTTP only)."""

from dataclasses import dataclass, field
from typing import Any

import httpx


class EngineError(RuntimeError):
    """The engine could not be reached or gave an answer the platform cannot use."""


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class BotMessage:
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class EngineReply:
    """What one resident turn produced: the bot's messages, every slot value and the open form after the turn,
    whether the engine had forgotten the conversation and took it back from `restore`, and the intent it heard
    (`nlu_fallback`: not understood)."""

    messages: list[BotMessage]
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    restored: bool = False
    intent: str | None = None

    @property
    def state(self) -> dict[str, Any]:
        """What the platform keeps to restore the conversation into an engine that lost it."""
        return {"slots": self.slots, "active_loop": self.active_loop}


def _parse_message(raw: dict[str, Any]) -> BotMessage:
    buttons = tuple(Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in raw.get("buttons") or [])
    return BotMessage(text=str(raw.get("text") or ""), buttons=buttons)


class EngineClient:
    TURN_PATH = "/webhooks/turn/webhook"
    HEALTH_PATH = "/webhooks/turn/"

    def __init__(
        self, base_url: str, token: str, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def status(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """The turn channel's health ({"status": "ok", "ready": true}), or EngineError when the engine is down or
        has no model loaded. (The engine's own HTTP API stays off.)"""
        try:
            response = await self._http.get(self.HEALTH_PATH, timeout=timeout_s)
        except httpx.HTTPError as error:
            raise EngineError(f"engine unreachable at {self.base_url}: {error.__class__.__name__}") from error
        try:
            health = response.json() if response.status_code == 200 else {}
        except ValueError:
            health = {}
        if not isinstance(health, dict) or not health.get("ready"):
            raise EngineError(f"engine at {self.base_url} answered {response.status_code} (no model loaded?)")
        return health

    async def turn(
        self,
        sender_id: str,
        text: str,
        *,
        message_id: str | None = None,
        restore: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> EngineReply:
        """Send one resident message; one round trip returns the replies and the slots. A message sent again with
        the same `message_id` is answered, not handled twice. `restore` (the state of an earlier reply) is what the
        engine takes the conversation back from if it has forgotten it."""
        body = {
            "sender": sender_id,
            "message": text,
            "message_id": message_id,
            "metadata": metadata or {},
            "restore": restore,
        }
        try:
            response = await self._http.post(self.TURN_PATH, json=body)
            if response.status_code == 401:
                raise EngineError("the engine refused the platform's token: give both the same OUTREACH_ENGINE_TOKEN")
            response.raise_for_status()
            payload = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise EngineError(f"engine turn failed: {error}") from error
        return EngineReply(
            messages=[_parse_message(m) for m in payload.get("messages", [])],
            slots=dict(payload.get("slots") or {}),
            active_loop=payload.get("active_loop"),
            restored=bool(payload.get("restored")),
            intent=payload["intent"][:64] if isinstance(payload.get("intent"), str) else None,
        )

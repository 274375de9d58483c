"""The platform's input channel into the engine (runs inside `rasa run`, engine environment).

One POST does one resident turn: the engine handles the message, then the reply carries both what the bot
said and every slot value of the conversation, so the platform never needs a second round trip.

    POST /webhooks/turn/webhook  {"sender": "...", "message": "...", "message_id": "...", "metadata": {...},
                                  "restore": {"slots": {...}, "active_loop": "declaration_form"}}
    -> {"messages": [{"recipient_id": ..., "text": ..., "buttons": [...]}, ...], "slots": {...},
        "active_loop": "declaration_form" | null, "restored": false}

`message_id` makes a turn idempotent: a message the engine already handled (it answered, then the platform timed
out or the engine died before the answer arrived) is not handled twice; its replies are read from the tracker.

`restore` is the conversation as the platform's store last saw it. It is used only when the engine has no
tracker for the sender (restarted without its tracker store, lost, or wiped): the slots and the open form are
put back before the message is handled, so the resident simply continues.

The same route family also runs the dialogue's custom actions in this process (`POST /webhooks/turn/actions`,
rasa_sdk's executor): no action server to start, secure or keep alive. Every route but the health check needs
the engine token (`OUTREACH_ENGINE_TOKEN`), as `Authorization: Bearer ...` or `?token=` (how Rasa's action
endpoint sends it).
"""

import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME, REQUESTED_SLOT
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import places

TOKEN_VARIABLE = "OUTREACH_ENGINE_TOKEN"


def _authorised(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or request.args.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def restore_events(slots: dict[str, Any], active_loop: str | None, known_slots: set[str]) -> list[Event]:
    """A tracker that says what the store knows: a started session, the answers, the open form, listening."""
    events: list[Event] = [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted()]
    events += [
        SlotSet(name, value)
        for name, value in slots.items()
        if value is not None and name in known_slots and name != REQUESTED_SLOT
    ]
    if active_loop:
        events += [
            ActionExecuted(active_loop),
            ActiveLoop(active_loop),
            SlotSet(REQUESTED_SLOT, slots.get(REQUESTED_SLOT)),
        ]
    events.append(ActionExecuted(ACTION_LISTEN_NAME))
    return events


def replies_to(tracker: DialogueStateTracker, message_id: str) -> list[dict[str, Any]] | None:
    """The bot's replies to a message the tracker already holds (a retried turn), or None if it is new."""
    replies = None
    for event in tracker.events:
        if isinstance(event, UserUttered):
            if replies is not None:
                break
            if event.message_id == message_id:
                replies = []
        elif isinstance(event, BotUttered) and replies is not None:
            replies.append({"text": event.text, "buttons": event.data.get("buttons") or []})
    return replies


async def _restore_if_forgotten(agent: Any, tracker: DialogueStateTracker | None, sender: str, restore: Any) -> bool:
    """Save a tracker rebuilt from `restore` when the engine holds none for the sender; True if it did."""
    if tracker is not None and tracker.events:
        return False
    if not isinstance(restore, dict) or not isinstance(restore.get("slots"), dict):
        return False
    domain = agent.domain
    active_loop = restore.get("active_loop") if restore.get("active_loop") in domain.form_names else None
    events = restore_events(restore["slots"], active_loop, {slot.name for slot in domain.slots})
    await agent.tracker_store.save(DialogueStateTracker.from_events(sender, events, domain.slots))
    return True


class TurnInput(InputChannel):
    def __init__(self) -> None:
        self.token = os.environ.get(TOKEN_VARIABLE, "")
        self.executor = ActionExecutor()
        self.executor.register_package("bot.actions")
        places.load()  # at start, not on the event loop during a resident's turn

    @classmethod
    def name(cls) -> str:
        return "turn"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("turn_webhook", __name__)

        @webhook.middleware("request")
        async def check_token(request: Request) -> HTTPResponse | None:
            if request.path.rstrip("/").endswith("/turn"):  # the health check tells nothing about anyone
                return None
            if not self.token or not _authorised(request, self.token):
                return response.json({"error": "a valid engine token is required"}, status=401)
            return None

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            agent = request.app.ctx.agent
            model = agent.processor.model_filename if agent.is_ready() else None
            return response.json({"status": "ok", "ready": agent.is_ready(), "model_file": model})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json or {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "'sender' and 'message' must be strings"}, status=400)
            agent, message_id = request.app.ctx.agent, body.get("message_id")
            tracker = await agent.tracker_store.retrieve(sender)
            restored = await _restore_if_forgotten(agent, tracker, sender, body.get("restore"))
            messages = replies_to(tracker, message_id) if tracker and isinstance(message_id, str) else None
            if messages is None:  # a new message (a retried one was handled already: answered from the tracker)
                collector = CollectingOutputChannel()
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender,
                        input_channel=self.name(),
                        metadata=body.get("metadata"),
                        message_id=message_id,
                    )
                )
                messages = collector.messages
                tracker = await agent.tracker_store.retrieve(sender)
            return response.json(
                {
                    "messages": messages,
                    "slots": tracker.current_slot_values() if tracker else {},
                    "active_loop": tracker.active_loop_name if tracker else None,
                    "restored": restored,
                    "intent": (tracker.latest_message.intent or {}).get("name") if tracker else None,
                }
            )

        @webhook.route("/actions", methods=["POST"])
        async def run_action(request: Request) -> HTTPResponse:
            try:
                return response.json(await self.executor.run(request.json or {}))
            except ActionExecutionRejection as rejection:
                return response.json({"error": rejection.message, "action_name": rejection.action_name}, status=400)
            except ActionNotFoundException as missing:
                return response.json({"error": missing.message, "action_name": missing.action_name}, status=404)

        return webhook

"""The platform's input channel into the engine (runs inside `rasa run`, engine environment).

One POST does one resident turn: the engine handles the message, then the reply carries both what the bot
said and every slot value of the conversation, so the platform never needs a second round trip.

    POST /webhooks/turn/webhook  {"sender": "...", "message": "...", "metadata": {...}}
    -> {"messages": [{"recipient_id": ..., "text": ..., "buttons": [...]}, ...], "slots": {...}}
"""

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse


class TurnInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "turn"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("turn_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json or {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "'sender' and 'message' must be strings"}, status=400)
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(text, collector, sender, input_channel=self.name(), metadata=body.get("metadata"))
            )
            tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
            slots = tracker.current_slot_values() if tracker else {}
            return response.json({"messages": collector.messages, "slots": slots})

        return webhook

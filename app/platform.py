"""The platform's parts, built once from the settings: the web app and the dispatch worker both build them here,
and each connector, router and channel receives only the parts it uses."""

from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigns.channels import OutboundChannel
from connectors.twilio_sms import SmsChannel, SmsNotifier
from connectors.twilio_stream import StreamedCalls
from connectors.twilio_voice import VoiceChannel
from connectors.webchat import WebchatLimits
from connectors.zalo.broadcasts import BroadcastSender
from connectors.zalo.client import ZaloClient
from connectors.zalo.conversations import ZaloConversations
from connectors.zalo.outbound import ZaloChannel, ZaloNotifier, ZnsChannel
from conversations.duty import Notifier
from conversations.engine import EngineClient
from conversations.service import ConversationService
from ground.private import engine_token
from ground.ratelimit import RateLimiter, limit_storage
from ground.settings import Settings
from ground.store import make_engine, make_session_factory
from models import Channel
from voice import recognition
from voice.prompts import PromptCache
from voice.recordings import Recordings


@dataclass
class Platform:
    """What requests (and the dispatcher's channels) share: the store, the engine client, the channels' clients."""

    settings: Settings
    db_engine: Engine
    sessions: sessionmaker[Session]
    engine_client: EngineClient
    conversations: ConversationService
    webchat_limits: WebchatLimits
    prompts: PromptCache
    recordings: Recordings
    streamed_calls: StreamedCalls  # calls in stream mode: what they hear, and how fast they answer
    zalo: ZaloClient
    zalo_conversations: ZaloConversations

    async def aclose_clients(self) -> None:
        """Close the HTTP clients, on the event loop they were used on."""
        await self.engine_client.aclose()
        await self.zalo.aclose()


def build_platform(settings: Settings) -> Platform:
    db_engine = make_engine(settings.database_url)
    sessions = make_session_factory(db_engine)
    limits = limit_storage(settings.rate_limit_storage_uri)
    engine_client = EngineClient(
        settings.effective_engine_url, engine_token(settings), timeout_s=settings.engine_timeout_s
    )
    conversations = ConversationService(sessions, engine_client, settings)
    zalo = ZaloClient(settings, sessions)
    prompts, recordings = PromptCache.from_settings(settings), Recordings.from_settings(settings)
    recognizer = partial(recognition.from_settings, settings)  # loaded by the first call in stream mode
    return Platform(
        settings=settings,
        db_engine=db_engine,
        sessions=sessions,
        engine_client=engine_client,
        conversations=conversations,
        webchat_limits=WebchatLimits(
            per_address=RateLimiter(limits, "webchat-address", settings.webchat_requests_per_minute_per_ip),
            per_chat=RateLimiter(limits, "webchat-session", settings.webchat_messages_per_minute),
        ),
        prompts=prompts,
        recordings=recordings,
        streamed_calls=StreamedCalls(conversations, sessions, prompts, recordings, settings, recognizer),
        zalo=zalo,
        zalo_conversations=ZaloConversations(conversations, zalo, sessions),
    )


def outbound_channels(platform: Platform) -> dict[str, OutboundChannel]:
    """The channels this platform is set up for; a campaign's other channels fall back past them."""
    settings = platform.settings
    channels: dict[str, OutboundChannel] = {}
    if settings.twilio_account_sid:
        channels[Channel.VOICE] = VoiceChannel(settings, prompts=platform.prompts)
        channels[Channel.SMS] = SmsChannel(settings, outreach=platform.conversations.outreach)
    if settings.zalo_app_id:
        channels[Channel.ZALO] = ZaloChannel(platform.zalo_conversations, settings.zalo_reply_window_hours)
        channels[Channel.ZNS] = ZnsChannel(platform.zalo, platform.conversations.outreach)
    return channels


def broadcast_sender(platform: Platform) -> BroadcastSender | None:
    """Team broadcasts go by Zalo alone (OA message or ZNS); None when the OA is not set up."""
    if not platform.settings.zalo_app_id:
        return None
    return BroadcastSender(platform.zalo, platform.sessions, platform.settings)


def duty_notifiers(platform: Platform) -> list[Notifier]:
    """How the roster is told of urgent alerts, in order of preference: Zalo (free, read at once), then SMS."""
    settings = platform.settings
    notifiers: list[Notifier] = []
    if settings.zalo_app_id:
        notifiers.append(ZaloNotifier(platform.zalo))
    if settings.twilio_account_sid:
        notifiers.append(SmsNotifier(settings))
    return notifiers

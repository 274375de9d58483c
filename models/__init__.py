"""The shared declaration store: every channel, campaign and console reads and writes these tables."""

from models.auth import ApiToken, AuditLog, ConsoleSession, Role, User
from models.base import Base, utcnow
from models.campaign import (
    AttemptStatus,
    Campaign,
    CampaignDay,
    CampaignSettlement,
    CampaignStatus,
    Outcome,
    OutreachAttempt,
    campaign_lists,
)
from models.channels import InboundEvent, ProviderToken, ZaloUser
from models.conversation import Channel, Conversation, Speaker, Turn
from models.dashboard import AreaDay, SettledDay
from models.declaration import Alert, AlertLevel, ChangeSource, Declaration, DeclarationChange, DeclarationStatus
from models.duty import AlertNotification, NotificationStatus, RosterMember
from models.national import LabResult, TestResult, VaccinationRecord
from models.people import ContactList, ContactListMember, Person
from models.scheduler import JOBS_TABLE, scheduler_jobs
from models.teams import Broadcast, BroadcastDelivery, BroadcastReply, DeliveryStatus, Team, TeamMember

__all__ = [
    "JOBS_TABLE",
    "Alert",
    "AlertNotification",
    "AlertLevel",
    "ApiToken",
    "AreaDay",
    "AttemptStatus",
    "AuditLog",
    "Broadcast",
    "BroadcastDelivery",
    "BroadcastReply",
    "Base",
    "Campaign",
    "CampaignDay",
    "CampaignSettlement",
    "ChangeSource",
    "CampaignStatus",
    "Channel",
    "ContactList",
    "ContactListMember",
    "ConsoleSession",
    "Conversation",
    "Declaration",
    "DeclarationChange",
    "DeclarationStatus",
    "DeliveryStatus",
    "InboundEvent",
    "LabResult",
    "NotificationStatus",
    "Outcome",
    "OutreachAttempt",
    "Person",
    "TestResult",
    "ProviderToken",
    "Role",
    "RosterMember",
    "SettledDay",
    "Speaker",
    "Team",
    "TeamMember",
    "Turn",
    "User",
    "VaccinationRecord",
    "ZaloUser",
    "campaign_lists",
    "scheduler_jobs",
    "utcnow",
]

"""A campaign created by a user over contact lists of their province scope (the API and the CLI both create here)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from access.errors import InvalidValue
from campaigns.lifecycle import new_campaign
from campaigns.rules import CampaignRules
from models import Campaign, ContactList, User


def create_campaign(
    session: Session, user: User, name: str, contact_list_ids: list[int], rules: CampaignRules
) -> Campaign:
    """A draft campaign of the user's province (a national user's takes the lists' when they share one)."""
    campaign = new_campaign(name, lists_in_scope(session, user, contact_list_ids), rules, user.province_code)
    session.add(campaign)
    session.flush()
    return campaign


def lists_in_scope(session: Session, user: User, contact_list_ids: list[int]) -> list[ContactList]:
    """The lists, all of the user's province scope; InvalidValue names those absent or of another province, alike."""
    lists = session.scalars(select(ContactList).where(ContactList.id.in_(contact_list_ids))).all()
    visible = [c for c in lists if not user.province_code or c.province_code == user.province_code]
    if missing := sorted(set(contact_list_ids) - {c.id for c in visible}):
        raise InvalidValue("contact_list_ids", f"no contact list {missing} in your scope")
    return visible

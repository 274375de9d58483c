"""F1 contact lists as a user sees them: within their province scope (the API and the CLI both read here)."""

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access.auth import AuthError, get_in_scope, validate_province_code
from access.errors import Forbidden, InvalidValue, NotFound
from models import ContactList, ContactListMember, User


def contact_list_in_scope(session: Session, user: User, list_id: int) -> ContactList:
    return get_in_scope(session, user, ContactList, list_id, "contact list")


def people_on(session: Session, list_id: int) -> int:
    """How many people the list holds (duplicates merged at import)."""
    return session.scalar(select(func.count()).where(ContactListMember.contact_list_id == list_id)) or 0


def rejects_file(contact_list: ContactList) -> Path:
    """The file of the rows the import rejected, with their reasons. NotFound when it rejected none."""
    if not contact_list.rejects_file or not Path(contact_list.rejects_file).exists():
        raise NotFound(f"contact list {contact_list.id} has no rejected rows")
    return Path(contact_list.rejects_file)


def import_province(user: User, province: str | None) -> str | None:
    """The province a user's import is for: the one given, else their own. A provincial user imports for theirs only."""
    try:
        province = validate_province_code(province) or user.province_code
    except AuthError as error:
        raise InvalidValue("province", str(error)) from None
    if user.province_code and province != user.province_code:
        raise Forbidden(f"you may import lists of province {user.province_code} only")
    return province

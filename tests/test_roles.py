"""Every role against every read endpoint, over real HTTP on SQLite and PostgreSQL: the README's role table is what
the code does.

A viewer reads declarations (with their alert level and reasons), campaigns and their exports, and contact list
summaries: what dashboards need. Transcripts (everything a resident said), the alert queue (who is acting on which
resident) and the rejected rows of an imported file are for the roles that act on them.
"""

import pytest

from access import auth
from conversations.alerts import assess, raise_alert
from models import ContactList, Role
from tests import factories

ROLES = (Role.ADMIN, Role.MANAGER, Role.TRACER, Role.VIEWER)
EVERYONE = set(ROLES)
READS = {  # endpoint -> the roles that may read it (the others get 403)
    "/api/v1/declarations": EVERYONE,
    "/api/v1/declarations/{declaration}": EVERYONE,
    "/api/v1/conversations/{conversation}": {Role.ADMIN, Role.MANAGER, Role.TRACER},
    "/api/v1/alerts": {Role.ADMIN, Role.MANAGER, Role.TRACER},
    "/api/v1/campaigns/{campaign}": EVERYONE,
    "/api/v1/campaigns/{campaign}/export.csv": EVERYONE,
    "/api/v1/contact-lists/{contact_list}": EVERYONE,
    "/api/v1/contact-lists/{contact_list}/rejects.csv": {Role.ADMIN, Role.MANAGER},
}


@pytest.fixture
def province(api, tmp_path):
    """One resident of Bắc Ninh (27) with a declaration, its transcript and alert, on a campaign over a contact list
    with rejected rows; a user of each role (the admin national, the others of 27)."""
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("line,reason\n3,no phone\n", encoding="utf-8")
    with api.sessions.begin() as session:
        an = factories.person(session, "+84912345678")
        campaign = factories.campaign(session)
        conversation = factories.conversation(session, an)
        declaration = factories.complete_declaration(
            session, an, campaign_id=campaign.id, conversation_id=conversation.id
        )
        raise_alert(session, declaration, assess(declaration, False, api.settings))
        contact_list = ContactList(name="F1 của BN1234", province_code="27", rejects_file=str(rejects))
        session.add(contact_list)
        session.flush()
        ids = {
            "declaration": declaration.id,
            "conversation": conversation.id,
            "campaign": campaign.id,
            "contact_list": contact_list.id,
        }
        tokens = {
            role: auth.add_user(session, f"{role.value}-27", role, None if role == Role.ADMIN else "27").token
            for role in ROLES
        }
    return ids, tokens


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_each_role_reads_what_the_role_table_says(api, province, role):
    ids, tokens = province
    for endpoint, readers in READS.items():
        response = api.get(endpoint.format(**ids), tokens[role])
        if role in readers:
            assert response.status_code == 200, f"{role} {endpoint}: {response.text}"
            assert response.content not in (b"", b"[]"), f"{role} {endpoint} read nothing"
        else:
            assert response.status_code == 403, f"{role} {endpoint}: {response.status_code}"
            assert role.value in response.json()["message"]

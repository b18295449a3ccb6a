"""Access tests: one demo database per module, with a person of every role and the people who may
see nothing, served over real HTTP by the Slack app (fake Web API) and the Teams bot (fake
Bot Connector), plus the local chat."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.config import Settings
from bot.container import Container
from storage.db import engine_for
from storage.models import CSM
from tests.conftest import DEMO_TODAY
from tests.slack.fake_slack import FakeSlack

# The Teams helpers live beside the Teams tests and import each other as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teams"))

from fake_connector import FakeConnector
from teams_support import TENANT

SECRET = "access-signing-secret"
API_TOKEN = "access-api-token"


@dataclass(frozen=True)
class Persona:
    """Someone asking: the doc table's row they fall under, and who they are on each platform."""

    key: str
    row: str  # a row of docs/access.md's table
    email: str | None  # the person record's email (None: no record)
    slack: dict[str, object] | None = None  # users.info fields, or None: not a Slack persona
    teams: dict[str, object] | None = None  # roster fields, or None: not a Teams persona
    owns_acme: bool = False  # may change Acme Corp under "which accounts" (owner, manager, admin)


PERSONAS = [
    Persona("admin", "admin", "admin@example.com", {}, {}, owns_acme=True),
    Persona("manager", "manager", "alex@example.com", {}, {}, owns_acme=True),
    Persona("owner", "csm", "dana@example.com", {}, {}, owns_acme=True),
    Persona("other_csm", "csm", "marco@example.com", {}, {}),
    Persona("viewer", "viewer", "vic@example.com", {}, {}),
    Persona("unknown", "no access", "someone@elsewhere.example", {}, {}),
    # Platform guests and outsiders, each with the email of Acme's owner: never her.
    Persona("slack_guest", "no access", "dana@example.com", {"is_restricted": True}, None),
    Persona(
        "slack_single_channel_guest",
        "no access",
        "dana@example.com",
        {"is_ultra_restricted": True},
        None,
    ),
    Persona("slack_stranger", "no access", "dana@example.com", {"is_stranger": True}, None),
    Persona(
        "slack_connect_member", "no access", "dana@example.com", {"team_id": "T999OTHER"}, None
    ),
    Persona("teams_guest", "no access", "dana@example.com", None, {"userRole": "guest"}),
]


def slack_id(persona: Persona) -> str:
    return "U" + persona.key.upper().replace("_", "")


def teams_id(persona: Persona) -> str:
    return f"29:{persona.key}"


def aad_id(persona: Persona) -> str:
    return f"aad-{persona.key}"


@pytest.fixture(scope="module")
def access_db(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo portfolio plus a viewer attached to Alex's team."""
    path = tmp_path_factory.mktemp("access") / "csm.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    engine = engine_for(url)
    with Session(engine) as session:
        alex = session.exec(select(CSM).where(CSM.email == "alex@example.com")).one()
        session.add(
            CSM(name="Vic Viewer", email="vic@example.com", role="viewer", manager_id=alex.id)
        )
        session.commit()
    return url


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    for persona in PERSONAS:
        if persona.slack is not None:
            fake.add_user(slack_id(persona), persona.email, persona.key, **persona.slack)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def access_container(access_db: str, fake_slack: FakeSlack) -> Iterator[Container]:
    fake = fake_slack
    settings = Settings(
        database_url=access_db,
        today=DEMO_TODAY.isoformat(),
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        microsoft_app_id="11111111-2222-3333-4444-555555555555",
        microsoft_app_password="secret",
        microsoft_app_tenant_id=TENANT,
        api_token=API_TOKEN,
    )
    yield Container(settings=settings)
    engine_for.cache_clear()


@pytest.fixture(scope="module")
def connector() -> Iterator[FakeConnector]:
    """The fake Bot Connector, whose roster knows every Teams persona."""
    fake = FakeConnector().start()
    for persona in PERSONAS:
        if persona.teams is not None:
            fake.members[teams_id(persona)] = {
                "id": teams_id(persona),
                "name": persona.key,
                "email": persona.email,
                "userPrincipalName": persona.email,
                "tenantId": TENANT,
                "userRole": "user",
                "aadObjectId": aad_id(persona),
                **persona.teams,
            }
    yield fake
    fake.stop()

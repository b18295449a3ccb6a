"""The data API's token manages the team, but cannot make anyone an admin or say who is who in
chat: otherwise whoever holds an integration's token could make themselves an admin, or point an
admin's record at their own Slack user and answer as them (docs/access.md, "People and the data
API"). Over real HTTP: the API, then Slack as the would-be attacker."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from bot.container import Container
from bot.server import create_app
from bot.slack.app import build_slack
from bot.slack.worker import SlackWorker
from storage.models import CSM
from tests.access.conftest import API_TOKEN
from tests.access.test_access_matrix import slack_post
from tests.http_server import ServerThread
from tests.slack.conftest import SINGLE_WORKSPACE, command_body
from tests.slack.fake_slack import FakeSlack

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
MALLORY = "UMALLORY"  # a Slack user of our workspace with no person record


@pytest.fixture(scope="module")
def url(access_container: Container, fake_slack: FakeSlack) -> Iterator[str]:
    fake_slack.add_user(MALLORY, "mallory@example.com", "Mallory")
    slack = build_slack(access_container, oauth=SINGLE_WORKSPACE, worker=SlackWorker(budget=10))
    app = create_app(access_container, slack_app=slack.app, with_teams=False)
    with ServerThread(app) as server:
        yield server.url


def person(container: Container, email: str) -> CSM | None:
    with Session(container.engine) as session:
        return session.exec(select(CSM).where(CSM.email == email)).first()


def risks_as_mallory(url: str) -> str:
    response = slack_post(url, command_body("/risks", "team", user=MALLORY, trigger_id="t.m1"))
    assert response.status_code == 200
    return response.text


def test_the_token_cannot_point_an_admin_at_another_slack_user(
    url: str, access_container: Container
) -> None:
    before = person(access_container, "admin@example.com")
    assert before is not None and before.role == "admin"

    for change in ({"slack_user_id": MALLORY}, {"teams_user_id": "29:mallory"}):
        answer = httpx.patch(
            f"{url}/api/v1/people/admin@example.com", json=change, headers=AUTH, timeout=10
        )
        assert answer.status_code == 422, answer.text
        [column] = change
        assert answer.json()["errors"][0]["column"] == column
        assert "cannot link" in answer.json()["message"]

    after = person(access_container, "admin@example.com")
    assert after is not None and (after.slack_user_id, after.teams_user_id) == (
        before.slack_user_id,
        before.teams_user_id,
    )
    # Mallory is still nobody: no portfolio, only who can add her.
    assert "I don't know you yet" in risks_as_mallory(url)


def test_the_token_cannot_make_an_admin_or_unmake_one(
    url: str, access_container: Container
) -> None:
    made = httpx.post(
        f"{url}/api/v1/people",
        json={"email": "mallory@example.com", "name": "Mallory", "role": "admin"},
        headers=AUTH,
        timeout=10,
    )
    assert made.status_code == 422 and made.json()["errors"][0]["column"] == "role", made.text
    promoted = httpx.patch(
        f"{url}/api/v1/people/marco@example.com", json={"role": "admin"}, headers=AUTH, timeout=10
    )
    assert promoted.status_code == 422, promoted.text
    demoted = httpx.patch(
        f"{url}/api/v1/people/admin@example.com", json={"role": "csm"}, headers=AUTH, timeout=10
    )
    assert demoted.status_code == 422, demoted.text
    bulk = httpx.post(
        f"{url}/api/v1/import/people",
        content="email,name,role,slack_user_id\nmallory@example.com,Mallory,admin,UMALLORY\n",
        headers={**AUTH, "Content-Type": "text/csv"},
        timeout=10,
    )
    assert bulk.status_code == 422, bulk.text
    assert {e["column"] for e in bulk.json()["errors"]} == {"role", "slack_user_id"}

    assert person(access_container, "mallory@example.com") is None
    marco = person(access_container, "marco@example.com")
    admin = person(access_container, "admin@example.com")
    assert marco is not None and marco.role == "csm"
    assert admin is not None and admin.role == "admin"
    assert "I don't know you yet" in risks_as_mallory(url)


def test_the_token_still_manages_the_team(url: str, access_container: Container) -> None:
    added = httpx.post(
        f"{url}/api/v1/people",
        json={"email": "quinn@example.com", "name": "Quinn", "role": "manager"},
        headers=AUTH,
        timeout=10,
    )
    assert added.status_code == 201, added.text
    moved = httpx.patch(
        f"{url}/api/v1/people/marco@example.com",
        json={"manager_email": "quinn@example.com", "timezone": "Europe/Rome"},
        headers=AUTH,
        timeout=10,
    )
    assert moved.status_code == 200, moved.text
    # An admin's own settings, and a link that stays as it is, are not access changes.
    admin = person(access_container, "admin@example.com")
    assert admin is not None
    same = httpx.patch(
        f"{url}/api/v1/people/admin@example.com",
        json={"role": "admin", "slack_user_id": admin.slack_user_id, "digest_time": "07:00"},
        headers=AUTH,
        timeout=10,
    )
    assert same.status_code == 200, same.text

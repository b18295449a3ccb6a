"""Action.Execute invokes through /api/messages: same permission rules and audit as Slack, refreshed card back."""

from __future__ import annotations

from typing import Any

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, col, select
from starlette.testclient import TestClient
from teams_support import TENANT, activity

from bot.container import Container
from bot.teams.cards import render_card
from storage.models import CSM, Account, AuditLog, IndicatorReading, Milestone, MilestoneEvent

CARD = "application/vnd.microsoft.card.adaptive"


def invoke(
    connector: FakeConnector, verb: str | None, data: dict[str, Any], user_id: str
) -> dict[str, Any]:
    """The captured adaptiveCard/action invoke, with our verb and data, from a user in our tenant."""
    body = activity("invoke_adaptive_card_action.json", connector)
    action: dict[str, Any] = {"type": "Action.Execute", "title": "Set", "data": data}
    if verb is not None:
        action["verb"] = verb
    body["value"]["action"] = action
    body["from"]["id"] = user_id
    body["channelData"]["tenant"]["id"] = TENANT
    body["conversation"]["tenantId"] = TENANT
    return body


def link(container: Container, email: str, teams_id: str) -> int:
    """Give a CSM a Teams id, as a first message would have."""
    with Session(container.engine) as session:
        csm = session.exec(select(CSM).where(CSM.email == email)).one()
        csm.teams_user_id = teams_id
        session.add(csm)
        session.commit()
        return csm.id or 0


def open_milestone(container: Container, account_name: str = "Acme Corp") -> Milestone:
    with Session(container.engine) as session:
        account = session.exec(select(Account).where(Account.name == account_name)).one()
        return session.exec(
            select(Milestone)
            .where(Milestone.account_id == account.id, Milestone.status != "done")
            .order_by(col(Milestone.id))
        ).first()


def texts(node: Any) -> str:
    if isinstance(node, dict):
        return " ".join([str(node.get("text", ""))] + [texts(v) for v in node.values()])
    if isinstance(node, list):
        return " ".join(texts(v) for v in node)
    return ""


def test_owner_moves_a_milestone_and_gets_the_refreshed_plan(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    dana_id = link(container, "dana@example.com", "29:dana")
    milestone = open_milestone(container)

    response = client.post(
        "/api/messages",
        json=invoke(
            connector,
            "milestone.status",
            {"milestone_id": milestone.id, "status": "done", "account_id": milestone.account_id},
            "29:dana",
        ),
    )

    assert response.status_code == 200
    body = response.json()
    assert body["statusCode"] == 200 and body["type"] == CARD
    card = body["value"]
    assert card["version"] == "1.5" and "Acme Corp" in texts(card)
    assert connector.sent() == []  # the answer is the invoke response, not a new message
    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == "done"
        [event] = session.exec(
            select(MilestoneEvent).where(MilestoneEvent.milestone_id == milestone.id)
        ).all()
        assert (event.field, event.from_value, event.to_value, event.actor_id) == (
            "status",
            milestone.status,
            "done",
            dana_id,
        )
        [audit] = session.exec(select(AuditLog).where(AuditLog.action == "milestone.status")).all()
        assert (
            audit.source == "teams"
            and audit.actor_id == dana_id
            and audit.entity_id == str(milestone.id)
        )
    # In the refreshed card the milestone no longer offers "Done".
    buttons = [
        a
        for a in _walk(card)
        if a.get("verb") == "milestone.status" and a["data"]["milestone_id"] == milestone.id
    ]
    assert buttons and all(b["data"]["status"] != "done" for b in buttons)


def test_someone_else_is_refused_and_nothing_changes(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "marco@example.com", "29:marco")  # a CSM, but not Acme's owner or their manager
    milestone = open_milestone(container)

    response = client.post(
        "/api/messages",
        json=invoke(
            connector,
            "milestone.status",
            {"milestone_id": milestone.id, "status": "blocked", "account_id": milestone.account_id},
            "29:marco",
        ),
    )

    assert response.status_code == 200
    card = response.json()["value"]
    shown = texts(card)
    assert "Only Dana Whitfield (the owner), their manager or an admin can change" in shown
    assert "Acme Corp" in shown  # the plan is still shown, unchanged, under the refusal
    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == milestone.status
        assert (
            session.exec(
                select(MilestoneEvent).where(MilestoneEvent.milestone_id == milestone.id)
            ).all()
            == []
        )
        assert session.exec(select(AuditLog)).all() == []


def test_unknown_people_cannot_change_anything(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    milestone = open_milestone(container)

    response = client.post(
        "/api/messages",
        json=invoke(
            connector,
            "milestone.status",
            {"milestone_id": milestone.id, "status": "done"},
            "29:stranger",
        ),
    )

    assert "I don't know you yet" in texts(response.json()["value"])
    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == milestone.status


def test_the_manager_may_change_a_milestone(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "alex@example.com", "29:alex")  # Dana's manager in the demo data
    milestone = open_milestone(container)

    client.post(
        "/api/messages",
        json=invoke(
            connector,
            "milestone.status",
            {"milestone_id": milestone.id, "status": "at_risk"},
            "29:alex",
        ),
    )

    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == "at_risk"


def test_sentiment_from_the_health_card(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", "29:dana")
    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()

    # Action.Execute merges the card's inputs ("value", "reason") into data.
    data = {"account_id": acme.id, "value": "red", "reason": "Champion left"}
    response = client.post(
        "/api/messages", json=invoke(connector, "sentiment.set", data, "29:dana")
    )

    card = response.json()["value"]
    assert "CSM sentiment: red — Champion left" in texts(card)
    with Session(container.engine) as session:
        reading = session.exec(
            select(IndicatorReading).where(
                IndicatorReading.account_id == acme.id,
                IndicatorReading.indicator_key == "csm_sentiment",
                IndicatorReading.note == "Champion left",
            )
        ).one()
        assert reading.value == 1.0
        assert (
            session.exec(select(AuditLog).where(AuditLog.action == "sentiment.set")).one().source
            == "teams"
        )


def test_choice_buttons_open_the_account(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", "29:dana")
    with Session(container.engine) as session:
        globex = session.exec(select(Account).where(Account.name == "Globex")).one()

    response = client.post(
        "/api/messages",
        json=invoke(
            connector,
            "account.open",
            {"account_id": globex.id, "intent": "success_plan"},
            "29:dana",
        ),
    )

    card = response.json()["value"]
    assert "Globex" in texts(card)


@pytest.mark.parametrize(
    ("verb", "data"),
    [
        (None, {"feedback": "test invokes"}),
        ("milestone.status", {"status": "done"}),
        ("milestone.status", {"milestone_id": "x", "status": "done"}),
    ],
    ids=["captured-no-verb", "missing-id", "bad-id"],
)
def test_bad_actions_get_an_error_response(
    client: TestClient,
    connector: FakeConnector,
    container: Container,
    verb: str | None,
    data: dict[str, Any],
) -> None:
    response = client.post("/api/messages", json=invoke(connector, verb, data, "29:anyone"))

    assert response.status_code == 200
    body = response.json()
    assert body["statusCode"] == 400 and body["type"] == "application/vnd.microsoft.error"
    with Session(container.engine) as session:
        assert session.exec(select(AuditLog)).all() == []


def test_a_vanished_milestone_says_so(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", "29:dana")

    response = client.post(
        "/api/messages",
        json=invoke(
            connector, "milestone.status", {"milestone_id": 999999, "status": "done"}, "29:dana"
        ),
    )

    assert "no longer exists" in texts(response.json()["value"])


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Action."):
            found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_walk(item))
    return found


def test_edit_form_then_save_changes_the_due_date(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", "29:dana")
    milestone = open_milestone(container)
    ids = {"milestone_id": milestone.id, "account_id": milestone.account_id}

    form = client.post(
        "/api/messages", json=invoke(connector, "milestone.edit_form", ids, "29:dana")
    ).json()["value"]
    assert [a["verb"] for a in _walk(form) if a.get("verb") == "milestone.edit"]
    bad = client.post(
        "/api/messages",
        json=invoke(connector, "milestone.edit", {**ids, "due_date": "next tuesday"}, "29:dana"),
    ).json()["value"]
    good = client.post(
        "/api/messages",
        json=invoke(
            connector,
            "milestone.edit",
            {**ids, "due_date": "2027-01-15", "note": "Moved"},
            "29:dana",
        ),
    ).json()["value"]

    assert "is not a date" in texts(bad) and "Input.Date" in str(bad)  # the form again, with why
    assert "2027-01-15" in texts(good)
    with Session(container.engine) as session:
        saved = session.get(Milestone, milestone.id)
        assert saved.due_date.isoformat() == "2027-01-15" and saved.note == "Moved"
        fields = {
            e.field
            for e in session.exec(
                select(MilestoneEvent).where(MilestoneEvent.milestone_id == milestone.id)
            ).all()
        }
        assert fields == {"due_date", "note"}
        assert (
            session.exec(select(AuditLog).where(AuditLog.action == "milestone.edit")).one().source
            == "teams"
        )


def test_an_unexpected_failure_answers_the_invoke_and_is_logged(
    client: TestClient,
    connector: FakeConnector,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from handlers import plan

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(plan, "set_milestone_status", broken)
    link(container, "dana@example.com", "29:dana")

    response = client.post(
        "/api/messages",
        json=invoke(
            connector, "milestone.status", {"milestone_id": 1, "status": "done"}, "29:dana"
        ),
    )

    assert response.status_code == 200 and response.json()["statusCode"] == 500
    assert any("database went away" in (r.exc_text or "") for r in caplog.records)


def _open_alert(container: Container, account_name: str = "Acme Corp") -> int:
    from scheduler.models import Alert

    with Session(container.engine) as session:
        account = session.exec(select(Account).where(Account.name == account_name)).one()
        alert = Alert(
            account_id=account.id or 0,
            kind="band_change",
            event_key=f"test:{account.id}:band",
            title=f"{account_name} turned amber",
            status="open",
        )
        session.add(alert)
        session.commit()
        return alert.id or 0


@pytest.mark.parametrize(
    ("verb", "data", "status"),
    [("alert.acknowledge", {}, "acknowledged"), ("alert.snooze", {"days": 7}, "snoozed")],
)
def test_alert_buttons_quiet_the_alert_for_the_owner_only(
    client: TestClient,
    connector: FakeConnector,
    container: Container,
    verb: str,
    data: dict[str, Any],
    status: str,
) -> None:
    from scheduler.models import Alert

    link(container, "dana@example.com", "29:dana")
    link(container, "marco@example.com", "29:marco")
    alert_id = _open_alert(container)

    refused = client.post(
        "/api/messages", json=invoke(connector, verb, {"alert_id": alert_id, **data}, "29:marco")
    )
    assert refused.status_code == 200
    with Session(container.engine) as session:
        assert session.get(Alert, alert_id).status == "open"

    done = client.post(
        "/api/messages", json=invoke(connector, verb, {"alert_id": alert_id, **data}, "29:dana")
    )
    assert done.status_code == 200 and done.json()["type"] == CARD
    with Session(container.engine) as session:
        assert session.get(Alert, alert_id).status == status


def test_an_escalation_asked_for_in_words_is_confirmed_once_from_the_card(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    from teams_support import TODAY

    from handlers.actions import draft_escalation
    from handlers.context import Actor, ChatContext
    from storage.models import Escalation

    dana_id = link(container, "dana@example.com", "29:dana")
    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        actor = Actor(csm_id=dana_id, name="Dana Whitfield", email="dana@example.com")
        ctx = ChatContext(platform="teams", actor=actor, today=TODAY, thread_key="teams:x")
        asked = draft_escalation(session, ctx=ctx, account_id=acme.id or 0)
        assert asked.template == "escalation_draft"  # no reason, no severity: it asks
        key = asked.context["key"]
        before = len(session.exec(select(Escalation)).all())
        session.commit()

    picked = client.post(
        "/api/messages",
        json=invoke(connector, "escalation.draft", {"key": key, "severity": "sev1"}, "29:dana"),
    ).json()
    assert picked["statusCode"] == 200 and "What happened at Acme Corp" in texts(picked["value"])
    with Session(container.engine) as session:
        from handlers.actions import draft_answer, pending_in_thread

        state = pending_in_thread(session, "teams:x")
        assert state is not None
        confirm = draft_answer(session, ctx=ctx, state=state, text="SSO down", severity=None)
        session.commit()
    assert confirm.template == "action_confirm"
    card = render_card(confirm)
    assert card is not None
    verbs = [a.get("verb") for a in card["actions"]]
    assert verbs == ["action.confirm", "action.cancel"]
    for _ in range(2):
        response = client.post(
            "/api/messages",
            json=invoke(connector, "action.confirm", {"key": confirm.context["key"]}, "29:dana"),
        )
        assert response.status_code == 200 and response.json()["statusCode"] == 200
    with Session(container.engine) as session:
        assert len(session.exec(select(Escalation)).all()) == before + 1
    assert "Already done" in texts(response.json()["value"])


def test_a_listed_alert_is_acknowledged_and_the_list_stays_as_it_was(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    """A digest or urgent-batch line (keep_card): the answer is a message, not a new card."""
    from scheduler.models import Alert

    link(container, "dana@example.com", "29:dana")
    link(container, "marco@example.com", "29:marco")
    alert_id = _open_alert(container)
    data = {"alert_id": alert_id, "keep_card": True}
    refused = client.post(
        "/api/messages", json=invoke(connector, "alert.snooze", {**data, "days": 7}, "29:marco")
    )
    assert refused.json()["type"] == "application/vnd.microsoft.activity.message"
    assert "Only" in refused.json()["value"]
    done = client.post(
        "/api/messages", json=invoke(connector, "alert.acknowledge", data, "29:dana")
    )
    answer = done.json()
    assert answer["statusCode"] == 200
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert answer["value"] == "Acknowledged by Dana Whitfield: Acme Corp: Acme Corp turned amber."
    with Session(container.engine) as session:
        assert session.get(Alert, alert_id).status == "acknowledged"

"""Escalations as Slack threads: /escalate, the parent card, its buttons and modals, every update in the thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest
from sqlmodel import Session, col, func, select

from bot.config import Settings
from bot.container import Container
from bot.slack.app import SlackEdge
from storage.db import engine_for
from storage.models import CSM, Account, AuditLog, Escalation, EscalationEvent
from tests.slack.conftest import (
    DANA,
    MARCO,
    SECRET,
    TODAY,
    ack_json,
    assert_valid_blocks,
    block_actions_body,
    click_confirm,
    command_body,
    dispatch,
    event_body,
    mrkdwn_texts,
    view_submission_body,
)
from tests.slack.fake_slack import BOT_USER_ID, FakeSlack

ESC_CHANNEL = "CESC"


@pytest.fixture
def container(demo_db_url: str, fake: FakeSlack) -> Iterator[Container]:
    """conftest's container, with CSM_ESCALATION_CHANNEL set."""
    settings = Settings(
        database_url=demo_db_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        today=TODAY.isoformat(),
        escalation_channel=ESC_CHANNEL,
    )
    yield Container(settings=settings)
    engine_for.cache_clear()


# -- helpers ---------------------------------------------------------------------------------------
def session_of(edge: SlackEdge) -> Session:
    return Session(edge.services.container.engine)


def state(edge: SlackEdge) -> tuple[int, int, int]:
    """(escalations, escalation events, audit entries): what a refused request must leave alone."""
    with session_of(edge) as session:
        return (
            session.exec(select(func.count(Escalation.id))).one(),
            session.exec(select(func.count(EscalationEvent.id))).one(),
            session.exec(select(func.count(AuditLog.id))).one(),
        )


def newest(edge: SlackEdge) -> Escalation:
    with session_of(edge) as session:
        found = session.exec(select(Escalation).order_by(col(Escalation.id).desc())).first()
    assert found is not None
    return found


def events(edge: SlackEdge, escalation_id: int) -> list[EscalationEvent]:
    with session_of(edge) as session:
        return list(
            session.exec(
                select(EscalationEvent)
                .where(EscalationEvent.escalation_id == escalation_id)
                .order_by(col(EscalationEvent.id))
            ).all()
        )


def last_audit(edge: SlackEdge) -> AuditLog:
    with session_of(edge) as session:
        found = session.exec(select(AuditLog).order_by(col(AuditLog.id).desc())).first()
    assert found is not None
    return found


def blocks_of(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def escalate(
    edge: SlackEdge, text: str, *, user: str = DANA, channel: str = "C111"
) -> dict[str, Any]:
    body = command_body("/escalate", text, user=user, channel=channel)
    return ack_json(dispatch(edge, body))


def opened(edge: SlackEdge, fake: FakeSlack) -> Escalation:
    """An Acme Corp (Dana's) sev1, posted in the escalation channel; the fake's log starts empty."""
    escalate(edge, "acme sev1 SSO is down for all users")
    escalation = newest(edge)
    assert escalation.slack_thread_ts
    fake.reset()
    return escalation


def click(
    edge: SlackEdge,
    fake: FakeSlack,
    action_id: str,
    escalation: Escalation,
    *,
    user: str = DANA,
) -> None:
    """A click on the parent message in the escalation channel (not ephemeral, its real ts)."""
    action = {"type": "button", "action_id": action_id, "value": str(escalation.id)}
    body = block_actions_body(
        action,
        user=user,
        channel=escalation.slack_channel_id or "",
        response_url=fake.response_url(),
        ephemeral=False,
    )
    payload = json.loads(unquote(body.removeprefix("payload=")))
    payload["container"]["message_ts"] = escalation.slack_thread_ts
    payload["message"] = {"type": "message", "ts": escalation.slack_thread_ts, "text": "card"}
    assert dispatch(edge, "payload=" + quote(json.dumps(payload))).status == 200


def opened_view(fake: FakeSlack) -> dict[str, Any]:
    view = fake.calls_to("views.open")[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view


def submit(
    edge: SlackEdge, view: dict[str, Any], values: dict[str, Any], *, user: str = DANA
) -> dict[str, Any]:
    return ack_json(dispatch(edge, view_submission_body(view, values, user=user)))


def text_input(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def select_input(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def thread_replies(fake: FakeSlack, escalation: Escalation) -> list[dict[str, Any]]:
    return [
        c.args
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("thread_ts") == escalation.slack_thread_ts
    ]


def assert_parent_updated(fake: FakeSlack, escalation: Escalation) -> list[dict[str, Any]]:
    [update] = fake.calls_to("chat.update")
    assert update.args["channel"] == ESC_CHANNEL
    assert update.args["ts"] == escalation.slack_thread_ts
    blocks = blocks_of(update.args)
    assert_valid_blocks(blocks)
    return blocks


def webhook_posts(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("webhook:r1")]


# -- opening -------------------------------------------------------------------------------------
def test_slash_command_posts_the_parent_in_the_escalation_channel(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    before = state(edge)
    answer = escalate(edge, "acme sev1 SSO is down <!channel>")

    # The opener: a private confirmation that links to the thread.
    assert answer["response_type"] == "ephemeral"
    assert_valid_blocks(answer["blocks"])
    assert f"<#{ESC_CHANNEL}>" in json.dumps(answer["blocks"])
    # The parent: posted once, in the escalation channel, with every button, data escaped.
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == ESC_CHANNEL and "thread_ts" not in post.args
    blocks = blocks_of(post.args)
    assert_valid_blocks(blocks)
    assert buttons(blocks) == [
        "escalation_acknowledge",
        "escalation_assign",
        "escalation_note",
        "escalation_resolve",
    ]
    texts = " ".join(mrkdwn_texts(blocks))
    assert "Acme Corp" in texts and "sev1" in texts and "Acknowledge by" in texts
    assert "<!channel>" not in texts  # the parser drops Slack markup from the title

    escalation = newest(edge)
    assert (escalation.severity, escalation.status) == ("sev1", "open")
    assert escalation.title.startswith("SSO is down")
    assert escalation.slack_channel_id == ESC_CHANNEL
    assert escalation.slack_thread_ts and escalation.slack_thread_ts.startswith("1700000000.")
    assert state(edge) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert [e.kind for e in events(edge, escalation.id or 0)] == ["opened"]
    assert last_audit(edge).action == "escalation.open"


def test_without_an_escalation_channel_it_posts_where_it_was_opened(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    edge.services.container.settings.escalation_channel = None
    escalate(edge, "globex sev3 exports are slow", channel="C222")
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == "C222"
    escalation = newest(edge)
    assert (escalation.slack_channel_id, escalation.severity) == ("C222", "sev3")


def test_an_unknown_account_opens_nothing(edge: SlackEdge, fake: FakeSlack) -> None:
    before = state(edge)
    answer = escalate(edge, "zzqxv sev1 broken")
    assert answer["response_type"] == "ephemeral"
    assert state(edge) == before
    assert fake.calls_to("chat.postMessage") == []


def test_no_arguments_open_a_modal_with_inline_errors(edge: SlackEdge, fake: FakeSlack) -> None:
    body = command_body("/escalate", "", user=DANA, response_url=fake.response_url("cmd"))
    response = dispatch(edge, body)
    assert response.status == 200
    view = opened_view(fake)
    assert view["callback_id"] == "escalation_open"
    assert_valid_blocks(view["blocks"], limit=100)
    assert [b.get("block_id") for b in view["blocks"] if b["type"] == "input"] == [
        "account",
        "severity",
        "title",
        "description",
    ]
    before = state(edge)

    bad = submit(
        edge,
        view,
        {
            "account": text_input("zzqxv"),
            "severity": select_input("sev9"),
            "title": text_input("x" * 200),
            "description": text_input(""),
        },
    )
    assert bad["response_action"] == "errors"
    assert set(bad["errors"]) == {"account", "severity", "title"}
    assert "couldn't find" in bad["errors"]["account"]
    assert state(edge) == before and fake.calls_to("chat.postMessage") == []

    good = dispatch(
        edge,
        view_submission_body(
            view,
            {
                "account": text_input("acme"),
                "severity": select_input("sev2"),
                "title": text_input("Invoices fail to sync"),
                "description": text_input("Since the 2.3 release\n<!here> affected"),
            },
        ),
    )
    assert good.status == 200 and good.body == ""  # closes the modal
    escalation = newest(edge)
    assert escalation.severity == "sev2" and escalation.title == "Invoices fail to sync"
    assert escalation.description == "Since the 2.3 release\n<!here> affected"
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == ESC_CHANNEL
    assert (escalation.slack_thread_ts or "").startswith("1700000000.")
    assert "&lt;!here&gt;" in json.dumps(blocks_of(post.args))
    # The confirmation goes back through the command's response_url, privately.
    [confirmation] = [c.args for c in fake.calls_to("webhook:cmd")]
    assert confirmation["response_type"] == "ephemeral"
    assert f"Escalation #{escalation.id} opened" in json.dumps(confirmation["blocks"])


# -- updates -------------------------------------------------------------------------------------
def test_owner_acknowledges_and_the_thread_hears_of_it(edge: SlackEdge, fake: FakeSlack) -> None:
    escalation = opened(edge, fake)
    click(edge, fake, "escalation_acknowledge", escalation)

    blocks = assert_parent_updated(fake, escalation)
    assert buttons(blocks) == ["escalation_assign", "escalation_note", "escalation_resolve"]
    assert "acknowledged" in " ".join(mrkdwn_texts(blocks))
    [reply] = thread_replies(fake, escalation)
    assert reply["channel"] == ESC_CHANNEL
    assert_valid_blocks(blocks_of(reply))
    assert "Acknowledged by Dana Whitfield" in json.dumps(blocks_of(reply))
    assert webhook_posts(fake) == []  # nothing private to say

    with session_of(edge) as session:
        stored = session.get(Escalation, escalation.id)
        assert stored is not None and stored.status == "acknowledged"
        assert stored.acknowledged_at is not None
    assert [e.kind for e in events(edge, escalation.id or 0)] == ["opened", "acknowledged"]
    audit = last_audit(edge)
    assert (audit.action, audit.actor_label, audit.source) == (
        "escalation.acknowledged",
        "dana@example.com",
        "slack",
    )


def test_another_csm_is_refused_and_nothing_changes(edge: SlackEdge, fake: FakeSlack) -> None:
    escalation = opened(edge, fake)
    before = state(edge)
    for action_id in (
        "escalation_acknowledge",
        "escalation_assign",
        "escalation_resolve",
        "escalation_note",
    ):
        click(edge, fake, action_id, escalation, user=MARCO)

    assert state(edge) == before
    assert newest(edge).status == "open"
    assert fake.calls_to("chat.update") == [] and fake.calls_to("chat.postMessage") == []
    assert fake.calls_to("views.open") == []
    posts = webhook_posts(fake)
    assert len(posts) == 4
    for post in posts:
        assert post["response_type"] == "ephemeral" and post["replace_original"] is False
        assert "Only Dana Whitfield (the owner)" in post["text"]


def test_assign_through_the_modal(edge: SlackEdge, fake: FakeSlack) -> None:
    escalation = opened(edge, fake)
    click(edge, fake, "escalation_assign", escalation)
    view = opened_view(fake)
    assert view["callback_id"] == "escalation_assign"
    assert_valid_blocks(view["blocks"], limit=100)
    [owner_block] = [b for b in view["blocks"] if b.get("block_id") == "owner"]
    emails = [o["value"] for o in owner_block["element"]["options"]]
    assert "marco@example.com" in emails
    assert owner_block["element"]["initial_option"]["value"] == "dana@example.com"

    bad = submit(edge, view, {"owner": select_input("nobody@nowhere.example")})
    assert bad["response_action"] == "errors" and set(bad["errors"]) == {"owner"}
    assert fake.calls_to("chat.update") == []

    response = dispatch(
        edge, view_submission_body(view, {"owner": select_input("marco@example.com")})
    )
    assert response.status == 200 and response.body == ""
    with session_of(edge) as session:
        marco = session.exec(select(CSM).where(CSM.email == "marco@example.com")).one()
        stored = session.get(Escalation, escalation.id)
        assert stored is not None and stored.owner_id == marco.id
    blocks = assert_parent_updated(fake, escalation)
    assert "Marco Rossi" in " ".join(mrkdwn_texts(blocks))
    [reply] = thread_replies(fake, escalation)
    assert "Assigned to Marco Rossi by Dana Whitfield" in json.dumps(blocks_of(reply))
    [*_, event] = events(edge, escalation.id or 0)
    assert (event.kind, event.to_value) == ("assigned", str(marco.id))
    assert last_audit(edge).action == "escalation.assigned"


def test_resolve_with_a_note(edge: SlackEdge, fake: FakeSlack) -> None:
    escalation = opened(edge, fake)
    click(edge, fake, "escalation_resolve", escalation)
    view = opened_view(fake)
    assert view["callback_id"] == "escalation_resolve"
    assert_valid_blocks(view["blocks"], limit=100)

    note = "Rolled back the IdP change; <!here> postmortem on Friday"
    response = dispatch(edge, view_submission_body(view, {"note": text_input(note)}))
    assert response.status == 200 and response.body == ""

    with session_of(edge) as session:
        stored = session.get(Escalation, escalation.id)
        assert stored is not None and stored.status == "resolved" and stored.resolved_at
    [*_, event] = events(edge, escalation.id or 0)
    assert (event.kind, event.note) == ("resolved", note)
    assert last_audit(edge).action == "escalation.resolved"
    blocks = assert_parent_updated(fake, escalation)
    assert buttons(blocks) == ["escalation_note"]  # nothing left to move
    [reply] = thread_replies(fake, escalation)
    reply_blocks = blocks_of(reply)
    assert_valid_blocks(reply_blocks)
    text = json.dumps(reply_blocks)
    assert "Resolved by Dana Whitfield" in text
    assert "&lt;!here&gt; postmortem" in text and "<!here>" not in text


def test_a_note_lands_in_the_thread(edge: SlackEdge, fake: FakeSlack) -> None:
    escalation = opened(edge, fake)
    click(edge, fake, "escalation_note", escalation)
    view = opened_view(fake)
    assert view["callback_id"] == "escalation_note"
    assert_valid_blocks(view["blocks"], limit=100)

    empty = submit(edge, view, {"note": text_input("   ")})
    assert empty["response_action"] == "errors" and set(empty["errors"]) == {"note"}

    dispatch(edge, view_submission_body(view, {"note": text_input("Customer call at 3pm")}))
    [*_, event] = events(edge, escalation.id or 0)
    assert (event.kind, event.note) == ("note", "Customer call at 3pm")
    assert newest(edge).status == "open"
    assert_parent_updated(fake, escalation)
    [reply] = thread_replies(fake, escalation)
    assert "Note from Dana Whitfield" in json.dumps(blocks_of(reply))
    assert last_audit(edge).action == "escalation.note"


# -- where escalations may not go ----------------------------------------------------------------
def test_an_escalation_opened_in_an_external_channel_is_refused(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.add_channel("CEXT", ext_shared=True)
    # Even the account mapped to the shared channel: an escalation is internal.
    with session_of(edge) as session:
        acme = session.get(Account, 1)
        assert acme is not None and acme.name == "Acme Corp"
        acme.slack_channel_id = "CEXT"
        session.add(acme)
        session.commit()
    before = state(edge)

    for text in ("acme sev1 SSO is down", "globex sev2 sync failing"):
        answer = escalate(edge, text, channel="CEXT")
        assert answer["response_type"] == "ephemeral"
        assert "shared with another organisation" in answer["text"]
    # No form either.
    answer = ack_json(dispatch(edge, command_body("/escalate", "", channel="CEXT")))
    assert "shared with another organisation" in answer["text"]

    assert state(edge) == before
    assert fake.calls_to("chat.postMessage") == [] and fake.calls_to("views.open") == []


def test_a_shared_escalation_channel_is_never_posted_to(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.add_channel(ESC_CHANNEL, ext_shared=True)
    before = state(edge)
    answer = escalate(edge, "acme sev1 SSO is down")
    assert "CSM_ESCALATION_CHANNEL" in answer["text"]
    assert state(edge) == before and fake.calls_to("chat.postMessage") == []


def test_an_escalation_channel_with_a_guest_is_never_posted_to(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.add_guest("UGUEST", "pat@acme.example")
    fake.set_members(ESC_CHANNEL, [DANA, "UGUEST"])
    before = state(edge)
    answer = escalate(edge, "acme sev1 SSO is down")
    assert "guests" in answer["text"] and "CSM_ESCALATION_CHANNEL" in answer["text"]
    assert state(edge) == before and fake.calls_to("chat.postMessage") == []


def test_without_an_escalation_channel_a_guest_channel_opens_nothing(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    edge.services.container.settings.escalation_channel = None
    fake.add_guest("UGUEST", "pat@acme.example")
    fake.set_members("C222", [DANA, "UGUEST"])
    before = state(edge)
    answer = escalate(edge, "globex sev3 exports are slow", channel="C222")
    assert answer["response_type"] == "ephemeral" and "guests" in answer["text"]
    assert state(edge) == before and fake.calls_to("chat.postMessage") == []


def test_csm_escalate_asks_first_then_opens_a_thread_when_a_channel_is_set(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    before = state(edge)
    answer = ack_json(dispatch(edge, command_body("/csm", "escalate acme sev2 login is broken")))
    # Asked in words: what will be opened, and a confirm button; nothing is opened yet.
    assert answer["response_type"] == "ephemeral"
    assert_valid_blocks(answer["blocks"])
    assert "Open a SEV2 escalation for Acme Corp" in json.dumps(answer["blocks"])
    assert state(edge) == before and fake.calls_to("chat.postMessage") == []

    click_confirm(edge, answer["blocks"], response_url=fake.response_url())
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == ESC_CHANNEL
    assert newest(edge).slack_channel_id == ESC_CHANNEL and newest(edge).slack_thread_ts
    [confirmed] = webhook_posts(fake)
    assert confirmed["replace_original"] is True
    assert f"<#{ESC_CHANNEL}>" in json.dumps(confirmed["blocks"])

    # A second click on the same button opens nothing more.
    click_confirm(edge, answer["blocks"], response_url=fake.response_url())
    assert state(edge)[0] == before[0] + 1
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert "Already done" in webhook_posts(fake)[-1]["text"]


def test_a_mention_asks_first_and_the_confirm_opens_the_thread(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    before = state(edge)
    body = event_body(
        "app_mention.json",
        text=f"<@{BOT_USER_ID}> escalate acme sev1 SSO is down",
        user=DANA,
        ts="1700000100.000100",
    )
    assert dispatch(edge, body, content_type="application/json").status == 200
    [question] = (c.args for c in fake.calls_to("chat.postMessage"))
    assert (question["channel"], question["thread_ts"]) == ("C111", "1700000100.000100")
    assert "Open a SEV1 escalation for Acme Corp" in json.dumps(blocks_of(question))
    assert state(edge) == before

    click_confirm(edge, blocks_of(question), response_url=fake.response_url(), ephemeral=False)
    parent = fake.calls_to("chat.postMessage")[-1].args
    assert parent["channel"] == ESC_CHANNEL and "thread_ts" not in parent
    [link] = webhook_posts(fake)
    assert f"<#{ESC_CHANNEL}>" in json.dumps(link["blocks"])
    assert newest(edge).slack_channel_id == ESC_CHANNEL


def test_a_card_answered_in_a_commands_response_becomes_its_thread(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    """Without an escalation channel, the confirm posts the card here; its first click binds the thread."""
    edge.services.container.settings.escalation_channel = None
    answer = ack_json(dispatch(edge, command_body("/csm", "escalate acme sev2 login is broken")))
    click_confirm(edge, answer["blocks"], response_url=fake.response_url())
    shared, deleted = webhook_posts(fake)
    assert shared["response_type"] == "in_channel" and deleted["delete_original"] is True
    escalation = newest(edge)
    assert escalation.slack_thread_ts is None
    fake.reset()
    action = {"type": "button", "action_id": "escalation_acknowledge", "value": str(escalation.id)}
    body = block_actions_body(action, response_url=fake.response_url(), ephemeral=False)
    assert dispatch(edge, body).status == 200

    # The card is replaced through the response_url (chat.update cannot edit a command's response).
    [replaced] = webhook_posts(fake)
    assert replaced["replace_original"] is True
    bound = newest(edge)
    assert (bound.slack_channel_id, bound.slack_thread_ts) == ("C111", "111.222")
    [reply] = thread_replies(fake, bound)
    assert "Acknowledged by Dana Whitfield" in json.dumps(blocks_of(reply))


def test_escalate_with_only_an_account_opens_the_form_prefilled(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    before = state(edge)
    ack = dispatch(edge, command_body("/escalate", "acme"))
    assert ack.status == 200
    [call] = fake.calls_to("views.open")
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    blocks = {b["block_id"]: b for b in view["blocks"] if b.get("block_id")}
    assert blocks["account"]["element"]["initial_value"] == "Acme Corp"
    assert "initial_option" not in blocks["severity"]["element"]  # how bad: the person says
    assert "initial_value" not in blocks["title"]["element"]
    assert state(edge) == before


def test_a_failed_post_is_told_to_the_opener(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", error="not_in_channel")
    answer = escalate(edge, "acme sev2 exports fail")
    assert answer["response_type"] == "ephemeral"
    assert_valid_blocks(answer["blocks"])
    text = json.dumps(answer["blocks"])
    assert "couldn't post it" in text and "not_in_channel" in text
    # Saved, so nothing is lost; no thread to update yet.
    escalation = newest(edge)
    assert escalation.title == "exports fail" and escalation.slack_thread_ts is None

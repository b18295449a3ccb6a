"""Every Teams card: Adaptive Card 1.5, under 80 KB even for huge portfolios, with the fields it must carry."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from teams_support import TODAY

from bot.container import Container
from bot.teams.cards import MAX_MESSAGE_BYTES, card_size, message_for, render_card
from domain.accounts_index import Candidate, Resolution
from handlers.context import Actor, ChatContext
from handlers.reply import Reply
from storage.models import CSM, Account, Escalation

ROOT = Path(__file__).resolve().parents[2]
SCHEDULER_TEMPLATES = {"qbr_prep"}  # rendered by the scheduler's own templates


def contract_templates() -> set[str]:
    names: set[str] = set()
    for line in (ROOT / "docs" / "handlers-contract.md").read_text().splitlines():
        cells = line.split("|")
        if len(cells) > 3:
            names.update(re.findall(r"`(\w+)`", cells[2]))
    return names - SCHEDULER_TEMPLATES


def test_every_contract_template_has_a_teams_card() -> None:
    templates = {
        p.name.removesuffix(".json.j2") for p in (ROOT / "templates" / "teams").glob("*.json.j2")
    }
    assert contract_templates() <= templates, contract_templates() - templates


@pytest.fixture
def session(container: Container) -> Iterator[Session]:
    with Session(container.engine) as s:
        yield s
        s.rollback()


def ctx_for(session: Session, email: str = "dana@example.com") -> ChatContext:
    csm = session.exec(select(CSM).where(CSM.email == email)).one()
    actor = Actor(csm_id=csm.id, name=csm.name, email=csm.email, role=csm.role)
    return ChatContext(platform="teams", actor=actor, today=TODAY)


def replies(session: Session, container: Container) -> dict[str, Reply]:
    """One real Reply per template, from the handlers on the demo portfolio."""
    from handlers import charts, health, plan, portfolio, settings
    from handlers.accounts import not_here_reply
    from handlers.help import help_reply

    ctx = ctx_for(session)
    models = container.health_models
    acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
    milestone_id = plan.success_plan(session, ctx=ctx, account_id=acme.id).context["objectives"][0][
        "milestones"
    ][0]["id"]
    escalation = session.exec(select(Escalation)).first()
    out = {
        "health_card": health.account_health(session, ctx=ctx, models=models, account_id=acme.id),
        "success_plan": plan.success_plan(session, ctx=ctx, account_id=acme.id),
        "milestone_edit": plan.milestone_edit_form(session, ctx=ctx, milestone_id=milestone_id),
        "milestones_overdue": portfolio.overdue_milestones(session, ctx=ctx),
        "renewals": portfolio.upcoming_renewals(session, ctx=ctx, days=365),
        "risks": portfolio.at_risk(session, ctx=ctx),
        "my_accounts": portfolio.my_accounts(session, ctx=ctx),
        "health_map": charts.health_map(session, ctx=ctx, models=models),
        "home": portfolio.home(session, ctx=ctx),
        "settings": settings.user_settings(session, ctx=ctx),
        "help": help_reply("renewals"),
        "account_not_found": health.account_health(session, ctx=ctx, models=models, query="qqzzxx"),
        "not_here": not_here_reply(),
        "error": Reply(
            template="error", context={"message": "Something failed"}, text="Something failed"
        ),
        "account_choices": Reply(
            template="account_choices",
            context={
                "query": "umbrella",
                "intent": "account_health",
                "choices": [
                    {"id": 4, "name": "Umbrella Corporation"},
                    {"id": 5, "name": "Umbrella Health"},
                ],
            },
            text="Which one?",
        ),
        "account_changes": Reply(
            template="account_changes",
            context={
                "account": plan.success_plan(session, ctx=ctx, account_id=acme.id).context[
                    "account"
                ],
                "since": "2026-11-16",
                "days": 7,
                "changes": [{"kind": "score", "text": "Score 71 → 64 (−7)"}],
            },
            text="changes",
        ),
    }
    from handlers import escalations
    from handlers.alerts import alert_view
    from handlers.help import welcome_reply
    from scheduler.models import Alert

    alert = Alert(account_id=acme.id or 0, kind="band_change", event_key="cards", title="Red")
    session.add(alert)
    session.flush()
    opened = escalations.open_escalation(
        session, ctx=ctx, account_id=acme.id, severity="sev1", title="SSO is down"
    )
    escalation_id = opened.context["escalation"]["id"]
    out.update(
        {
            "welcome": welcome_reply(ctx),
            "escalations": escalations.list_open(session, ctx=ctx),
            "escalation_update": escalations.update_reply(opened),
            "escalation_open_modal": escalations.new_escalation_form(session, ctx=ctx),
            "risk_alert": alert_view(session, ctx=ctx, alert_id=alert.id or 0),
            **{
                f"escalation_{form}_modal": escalations.escalation_form(
                    session, ctx=ctx, escalation_id=escalation_id, form=form
                )
                for form in escalations.FORMS
            },
        }
    )
    out["escalation_view"] = escalations.escalation_view(
        session, ctx=ctx, escalation_id=escalation_id
    )
    out.update(new_answers(session, container, ctx, acme))
    if escalation is not None:
        out["escalation"] = Reply(
            template="escalation",
            context={
                "escalation": {
                    "id": escalation.id,
                    "title": escalation.title,
                    "severity": "sev1",
                    "status": "open",
                    "owner": "Dana Whitfield",
                    "opened_at": "2026-11-23T09:00",
                    "due_at": "2026-11-23T10:00",
                    "breached": True,
                    "account": {"id": acme.id, "name": acme.name},
                }
            },
            text="Escalation",
        )
    return out


def new_answers(
    session: Session, container: Container, ctx: ChatContext, acme: Account
) -> dict[str, Reply]:
    """The answers issue 10 added, each from its real handler."""
    from handlers import actions, compare, expansion, explain, focus, metrics, plan, portfolio, qbr
    from handlers.help import unknown_reply
    from handlers.understanding import Constraints

    models = container.health_models
    # Any second account (a test may have renamed Globex).
    globex = session.exec(select(Account).where(Account.id != acme.id).order_by(Account.id)).first()
    assert globex is not None
    resolutions = [
        Resolution("exact", a.name, a.id, a.name, (Candidate(a.id or 0, a.name, 100.0),))
        for a in (acme, globex)
    ]
    milestone = plan.success_plan(session, ctx=ctx, account_id=acme.id).context["objectives"][0][
        "milestones"
    ][0]
    return {
        "metrics": metrics.metrics_answer(session, ctx=ctx),
        "explain_health": explain.explain_health(
            session, ctx=ctx, models=models, account_id=acme.id
        ),
        "compare_accounts": compare.compare_accounts(session, ctx=ctx, resolutions=resolutions),
        "milestones_due": portfolio.milestones_due(session, ctx=ctx),
        "expansion_signals": expansion.expansion_signals(session, ctx=ctx, models=models),
        "focus_today": focus.focus_today(session, ctx=ctx),
        "qbr_list": qbr.upcoming_qbrs(session, ctx=ctx, constraints=Constraints()),
        "unknown": unknown_reply("order more coffee"),
        "escalation_draft": actions.draft_escalation(session, ctx=ctx, account_id=acme.id or 0),
        "action_confirm": actions.milestone_change(
            session,
            ctx=ctx,
            account_id=acme.id or 0,
            words=milestone["title"],
            status="blocked" if milestone["status"] != "blocked" else "done",
        ),
        "notice": actions.cancel(session, ctx=ctx, key="action:none"),
    }


def check(card: dict[str, Any] | None) -> dict[str, Any]:
    assert card is not None
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert card["body"], "a card with nothing to show"
    assert card_size(card) <= MAX_MESSAGE_BYTES
    for action in actions(card):
        if action["type"] == "Action.Execute":
            assert action["verb"] and isinstance(action["data"], dict)
    return card


def test_every_card_renders_from_real_handler_output(
    session: Session, container: Container
) -> None:
    rendered = {
        name: check(render_card(reply)) for name, reply in replies(session, container).items()
    }

    assert contract_templates() <= set(rendered)
    health = rendered["health_card"]
    assert "Acme Corp" in text(health) and "Dana Whitfield" in text(health)
    assert {a["verb"] for a in actions(health) if a["type"] == "Action.Execute"} >= {
        "account.open",
        "sentiment.set",
    }
    plan = rendered["success_plan"]
    moves = [a for a in actions(plan) if a.get("verb") == "milestone.status"]
    assert moves and all({"milestone_id", "status"} <= set(a["data"]) for a in moves)
    assert {a["verb"] for a in actions(rendered["milestone_edit"])} >= {"milestone.edit"}
    assert [a["data"]["account_id"] for a in actions(rendered["account_choices"])] == [4, 5]
    imbacks = [a for a in actions(rendered["help"]) if a["type"] == "Action.Submit"]
    assert imbacks and all(a["data"]["msteams"]["type"] == "imBack" for a in imbacks)
    assert {"account", "severity", "title", "description"} <= inputs(
        rendered["escalation_open_modal"]
    )
    assert {"owner"} <= inputs(rendered["escalation_assign_modal"])
    assert {"note"} <= inputs(rendered["escalation_note_modal"])
    assert {"note"} <= inputs(rendered["escalation_resolve_modal"])
    assert {"digest_time", "timezone", "digest_weekends"} <= inputs(rendered["settings"])
    # Dana owns Acme: her own view of the escalation and the alert has the buttons.
    assert {"escalation.acknowledge", "escalation.form"} <= verbs(rendered["escalation_view"])
    assert {"alert.acknowledge", "alert.snooze"} <= verbs(rendered["risk_alert"])
    assert {"home.open", "settings.open", "escalation.new_form"} <= verbs(rendered["welcome"])


def test_readers_who_cannot_edit_get_no_edit_controls(
    session: Session, container: Container
) -> None:
    from handlers import health, plan

    ctx = ctx_for(session, "marco@example.com")
    acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
    plan_card = check(render_card(plan.success_plan(session, ctx=ctx, account_id=acme.id)))
    health_card = check(
        render_card(
            health.account_health(
                session, ctx=ctx, models=container.health_models, account_id=acme.id
            )
        )
    )

    assert not [a for a in actions(plan_card) if a.get("verb", "").startswith("milestone.")]
    assert not [
        a
        for a in actions(health_card)
        if a.get("verb") == "sentiment.set" or a["type"] == "Action.ShowCard"
    ]


def blown_up(reply: Reply, factor: int = 400) -> Reply:
    """The same reply with every list multiplied and long names: far beyond any real portfolio."""
    context = copy.deepcopy(reply.context)

    def grow(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    v + " " + "x" * 150
                    if k in ("name", "title", "account_name", "text") and isinstance(v, str)
                    else grow(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [grow(item) for item in node] * factor
        return node

    context = grow(context)
    for key in ("total",):
        if key in context:
            context[key] = context[key] * factor
    if "progress" in context:
        context["progress"]["total"] *= factor
    return Reply(template=reply.template, context=context, text=reply.text)


def test_huge_lists_are_cut_with_and_n_more_and_stay_under_80_kb(
    session: Session, container: Container
) -> None:
    for name, reply in replies(session, container).items():
        if name in ("error", "not_here", "settings", "help", "milestone_edit", "welcome"):
            continue
        if name.startswith("escalation_") or name == "risk_alert":
            continue
        big = blown_up(reply)
        card = render_card(big)
        check(card)
        if name in (
            "renewals",
            "risks",
            "my_accounts",
            "milestones_overdue",
            "success_plan",
            "account_changes",
            "home",
        ):
            assert "… and " in text(card), name


def test_data_cannot_inject_markdown_links_or_break_the_json(
    session: Session, container: Container
) -> None:
    from handlers import plan

    evil = 'Evil "}], [click](https://evil.example) **bold** <at>everyone</at>'
    with Session(container.engine) as writer:
        acme = writer.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme.name = evil
        writer.add(acme)
        writer.commit()
        acme_id = acme.id
    card = check(render_card(plan.success_plan(session, ctx=ctx_for(session), account_id=acme_id)))

    runs = [n for n in nodes(card) if n.get("type") == "TextRun" and evil in n.get("text", "")]
    assert runs, "the name must be shown verbatim"
    # TextRuns are never parsed as markdown; no TextBlock carries the raw name.
    assert not [
        n for n in nodes(card) if n.get("type") == "TextBlock" and "[click]" in n.get("text", "")
    ]


def markdown_fields(card: dict[str, Any]) -> list[str]:
    """Every text Teams reads as markdown: TextBlock.text, Fact.title and Fact.value."""
    out = [str(n.get("text", "")) for n in nodes(card) if n.get("type") == "TextBlock"]
    for n in nodes(card):
        for fact in n.get("facts") or []:
            out += [str(fact.get("title", "")), str(fact.get("value", ""))]
    return out


def test_no_card_lets_an_account_name_forge_a_markdown_link(
    session: Session, container: Container
) -> None:
    from bot.teams.files import chart_message
    from handlers import charts
    from handlers.attachments import chart_file

    evil = "Globex [Renew now](https://evil.example/login)"
    with Session(container.engine) as writer:
        globex = writer.exec(select(Account).where(Account.name == "Globex")).one()
        globex.name = evil
        writer.add(globex)
        writer.commit()
        globex_id = globex.id
    cards = {name: check(render_card(reply)) for name, reply in replies(session, container).items()}
    ctx = ctx_for(session)
    models = container.health_models
    from handlers.health import account_health

    health = account_health(session, ctx=ctx, models=models, account_id=globex_id)
    trend = charts.with_charts(session, health, ctx=ctx, models=models)
    for attachment in trend.attachments:
        activity = chart_message(chart_file(attachment))
        cards[f"chart {attachment.title}"] = activity.attachments[0].content
    forged = {
        name: field
        for name, card in cards.items()
        for field in markdown_fields(card)
        if "](https://evil.example" in field
    }
    assert forged == {}
    # The name is still there, as it is written (a zero-width space keeps ] and ( apart).
    assert any("Renew now" in f for f in markdown_fields(cards["health_map"]))


def test_message_falls_back_to_text_without_a_template() -> None:
    activity = message_for(Reply(template="no_such_template", context={}, text="QBR prep for Acme"))
    assert activity.attachments in (None, []) and activity.text == "QBR prep for Acme"


def test_an_oversized_card_is_sent_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.teams.cards as cards

    monkeypatch.setattr(cards, "MAX_MESSAGE_BYTES", 200)
    activity = message_for(
        Reply(template="error", context={"message": "x" * 500}, text="short fallback")
    )
    assert not activity.attachments and activity.text == "short fallback"


def test_a_notice_goes_on_top_of_the_card() -> None:
    card = render_card(
        Reply(template="not_here", context={"reason": "r"}, text="r"), notice="Nothing was changed."
    )
    assert card is not None and card["body"][0]["inlines"][0]["text"] == "Nothing was changed."


def inputs(card: dict[str, Any]) -> set[str]:
    return {n["id"] for n in nodes(card) if str(n.get("type", "")).startswith("Input.")}


def verbs(card: dict[str, Any]) -> set[str]:
    return {a["verb"] for a in actions(card) if a["type"] == "Action.Execute"}


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from nodes(item)


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes(card) if str(n.get("type", "")).startswith("Action.")]


def text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)

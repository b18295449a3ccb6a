"""The QBR pack: a deck outline from the account's data, rendered as PowerPoint or Markdown.

It begins with the end in mind (what each audience gets), shows value delivered with charts,
milestones done and next, risks with what we do about them, renewal and expansion as separate
points, a suggested agenda, and closes with what we deliberately leave out. The executive
variant is about strategy and outcomes; the operational one about adoption and milestones.
Every number on a slide is traceable: the speaker notes name its source and date.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

from sqlmodel import Session

from decks.outline import Outline, Slide, bullets
from domain.health_model import HealthModels
from domain.numbers import days_away, format_signed
from handlers.accounts import resolve_account
from handlers.charts import health_trend_spec, indicators_spec, milestone_plan_specs
from handlers.context import ChatContext
from handlers.errors import ValidationFailed
from handlers.health import health_context
from handlers.qbr import DONE_WINDOW_DAYS, qbr_prep
from handlers.reply import Attachment, Reply
from storage.models import Account

logger = logging.getLogger(__name__)

Variant = Literal["executive", "operational"]
VARIANTS: tuple[Variant, ...] = ("executive", "operational")
Format = Literal["pptx", "md"]
PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# The sections of a pack, in order: tests and the Markdown headings use these names.
SECTIONS = (
    "objectives",
    "agenda",
    "value",
    "milestones",
    "risks",
    "renewal",
    "expansion",
    "leave_out",
)

_OPERATIONAL = re.compile(r"\b(operational|operations|ops|adoption|working[- ]level)\b", re.I)


def variant_of(text: str) -> Variant:
    """ "qbr acme operational" (or ops, adoption) asks for the operational pack; else executive."""
    return "operational" if _OPERATIONAL.search(text or "") else "executive"


@dataclass(frozen=True)
class PackFile:
    """A built pack, ready to write or upload."""

    filename: str
    content: bytes
    mime: str
    title: str
    summary: str


# -- the four-way value model ----------------------------------------------------------------


def _unit(kpi: dict[str, Any]) -> str:
    return str(kpi.get("unit") or "")


def _figure(value: float) -> str:
    """A number as a slide shows it: at most one decimal (NPS from surveys is 33.3, not 33.3333)."""
    return f"{round(value, 1):g}"


def _amount(value: float, unit: str) -> str:
    """ "3 tickets" but "1 ticket": a word unit is plural except for exactly one."""
    if value == 1 and unit.startswith(" ") and unit.endswith("s") and len(unit) > 2:
        unit = unit[:-1]
    return f"{_figure(value)}{unit}"


def _kpi_line(kpi: dict[str, Any]) -> str:
    unit = _unit(kpi)
    current = "not measured" if kpi["current"] is None else _amount(kpi["current"], unit)
    line = (
        f"{kpi['objective']}: {kpi['kpi']} {_amount(kpi['baseline'], unit)} → {current} "
        f"(target {_amount(kpi['target'], unit)})"
    )
    if kpi["progress_pct"] is not None:
        line += f", {kpi['progress_pct']}% of the way"
    return line


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.0f}"


def _wiifm_slide(prep: dict[str, Any], variant: Variant, as_of: str) -> Slide:
    account = prep["account"]
    kpis = prep["kpis"]
    renewal = prep["renewal"]
    outcome = (
        "; ".join(f"{k['kpi']} to {_amount(k['target'], _unit(k))}" for k in kpis[:3])
        or "outcomes to agree: no success plan yet"
    )
    lines: list[str | tuple[str, int]] = [
        f"{account['name']} (the organisation): {outcome}",
        "Each stakeholder in the room:",
    ]
    for audience in prep["audiences"]:
        who = ", ".join(audience["people"]) or "no one named yet"
        lines.append((f"{audience['label']} ({who}): {audience['wiifm']}", 1))
    if renewal and renewal["days_left"] >= 0:
        renewal_text = f"a renewal on {renewal['date']} decided on outcomes, not on price"
    elif renewal:
        renewal_text = "a renewal decided on outcomes, not on price"
    else:
        renewal_text = "a relationship that grows with the outcomes"
    lines.append(f"Our company: {renewal_text}, and a customer who refers others")
    owner = (account.get("owner") or {}).get("name")
    focus = "sponsor support on blockers" if variant == "executive" else "owners and dates"
    who = f"{owner} (CSM)" if owner else "The CSM"
    lines.append(f"{who}: agreement on next quarter's milestones, {focus}")
    notes = (
        f"Begin with the end in mind: what each audience gets from this hour. Outcomes and targets "
        f"from the success plan's objectives; attendees from the QBR invitation (or the account's "
        f"stakeholders); renewal from the open renewal record. As of {as_of}."
    )
    return Slide(
        title="Why we are here: what's in it for each of us",
        section="objectives",
        bullets=bullets(*lines),
        notes=notes,
    )


def _agenda_slide(prep: dict[str, Any], as_of: str) -> Slide:
    total = sum(item["minutes"] for item in prep["agenda"])
    lines: list[str | tuple[str, int]] = []
    for item in prep["agenda"]:
        lines.append(f"{item['item']} ({item['minutes']} min)")
        lines.append((item["detail"], 1))
    when = f" on {prep['qbr']['date']}" if prep.get("qbr") else ""
    return Slide(
        title="Suggested agenda",
        section="agenda",
        subtitle=f"{total} minutes{when}",
        bullets=bullets(*lines),
        notes=(
            "Agenda built from this pack's sections: goals, value, risks, next milestones, then "
            f"growth and the renewal as separate items. Meeting date from the QBR record. As of {as_of}."
        ),
    )


def _health_slide(prep: dict[str, Any], spec: Any, as_of: str) -> Slide:
    health = prep["health"]
    trend = health["trend"]
    lines: list[str] = []
    if health["score"] is None:
        lines.append("Not enough fresh readings for a health score")
    else:
        lines.append(f"Health {health['score']}/100 ({health['band']}) on {health['day']}")
    if trend["delta_30d"] is not None:
        lines.append(f"{format_signed(trend['delta_30d'])} points in 30 days")
    if health["forecast"]["summary"]:
        lines.append(f"Forecast: {health['forecast']['summary']}")
    events = [e for e in spec.events if e.day <= spec.today]
    if events:
        lines.append(f"{len(events)} events on the chart: milestones done, escalations, QBRs")
    return Slide(
        title="Health over time",
        section="value",
        bullets=bullets(*lines),
        chart=spec,
        notes=f"Source: {spec.source}. Score and band: health snapshot of {health['day']}. As of {as_of}.",
    )


def _outcomes_slide(prep: dict[str, Any], plan_spec: Any, as_of: str) -> Slide:
    kpis = prep["kpis"]
    lines = [_kpi_line(k) for k in kpis] or ["No KPI targets in the success plan yet"]
    measured = [
        f"{k['kpi']}: current value from the KPI reading of {k['measured_on']}"
        for k in kpis
        if k.get("measured_on")
    ]
    notes = "Baselines and targets: the success plan's objectives. " + (
        "; ".join(measured) + ". " if measured else "No KPI readings recorded. "
    )
    if plan_spec is not None:
        notes += f"Chart: {plan_spec.source}. "
    return Slide(
        title="Outcomes against the targets we agreed",
        section="value",
        bullets=bullets(*lines),
        chart=plan_spec,
        notes=notes + f"As of {as_of}.",
    )


def _indicators_slide(prep: dict[str, Any], spec: Any, variant: Variant, as_of: str) -> Slide:
    def line(i: dict[str, Any]) -> str:
        unit = i["unit"] if i["unit"] in ("%", "") else f" {i['unit']}"
        if i["value"] is None:
            return f"{i['label']}: no fresh reading"
        return f"{i['label']}: {_amount(i['value'], unit)} ({i['band']})"

    lines: list[str | tuple[str, int]] = ["Leading (what comes next):"]
    lines += [(line(i), 1) for i in prep["leading"]]
    lines.append("Lagging (what already happened):")
    lines += [(line(i), 1) for i in prep["lagging"]]
    title = (
        "Adoption and the indicators behind health"
        if variant == "operational"
        else "Leading and lagging indicators"
    )
    return Slide(
        title=title,
        section="value",
        bullets=bullets(*lines),
        chart=spec,
        notes=f"Source: {spec.source}. Thresholds from the health model. As of {as_of}.",
    )


def _plan_slide(spec: Any, as_of: str) -> Slide:
    lines = [f"Baseline {_figure(spec.baseline)}, target {_figure(spec.target)} ({spec.kpi})"]
    for point in spec.planned:
        lines.append(
            f"{point.label}: {_figure(point.value)} by {point.day.isoformat()} "
            f"({point.status.replace('_', ' ')})"
        )
    if spec.actual:
        day, value = spec.actual[-1]
        lines.append(f"Measured {_figure(value)} on {day.isoformat()}")
    return Slide(
        title=f"Plan vs actual: {spec.objective}",
        section="value",
        bullets=bullets(*lines),
        chart=spec,
        notes=f"Hurdler chart. Source: {spec.source}. As of {as_of}.",
    )


def _milestones_slide(prep: dict[str, Any], variant: Variant, as_of: str) -> Slide:
    limit = 3 if variant == "executive" else 8
    lines: list[str | tuple[str, int]] = [f"Done in the last {DONE_WINDOW_DAYS} days:"]
    done = prep["milestones_done"][:limit]
    lines += [(f"{m['title']} ({m['completed_on']})", 1) for m in done] or [("None yet", 1)]
    lines.append("Next:")
    nxt = prep["milestones_next"][:limit]
    lines += [
        (
            f"{m['title']}: due {m['due_date']}, {m['status'].replace('_', ' ')}"
            + (" (overdue)" if m["overdue"] else ""),
            1,
        )
        for m in nxt
    ] or [("Agree the next milestones", 1)]
    return Slide(
        title="Milestones: done and next",
        section="milestones",
        bullets=bullets(*lines),
        notes=(
            f"Source: the success plan's milestones (completion dates of the last {DONE_WINDOW_DAYS} days; due "
            f"dates and statuses of the open ones). As of {as_of}."
        ),
    )


def _risks_slide(prep: dict[str, Any], as_of: str) -> Slide:
    items = prep.get("risk_items") or []
    lines: list[str | tuple[str, int]] = []
    for item in items:
        lines.append(item["risk"])
        lines.append((f"What we do: {item['action']}", 1))
    if not lines:
        lines = ["No material risks in the data: confirm that view with the room"]
    sources = "; ".join(f"{i['risk']}: {i['source']}" for i in items)
    return Slide(
        title="Risks and what we do about them",
        section="risks",
        bullets=bullets(*lines),
        notes=f"Sources: {sources or 'health snapshot, milestones, escalations'}. As of {as_of}.",
    )


def _renewal_slide(prep: dict[str, Any], as_of: str) -> Slide:
    renewal = prep["renewal"]
    if renewal is None:
        lines = ["No open renewal on record"]
        notes = f"No open renewal record for the account. As of {as_of}."
    else:
        days = renewal["days_left"]
        when = (
            f"Renews {renewal['date']} ({days_away(days)})"
            if days >= 0
            else f"Renewal date {renewal['date']} passed {days_away(days)}; still open on record"
        )
        lines = [
            f"{when}, {_money(renewal['arr'])} ARR",
            "Agree the success criteria the renewal decision rests on",
            "Agree the timeline and who decides",
            "Price and contract terms are not discussed here",
        ]
        if renewal["likelihood_pct"] is not None:
            lines.insert(1, f"Likelihood on record: {renewal['likelihood_pct']}%")
        notes = (
            f"Source: renewal record #{renewal.get('id')} (date, ARR, likelihood). A separate "
            f"discussion point from expansion. As of {as_of}."
        )
    return Slide(
        title="Renewal: success criteria and timeline",
        section="renewal",
        bullets=bullets(*lines),
        notes=notes,
    )


def _expansion_slide(prep: dict[str, Any], as_of: str) -> Slide:
    signal = prep["expansion_signal"]
    if signal:
        lines = [
            signal,
            "Agree who on their side to talk to, and when",
            "No pitch in the room: this is about where the team is outgrowing the plan",
        ]
    else:
        lines = [
            "No expansion signal in the data (active seats below 90% of the licence)",
            "Priority: the adoption and outcomes above",
        ]
    return Slide(
        title="Expansion: where the team is outgrowing the plan",
        section="expansion",
        bullets=bullets(*lines),
        notes=(
            "Rule: active seats at or above 90% of licensed seats (health model's expansion "
            f"signal), from the product usage reading in the health snapshot of "
            f"{prep['health']['day']}. A separate point from the renewal. As of {as_of}."
        ),
    )


def _leave_out_slide(prep: dict[str, Any]) -> Slide:
    return Slide(
        title="What we deliberately leave out of this review",
        section="leave_out",
        bullets=bullets(*prep["leave_out"]),
        notes=(
            "Troubleshooting goes to a support call, training to enablement sessions, commercial "
            "terms to the account team: the decision makers' hour is for outcomes."
        ),
    )


def build_outline(
    session: Session,
    account: Account,
    *,
    ctx: ChatContext,
    models: HealthModels,
    variant: Variant = "executive",
) -> Outline:
    """The pack's outline for an account the caller has already resolved (and may see)."""
    if variant not in VARIANTS:
        raise ValidationFailed({"variant": f"use one of {', '.join(VARIANTS)}"})
    prep_reply = qbr_prep(session, ctx=ctx, models=models, account_id=account.id)
    prep = prep_reply.context
    as_of = ctx.today.isoformat()
    model = models.for_segment(account.segment)
    health = health_context(session, account, models=models, today=ctx.today)
    trend = health_trend_spec(session, account, models=models, today=ctx.today)
    indicators = indicators_spec(prep["account"], health, model)
    plans = milestone_plan_specs(session, account, today=ctx.today)

    slides: list[Slide] = [_wiifm_slide(prep, variant, as_of), _agenda_slide(prep, as_of)]
    if variant == "executive":
        slides += [
            _outcomes_slide(prep, plans[0] if plans else None, as_of),
            _health_slide(prep, trend, as_of),
            _indicators_slide(prep, indicators, variant, as_of),
        ]
    else:
        slides += [
            _indicators_slide(prep, indicators, variant, as_of),
            _health_slide(prep, trend, as_of),
            _outcomes_slide(prep, None, as_of),
            *(_plan_slide(spec, as_of) for spec in plans),
        ]
    slides += [
        _milestones_slide(prep, variant, as_of),
        _risks_slide(prep, as_of),
        _renewal_slide(prep, as_of),
        _expansion_slide(prep, as_of),
        _leave_out_slide(prep),
    ]
    owner = (prep["account"].get("owner") or {}).get("name")
    when = prep["qbr"]["date"] if prep.get("qbr") else as_of
    label = "Executive business review" if variant == "executive" else "Operational review"
    return Outline(
        title=f"{account.name}: {label}",
        subtitle=f"{when}" + (f" · prepared by {owner}" if owner else ""),
        slides=tuple(slides),
        notes=(
            f"Draft built by CSM Assistant from the account's data as of {as_of}: health "
            "snapshots, success plan and KPI readings, milestones, risks, renewal. Check it, "
            "then make it yours."
        ),
    )


def build_pack(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    query: str | None = None,
    account_id: int | None = None,
    variant: Variant = "executive",
    fmt: Format = "pptx",
) -> PackFile | Reply:
    """The pack as a file, or the Reply to send instead (unknown account, not allowed here)."""
    from decks.markdown import render_markdown
    from decks.pptx_deck import render_pptx

    found = resolve_account(session, ctx=ctx, intent="qbr_prep", query=query, account_id=account_id)
    if isinstance(found, Reply):
        return found
    outline = build_outline(session, found, ctx=ctx, models=models, variant=variant)
    stem = f"{_slug(found.name)}-qbr-{variant}-{ctx.today.isoformat()}"
    summary = f"{outline.title}: {len(outline.slides) + 1} slides, {len(outline.charts())} charts"
    if fmt == "md":
        text = render_markdown(outline).text.encode("utf-8")
        return PackFile(f"{stem}.md", text, "text/markdown", outline.title, summary)
    return PackFile(f"{stem}.pptx", render_pptx(outline), PPTX_MIME, outline.title, summary)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "account"


def with_pack(reply: Reply, *, variant: Variant, today: date) -> Reply:
    """A QBR prep reply with the draft pack attached (built after the reply has been sent)."""
    account = reply.context.get("account") if reply.template == "qbr_prep" else None
    if not account or not account.get("id"):
        return reply
    label = "executive" if variant == "executive" else "operational"
    pack = Attachment(
        kind="qbr_pack",
        title=f"{account['name']} QBR pack ({label}, draft)",
        data={"account_id": account["id"], "variant": variant, "today": today.isoformat()},
    )
    return replace(reply, attachments=(*reply.attachments, pack))

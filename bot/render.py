"""Renders a Reply with a platform's Jinja2 templates: plain text, Slack Block Kit JSON or an Adaptive Card."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound

from domain.numbers import SCORE_DIGITS, days_away, format_signed
from handlers.reply import Reply

Flavour = Literal["text", "slack", "teams"]
_SUFFIX = {"text": ".txt.j2", "slack": ".json.j2", "teams": ".json.j2"}

_MRKDWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def mrkdwn_escape(value: object) -> str:
    """Escape text from users or data for Slack mrkdwn, so it cannot ping @channel or forge links."""
    return "" if value is None else str(value).translate(_MRKDWN_ESCAPES)


def truncate(value: object, limit: int, ellipsis: str = "…") -> str:
    """Cut text to a platform limit, keeping room for the ellipsis."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: max(0, limit - len(ellipsis))] + ellipsis


def money(value: float | int | None) -> str:
    """ARR as people say it: $1.2M, $85k, $900."""
    if value is None:
        return "—"
    v = float(value)
    if abs(v) >= 1_000_000:
        return f"${v / 1_000_000:.1f}M"
    if abs(v) >= 1_000:
        return f"${v / 1_000:.0f}k"
    return f"${v:.0f}"


def signed(value: float | int | None, digits: int = SCORE_DIGITS) -> str:
    """A score change with its sign and one decimal, rounded half away from zero: +3.0, −16.5,
    ±0 (domain.numbers, the one rule every surface prints health numbers by)."""
    return format_signed(None if value is None else float(value), digits)


@lru_cache(maxsize=3)
def environment(flavour: Flavour) -> Environment:
    """One Jinja2 environment per flavour; JSON templates pass every value through |tojson."""
    env = Environment(
        loader=PackageLoader("templates", flavour),
        autoescape=False,  # JSON and text: escaping is explicit (|tojson, |mrkdwn), never HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # templates ship with the package; no stat() per render
    )
    env.filters["mrkdwn"] = mrkdwn_escape
    env.filters["truncate_to"] = truncate
    env.filters["money"] = money
    env.filters["signed"] = signed
    env.filters["days_away"] = days_away
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    # Teams templates cut their lists to cap(n); the card renderer lowers it until a message fits.
    env.globals["cap"] = _no_cap
    # Set by the Teams card renderer when someone gets a per-person view of a shared card.
    env.globals["audience"] = False
    return env


def _no_cap(n: int) -> int:
    return n


def render_text(reply: Reply) -> str:
    """The console / notification text of a Reply (falls back to reply.text without a template)."""
    try:
        template = environment("text").get_template(reply.template + _SUFFIX["text"])
    except TemplateNotFound:
        return reply.text
    return template.render(**reply.context).strip()


def understood_parts(flavour: Literal["slack", "teams"], context: Any) -> list[dict[str, Any]]:
    """The blocks that open an answer: what was understood, and what was not applied.

    From ``_understood`` in each flavour; every answer's context may carry ``understood`` (its
    first line) and ``not_applied`` (the constraints it recognised but could not use).
    """
    if not isinstance(context, dict):
        return []
    line = context.get("understood")
    notes = context.get("not_applied") or []
    if not line and not notes:
        return []
    rendered = render_json(flavour, "_understood", {"understood": line, "not_applied": notes})
    return list(rendered["blocks" if flavour == "slack" else "body"])


def render_json(flavour: Literal["slack", "teams"], template: str, context: dict[str, Any]) -> Any:
    """Render a JSON template and parse it, so a template that produces invalid JSON fails loudly."""
    rendered = environment(flavour).get_template(template + _SUFFIX[flavour]).render(**context)
    return json.loads(rendered)

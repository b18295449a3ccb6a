"""Follow-ups in a thread: "and its renewal?", "what about Globex?", "show the plan" use the last turn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from domain.accounts_index import Candidate, Resolution
from domain.nlu.parser import ParseResult
from domain.nlu.timewindow import TimeWindow


def apply_followup(current: ParseResult, previous: Mapping[str, Any] | None) -> ParseResult:
    """Fill what a follow-up leaves out from the previous turn of the same thread.

    ``previous`` is ``{"intent", "account_id", "account_name", "entities"}`` as the caller stored it
    after the last turn. Only a message the parser marked as a follow-up borrows anything; the new
    message's own words always win.
    """
    if not previous or not current.followup:
        return current
    prev_intent = previous.get("intent")
    prev_id = previous.get("account_id")
    prev_name = previous.get("account_name")
    prev_entities = previous.get("entities") or {}

    intent = current.intent
    account = current.account
    account_text = current.account_text
    changes: dict[str, Any] = {}

    if intent is None or (current.inferred and account is not None):
        # "what about Globex?" / "and?": the question of the last turn, about what is named now.
        intent = prev_intent
    # "what about Marco's?" after a portfolio question is about Marco's book, not the last account.
    if account is None and prev_id and current.owner is None:
        name = str(prev_name) if prev_name else str(prev_id)
        account = Resolution(
            "exact", name, int(prev_id), name, (Candidate(int(prev_id), name, 100.0),)
        )
        account_text = None
    if intent is None:
        return current

    # Same question again with a different account or person: keep the window, owner and band
    # the last turn used unless this message sets its own.
    if intent == prev_intent and isinstance(prev_entities, Mapping):
        if current.window is None or _is_default(current):
            window = _window(prev_entities.get("window"))
            if window is not None:
                changes["window"] = window
        for key in ("owner", "band", "severity"):
            if getattr(current, key) is None and prev_entities.get(key) is not None:
                changes[key] = prev_entities[key]

    return replace(
        current,
        intent=intent,
        account=account,
        account_text=account_text,
        confidence=max(current.confidence, 0.7),
        inferred=False,
        **changes,
    )


def _is_default(current: ParseResult) -> bool:
    # The parser gives renewal questions a default window; a borrowed explicit one is better.
    return (
        current.window is not None
        and current.window.label == "next 90 days"
        and ("90" not in current.text)
    )


def _window(data: Any) -> TimeWindow | None:
    if isinstance(data, TimeWindow):
        return data
    if not isinstance(data, Mapping):
        return None
    try:
        return TimeWindow(
            date.fromisoformat(str(data["start"])),
            date.fromisoformat(str(data["end"])),
            str(data.get("label", "")),
        )
    except (KeyError, ValueError):
        return None

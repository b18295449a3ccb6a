"""The parser: a CSM's chat message in, a structured question out (intent plus every constraint stated)."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import Any, Literal

from rapidfuzz import fuzz

from domain.accounts_index import (
    GENERIC_WORDS,
    AccountIndex,
    Candidate,
    Mention,
    Prefer,
    Resolution,
    fold,
    is_title_case,
)
from domain.nlu.entities import (
    Action,
    Amount,
    Order,
    find_action,
    find_amount,
    find_band,
    find_escalation_id,
    find_metrics,
    find_order,
    find_scope,
    find_segment,
)
from domain.nlu.intent_model import IntentModel, default_model, features
from domain.nlu.lexicon import (
    ACCOUNT_INTENTS,
    CHART_PHRASES,
    CHART_WORDS,
    CONFUSED_WORDS,
    FOLLOWUP_OPENERS,
    GREETING_WORDS,
    KNOWN_WORDS,
    MAP_WORDS,
    PAST_INTENTS,
    PHRASE_CUES,
    REFERENCE_PHRASES,
    REFERENCE_WORDS,
    SEVERITY_WORDS,
    SLANG,
    WORD_CUES,
    is_chat_word,
    repair,
)
from domain.nlu.ordinary import is_ordinary, is_trade_word, word_set
from domain.nlu.timewindow import TimeWindow, parse_window

log = logging.getLogger(__name__)

INTENTS: tuple[str, ...] = (
    "account_health",
    "success_plan",
    "milestones_overdue",
    "renewals_upcoming",
    "portfolio_at_risk",
    "my_accounts",
    "account_changes",
    "qbr_prep",
    "escalate",
    "help",
    "metrics",
    "explain_health",
    "compare_accounts",
    "milestones_due",
    "expansion_signals",
    "focus_today",
    "unknown",
)

# Slash commands (and "/csm <word>"): the command fixes the intent; the rest is read for entities.
COMMANDS: dict[str, str] = {
    "health": "account_health",
    "status": "account_health",
    "plan": "success_plan",
    "plans": "success_plan",
    "overdue": "milestones_overdue",
    "renewals": "renewals_upcoming",
    "renewal": "renewals_upcoming",
    "renew": "renewals_upcoming",
    "risks": "portfolio_at_risk",
    "risk": "portfolio_at_risk",
    "atrisk": "portfolio_at_risk",
    "accounts": "my_accounts",
    "mine": "my_accounts",
    "portfolio": "my_accounts",
    "changes": "account_changes",
    "changed": "account_changes",
    "qbr": "qbr_prep",
    "escalate": "escalate",
    "escalation": "escalate",
    "help": "help",
    "metrics": "metrics",
    "metric": "metrics",
    "why": "explain_health",
    "explain": "explain_health",
    "compare": "compare_accounts",
    "due": "milestones_due",
    "milestones": "milestones_due",
    "expansion": "expansion_signals",
    "upsell": "expansion_signals",
    "focus": "focus_today",
    "today": "focus_today",
}

# Emoji CSMs actually use, as the words they stand for.
EMOJI_WORDS: dict[str, str] = {
    "🔥": " fire ",
    "🚨": " urgent ",
    "⚠️": " risk ",
    "⚠": " risk ",
    "🆘": " help ",
    "👋": " hi ",
    "❓": " ? ",
    "❔": " ? ",
    "😬": " worried ",
    "😟": " worried ",
    "😰": " worried ",
    "📉": " drop ",
    "📈": " growth ",
    "🔴": " red ",
    "🟠": " amber ",
    "🟡": " amber ",
    "🟢": " green ",
}
_EMOJI_RE = re.compile("|".join(re.escape(e) for e in sorted(EMOJI_WORDS, key=len, reverse=True)))
_COMMAND_RE = re.compile(r"^\s*/(?:csm\s+)?([a-z_-]+)\b", re.IGNORECASE)
_CSM_PREFIX_RE = re.compile(r"^\s*/csm\b\s*", re.IGNORECASE)
# "sev1", "sev 2", "severity-3", "p1", "s2" (a lone s/p must touch its digit: "what's 3 weeks").
_SEVERITY_RE = re.compile(
    r"\b(?:(?:sev|severity|priority)\s*[-:#]?\s*|[sp])([1-3])\b", re.IGNORECASE
)
_WINDOW_TEXT_RE = re.compile(r"[^0-9a-z/\- ]+")
_TITLE_STRIP_RE = re.compile(r"^[\s,.:;!?\-–—]*(?:(?:about|re|because|for|with)\b)?[\s,.:;\-–—]*")
_SLACK_REF_RE = re.compile(r"<[@!][^>]*>")  # user mentions, @here: never an account
_SLACK_CHANNEL_RE = re.compile(r"<#[A-Z0-9]+\|([^>]*)>|<#[A-Z0-9]+>")
_SLACK_LINK_RE = re.compile(r"<(?:https?|mailto):[^|>]*(?:\|([^>]*))?>")
_TEAMS_AT_RE = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_FORMAT_RE = re.compile(r"[*_~`]+")
_BARE_DAYS_RE = re.compile(
    r"\b(?:renewals?|renewing|renew|in|next|within)\s+(?:the\s+next\s+)?(\d{1,4})\s*(?:d|days?)?\b"
)
# When a meeting or call is, not what the question asks about: "after last week's call", "before
# my meeting with the Nakatomi team tomorrow, ...", "ahead of the exec sync on friday".
_EVENTS = (
    r"(?:meeting|call|sync|1:1|one[- ]on[- ]one|catch[- ]?up|chat|conversation|demo|session"
    r"|workshop|standup|stand-up|check[- ]?in|visit|onsite)s?"
)
_EVENT_TIME_RE = re.compile(
    r"\b(?:today|tonight|tomorrow|yesterday|(?:this|last|next)\s+(?:week|month)"
    r"|monday|tuesday|wednesday|thursday|friday)['’`]s\s+(?:[\w-]+\s+)?" + _EVENTS + r"\b"
    r"|\b(?:before|after|ahead\s+of|for|during|since)\s+(?:my|our|the|a|an|this|that|their)\s+"
    r"(?:[\w-]+\s+){0,2}?" + _EVENTS + r"\b[^,.;!?]*",
    re.IGNORECASE,
)
_MONEY_TOKEN_RE = re.compile(r"^\d+(?:\.\d+)?(?:k|m|mm)$")
_HOLIDAYS = {
    "christmas eve": "dec 24",
    "christmas": "dec 25",
    "xmas": "dec 25",
    "new years eve": "dec 31",
    "new year s eve": "dec 31",
    "new years": "jan 1",
    "new year": "jan 1",
}
_HOLIDAYS_RE = re.compile(r"\b(?:" + "|".join(sorted(_HOLIDAYS, key=len, reverse=True)) + r")\b")
# Longer messages are cut: nobody asks a question in a novel, and parsing stays fast.
_MAX_CHARS = 2000
# Below this probability the best intent is a guess: say so ("unknown") rather than answer it.
UNKNOWN_BELOW = 0.4

Band = Literal["red", "amber", "green", "at_risk"]
Severity = Literal["sev1", "sev2", "sev3"]


@dataclass(frozen=True)
class ParseResult:
    """A structured question: the intent, and every constraint the message states.

    ``window`` is the window the message states (None when it names none: the handler applies
    its default and says so). ``account`` is the first account mention, ``accounts`` all of them.
    ``owner`` is whose book: "me", "team", "all" or a person's first name.
    """

    text: str
    intent: str | None
    confidence: float
    account: Resolution | None
    account_text: str | None
    window: TimeWindow | None
    owner: str | None
    band: Band | None
    severity: Severity | None
    followup: bool
    # Extensions beyond the first contract (all defaulted):
    title: str | None = None  # escalation title: the words after account and severity
    inferred: bool = False  # intent guessed (account alone -> health), not stated by a cue
    accounts: tuple[Mention, ...] = ()
    amount: Amount | None = None
    segment: str | None = None
    order: Order | None = None
    metric: str | None = None
    metrics: tuple[str, ...] = ()
    action: Action | None = None
    escalation_id: int | None = None
    # "chart": draw this answer ("/health acme chart", "acme's trend"); "map": the health map.
    chart: Literal["chart", "map"] | None = None
    scores: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def scope(self) -> str | None:
        """mine | team | all | person:<First name>, as the question states it."""
        if self.owner is None:
            return None
        if self.owner == "me":
            return "mine"
        if self.owner in ("team", "all"):
            return self.owner
        return f"person:{self.owner}"

    @property
    def resolved_accounts(self) -> list[Resolution]:
        """The mentions that name exactly one account, in order, without repeats."""
        seen: set[int] = set()
        out: list[Resolution] = []
        for mention in self.accounts:
            res = mention.resolution
            if res.account_id is not None and res.account_id not in seen:
                seen.add(res.account_id)
                out.append(res)
        return out

    def entities(self) -> dict[str, Any]:
        """JSON-ready entities: account, window, owner, band, severity, and the rest stated."""
        window = None
        if self.window is not None:
            window = {
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
                "label": self.window.label,
            }
        return {
            "account": _resolution_json(self.account),
            "window": window,
            "owner": self.owner,
            "band": self.band,
            "severity": self.severity,
        }

    def question(self) -> dict[str, Any]:
        """The whole structured question, JSON-ready (``csm-bot ask --json``)."""
        data = self.entities()
        data.update(
            {
                "intent": self.intent or "unknown",
                "confidence": self.confidence,
                "accounts": [
                    {**(_resolution_json(m.resolution) or {}), "text": m.text, "weak": m.weak}
                    for m in self.accounts
                ],
                "scope": self.scope,
                "amount": None
                if self.amount is None
                else {"op": self.amount.op, "value": self.amount.value, "label": self.amount.label},
                "segment": self.segment,
                "sort": None
                if self.order is None or self.order.key is None
                else {"key": self.order.key, "descending": self.order.descending},
                "limit": None if self.order is None else self.order.limit,
                "metric": self.metric,
                "action": None
                if self.action is None
                else {
                    "kind": self.action.kind,
                    "target_id": self.action.target_id,
                    "target_words": self.action.target_words,
                    "status": self.action.status,
                },
                "escalation_id": self.escalation_id,
                "title": self.title,
                "chart": self.chart,
                "followup": self.followup,
            }
        )
        return data


def _resolution_json(res: Resolution | None) -> dict[str, Any] | None:
    if res is None:
        return None
    return {
        "status": res.status,
        "query": res.query,
        "id": res.account_id,
        "name": res.name,
        "candidates": [{"id": c.id, "name": c.name, "score": c.score} for c in res.candidates],
    }


def _empty(text: str, intent: str | None = None, confidence: float = 0.0) -> ParseResult:
    return ParseResult(text, intent, confidence, None, None, None, None, None, None, False)


def parse(
    text: str,
    *,
    index: AccountIndex,
    today: date,
    people: Iterable[str] = (),
    prefer: Prefer | None = None,
    model: IntentModel | None = None,
) -> ParseResult:
    """Understand one message. Never raises: anything unreadable comes back as "unknown".

    Conventions the callers rely on:
    - ``window`` is only what the message states; renewal questions without one get the next
      90 days from the handler (``DEFAULT_RENEWAL_DAYS``), which says so.
    - "before March 31" ends on March 30, "by"/"until March 31" on March 31; "before end of
      March", "by Q2" run to the end of that period (the next one, if this year's is over).
    - band: "red" | "amber" | "green" | "at_risk" (red and amber, "at risk").
    - owner: a known person's first name (from ``people``) > "all" > "team" > "me".
    - An account on its own ("globex?") means its health, with ``inferred=True``.
    - ``followup`` marks messages that need the previous turn (see ``apply_followup``).
    - ``prefer`` ranks ids first among the choices of an ambiguous name.
    """
    raw = text if isinstance(text, str) else ""
    try:
        return _parse(raw, index, today, people, prefer or {}, model or default_model())
    except Exception:  # the chat must answer with help, not a stack trace
        log.exception("parse failed for %r", raw[:200])
        return _empty(raw, "unknown")


def _people_map(people: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for person in people:
        words = fold(person).split()
        if words:
            first = person.split()[0]
            out[words[0]] = first[:1].upper() + first[1:]
    return out


def clean(text: str) -> str:
    """Chat markup out: Slack <@U1>/<#C1|name>/<!here>/<url|label>, Teams <at>Bot</at>, &amp;, *bold*."""
    text = _TEAMS_AT_RE.sub(" ", text)
    text = _SLACK_LINK_RE.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _SLACK_CHANNEL_RE.sub(lambda m: f" {(m.group(1) or '').replace('-', ' ')} ", text)
    text = _SLACK_REF_RE.sub(" ", text)
    text = html.unescape(text)
    text = re.sub(r"^\s*(?:>|&gt;)+\s*", "", text)  # a quoted line
    text = re.sub(r"(?<![\w/])@[\w.-]+", " ", text)  # "@csm-bot" typed as plain text
    return _FORMAT_RE.sub(" ", text)


@dataclass
class _Reading:
    """Everything read off a message before the intent is decided."""

    text: str
    rest: str
    lowered: str
    words: list[str]
    joined: str
    emoji_words: list[str]
    names: dict[str, str]
    command: str | None
    mentions: list[Mention]
    band: str | None
    severity: Severity | None
    owner: str | None
    window_text: str
    future_window: TimeWindow | None
    past_window: TimeWindow | None
    amount: Amount | None
    metrics: tuple[str, ...]
    segment: str | None
    order: Order | None
    action: Action | None
    escalation_id: int | None
    chart: Literal["chart", "map"] | None
    features: list[str]
    cue_scores: dict[str, float]


def intent_features(
    text: str, *, index: AccountIndex, today: date, people: Iterable[str] = ()
) -> list[str] | None:
    """The classifier's features for a message (None when there is nothing to classify)."""
    reading = _read(clean(text[:_MAX_CHARS]), index, today, _people_map(people), {})
    return None if reading is None else reading.features


def _read(
    text: str, index: AccountIndex, today: date, names: dict[str, str], prefer: Prefer
) -> _Reading | None:
    emoji_words = [EMOJI_WORDS[e].strip() for e in _EMOJI_RE.findall(text)]
    text = _EMOJI_RE.sub(" ", text)
    if not text.strip():
        return None

    command: str | None = None
    if m := _COMMAND_RE.match(text):
        command = COMMANDS.get(m.group(1).lower())
        if m.group(1).lower() == "csm" or (command is None and _CSM_PREFIX_RE.match(text)):
            text = _CSM_PREFIX_RE.sub("", text)
            if not text.strip():
                command = "help"
            elif m2 := re.match(r"^\s*([a-z_-]+)\b", text, re.IGNORECASE):
                command = COMMANDS.get(m2.group(1).lower())
        if command is not None:
            text = re.sub(r"^\s*/", "", text)
            # The command word itself is not part of an account name ("/plan acme").
            text = re.sub(r"^\s*[a-z_-]+", lambda c: " " * len(c.group(0)), text, count=1)

    def ignore(word: str) -> bool:
        if word in names or word in KNOWN_WORDS or word in SLANG:
            return True
        fixed = repair(word)
        # A typo of a chat word ("helth") - unless it is even closer to a name word
        # ("prseware" is nearer Proseware than "prepare").
        return fixed != word and fuzz.ratio(word, fixed) >= index.name_word_similarity(word)

    mentions = index.find_mentions(text, ignore=ignore, prefer=prefer)
    rest = _masked(text, mentions)
    lowered = rest.lower()
    folded_rest = fold(_possessive_free(lowered))
    words = [_normalise_word(w) for w in folded_rest.split()]
    words = [w for phrase in words for w in phrase.split()]
    joined = f" {' '.join(words)} "

    band = find_band(joined) or _emoji_band(emoji_words)
    severity = _severity(lowered, words)
    owner = find_scope(joined, names, names_account=bool(mentions))
    window_text = _EVENT_TIME_RE.sub(" ", lowered)
    window_text = " ".join(_WINDOW_TEXT_RE.sub(" ", _possessive_free(window_text)).split())
    window_text = " ".join(SLANG.get(w, w) for w in window_text.split())
    window_text = _HOLIDAYS_RE.sub(lambda h: _HOLIDAYS[h.group(0)], window_text)
    future_window = parse_window(window_text, today)
    past_window = parse_window(window_text, today, past=True)
    amount = find_amount(_possessive_free(lowered))
    metrics = tuple(find_metrics(joined))
    segment = find_segment(joined)
    order = find_order(joined)
    action = find_action(" ".join(lowered.replace("acct", " ").split()))
    escalation_id = find_escalation_id(lowered)
    chart: Literal["chart", "map"] | None = None
    if any(w in MAP_WORDS for w in words):
        chart = "map"
    elif any(w in CHART_WORDS for w in words) or any(p in " ".join(words) for p in CHART_PHRASES):
        chart = "chart"  # "how has acme's health changed over time"

    tokens = _model_tokens(words, names)
    # The sentence's shape, with words the lexicon does not know as UNK: "how's UNK doing" is an
    # account question whatever the (misspelled, unknown) name, "order UNK UNK" is not ours.
    shape = ["<s>", *(t if t.isupper() or t in KNOWN_WORDS else "UNK" for t in tokens), "</s>"]
    shape_features = [f"s:{a}_{b}" for a, b in pairwise(shape) if "UNK" in (a, b)]
    extras = shape_features + _extras(
        mentions,
        tokens,
        future_window,
        band,
        amount,
        metrics,
        owner,
        segment,
        order,
        action,
        escalation_id,
        severity,
        "?" in text or "?" in emoji_words,
    )
    cue_scores = _cue_scores(words, emoji_words, joined)
    # The lexicon's cues as features: words it knows but the paraphrases never used still count.
    for intent, score in cue_scores.items():
        if score >= 2.0:
            extras.append(f"cue:{intent}")
        if score >= 4.0:
            extras.append(f"cue:{intent}:strong")
    return _Reading(
        text=text,
        rest=rest,
        lowered=lowered,
        words=words,
        joined=joined,
        emoji_words=emoji_words,
        names=names,
        command=command,
        mentions=mentions,
        band=band,
        severity=severity,
        owner=owner,
        window_text=window_text,
        future_window=future_window,
        past_window=past_window,
        amount=amount,
        metrics=metrics,
        segment=segment,
        order=order,
        action=action,
        escalation_id=escalation_id,
        chart=chart,
        features=features(tokens, extras),
        cue_scores=cue_scores,
    )


def _parse(
    original: str,
    index: AccountIndex,
    today: date,
    people: Iterable[str],
    prefer: Prefer,
    model: IntentModel | None,
) -> ParseResult:
    text = clean(original[:_MAX_CHARS])
    stripped = _EMOJI_RE.sub(" ", text).strip()
    if not stripped:
        if "?" in (EMOJI_WORDS[e].strip() for e in _EMOJI_RE.findall(text)):
            return _empty(original, "help", 0.6)
        return _empty(original, "unknown")
    if stripped.strip("?") == "" and "?" in stripped:
        return _empty(original, "help", 0.6)  # a bare "?" is "what can you do?"
    reading = _read(text, index, today, _people_map(people), prefer)
    if reading is None:
        return _empty(original, "unknown")
    text, rest, words, joined = reading.text, reading.rest, reading.words, reading.joined
    names, command, mentions = reading.names, reading.command, reading.mentions
    band, severity, owner = reading.band, reading.severity, reading.owner
    future_window, past_window = reading.future_window, reading.past_window
    amount, metrics, segment, order = (
        reading.amount,
        reading.metrics,
        reading.segment,
        reading.order,
    )
    action, escalation_id, chart = reading.action, reading.escalation_id, reading.chart
    cue_scores = reading.cue_scores
    intent, confidence, inferred = _decide(
        command, model, reading.features, cue_scores, mentions, action, escalation_id, words
    )

    if intent == "unknown" and command is None and not mentions and len(words) <= 5:
        # "how's quintex", "is quintex in trouble": a short question about a name we do not
        # have. The classifier has never seen the word; when the lexicon agrees that it asks how
        # an account is doing and the word sits where that question puts a name, it is that.
        agreed = [i for i in _ranked(model, reading.features)[:2] if cue_scores.get(i, 0.0) > 0]
        slot = None
        if agreed and agreed[0] in ("account_health", "portfolio_at_risk"):
            slot = _slot_name(rest, names, index, comparing=False)
        # Only words of ours around it: "how fast does bamboo grow" is not about an account.
        if slot is not None and all(
            w in KNOWN_WORDS or w in SLANG for w in words if w not in fold(slot[0]).split()
        ):
            intent, confidence, inferred = "account_health", 0.5, True

    folded = fold(text)
    opener = folded.startswith(tuple(o.strip() + " " for o in FOLLOWUP_OPENERS)) or (
        folded in {o.strip() for o in FOLLOWUP_OPENERS}
    )
    if opener and command is None and not _has_cue(cue_scores):
        # "and?", "and for marco?", "what about zorblax?": the question of the last turn.
        resolved = [m for m in mentions if m.resolution.account_id is not None]
        if resolved:
            intent, confidence, inferred = "account_health", 0.5, True
        else:
            intent, confidence, inferred = None, 0.0, False
    if (
        intent in (None, "unknown")
        and words
        and not mentions
        and not opener
        and (
            all(w in GREETING_WORDS or w in ("good", "there", "again") for w in words)
            or all(w in CONFUSED_WORDS for w in words)
        )
    ):
        intent, confidence = "help", 0.6  # "hi", "good morning", "huh?": show what it can do

    if (
        chart == "map"
        and not mentions
        and intent
        in (
            None,
            "unknown",
            "account_health",
            "portfolio_at_risk",
            "my_accounts",
        )
    ):
        # "health map", "risk map": the portfolio drawn, not one account's health.
        intent, confidence = "my_accounts", max(confidence, 0.7)
    # A question that merely contains a name word ("order more coffee") is not about that
    # account; one that names an account outright keeps it, even when we cannot help.
    if command is None and intent == "metrics" and amount is not None and set(metrics) <= {"arr"}:
        # "every account with ARR under 20k": ARR with a threshold filters a list; a metrics
        # question asks for the figure, it does not bound it.
        intent = _runner_up(model, reading.features, "metrics")
    if (
        command is None
        and intent == "compare_accounts"
        and any(m != "arr" for m in metrics)
        and cue_scores.get("compare_accounts", 0.0) < 5.0
    ):
        # "CSAT of Hooli and Stark?": a metric for two accounts, not their health side by side
        # (unless asked to compare: "compare acme and globex on NPS").
        intent = "metrics"
    if (
        command is None
        and intent not in ("escalate", None)
        and _ESCALATE_VERB_RE.match(folded) is not None
        and not _is_escalation_question(joined)
    ):
        # "Escalate Nakatomi to Alex, their renewal is in days": the verb leading the message
        # says what to do; whatever follows is the reason, not another question.
        intent, confidence, inferred = "escalate", max(confidence, 0.9), False
    if intent == "unknown":
        # A lone lower-case alias ("what does 'stark' mean") is a word here, not the account.
        mentions = [
            m
            for m in mentions
            if not m.weak
            and m.resolution.status in ("exact", "alias")
            and (m.text[:1].isupper() or len(m.text.split()) > 1 or m.resolution.status == "exact")
        ]
    if command is None and intent not in ("help", None) and _HOW_TO_ASK_RE.search(joined):
        # "how should I phrase a question about escalations": about asking, not escalations.
        intent, confidence, inferred = "help", max(confidence, 0.8), False
    if intent in ("unknown", "help"):
        # Nothing we answer with a list: the words it contains are not constraints of a
        # question of ours ("I'm new to the team", "how do I use you in Teams"). A severity
        # stays: on its own ("sev1") it answers a pending escalation draft's "how bad is it?".
        band = owner = None
        future_window = past_window = None
        amount, metrics, segment, order, chart = None, (), None, None, None
    if intent == "escalate" and mentions and not _is_escalation_question(joined):
        # Raising one: what follows the account is the escalation's story ("their renewal is in
        # a few days", "to Alex", "threatening to churn"), not a filter of a list.
        band = owner = None
        future_window = past_window = None
        amount, metrics, segment, order = None, (), None, None
    if intent == "focus_today" and owner == "me":
        owner = None  # the worklist is always the asker's own: "my" adds nothing to it
    window = past_window if intent in PAST_INTENTS else future_window
    if (
        intent == "renewals_upcoming"
        and window is None
        and (m := _BARE_DAYS_RE.search(reading.window_text))
    ):
        # "renewals 60", "renewals in 60", "renewals next 60d": a bare number means days.
        window = parse_window(f"next {m.group(1)} days", today)
    if (
        command == "renewals_upcoming"
        and window is None
        and (m := re.fullmatch(r"\s*(\d{1,4})\s*", rest))
    ):
        window = parse_window(f"next {m.group(1)} days", today)

    account = mentions[0].resolution if mentions else None
    account_text = mentions[0].text if mentions else None

    # A one-account question that names no account leans on the previous turn, and so does one
    # that opens like a follow-up ("and ...", "what about ...") or points back ("its renewal").
    refers = any(w in REFERENCE_WORDS for w in words) or any(
        f" {phrase} " in joined for phrase in REFERENCE_PHRASES
    )
    followup = False
    needs_account = intent in ACCOUNT_INTENTS or intent == "compare_accounts"
    if intent == "qbr_prep" and (window is not None or owner is not None or "qbrs" in words):
        needs_account = False  # "which QBRs are coming up": a list, not one account's prep
    if intent == "escalate" and (escalation_id is not None or _is_escalation_question(joined)):
        needs_account = False
    if intent not in ("help", "unknown"):
        comparing = intent == "compare_accounts" or cue_scores.get("compare_accounts", 0) >= 5
        proper = None
        if intent in NAMED_INTENTS and (account is None or (comparing and len(mentions) == 1)):
            proper = _proper_name(rest, names, index, any_lead=intent in ACCOUNT_INTENTS)
        # "their" and "it" point at the name written in the same message, not the last turn.
        if proper is not None:
            if comparing:
                intent = "compare_accounts"  # "compare Dinoco and Acme": two names, one unknown
            # A company written as a name that we do not have ("NPS for Duff Beer?", "compare
            # Dinoco and Acme"): say so with "did you mean", rather than answer for the book.
            name, before = proper
            resolution = index.resolve(name, prefer=prefer)
            if resolution.account_id is None:
                resolution = Resolution("none", name, None, None, resolution.candidates)
                mentions = list(mentions)
                mentions.insert(before, Mention(resolution, name, -1, -1))
                account, account_text = mentions[0].resolution, mentions[0].text
        slot = None
        if (
            proper is None
            and intent in _SLOT_INTENTS
            and (account is None or (comparing and len(mentions) == 1))
        ):
            slot = _slot_name(rest, names, index, comparing=comparing, command=command is not None)
        if slot is not None:
            # The same in lower case: a word nobody knows where the name goes ("when's zorgtech
            # up for renewal", "acme vs quintex") is an account we do not have, not the book.
            # Even when a looser lookup would take it ("acm" for Acme), the reader passed it
            # over: offer that account as "did you mean" rather than answer for it.
            name, before = slot
            found = index.resolve(name, prefer=prefer)
            if comparing:
                intent = "compare_accounts"
            elif intent == "portfolio_at_risk":
                intent = "account_health"  # "is quintex at risk?": about that one account
            status = "ambiguous" if found.status == "ambiguous" else "none"
            resolution = Resolution(status, name, None, None, found.candidates)
            mentions = list(mentions)
            mentions.insert(before, Mention(resolution, name, -1, -1))
            account, account_text = mentions[0].resolution, mentions[0].text
        if account is None and (needs_account or (intent is None and opener)):
            # Escalations are often about "the outage" rather than a name: only the command
            # form is sure to name an account.
            guess = intent != "escalate" or command == "escalate"
            unknown = None if refers or not guess else _unknown_run(rest, names)
            if unknown:
                # An unknown name: answer with "did you mean", rather than guess from context.
                resolution = index.resolve(unknown, prefer=prefer)
                if resolution.status == "none" or resolution.account_id is None:
                    account, account_text = resolution, unknown
                    mentions = [Mention(resolution, unknown, -1, -1)]
        portfolio = owner is not None and not refers
        if opener or (account is None and not portfolio and (needs_account or refers)):
            followup = intent is None or needs_account or opener or refers

    title = _title(text, account_text, severity) if intent == "escalate" else None
    metric = metrics[0] if metrics else None
    if metric == "arr" and intent != "metrics":
        metric = None  # "top 5 by ARR", "ARR at risk": ARR is a sort key or a column there
    return ParseResult(
        original,
        intent,
        round(confidence, 2),
        account,
        account_text,
        window,
        owner,
        band,  # type: ignore[arg-type]
        severity,
        followup,
        title=title,
        inferred=inferred,
        accounts=tuple(mentions),
        amount=amount,
        segment=segment,
        order=order,
        metric=metric,
        metrics=metrics if intent == "metrics" else tuple(x for x in metrics if x != "arr"),
        action=action if intent in ("success_plan", "escalate") else None,
        escalation_id=escalation_id,
        chart=chart,
        scores=cue_scores,
    )


def _masked(text: str, mentions: list[Mention]) -> str:
    """The text with each account mention replaced by the placeholder word ACCT."""
    out: list[str] = []
    pos = 0
    for mention in mentions:
        if mention.start < pos:
            continue
        out.append(text[pos : mention.start])
        out.append(" ACCT ")
        pos = mention.end
    out.append(text[pos:])
    return "".join(out)


def _normalise_word(word: str) -> str:
    if word == "acct":
        return "ACCT"
    word = SLANG.get(word, word)
    return repair(word)


def _possessive_free(text: str) -> str:
    return re.sub(r"(\w)['’`]s\b", r"\1", text)


def _emoji_band(emoji_words: list[str]) -> Band | None:
    for word in emoji_words:
        if word in ("red", "amber", "green"):
            return word  # type: ignore[return-value]
    return None


def _model_tokens(words: list[str], names: dict[str, str]) -> list[str]:
    """What the classifier reads: words, with names, people, numbers and amounts as placeholders."""
    out: list[str] = []
    for word in words:
        if word == "ACCT":
            token = "ACCT"
        elif word in names:
            token = "PERSON"
        elif word.isdigit():
            token = "NUM"
        elif _MONEY_TOKEN_RE.match(word):
            token = "MONEY"
        else:
            token = word
        if token == "ACCT" and out and out[-1] == "ACCT":
            continue
        out.append(token)
    return out


def _extras(
    mentions: list[Mention],
    tokens: list[str],
    window: TimeWindow | None,
    band: str | None,
    amount: Amount | None,
    metrics: tuple[str, ...],
    owner: str | None,
    segment: str | None,
    order: Order | None,
    action: Action | None,
    escalation_id: int | None,
    severity: str | None,
    question: bool,
) -> list[str]:
    """Signals from the entity readers, as features the classifier weighs."""
    out: list[str] = []
    resolved = sum(1 for m in mentions if m.resolution.status != "none")
    strong = [m for m in mentions if not m.weak]
    out.append(f"E:acct{min(resolved, 2)}")
    if mentions and not strong:
        out.append("E:acct_weak_only")
    if any(m.resolution.status == "ambiguous" for m in mentions):
        out.append("E:acct_ambiguous")
    if window is not None:
        out.append("E:window")
        out.append("E:window_day" if window.start == window.end else "E:window_span")
    if band is not None:
        out.append("E:band")
        out.append(f"E:band_{band}")
    if amount is not None:
        out.append("E:amount")
    for metric in metrics:
        out.append("E:metric")
        out.append(f"E:metric_{metric}")
    if owner is not None:
        out.append("E:scope_" + (owner if owner in ("me", "team", "all") else "person"))
    if segment is not None:
        out.append("E:segment")
    if order is not None:
        out.append("E:order")
        if order.limit:
            out.append("E:limit")
    if action is not None:
        out.append(f"E:action_{action.kind}")
    if escalation_id is not None:
        out.append("E:esc_id")
    if severity is not None:
        out.append("E:severity")
    if question:
        out.append("E:question")
    content = [t for t in tokens if t not in ("ACCT", "PERSON", "NUM", "MONEY")]
    known = sum(1 for t in content if t in KNOWN_WORDS)
    unknown_share = 1.0 if not content else 1 - known / len(content)
    out.append(f"E:oov{min(4, int(unknown_share * 5))}")
    out.append(f"E:len{min(len(tokens), 8) // 2}")
    if tokens:
        out.append("E:first_" + tokens[0])
    return out


def _has_cue(cue_scores: dict[str, float]) -> bool:
    return any(score >= 2.0 for score in cue_scores.values())


def _cue_scores(words: list[str], emoji_words: list[str], joined: str) -> dict[str, float]:
    """The lexicon's view: summed cue weights per intent (a fallback, and help's examples)."""
    scores: dict[str, float] = {}
    for word in words:
        for intent, weight in WORD_CUES.get(word, {}).items():
            scores[intent] = scores.get(intent, 0.0) + weight
    for word in emoji_words:
        for intent, weight in WORD_CUES.get(word, {}).items():
            scores[intent] = scores.get(intent, 0.0) + weight / 2
    for phrase, cues in PHRASE_CUES.items():
        if f" {phrase} " in joined:
            for intent, weight in cues.items():
                scores[intent] = scores.get(intent, 0.0) + weight
    return scores


_HOW_TO_ASK_RE = re.compile(
    r"\bhow (?:should|do|can|would|could) (?:i|we) (?:phrase|word|format|ask|type|write|put)"
    r" (?:a |my |the |this )?(?:question|request|query|queries|questions|it|things|you)\b"
    r"|\bwhat (?:should|do|can) (?:i|we) (?:type|say|write) to (?:get|ask|see)\b"
)
_ESCALATE_VERB_RE = re.compile(
    r"^(?:(?:hi|hey|ok|okay|please|pls|plz|can you|could you|we need to|i need to|need to)\s+)*"
    r"escalate\b"
)
_ESCALATION_QUESTION_RE = re.compile(
    r"\bescalations\b|\b(?:any|list|show|which|what|open)\b[^.?!]*\bescalat"
)


def _is_escalation_question(joined: str) -> bool:
    """ "any open escalations?", "list escalations": asking about them, not opening one."""
    return (
        _ESCALATION_QUESTION_RE.search(joined) is not None
        and re.search(r"\bescalate\b", joined) is None
    )


def _decide(
    command: str | None,
    model: IntentModel | None,
    feats: list[str],
    cue_scores: dict[str, float],
    mentions: list[Mention],
    action: Action | None,
    escalation_id: int | None,
    words: list[str],
) -> tuple[str | None, float, bool]:
    """The intent: a command is certain; otherwise the classifier, with a few structural rules."""
    resolved = [m for m in mentions if m.resolution.status not in ("none",)]
    if command is not None:
        if command == "account_health" and len(resolved) >= 2:
            return "compare_accounts", 1.0, False
        return command, 1.0, False
    if action is not None:
        # "ack escalation 8", "mark the acme kickoff done": the verb and its object say it all.
        return ("escalate" if action.kind.startswith("escalation") else "success_plan"), 0.9, False
    if model is None:
        best, prob = _rule_intent(cue_scores)
    else:
        probs = model.probabilities(feats)
        best = max(probs, key=probs.__getitem__)
        prob = probs[best]
    if mentions and all(m.weak for m in mentions) and not cue_scores:
        # "coffee?": a word that is also part of a name, and nothing that asks about an account.
        return "unknown", 0.5, False
    if len(resolved) >= 2 and best in ("account_health", "compare_accounts", "my_accounts"):
        return "compare_accounts", max(prob, 0.7), False
    if not resolved and best == "my_accounts" and band_of(feats) in ("red", "amber", "at_risk"):
        best = "portfolio_at_risk"  # "red accounts": the at-risk view, filtered by band
    if not resolved and best == "portfolio_at_risk" and band_of(feats) == "green":
        best = "my_accounts"
    if len(resolved) == 1 and best in ("portfolio_at_risk", "my_accounts"):
        # About one named account, "at risk?", "red flags?" or "accounts" mean: how is it doing.
        return "account_health", prob, False
    if best == "compare_accounts" and len(resolved) < 2 and resolved:
        best = "account_health"  # "how does acme compare?" with one account: its card
    if escalation_id is not None and best in ("unknown", "help"):
        return "escalate", 0.6, False
    others = [w for w in words if w != "ACCT"]
    if strong_resolved(mentions) and not any(w in KNOWN_WORDS or w in WORD_CUES for w in others):
        # An account and nothing else we know ("acme?", "トヨタ自動車の状況"): its health.
        return "account_health", 0.5, True
    if best == "unknown" or prob < UNKNOWN_BELOW:
        strong = [m for m in mentions if not m.weak and m.resolution.status != "none"]
        if strong and len(words) <= 3 and best != "unknown":
            # An account and next to nothing else ("acme?", "what about globex"): its health.
            return "account_health", 0.5, True
        return "unknown", round(prob, 2) if best == "unknown" else round(1 - prob, 2), False
    inferred = bool(mentions) and best == "account_health" and len(words) <= 3
    return best, prob, inferred and not any(w in WORD_CUES for w in words if w != "ACCT")


def _ranked(model: IntentModel | None, feats: list[str]) -> list[str]:
    """The classifier's answering intents (not unknown, not help), most likely first."""
    if model is None:
        return []
    probs = model.probabilities(feats)
    return sorted((i for i in probs if i not in ("unknown", "help")), key=lambda i: -probs[i])


def _runner_up(model: IntentModel | None, feats: list[str], not_this: str) -> str:
    """The classifier's best intent other than ``not_this`` (an account list without a model)."""
    if model is None:
        return "my_accounts"
    probs = model.probabilities(feats)
    ranked = sorted((p, i) for i, p in probs.items() if i not in (not_this, "unknown", "help"))
    return ranked[-1][1] if ranked else "my_accounts"


def strong_resolved(mentions: list[Mention]) -> bool:
    """Some mention names one account outright (not a stray name word)."""
    return any(not m.weak and m.resolution.account_id is not None for m in mentions)


def band_of(feats: list[str]) -> str | None:
    """The band the entity features carry (E:band_red ...)."""
    for feat in feats:
        if feat.startswith("E:band_"):
            return feat.removeprefix("E:band_")
    return None


def _rule_intent(cue_scores: dict[str, float]) -> tuple[str, float]:
    """Without a model file: the strongest cue, if strong enough."""
    if not cue_scores:
        return "unknown", 1.0
    best = max(cue_scores, key=cue_scores.__getitem__)
    score = cue_scores[best]
    return (best, min(0.95, 0.55 + 0.06 * score)) if score >= 2.0 else ("unknown", 1.0)


def _severity(lowered: str, words: list[str]) -> Severity | None:
    if m := _SEVERITY_RE.search(lowered):
        return f"sev{m.group(1)}"  # type: ignore[return-value]
    for word in words:
        sev = SEVERITY_WORDS.get(word)
        if sev is not None:
            return sev  # type: ignore[return-value]
    return None


def _unknown_run(rest: str, names: dict[str, str]) -> str | None:
    """The first run of words nobody knows (a misspelled or unknown account), as written."""
    run: list[str] = []
    for match in re.finditer(r"[^\W_]+(?:['’`][^\W_]+)*", rest):
        raw = match.group(0)
        if raw == "ACCT":
            if run:
                break
            continue
        word = fold(raw)
        known = (
            not word
            or word in names
            or word in KNOWN_WORDS
            or is_chat_word(word)
            # Not common English here: this runs when no account was found, and a name that is
            # an English word ("umbrella") may be an account the asker cannot see (a shared
            # channel), which must still be answered as a name.
            or is_trade_word(word)
            or word.isdigit()
            or len(word) < 3
            or _SEVERITY_RE.fullmatch(word) is not None
        )
        if known:
            if run:
                break
            continue
        run.append(_possessive_free(raw))
    return " ".join(run) or None


_NAME_TOKEN_RE = re.compile(r"[^\W_]+(?:['’`][^\W_]+)*|&")
_OWNS_RE = re.compile(r"['’`]s$")
# Words before a company's name that say one is coming ("NPS for Duff Beer", "at Vance").
_NAME_LEADS: frozenset[str] = frozenset(
    [
        "for",
        "at",
        "of",
        "about",
        "with",
        "compare",
        "is",
        "does",
        "did",
        "has",
        "was",
        "and",
        "vs",
        "versus",
        "re",
        "regarding",
    ]
)
# Lower-case words that may join the words of one name ("Bank of Springfield", "Buy n Large").
_NAME_JOINERS: frozenset[str] = frozenset({"of", "n", "and", "&", "de"})
# Intents that take a named account besides the book: an unknown name there is worth saying.
NAMED_INTENTS: frozenset[str] = ACCOUNT_INTENTS | {
    "compare_accounts",
    "milestones_overdue",
    "milestones_due",
    "metrics",
    "expansion_signals",
    "renewals_upcoming",
}
_SENTENCE_END = ".!?:;\"'([-–—"


def _proper_name(
    rest: str, names: dict[str, str], index: AccountIndex, *, any_lead: bool = False
) -> tuple[str, int] | None:
    """A company written as a proper name that no account matched, and how many mentions precede it.

    Capitalised words the lexicon does not know, in a run: after a word that leads a name ("for
    Wernham Hogg", "at Vance", "is Contoso"), opening the message as two or more words ("Los
    Pollos Hermanos ...") or before a dash or colon ("Rekall - ..."), or owning something ("Hanso
    Foundation's"). A lone capitalised word opening a sentence is usually just capitalised, a run
    after "in" or "on" a place or a day ("in North America", "on Black Friday"), and short
    all-capital words are acronyms (EMEA, SSO).
    ``any_lead``: the question is about one account, so any capitalised unknown word will do.
    """
    if is_title_case(rest):
        return None  # every word capitalised: capitals do not mark names here
    matches = list(_NAME_TOKEN_RE.finditer(rest))
    run: list[re.Match[str]] = []
    lead_ok = False

    def unknown(raw: str) -> bool:
        word = fold(_possessive_free(raw))
        return bool(
            raw[:1].isupper()
            and word
            and word.isalpha()
            and len(word) >= 3
            and not (raw.isupper() and len(raw) <= 4)
            and word not in names
            and not is_chat_word(word)
            and raw != "ACCT"
        )

    def finish() -> tuple[str, int] | None:
        while run and not run[-1].group(0)[:1].isupper():
            run.pop()  # a joiner does not end a name
        if not run:
            return None
        start, end = run[0].start(), run[-1].end()
        before = rest[:start].rstrip()
        initial = not before or before[-1] in _SENTENCE_END
        after = rest[end:].lstrip()[:1]
        possessive = _OWNS_RE.search(run[-1].group(0)) is not None
        words = [m for m in run if m.group(0)[:1].isupper()]
        if (
            (not initial and lead_ok)
            or (initial and (len(words) >= 2 or possessive or after in ("-", ":", "–", "—")))
            or (possessive and len(words) >= 2)
        ):
            return _possessive_free(rest[start:end]), rest[:start].count("ACCT")
        return None

    for n, m in enumerate(matches):
        raw = m.group(0)
        if run:
            word = fold(_possessive_free(raw))
            prev_possessive = _OWNS_RE.search(run[-1].group(0)) is not None
            joins = raw in _NAME_JOINERS or word in _NAME_JOINERS
            gap = rest[run[-1].end() : m.start()].strip()
            name_like = raw[:1].isupper() and (
                unknown(raw) or index.name_word_similarity(word) >= 100
            )
            if not prev_possessive and not gap and (name_like or (joins and not raw[:1].isupper())):
                run.append(m)
                continue
            found = finish()
            if found is not None:
                return found
            run = []
        if unknown(raw):
            prev_raw = matches[n - 1].group(0) if n else ""
            # "When's Quantum Dynamics renewal", "How's Zorblax": the 's is an "is".
            contracted = _OWNS_RE.search(prev_raw) is not None and prev_raw[:1].isupper()
            lead_ok = any_lead or contracted or fold(prev_raw) in _NAME_LEADS
            run = [m]
    return finish() if run else None


# Words after which an account's name comes in the questions we answer: prepositions ("nps for
# X", "what changed at X", "what's up with X"), comparison ("X vs Y", "compare X and Y"), verbs
# that take an account ("escalate X", "when do we renew X") and the auxiliaries that put the
# company first ("when does X renew", "is X at risk", "why did X drop").
_SLOT_LEADS: frozenset[str] = word_set(
    """for at of about with on vs versus v against compare escalate renew re regarding is does did
    was has will"""
)
# "when's X up for renewal", "how's X": a wh-word with its "is" contracted (or its apostrophe
# dropped) leads a name too.
_SLOT_WH: frozenset[str] = frozenset({"how", "when", "what", "where"})
_SLOT_WH_BARE: frozenset[str] = frozenset({"hows", "whens", "whats", "wheres"})
# What a question asks about one account, written next to its name, before ("quintex renewal?",
# "X health", "X's plan") or after it ("renewals X", "nps X", as in "/renewals acme").
_SLOT_TOPICS: frozenset[str] = word_set(
    """renew renews renewal renewals renewing health healthy qbr qbrs plan plans milestone
    milestones nps csat ces ltv nrr grr churn escalation expansion upsell score trend contract
    status"""
)
# Only after the name: "X looking ok?", "X doing alright", "X vs Y".
_SLOT_TRAILS: frozenset[str] = _SLOT_TOPICS | word_set(
    "looking doing holding ok okay alright vs versus"
)
# Intents about one named account (or a list that may be narrowed to one): a name-shaped word
# there is an account we must find or say we do not have.
_SLOT_INTENTS: frozenset[str] = NAMED_INTENTS | {"escalate", "portfolio_at_risk"}


def _slot_word(raw: str, word: str, names: dict[str, str]) -> bool:
    """Could this word be (part of) a company's name: nothing we know, no person, no number."""
    return (
        len(word) >= 3
        and word.isalpha()
        and raw != "ACCT"
        and word not in names
        and not (word.endswith("s") and word[:-1] in names)  # "lenas accounts": Lena's
        and not is_chat_word(word)
        and not is_ordinary(word)
    )


def _touches_mention(rest: str, tokens: list[re.Match[str]], first: int, last: int) -> bool:
    """Tokens ``first``..``last`` written right next to a mention found (ACCT), no gap."""
    before = first > 0 and tokens[first - 1].group(0) == "ACCT"
    after = last + 1 < len(tokens) and tokens[last + 1].group(0) == "ACCT"
    return bool(
        (before and not rest[tokens[first - 1].end() : tokens[first].start()].strip())
        or (after and not rest[tokens[last].end() : tokens[last + 1].start()].strip())
    )


def _slot_name(
    rest: str,
    names: dict[str, str],
    index: AccountIndex,
    *,
    comparing: bool,
    command: bool = False,
) -> tuple[str, int] | None:
    """A word or two nobody knows, standing where these questions put an account's name.

    "when's zorgtech up for renewal", "quintex's renewal", "nps for quintex", "acme vs quintex":
    one or two unknown words (an ending that only ends names may follow: "quintex labs") right
    after a word that leads a name, or right before an 's or a word that follows one; after a
    slash command, the first word. Known words (English, the trade's, the lexicon's and their
    typos), people, numbers and times are never a name. Returns the name as written and how
    many mentions precede it.
    """
    tokens = list(_NAME_TOKEN_RE.finditer(rest))
    folded = [fold(_possessive_free(t.group(0))) for t in tokens]
    n = 0
    while n < len(tokens):
        if not _slot_word(tokens[n].group(0), folded[n], names):
            n += 1
            continue
        end = n
        unknown = 1
        while end + 1 < len(tokens) and not _OWNS_RE.search(tokens[end].group(0)):
            nxt, word = tokens[end + 1], folded[end + 1]
            if rest[tokens[end].end() : nxt.start()].strip():
                break  # "quintex, labs": not one name
            if unknown < 2 and _slot_word(nxt.group(0), word, names):
                unknown += 1
                end += 1
                continue
            if word not in KNOWN_WORDS and (word in GENERIC_WORDS or index.ends_names(word)):
                end += 1  # "quintex labs", "zorg tech inc": the name's ending
            break
        start_pos, end_pos = tokens[n].start(), tokens[end].end()
        lead = command and n == 0
        if n and not rest[tokens[n - 1].end() : start_pos].strip():
            prev_raw = tokens[n - 1].group(0).lower()
            prev = folded[n - 1]
            lead = (
                prev_raw in _SLOT_LEADS
                or prev_raw in _SLOT_WH_BARE
                or prev_raw in _SLOT_TOPICS
                or (_OWNS_RE.search(prev_raw) is not None and prev in _SLOT_WH)
                or (prev == "and" and (comparing or (n >= 2 and tokens[n - 2].group(0) == "ACCT")))
            )
        trail = _OWNS_RE.search(tokens[end].group(0)) is not None
        if not trail and end + 1 < len(tokens):
            gap = rest[end_pos : tokens[end + 1].start()].strip()
            trail = not gap and folded[end + 1] in _SLOT_TRAILS
        name = _possessive_free(rest[start_pos:end_pos])
        if _touches_mention(rest, tokens, n, end):
            lead = trail = False  # "oceanic airlies": the rest of a name already found
        if lead or trail:
            return name, rest[:start_pos].count("ACCT")
        n = end + 1
    return None


def _title(text: str, account_text: str | None, severity: str | None) -> str | None:
    """Escalation title: what follows the account (and severity), e.g. "SSO is down"."""
    tail = text
    if account_text:
        pos = text.find(account_text)
        if pos >= 0:
            tail = text[pos + len(account_text) :]
    else:
        tail = re.sub(r"^.*?\bescalat\w*\b", "", text, count=1, flags=re.IGNORECASE)
    tail = _strip_severity(tail)
    tail = _TITLE_STRIP_RE.sub("", tail).strip(" \t,.;:-–—")
    words = fold(tail).split()
    if len(tail) < 3 or (len(words) <= 2 and all(is_chat_word(w) for w in words)):
        return None  # "the acme escalation": no title, just chat words
    return tail


def _strip_severity(text: str) -> str:
    text = _SEVERITY_RE.sub(" ", text)
    text = re.sub(r"\b(?:critical|major|minor)\b", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def candidates_json(candidates: tuple[Candidate, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "score": c.score} for c in candidates]

"""Rule-based parser: a CSM's chat message in, an intent with account, window, owner, band out."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from rapidfuzz import fuzz

from domain.accounts_index import AccountIndex, Resolution, fold
from domain.nlu.lexicon import (
    ACCOUNT_INTENTS,
    BAND_WORDS,
    CHART_WORDS,
    CONFUSED_WORDS,
    FOLLOWUP_OPENERS,
    GREETING_WORDS,
    KNOWN_WORDS,
    MAP_WORDS,
    ME_WORDS,
    PHRASE_CUES,
    REFERENCE_PHRASES,
    REFERENCE_WORDS,
    SEVERITY_WORDS,
    SLANG,
    TEAM_WORDS,
    WORD_CUES,
    is_chat_word,
    repair,
)
from domain.nlu.timewindow import TimeWindow, default_renewal_window, parse_window

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
)

# Slash commands and their bare-word twins ("/health acme" and "health acme").
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
    "📉": " risk ",
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
_SLACK_REF_RE = re.compile(r"<[@#!][^>]*>")  # user/channel mentions, @here: never an account
_SLACK_LINK_RE = re.compile(r"<https?://[^|>]*(?:\|([^>]*))?>")
_TEAMS_AT_RE = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_BARE_DAYS_RE = re.compile(
    r"\b(?:renewals?|renewing|renew|in|next|within)\s+(?:the\s+next\s+)?(\d{1,4})\s*(?:d|days?)?\b"
)
# Longer messages are cut: nobody asks a question in a novel, and parsing stays fast.
_MAX_CHARS = 2000
_THRESHOLD = 2.0  # a cue score below this is noise ("ok thanks")

Band = Literal["red", "amber", "green"]
Severity = Literal["sev1", "sev2", "sev3"]


@dataclass(frozen=True)
class ParseResult:
    """What a message asks: intent, the entities it names, and whether it leans on the last turn."""

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
    # Extensions beyond the shared contract (all defaulted):
    title: str | None = None  # escalation title: the words after account and severity
    inferred: bool = False  # intent guessed (account alone -> health), not stated by a cue
    # "chart": draw this answer ("/health acme chart", "acme's trend"); "map": the health map.
    chart: Literal["chart", "map"] | None = None
    scores: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def entities(self) -> dict[str, Any]:
        """JSON-ready entities: account, window, owner, band, severity."""
        account: dict[str, Any] | None = None
        if self.account is not None:
            account = {
                "status": self.account.status,
                "query": self.account.query,
                "id": self.account.account_id,
                "name": self.account.name,
                "candidates": [
                    {"id": c.id, "name": c.name, "score": c.score} for c in self.account.candidates
                ],
            }
        window = None
        if self.window is not None:
            window = {
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
                "label": self.window.label,
            }
        return {
            "account": account,
            "window": window,
            "owner": self.owner,
            "band": self.band,
            "severity": self.severity,
        }


def _empty(text: str) -> ParseResult:
    return ParseResult(text, None, 0.0, None, None, None, None, None, None, False)


def parse(
    text: str, *, index: AccountIndex, today: date, people: Iterable[str] = ()
) -> ParseResult:
    """Understand one message. Never raises: anything unreadable comes back with intent None.

    Conventions the callers rely on:
    - Renewal questions that name no window get the next 90 days (``DEFAULT_RENEWAL_DAYS``).
    - "before March 31" ends on March 30, "by"/"until March 31" on March 31; "before end of March",
      "by Q2" run to the end of that period (the next one, if this year's is over).
    - "at risk" is the red+amber view: intent portfolio_at_risk with band None; an explicit
      "red"/"amber"/"yellow"/"green" sets the band. About one named account, "at risk?" is its
      health.
    - owner: a known person's first name (from ``people``) > "team" > "me" (my/mine/for me).
    - An account on its own ("globex?") means its health, with ``inferred=True``.
    - ``followup`` marks messages that need the previous turn (see ``apply_followup``).
    """
    try:
        return _parse(text if isinstance(text, str) else "", index, today, people)
    except Exception:  # the chat must answer with help, not a stack trace
        log.exception("parse failed for %r", text[:200] if isinstance(text, str) else text)
        return _empty(text if isinstance(text, str) else "")


def _people_map(people: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for person in people:
        words = fold(person).split()
        if words:
            first = person.split()[0]
            out[words[0]] = first[:1].upper() + first[1:]
    return out


def _parse(text: str, index: AccountIndex, today: date, people: Iterable[str]) -> ParseResult:
    original = text
    text = _strip_markup(text[:_MAX_CHARS])
    # Emoji add flavour to words ("what's on fire 🔥") but are not a question on their own.
    emoji_words = [EMOJI_WORDS[e].strip() for e in _EMOJI_RE.findall(text)]
    text = _EMOJI_RE.sub(" ", text)
    if not text.strip() and "?" in emoji_words:
        return ParseResult(original, "help", 0.6, None, None, None, None, None, None, False)
    if not text.strip():
        return _empty(original)
    stripped = text.strip()
    if stripped.strip("?") == "" and "?" in stripped:
        # A bare "?" or "???" is "what can you do?".
        return ParseResult(original, "help", 0.6, None, None, None, None, None, None, False)

    names = _people_map(people)

    # Slash command: the command fixes the intent; the rest is read for entities.
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

    def ignore(word: str) -> bool:
        if word in names or word in KNOWN_WORDS or word in SLANG:
            return True
        fixed = repair(word)
        # A typo of a chat word ("helth") - unless it is even closer to a name word
        # ("prseware" is nearer Proseware than "prepare").
        return fixed != word and fuzz.ratio(word, fixed) >= index.name_word_similarity(word)

    # Account first, so that its words ("Umbrella Health") are not read as cues.
    found = index.find_in_text(text, ignore=ignore)
    account: Resolution | None = None
    account_text: str | None = None
    rest = text
    if found is not None:
        account, account_text = found
        pos = text.find(account_text)
        if pos >= 0:
            rest = text[:pos] + " , " + text[pos + len(account_text) :]

    lowered = rest.lower()
    words = [_normalise_word(w) for w in fold(lowered).split()]
    words = [w for phrase in words for w in phrase.split()]
    joined = f" {' '.join(words)} "

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

    band = _band(words + emoji_words)
    severity = _severity(lowered, words)
    owner = _owner(words, joined, names)
    window_text = " ".join(_WINDOW_TEXT_RE.sub(" ", _possessive_free(lowered)).split())
    window_text = " ".join(SLANG.get(w, w) for w in window_text.split())
    window = parse_window(window_text, today)

    intent, confidence, inferred = _decide(command, scores, account, band, owner)
    if intent is None and (
        any(w in GREETING_WORDS for w in words)
        or (words and all(w in CONFUSED_WORDS for w in words) and account is None)
    ):
        intent, confidence = "help", 0.6  # "hi", "good morning", "huh?": show what it can do

    if intent == "renewals_upcoming" and window is None:
        # "renewals 60", "renewals in 60", "renewals next 60d": a bare number means days.
        if m := _BARE_DAYS_RE.search(window_text):
            window = parse_window(f"next {m.group(1)} days", today)
        else:
            window = default_renewal_window(today)

    # A one-account question that names no account leans on the previous turn, and so does one
    # that opens like a follow-up ("and ...", "what about ...") or points back ("its renewal").
    folded = fold(text)
    opener = folded.startswith(tuple(o.strip() + " " for o in FOLLOWUP_OPENERS)) or (
        folded in {o.strip() for o in FOLLOWUP_OPENERS}
    )
    refers = any(w in REFERENCE_WORDS for w in words) or any(
        f" {phrase} " in joined for phrase in REFERENCE_PHRASES
    )
    followup = False
    if intent != "help":
        if account is None and (intent in ACCOUNT_INTENTS or (intent is None and opener)):
            # Escalations are often about "the outage" rather than a name: only the command
            # form is sure to name an account.
            guess = intent != "escalate" or command == "escalate"
            unknown = None if refers or not guess else _unknown_run(rest, names)
            if unknown:
                # An unknown name: answer with "did you mean", rather than guess from context.
                account, account_text = index.resolve(unknown), unknown
                inferred = inferred or intent is None
        # "what changed in my book" names a portfolio (an owner), not a missing account.
        portfolio = owner is not None and not refers
        if opener or (
            account is None
            and not portfolio
            and (intent in ACCOUNT_INTENTS or (refers and intent is not None))
        ):
            followup = True

    title = _title(text, account_text, severity) if intent == "escalate" else None
    chart: Literal["chart", "map"] | None = None
    if any(w in MAP_WORDS for w in words):
        chart = "map"
        if account is None and intent in (None, "account_health", "portfolio_at_risk"):
            # "health map", "risk map": the portfolio drawn, not one account's health.
            intent, confidence = "my_accounts", max(confidence, 0.7)
            followup = False
    elif any(w in CHART_WORDS for w in words):
        chart = "chart"
    return ParseResult(
        original,
        intent,
        round(confidence, 2),
        account,
        account_text,
        window,
        owner,
        band,
        severity,
        followup,
        title=title,
        inferred=inferred,
        scores=scores,
        chart=chart,
    )


def _strip_markup(text: str) -> str:
    """Chat markup out: Slack <@U1>/<#C1|name>/<!here>/<url|label>, Teams <at>Bot</at>, &amp;."""
    text = _TEAMS_AT_RE.sub(" ", text)
    text = _SLACK_LINK_RE.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _SLACK_REF_RE.sub(" ", text)
    return html.unescape(text)


def _normalise_word(word: str) -> str:
    word = SLANG.get(word, word)
    return repair(word)


def _possessive_free(text: str) -> str:
    return re.sub(r"(\w)['’`]s\b", r"\1", text)


def _decide(
    command: str | None,
    scores: dict[str, float],
    account: Resolution | None,
    band: str | None,
    owner: str | None,
) -> tuple[str | None, float, bool]:
    """Pick the intent from the cue scores and what the message names; (intent, confidence, inferred)."""
    if command is not None:
        return command, 1.0, False
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    best, best_score = ranked[0] if ranked else (None, 0.0)
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if best is not None and best_score >= _THRESHOLD:
        # A red or amber band is the at-risk view, whatever else the message says about accounts.
        if (
            band in ("red", "amber")
            and best in ("my_accounts", "account_health")
            and account is None
        ):
            best = "portfolio_at_risk"
        # About one named account, "at risk?" or "accounts" means: how is it doing.
        if (
            account is not None
            and account.status != "none"
            and best
            in (
                "portfolio_at_risk",
                "my_accounts",
            )
        ):
            best = "account_health"
        if best == "portfolio_at_risk" and band == "green":
            best = "my_accounts"
        confidence = min(0.95, 0.55 + 0.06 * best_score)
        if runner_up >= best_score - 1.0:
            confidence -= 0.2  # two intents nearly tied: say so, so the caller can ask
        return best, confidence, False
    if account is not None:
        # An account and nothing else ("acme?", "what about globex"): its health is the usual ask.
        return "account_health", 0.5, True
    if owner is not None and best == "my_accounts":
        return "my_accounts", 0.5, False
    if band is not None:
        return ("my_accounts" if band == "green" else "portfolio_at_risk"), 0.5, False
    return None, 0.0, False


def _band(words: list[str]) -> Band | None:
    for word in words:
        band = BAND_WORDS.get(word)
        if band is not None:
            return band  # type: ignore[return-value]
    return None


def _severity(lowered: str, words: list[str]) -> Severity | None:
    if m := _SEVERITY_RE.search(lowered):
        return f"sev{m.group(1)}"  # type: ignore[return-value]
    for word in words:
        sev = SEVERITY_WORDS.get(word)
        if sev is not None:
            return sev  # type: ignore[return-value]
    return None


def _owner(words: list[str], joined: str, names: dict[str, str]) -> str | None:
    """A named person wins over "team", which wins over "my"."""
    for word in words:
        if word in names:
            return names[word]
    if any(w in TEAM_WORDS for w in words):
        return "team"
    if any(w in ME_WORDS for w in words) or any(
        p in joined
        for p in (
            " for me ",
            " i own ",
            " i manage ",
            " do i own ",
            " do i have ",
            " i look after ",
        )
    ):
        return "me"
    return None


def _unknown_run(rest: str, names: dict[str, str]) -> str | None:
    """The first run of words nobody knows (a misspelled or unknown account), as written."""
    run: list[str] = []
    for match in re.finditer(r"[^\W_]+(?:['’`][^\W_]+)*", rest):
        raw = match.group(0)
        word = fold(raw)
        known = (
            not word
            or word in names
            or word in KNOWN_WORDS
            or is_chat_word(word)
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

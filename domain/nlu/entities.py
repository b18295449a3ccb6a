"""Constraints a question states besides accounts and windows: amount, metric, band, segment, order, scope, action."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Op = Literal[">", ">=", "<", "<="]


@dataclass(frozen=True)
class Amount:
    """A money threshold on ARR: "over $100k" is ``Amount(">", 100000)`` (strictly greater)."""

    op: Op
    value: float

    def accepts(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.op == ">":
            return value > self.value
        if self.op == ">=":
            return value >= self.value
        if self.op == "<":
            return value < self.value
        return value <= self.value

    @property
    def label(self) -> str:
        """Machine form, as evaluation files write it: ">100000"."""
        number = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.op}{number}"

    @property
    def phrase(self) -> str:
        """How an answer says it: "over $100k", "$50k or more"."""
        money = short_money(self.value)
        return {
            ">": f"over {money}",
            ">=": f"{money} or more",
            "<": f"under {money}",
            "<=": f"{money} or less",
        }[self.op]


def short_money(value: float) -> str:
    """$100k, $1.2M, $950 (no trailing .0)."""
    if value >= 1_000_000:
        text = f"{value / 1_000_000:.2f}".rstrip("0").rstrip(".")
        return f"${text}M"
    if value >= 1_000:
        text = f"{value / 1_000:.1f}".rstrip("0").rstrip(".")
        return f"${text}k"
    return f"${value:,.0f}"


@dataclass(frozen=True)
class Order:
    """ "top 5 by ARR": the key to sort on, its direction, and how many to keep."""

    key: Literal["arr", "health", "renewal", "name"] | None
    descending: bool
    limit: int | None

    @property
    def phrase(self) -> str:
        key = {"arr": "ARR", "health": "health", "renewal": "renewal date", "name": "name"}
        if self.limit and self.key:
            lead = "top" if self.descending != (self.key == "health") else "bottom"
            if self.key == "health":
                lead = "worst" if not self.descending else "healthiest"
                return f"{lead} {self.limit} by health"
            if self.key == "renewal":
                return f"first {self.limit} by renewal date"
            return f"{lead} {self.limit} by {key[self.key]}"
        if self.limit:
            return f"first {self.limit}"
        if self.key:
            way = "highest first" if self.descending else "lowest first"
            if self.key == "renewal":
                way = "latest first" if self.descending else "soonest first"
            if self.key == "name":
                way = "A–Z" if not self.descending else "Z–A"
            return f"by {key[self.key]}, {way}"
        return ""


METRICS: tuple[str, ...] = (
    "nrr",
    "grr",
    "logo_churn",
    "nps",
    "csat",
    "ces",
    "ltv",
    "arppu",
    "mrr",
    "arr",
)
METRIC_LABELS: dict[str, str] = {
    "nrr": "NRR",
    "grr": "GRR",
    "logo_churn": "Logo churn",
    "nps": "NPS",
    "csat": "CSAT",
    "ces": "CES",
    "ltv": "LTV",
    "arppu": "ARPPU",
    "mrr": "MRR",
    "arr": "ARR",
}

# Phrases that name a metric, longest first so "net revenue retention" beats "revenue".
_METRIC_PHRASES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            ("nrr", "nrr"),
            ("ndr", "nrr"),
            ("net revenue retention", "nrr"),
            ("net dollar retention", "nrr"),
            ("net retention", "nrr"),
            ("net revenue churn", "nrr"),
            ("grr", "grr"),
            ("gdr", "grr"),
            ("gross revenue retention", "grr"),
            ("gross dollar retention", "grr"),
            ("gross retention", "grr"),
            ("revenue retention", "grr"),
            ("dollar retention", "grr"),
            ("revenue churn", "grr"),
            ("gross churn", "grr"),
            ("logo churn", "logo_churn"),
            ("logo retention", "logo_churn"),
            ("customer churn", "logo_churn"),
            ("churn rate", "logo_churn"),
            ("churn", "logo_churn"),
            ("churned", "logo_churn"),
            ("logos lost", "logo_churn"),
            ("lost logos", "logo_churn"),
            ("lose any customers", "logo_churn"),
            ("lost customers", "logo_churn"),
            ("customers lost", "logo_churn"),
            ("customers did we lose", "logo_churn"),
            ("logos did we lose", "logo_churn"),
            ("accounts did we lose", "logo_churn"),
            ("nps", "nps"),
            ("net promoter", "nps"),
            ("promoter score", "nps"),
            ("csat", "csat"),
            ("customer satisfaction", "csat"),
            ("satisfaction score", "csat"),
            ("satisfaction", "csat"),
            ("satisfied", "csat"),
            ("ces", "ces"),
            ("customer effort", "ces"),
            ("effort score", "ces"),
            ("ltv", "ltv"),
            ("clv", "ltv"),
            ("cltv", "ltv"),
            ("lifetime value", "ltv"),
            ("life time value", "ltv"),
            ("arppu", "arppu"),
            ("arpu", "arppu"),
            ("arpa", "arppu"),
            ("average revenue per paying user", "arppu"),
            ("average revenue per user", "arppu"),
            ("average revenue per account", "arppu"),
            ("average revenue per customer", "arppu"),
            ("revenue per account", "arppu"),
            ("revenue per user", "arppu"),
            ("mrr", "mrr"),
            ("monthly recurring revenue", "mrr"),
            ("arr", "arr"),
            ("annual recurring revenue", "arr"),
            ("recurring revenue", "arr"),
        ),
        key=lambda p: -len(p[0]),
    )
)
_METRIC_RE = re.compile(r"\b(" + "|".join(re.escape(p) for p, _ in _METRIC_PHRASES) + r")\b")
_METRIC_OF = dict(_METRIC_PHRASES)
# "churn risk", "likely to churn", "at risk of churning": a risk question, not the churn metric.
# "threatening to churn", "might churn": churn as something a customer may do, not the metric.
_CHURN_RISK_RE = re.compile(
    r"\bchurn(?:ing)?\s+risks?\b|\b(?:likely|about|going|risk|set|poised)\s+(?:to|of)\s+churn"
    r"|\bto\s+churn\b|\b(?:might|may|could|will|would|gonna)\s+churn\b"
)


def find_metrics(folded: str) -> list[str]:
    """Metrics named in folded text, in order (no repeats); churn *risk* is not the churn metric."""
    out: list[str] = []
    risky = _CHURN_RISK_RE.search(folded) is not None
    for m in _METRIC_RE.finditer(folded):
        metric = _METRIC_OF[m.group(1)]
        if metric == "logo_churn" and risky and m.group(1) in ("churn", "churned"):
            continue
        if metric not in out:
            out.append(metric)
    return out


# ------------------------------------------------------------------------------------ amounts

_NUMBER = r"\$?\s*(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(k|m|mm|thousand|million|grand|K|M)?\b"
_OVER = (
    r"over|above|more than|greater than|bigger than|larger than|exceeding|in excess of|north of"
    r"|>"
)
_AT_LEAST = r"at least|>=|≥|no less than|minimum of|min|from"
_UNDER = r"under|below|less than|smaller than|lower than|south of|<"
_AT_MOST = r"at most|<=|≤|no more than|up to|max|maximum of|not more than"
_AMOUNT_RE = re.compile(
    rf"(?P<op>{_AT_LEAST}|{_AT_MOST}|{_OVER}|{_UNDER})\s*(?:an?\s+)?(?:arr\s+(?:of\s+)?)?{_NUMBER}"
    rf"(?P<plus>\s*\+|\s+or\s+(?:more|above|greater|higher|less|below|lower)|\s+and\s+(?:up|above|over|under|below))?",
    re.IGNORECASE,
)
_PLUS_RE = re.compile(
    rf"{_NUMBER}(?P<plus>\s*\+|\s+or\s+(?:more|above|greater|higher|less|below|lower)"
    r"|\s+and\s+(?:up|above|over|under|below))",
    re.IGNORECASE,
)
_MULTIPLIER = {"k": 1e3, "thousand": 1e3, "grand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6}


def _money(number: str, unit: str | None, had_dollar: bool) -> float | None:
    value = float(number.replace(",", ""))
    if unit:
        value *= _MULTIPLIER[unit.lower()]
    elif not had_dollar and value < 1000:
        return None  # "more than 3 accounts", "over 90%": not money
    return value


def find_amount(text: str) -> Amount | None:
    """The money threshold a question states ("over $100k", "$50k+", "under 20k"), if any."""
    for m in _AMOUNT_RE.finditer(text):
        raw = m.group(0)
        value = _money(m.group(2), m.group(3), "$" in raw)
        if value is None:
            continue
        op_word = m.group("op").lower()
        plus = (m.group("plus") or "").strip().lower()
        if re.fullmatch(_AT_LEAST, op_word):
            op: Op = ">="
        elif re.fullmatch(_AT_MOST, op_word):
            op = "<="
        elif re.fullmatch(_UNDER, op_word):
            op = "<"
        else:
            op = ">"
        if op_word == "from" and not plus:
            continue  # "from dec 1", "from $10k to $50k" is a range we do not read
        if plus in ("+", "or more", "or above", "or greater", "or higher", "and up", "and above"):
            op = ">="
        elif plus in ("or less", "or below", "or lower"):
            op = "<="
        return Amount(op, value)
    for m in _PLUS_RE.finditer(text):
        value = _money(m.group(1), m.group(2), "$" in m.group(0))
        if value is None:
            continue
        plus = m.group("plus").strip().lower()
        if plus in ("or less", "or below", "or lower", "and under", "and below"):
            return Amount("<=", value)
        return Amount(">=", value)
    return None


# ------------------------------------------------------------------------------------ segments

_SEGMENT_RE = re.compile(
    r"\b(enterprise|ent accounts|mid[\s-]?market|midmarket|mm accounts|smb|small business(?:es)?)\b"
)


def find_segment(folded: str) -> str | None:
    m = _SEGMENT_RE.search(folded)
    if m is None:
        return None
    word = m.group(1)
    if word.startswith("ent"):
        return "enterprise"
    if word.startswith(("mid", "mm")):
        return "mid-market"
    return "smb"


# ------------------------------------------------------------------------------------ order

_NUM_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
}
_N = r"(\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|twenty)"
_BIG = r"(biggest|largest|top|highest|most valuable|best|healthiest|richest)"
_SMALL = r"(smallest|bottom|lowest|worst|least healthy|riskiest|unhealthiest|weakest|sickest)"
_TOP_N = re.compile(rf"\b(?:top|first)\s+{_N}\b|\b{_N}\s+{_BIG}\b|\b{_BIG}\s+{_N}\b")
_BOTTOM_N = re.compile(
    rf"\b(?:bottom|last)\s+{_N}\b(?!\s*(?:days?|weeks?|months?|quarters?|years?))|\b{_N}\s+{_SMALL}\b|\b{_SMALL}\s+{_N}\b"
)
_BY_KEY = re.compile(
    r"\b(?:by|sorted by|sort by|ordered by|order by|ranked by|rank by)\s+(?:their\s+|the\s+)?"
    r"(arr|revenue|size|value|contract value|health|health score|score|renewal date|renewal|name|risk)\b"
)
_BIG_WORD = re.compile(r"\b(biggest|largest|most valuable|richest)\b")
_SMALL_WORD = re.compile(r"\bsmallest\b")
_RISKY_WORD = re.compile(r"\b(riskiest|worst|least healthy|unhealthiest|weakest|sickest)\b")
_HEALTHY_WORD = re.compile(r"\bhealthiest\b")


def _n(word: str) -> int:
    return int(word) if word.isdigit() else _NUM_WORDS[word]


def find_order(folded: str) -> Order | None:
    """ "top 5 by ARR", "3 riskiest", "sorted by health", "biggest renewals"."""
    limit: int | None = None
    key: str | None = None
    descending = True
    if m := _BY_KEY.search(folded):
        word = m.group(1)
        if word in ("arr", "revenue", "size", "value", "contract value"):
            key = "arr"
        elif word in ("health", "health score", "score", "risk"):
            key, descending = "health", False
        elif word.startswith("renewal"):
            key, descending = "renewal", False
        else:
            key, descending = "name", False
    if m := _TOP_N.search(folded):
        limit = _n(next(g for g in m.groups() if g and (g[0].isdigit() or g in _NUM_WORDS)))
    elif m := _BOTTOM_N.search(folded):
        limit = _n(next(g for g in m.groups() if g and (g[0].isdigit() or g in _NUM_WORDS)))
        if key is None:
            descending = False
    if key is None:
        if _RISKY_WORD.search(folded):
            key, descending = "health", False
        elif _HEALTHY_WORD.search(folded):
            key, descending = "health", True
        elif _BIG_WORD.search(folded) or (limit and _TOP_N.search(folded)):
            key, descending = "arr", True
        elif _SMALL_WORD.search(folded):
            key, descending = "arr", False
    if key is None and limit is None:
        return None
    return Order(key, descending, limit)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ bands

BAND_WORDS: dict[str, str] = {
    "red": "red",
    "reds": "red",
    "amber": "amber",
    "ambers": "amber",
    "yellow": "amber",
    "yellows": "amber",
    "orange": "amber",
    "green": "green",
    "greens": "green",
}
_AT_RISK_RE = re.compile(
    r"\b(?:at[\s-]?risk|atrisk|risky|in trouble|in danger|churn risks?|red (?:and|or|&|/) "
    r"(?:amber|yellow)|(?:amber|yellow) (?:and|or|&|/) red|red amber)\b"
)


def find_band(folded: str) -> str | None:
    """red | amber | green | at_risk (red and amber) as the question states it."""
    if _AT_RISK_RE.search(folded):
        return "at_risk"
    for word in folded.split():
        band = BAND_WORDS.get(word)
        if band is not None:
            return band
    return None


# ------------------------------------------------------------------------------------ scope

_ALL_RE = re.compile(
    r"\b(?:everyone|everybody|everyones|company[\s-]?wide|org[\s-]?wide|across the (?:company|org|"
    r"organisation|organization|board|business|whole company|portfolio)|whole (?:company|org|book|"
    r"portfolio)|entire (?:company|org|book|portfolio)|all (?:the )?(?:csms|teams)|every csm"
    r"|the company|company|total portfolio|all csms)\b"
)
# "all the accounts", "every customer": everyone's, unless the same question says whose ("all the
# accounts I own" is the asker's book, "all of Marco's accounts" Marco's).
_ALL_QUANTIFIER_RE = re.compile(
    r"\b(?:all (?:the |of the )?(?:customer |client )?(?:enterprise |smb |mid market |midmarket )?"
    r"(?:accounts|customers|clients)|every (?:account|customer|client))\b"
)
# Nouns that make "my ..." a statement about the asker's book ("my renewals", "my NRR"), as
# opposed to "my day", "my password".
_BOOK_NOUNS = (
    r"accounts?|book|portfolio|customers?|clients?|renewals?|milestones?|escalations?|qbrs?|"
    r"risks?|reds?|ambers?|greens?|logos?|contracts?|arr|mrr|nrr|grr|nps|csat|ces|ltv|arppu|"
    r"churn|revenue|retention|deals|pipeline|list of accounts|business|ones|numbers?|metrics?|"
    r"items?|tasks?|deliverables?|deadlines?|overdue|late"
)
_ME_RE = re.compile(
    rf"\b(?:my|mine)\b(?:\s+\w+){{0,3}}?\s+(?:{_BOOK_NOUNS})\b|\bmine\b"
    r"|\b(?:i own|i manage|do i own|do i have|i look after|i am on|im on|assigned to me|"
    r"owned by me|i m responsible for|i am responsible for|"
    r"(?:am i|i am|i m|im) (?:the |their )?(?:owner|csm|account manager)s?)\b"
)
# Someone saying who they are ("Alex here", "this is Alex", "I'm Alex"), a meeting with someone
# ("my 1:1 with Marco"): that person is not whose accounts the question is about.
_EVENT_WORDS = r"meeting|call|sync|1 1|one on one|catch up|chat|demo|session|standup|check in"
_NOT_SCOPE_RE = re.compile(
    rf"^\s*(?:hi |hey |hello )?(?:its |it s |this is )?(?P<intro>\w+) here\b"
    rf"|\b(?:this is|i m|im|i am) (?P<self>\w+)\b"
    rf"|\b(?:{_EVENT_WORDS})(?: \w+)? with (?P<with>\w+)\b"
)
# Whom a greeting addresses ("hi team", "morning all") is not whose accounts.
_GREETED_RE = re.compile(
    r"^\s*(?:hi|hey|hello|hiya|morning|good morning|afternoon|good afternoon|yo)\s+"
    r"(?:team|all|everyone|everybody|folks|guys|y all|gang)\b"
)
# The customer's own team ("the Nakatomi team", "their team") is not the asker's team.
_CUSTOMER_TEAM_RE = re.compile(
    r"\b(?:ACCT|their|customer s?|client s?) teams?\b|\bteams? (?:at|from) ACCT\b"
)
_FOR_ME_RE = re.compile(r"\b(?:for me|of mine|on my plate)\b")
# "my team", "our team": the team, even though "my" is there too.
_TEAM_RE = re.compile(r"\b(?:my|our|the)\s+team\b|\bteam\b|\bteams\b")
_OUR_RE = re.compile(r"\b(?:our|ours|do we have|we have|we own|we manage)\b")


def find_scope(folded: str, people: dict[str, str], *, names_account: bool = False) -> str | None:
    """Whose accounts: a named person (first name) > everyone ("all") > "team" > "me".

    ``names_account``: the message names an account, so "for me" is a courtesy ("check acme for
    me"), not the asker's book.
    """
    words = folded.split()
    not_scope: set[str] | None = None
    for n, word in enumerate(words):
        if word in people:
            if not_scope is None:
                not_scope = {
                    w for m in _NOT_SCOPE_RE.finditer(folded) for w in m.groups() if w is not None
                }
            if word in not_scope:
                continue
            if n + 1 < len(words) and words[n + 1] in ("team", "teams"):
                return "team"  # "Alex's team": the team (Alex manages it)
            return people[word]
    if " team" in folded:
        folded = _CUSTOMER_TEAM_RE.sub(" ", _GREETED_RE.sub(" ", folded))
    else:
        folded = _GREETED_RE.sub(" ", folded)
    if _ALL_RE.search(folded):
        return "all"
    mine = _ME_RE.search(folded) is not None
    if _ALL_QUANTIFIER_RE.search(folded) and not mine:
        return "all"
    if _TEAM_RE.search(folded):
        return "team"
    if mine or (not names_account and _FOR_ME_RE.search(folded)):
        return "me"
    if _OUR_RE.search(folded):
        return "team"
    return None


# ------------------------------------------------------------------------------------ actions

_ESCALATION_ID_RE = re.compile(
    r"\b(?:escalation|escalations|esc|incident|ticket)\s*(?:no\.?|number|num|id)?\s*#?\s*(\d{1,9})\b"
    r"|#(\d{1,9})\b"
)
_ACK_RE = re.compile(r"\b(?:ack|acked|acknowledge|acknowledged|take|taking|pick up|own|claim)\b")
_RESOLVE_RE = re.compile(
    r"\b(?:resolve|resolved|close|closed|fixed|done with|mark(?:ed)? .* resolved)\b"
)
_MARK_RE = re.compile(
    r"\b(?:mark|set|move|flag|tick off|check off|complete|completed|finish|finished|close)\b"
)
MILESTONE_STATUS_WORDS: dict[str, str] = {
    "done": "done",
    "complete": "done",
    "completed": "done",
    "finished": "done",
    "finish": "done",
    "closed": "done",
    "in progress": "in_progress",
    "started": "in_progress",
    "underway": "in_progress",
    "at risk": "at_risk",
    "blocked": "blocked",
    "stuck": "blocked",
}
_STATUS_RE = re.compile(
    r"\b(?:as|to|=)?\s*(done|complete|completed|finished|closed|in progress|started|underway|"
    r"at risk|blocked|stuck)\b"
)


@dataclass(frozen=True)
class Action:
    """A change the message asks for: what, on which record (an id or words naming it), to what."""

    kind: Literal["milestone_status", "escalation_ack", "escalation_resolve"]
    target_id: int | None = None
    target_words: str | None = None
    status: str | None = None


def find_escalation_id(folded_with_hash: str) -> int | None:
    m = _ESCALATION_ID_RE.search(folded_with_hash)
    if m is None:
        return None
    return int(m.group(1) or m.group(2))


def find_action(lowered: str) -> Action | None:
    """ "ack escalation 8", "resolve esc #8", "mark the acme kickoff done", "set X to blocked"."""
    escalation = find_escalation_id(lowered)
    if escalation is not None and re.search(r"\b(?:escalation|esc|incident)\b|#\d", lowered):
        if _RESOLVE_RE.search(lowered):
            return Action("escalation_resolve", target_id=escalation)
        if _ACK_RE.search(lowered):
            return Action("escalation_ack", target_id=escalation)
    if _MARK_RE.search(lowered) and (status := _STATUS_RE.search(lowered)):
        if re.search(r"\bescalation|\besc\b", lowered):
            return None
        words = _MARK_RE.split(lowered, maxsplit=1)[-1]
        words = _STATUS_RE.split(words, maxsplit=1)[0]
        words = re.sub(
            r"\b(?:the|a|an|as|to|milestone|milestones|item|task|step|for|at|of|on)\b", " ", words
        )
        return Action(
            "milestone_status",
            target_words=" ".join(words.split()) or None,
            status=MILESTONE_STATUS_WORDS[status.group(1)],
        )
    return None

"""Vocabulary of CSM chat: intent cue words and phrases, owner/band/severity words, typo repair."""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA


def _words(text: str) -> frozenset[str]:
    """A word list written as one string, for readability."""
    return frozenset(text.split())


# Intent cues: word (after folding: lower case, possessive 's dropped) -> weights per intent.
# Weights are relative: a word that names the intent outright ("renewal", "qbr") outweighs a
# word that merely leans towards it ("doing", "list").
WORD_CUES: dict[str, dict[str, float]] = {}
# Two- and three-word phrases, checked on the folded text; they add to the word cues.
PHRASE_CUES: dict[str, dict[str, float]] = {}


def _cues(intent: str, weight: float, words: str) -> None:
    for word in words.split():
        WORD_CUES.setdefault(word, {})[intent] = weight


def _phrases(intent: str, weight: float, *phrases: str) -> None:
    for phrase in phrases:
        PHRASE_CUES.setdefault(phrase, {})[intent] = weight


_cues("account_health", 3.0, "health healthy healthcheck score scores rag")
_cues("account_health", 2.0, "doing shape pulse vibe vibes temperature sentiment")
_cues("account_health", 1.5, "tracking faring rundown lowdown overview snapshot")
_cues("account_health", 1.5, "ok okay alright fine looking holding going status state")
_cues("account_health", 1.0, "how look looks check things")
_cues("account_health", 1.5, "trend trending usage adoption engagement csat")
_phrases("account_health", 2.0, "what up with", "whats up with", "how are they", "how r they")
_phrases("account_health", 2.0, "in good shape", "health check", "how is", "how are things")

_cues("success_plan", 3.5, "plan plans objectives objective goals goal roadmap okr okrs")
_cues("success_plan", 2.0, "milestones milestone outcomes")
_cues("success_plan", 1.0, "success")
_phrases("success_plan", 2.0, "success plan", "next steps", "where are we on")

_cues(
    "milestones_overdue",
    4.0,
    "overdue late behind slipping slipped missed miss missing delayed lagging",
)
_cues("milestones_overdue", 3.0, "stuck blocked")
_phrases(
    "milestones_overdue",
    4.0,
    "past due",
    "behind schedule",
    "running late",
    "past its due",
    "past their due",
    "past the due",
)
_phrases("milestones_overdue", 1.0, "overdue milestones")
# "passed due", "passed the deadline": the everyday misspelling of "past due", and deadlines.
_phrases(
    "milestones_overdue",
    4.0,
    "passed due",
    "passed its due",
    "passed their due",
    "passed the due",
    "past the deadline",
    "passed the deadline",
    "passed their deadline",
    "passed its deadline",
    "missed deadline",
    "missed deadlines",
)

_cues("renewals_upcoming", 4.5, "renew renews renewal renewals renewing rnw")
_cues("renewals_upcoming", 3.0, "expire expires expiring expiry")
_cues("renewals_upcoming", 2.0, "contract contracts")
_cues("renewals_upcoming", 1.0, "ending")
_phrases("renewals_upcoming", 2.0, "up for renewal", "coming up for")

_cues("portfolio_at_risk", 3.5, "risk risks risky atrisk worry worried worrying churn churning")
_cues("portfolio_at_risk", 3.5, "trouble danger fire burning struggling")
_cues("portfolio_at_risk", 2.5, "red amber yellow orange concern concerns concerned attention")
_cues("portfolio_at_risk", 1.5, "bad problems problem unhappy")
_cues("portfolio_at_risk", 2.5, "shaky wobbly sketchy troubled unhealthy declining sick weak")
_phrases("portfolio_at_risk", 3.0, "danger zone", "watch list", "up at night", "red flag")
_phrases("portfolio_at_risk", 2.0, "at risk", "on fire", "in the red", "red flags")

_cues("my_accounts", 2.5, "book portfolio")
_cues("my_accounts", 2.0, "green own")
_cues("my_accounts", 1.5, "accounts customers clients")
_cues("my_accounts", 1.0, "list all")
_phrases(
    "my_accounts",
    2.0,
    "my accounts",
    "book of business",
    "my customers",
    "do i own",
    "how many accounts",
)

_cues("account_changes", 4.0, "changed changes happened moved")
_cues("account_changes", 3.0, "news updates update activity latest")
_cues("account_changes", 2.0, "change new recent recently lately since")
_cues("account_changes", 3.0, "modified modification modifications altered updated different")
_phrases("account_changes", 2.0, "whats new", "what new", "anything new", "going on")

_cues("qbr_prep", 6.0, "qbr qbrs ebr ebrs")
_cues("qbr_prep", 3.0, "prep prepare preparing deck agenda")
_cues("qbr_prep", 2.0, "quarterly review ready")
_phrases("qbr_prep", 5.0, "business review")

_cues("escalate", 6.0, "escalate escalation escalated escalating escalations")
_cues("escalate", 3.0, "outage sev1 sev2 sev3 p1 p2 p3 sev")
_cues("escalate", 1.5, "urgent broken furious raise")

_cues("help", 3.0, "help commands command options examples example usage howto")
_phrases("help", 5.0, "what can you do", "what do you do", "how do i use", "how does this work")
_phrases("help", 4.0, "what can i ask", "how does it work", "what are you")
_phrases("help", 3.5, "how do i", "how can i", "how to use")
_cues("help", 1.5, "ask")
_phrases(
    "help",
    4.0,
    "this assistant",
    "the assistant",
    "this bot",
    "the bot",
    "able to do",
    "capable of",
    "kind of questions",
    "kinds of questions",
    "phrase a question",
    "word a question",
    "use you",
)

_cues("metrics", 4.0, "nrr grr ltv arppu arpu arpa mrr csat ces ndr gdr clv cltv")
_cues("metrics", 3.0, "retention churn nps")
_cues("metrics", 1.5, "rate metric metrics kpi kpis figure number average")
_phrases(
    "metrics",
    4.0,
    "churn rate",
    "logo churn",
    "net revenue retention",
    "gross revenue retention",
    "net retention",
    "gross retention",
    "lifetime value",
    "net promoter",
    "customer satisfaction",
    "customer effort",
    "effort score",
    "recurring revenue",
    "revenue per",
    "how many logos",
    "did we lose",
)

_cues("explain_health", 4.0, "why explain explanation reason reasons cause caused causing")
_cues("explain_health", 2.5, "dragging drove driving driver drivers behind decline declined")
_cues("explain_health", 2.0, "drop dropped dropping fell fall falling slipped hurt hurting")
_cues(
    "explain_health", 2.0, "worse worsen worsened worsening deteriorate deteriorated deteriorating"
)
_phrases(
    "explain_health",
    3.0,
    "what happened to",
    "what is behind",
    "whats behind",
    "break down",
    "what made",
    "how come",
)

_cues("compare_accounts", 5.0, "vs versus compare comparing comparison")
_cues("compare_accounts", 2.5, "against healthier side")
_phrases("compare_accounts", 4.0, "side by side", "stack up", "line up", "which one is")

_cues("milestones_due", 3.0, "due upcoming deliverable deliverables deliver")
_cues("milestones_due", 1.5, "next")
_phrases(
    "milestones_due",
    4.0,
    "next milestone",
    "next step",
    "milestones due",
    "due this week",
    "due next week",
    "coming up on",
)

_cues("expansion_signals", 5.0, "expansion expand expanding upsell upsells upselling crosssell")
_cues("expansion_signals", 5.0, "upsold upsellable expandable")
_cues("expansion_signals", 3.0, "growth grow licence licences license licenses seat seats")
_cues("expansion_signals", 2.0, "opportunity opportunities whitespace")
_phrases(
    "expansion_signals",
    4.0,
    "seat limit",
    "licence limit",
    "license limit",
    "buy more",
    "cross sell",
    "ready to expand",
)

_cues("focus_today", 4.0, "focus priorities priority prioritise prioritize todo todos agenda")
_cues("focus_today", 2.0, "today morning urgent plate start tackle first important")
_phrases(
    "focus_today",
    5.0,
    "focus on",
    "on my plate",
    "to do list",
    "to do",
    "work on",
    "plan my day",
    "my day",
    "should i do",
    "where do i start",
    "what needs my attention",
)

# A request to see it drawn: "/health acme chart", "show me acme's trend", "health map".
CHART_WORDS: frozenset[str] = _words(
    "chart charts graph graphs plot plots trend trends trending trendline sparkline visual "
    "visualise visualize picture timeline history curve draw diagram"
)
# Phrases that ask for a drawing without a chart word: "how has acme's health changed over time".
CHART_PHRASES: tuple[str, ...] = ("over time",)
MAP_WORDS: frozenset[str] = _words("map maps heatmap quadrant quadrants")

# Greetings alone get the help card; next to a real question they mean nothing.
GREETING_WORDS: frozenset[str] = _words("hi hello hey hiya howdy yo morning afternoon evening sup")

# A message made only of these is confusion ("wat", "huh?"): show what the bot can do.
CONFUSED_WORDS: frozenset[str] = _words("what wat huh eh hm hmm hmmm umm um confused lost")

# Intents that are about one account: without one they lean on the previous turn.
ACCOUNT_INTENTS: frozenset[str] = frozenset(
    {"account_health", "success_plan", "account_changes", "qbr_prep", "escalate", "explain_health"}
)
# Intents that look back: a period named without a year is the latest one that has begun.
PAST_INTENTS: frozenset[str] = frozenset({"metrics", "account_changes", "explain_health"})

# Words that refer back to an account named earlier in the conversation.
REFERENCE_WORDS: frozenset[str] = _words("it its they them their theirs there")
# "this"/"that" only point back next to a noun ("this week" does not).
REFERENCE_PHRASES: tuple[str, ...] = tuple(
    f"{d} {n}"
    for d in ("this", "that", "the same", "same")
    for n in ("account", "customer", "client", "one", "company")
)
FOLLOWUP_OPENERS: tuple[str, ...] = (
    "and ",
    "what about ",
    "how about ",
    "same for ",
    "same thing for ",
    "also ",
    "ok and ",
    "and what about ",
    "now ",
)

ME_WORDS: frozenset[str] = frozenset({"my", "mine", "myself"})
TEAM_WORDS: frozenset[str] = frozenset({"team", "teams", "everyone", "everybody", "our", "org"})
BAND_WORDS: dict[str, str] = {
    "red": "red",
    "reds": "red",
    "amber": "amber",
    "yellow": "amber",
    "orange": "amber",
    "ambers": "amber",
    "green": "green",
    "greens": "green",
}
SEVERITY_WORDS: dict[str, str] = {
    "sev1": "sev1",
    "p1": "sev1",
    "s1": "sev1",
    "critical": "sev1",
    "sev2": "sev2",
    "p2": "sev2",
    "s2": "sev2",
    "major": "sev2",
    "sev3": "sev3",
    "p3": "sev3",
    "s3": "sev3",
    "minor": "sev3",
}

# Function words and chat filler: never an account name on their own.
FILLER_WORDS: frozenset[str] = _words(
    """a an the and or but if so to of in on at by for from with about into over under up down
    out off as is are was were be been being am do does did done have has had having i im me we
    us you your u ur he she it its they them their this that these those there here what whats
    wat which who whos whom when where why how hows can could would should will shall may might
    must not no yes yeah yep ok okay k pls plz please thx thanks thank ty hi hello hey any
    anything anyone something everything all some each every show tell give get got list find
    check see let lets need needs want wants look like just now then also more most much many very
    really still new old next last week weeks month months quarter quarters qtr q year years day
    days today tomorrow yesterday soon asap account accounts customer customers client clients
    stuff thing things items item tasks task one ones our up r n w re been going doing kinda
    gonna wanna gotta lol haha pls quick quickly please rn atm btw fyi again across whole
    entire currently current coming upcoming before after until till by end start beginning
    since during within between right good great bad cover meeting call tell give info
    information details detail summary overview report via per enterprise smb midmarket
    strategic segment tier team teams everyone everybody someone person people csm csms
    manager mgr guys folks doin lookin goin hw r u
    issue issues problem exec execs users user slow failing down schedule prep date dates
    shape mean means open opened closed close latest due everything stand standing gimme
    know think most least top biggest largest morning afternoon evening night sup cheers
    awesome cool nice sure maybe pull bring send post share export dump summarise summarize
    question questions ask asking wonder wondering remind reminder note notes regarding wrt
    anybody somebody
    champion sponsor sponsors stakeholder stakeholders decision maker contact contacts arr mrr
    nrr grr ltv ces revenue seats licenses licences logins tickets support expansion upsell
    program programme deal deals pipeline forecast trends sorted sort order biggest value
    k m usd eur gbp percent pct over under above below more less than top bottom first
    vs versus compare why explain metric metrics rate kpi score satisfaction retention churn
    today tomorrow yesterday tonight focus priorities due deliverable upsell expansion growth
    licence license seats seat mark set done complete completed finished ack acknowledge
    resolve resolved close closed sort sorted largest smallest riskiest healthiest worst best
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december jan feb mar apr jun jul aug sep sept
    oct nov dec q1 q2 q3 q4 h1 h2 ytd qtd mtd between through thru"""
)

# Every word the lexicon gives meaning to.
KNOWN_WORDS: frozenset[str] = (
    frozenset(WORD_CUES)
    | GREETING_WORDS
    | CONFUSED_WORDS
    | FILLER_WORDS
    | ME_WORDS
    | TEAM_WORDS
    | CHART_WORDS
    | MAP_WORDS
    | frozenset(BAND_WORDS)
    | frozenset(SEVERITY_WORDS)
    | frozenset(w for phrase in PHRASE_CUES for w in phrase.split())
)
_TYPO_TARGETS: tuple[str, ...] = tuple(w for w in WORD_CUES if len(w) >= 5)
# Chat spellings that are not one-edit typos of a cue word.
SLANG: dict[str, str] = {
    "hows": "how",
    "whats": "what",
    "whos": "who",
    "wats": "what",
    "r": "are",
    "u": "you",
    "ur": "your",
    "w": "with",
    "doin": "doing",
    "lookin": "looking",
    "goin": "going",
    "hw": "how",
    "qtr": "quarter",
    "mo": "month",
    "mos": "months",
    "wk": "week",
    "wks": "weeks",
    "yr": "year",
    "pls": "please",
    "plz": "please",
    "eoy": "end of year",
    "eom": "end of month",
    "eoq": "end of quarter",
    "thx": "thanks",
    "rn": "now",
    "nxt": "next",
    "prev": "previous",
    "acct": "account",
    "accts": "accounts",
    "cust": "customer",
    "custs": "customers",
    "esc": "escalation",
    "escs": "escalations",
    "todays": "today",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "wrt": "about",
    "msg": "message",
    "v": "vs",
}


@lru_cache(maxsize=4096)
def repair(word: str) -> str:
    """The cue word a typo stands for ("renwal" -> "renewal"), or the word itself."""
    if word in KNOWN_WORDS or len(word) < 5 or word.isdigit():
        return word
    best, best_sim = word, 0.0
    for target in _TYPO_TARGETS:
        # Typos rarely hit the first letter, and two edits are only safe in long words:
        # otherwise "morning" would become "burning" and "starting" "sterling".
        if target[0] != word[0] or abs(len(target) - len(word)) > 2:
            continue
        limit = 1 if len(word) < 8 else 2
        if OSA.distance(word, target, score_cutoff=limit) <= limit:
            sim = fuzz.ratio(word, target)
            if sim > best_sim:
                best, best_sim = target, sim
    return best


def is_chat_word(word: str) -> bool:
    """True for words the lexicon knows (or a typo of one): not an account name by themselves."""
    return word in KNOWN_WORDS or word in SLANG or repair(word) != word

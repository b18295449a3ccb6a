"""Ordinary words: common English (a list shipped with the package) and the trade's own, never a company's name."""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

from rapidfuzz.distance import OSA

from domain.nlu.lexicon import KNOWN_WORDS, SLANG

WORD_FILE = "common_words.txt"


def word_set(text: str) -> frozenset[str]:
    """A word list written as one string, for readability."""
    return frozenset(text.split())


# Words of customer success, SaaS and office chat that a common-English list lacks: in a name's
# place ("escalate billing", "how is onboarding going", "nps for smb") they are still not a
# company. Regions and vendors are left out on purpose: "nps for emea" is better answered "no
# account called emea" than with the whole book's NPS, as if the region had been applied.
TRADE_WORDS: frozenset[str] = word_set(
    """
    onboarding offboarding onboard onboarded kickoff kickoffs rollout rollouts golive launch
    billing invoice invoices invoicing invoiced login logins logout sso saml scim mfa api apis
    sdk sdks webhook webhooks integration integrations admin admins dashboard dashboards
    analytics email emails inbox calendar downtime uptime outage outages latency bug bugs
    backlog sprint sprints pricing procurement compliance gdpr hipaa audit audits msa sow nda
    poc pilot pilots trial trials licensing usage adoption engagement detractor detractors
    promoter promoters passives survey surveys feedback webinar webinars enablement playbook
    playbooks cohort cohorts segment segments tier tiers enterprise midmarket smb strategic
    mid commercial healthcare fintech saas edtech insurtech martech pharma logistics telco telecom
    nonprofit ceo cfo cto cio coo cro vp vps exec execs champion champions sponsor sponsors
    stakeholder stakeholders csm csms tam tams manager managers weekend weekends eod eow eoy eom
    eoq fiscal christmas xmas thanksgiving easter holidays lmk asap tbh imo fwiw iirc afaik ooo
    pto wfh brb idk nvm nevermind sync syncs standup standups offsite onsite recap recaps agenda
    deck decks slides followup followups catchup csv pdf excel spreadsheet spreadsheets doc docs
    wiki vpn wifi laptop workspace workspaces dataset datasets config configs churned
    deprovisioning provisioning migration migrations sandbox workflow workflows
    """
)
# Numbers and times the common list lacks ("for ninety days", "due by thurs", "nrr for ttm").
TIME_WORDS: frozenset[str] = word_set(
    """thirteen seventeen nineteen seventy eighty ninety ninth mon tue tues wed weds thu thur
    thurs fri sat yrs hrs mins biweekly fortnightly midyear yearend ttm ltm"""
)


@cache
def common_words() -> frozenset[str]:
    """The shipped common-English list (read on first need: most messages never ask)."""
    text = resources.files("domain.nlu").joinpath(WORD_FILE).read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


@cache
def _known_by_letter() -> dict[str, tuple[str, ...]]:
    by_letter: dict[str, list[str]] = {}
    for word in KNOWN_WORDS:
        if len(word) >= 3 and word.isalpha():
            by_letter.setdefault(word[0], []).append(word)
    return {letter: tuple(words) for letter, words in by_letter.items()}


@lru_cache(maxsize=4096)
def near_known(word: str) -> bool:
    """One typo from a word of the lexicon ("nxet", "qaurter"): a word mistyped, not a name.

    Three-letter words only count when the letters are swapped ("teh"): any other edit of so
    short a word is just another word.
    """
    for known in _known_by_letter().get(word[:1], ()):
        if abs(len(known) - len(word)) > 1 or OSA.distance(word, known, score_cutoff=1) > 1:
            continue
        if len(word) >= 4 or sorted(word) == sorted(known):
            return True
    return False


def is_trade_word(word: str) -> bool:
    """A (folded) word of the trade, a number or a time the common list lacks ("onboarding")."""
    return word in TRADE_WORDS or word in TIME_WORDS


def is_ordinary(word: str) -> bool:
    """A (folded) word of English or of the trade, or a typo of the lexicon's: not a name."""
    return (
        word in KNOWN_WORDS
        or word in SLANG
        or word in TRADE_WORDS
        or word in TIME_WORDS
        or word in common_words()
        or near_known(word)
    )

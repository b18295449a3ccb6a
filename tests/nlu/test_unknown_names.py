"""Names we do not have, typed in lower case where an account goes: "none", never the whole book."""

from __future__ import annotations

from datetime import date

import pytest

from domain.nlu import ParseResult, parse
from domain.nlu.ordinary import common_words, is_ordinary

TODAY = date(2026, 11, 23)
PEOPLE = ("Dana", "Marco", "Priya", "Sam", "Lena", "Jordan", "Alex")


def p(index, text: str) -> ParseResult:
    return parse(text, index=index, today=TODAY, people=PEOPLE)


def _unknown(result: ParseResult) -> list[str]:
    """The mentions that name no account of ours, as written."""
    return [m.text for m in result.accounts if m.resolution.account_id is None]


# Questions about one account, each naming a company the demo portfolio does not have.
ONE_UNKNOWN = [
    # health
    ("how's trelvane", "account_health", "trelvane"),
    ("is ostrowik holding up ok", "account_health", "ostrowik"),
    ("pellaro looking alright?", "account_health", "pellaro"),
    ("what's up with grummox", "account_health", "grummox"),
    ("hows vintaglio", "account_health", "vintaglio"),
    ("is zephrana in trouble", "account_health", "zephrana"),
    # renewal dates
    ("when's brisqo up for renewal", "renewals_upcoming", "brisqo"),
    ("when does calvendi renew", "renewals_upcoming", "calvendi"),
    ("halloran's renewal - when is it", "renewals_upcoming", "halloran"),
    ("is mernova renewing before march", "renewals_upcoming", "mernova"),
    ("renewal date for tuskwell", "renewals_upcoming", "tuskwell"),
    ("when do we renew dravik", "renewals_upcoming", "dravik"),
    ("drazzle renewal?", "renewals_upcoming", "drazzle"),
    ("/renewals quorvex", "renewals_upcoming", "quorvex"),
    # success plan
    ("pull up the success plan for lumiqo", "success_plan", "lumiqo"),
    ("what's the plan at feranza", "success_plan", "feranza"),
    # milestones
    ("next milestone for ardwick", "milestones_due", "ardwick"),
    ("what's due at pembrosa this week", "milestones_due", "pembrosa"),
    ("overdue milestones for kestrova", "milestones_overdue", "kestrova"),
    ("anything slipping at valdrum?", "milestones_overdue", "valdrum"),
    # escalation
    ("escalate zantorix", "escalate", "zantorix"),
    ("escalate movaro sev1, their sso is broken", "escalate", "movaro"),
    ("open an escalation for brenlow", "escalate", "brenlow"),
    # QBR prep
    ("qbr prep for glimmerton", "qbr_prep", "glimmerton"),
    ("get me ready for the hathely qbr", "qbr_prep", "hathely"),
    # metrics
    ("nps for sorvani", "metrics", "sorvani"),
    ("what's the ltv of caldrix", "metrics", "caldrix"),
    ("csat at plovdix last quarter", "metrics", "plovdix"),
    ("nrr for wendaro this year", "metrics", "wendaro"),
    ("nps quelmar", "metrics", "quelmar"),
    # why did it drop
    ("why did norvane drop", "explain_health", "norvane"),
    ("why is fastrel's score down", "explain_health", "fastrel"),
    # expansion
    ("expansion at yorvik", "expansion_signals", "yorvik"),
    ("any upsell potential with ambrosk", "expansion_signals", "ambrosk"),
    ("is tramontix expanding", "expansion_signals", "tramontix"),
    # what changed
    ("what changed at delvora", "account_changes", "delvora"),
    ("anything new with skyrrow this week", "account_changes", "skyrrow"),
    # two words, an ending that only ends names, a capitalised one
    ("when does zorg tech renew", "renewals_upcoming", "zorg tech"),
    ("how is grelvik labs doing", "account_health", "grelvik labs"),
    ("When's Pantorq up for renewal?", "renewals_upcoming", "Pantorq"),
]


@pytest.mark.parametrize(("text", "intent", "name"), ONE_UNKNOWN)
def test_an_unknown_name_in_an_account_slot_is_none(demo_index, text, intent, name) -> None:
    result = p(demo_index, text)
    assert (result.intent, _unknown(result)) == (intent, [name]), result.question()
    assert result.account is not None and result.account.status == "none"


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("acme vs velqora", ["Acme Corp", None]),
        ("brastin vs globex", [None, "Globex"]),
        ("compare harrowby and initech", [None, "Initech"]),
        ("how does corvantis stack up against hooli", [None, "Hooli"]),
        ("compare acme and velqora", ["Acme Corp", None]),
        # "indusries" finishes the name found ("stark"): the unknown company is the other one.
        ("stark indusries vs quintex", ["Stark Industries", None]),
    ],
)
def test_one_unknown_name_in_a_comparison(demo_index, text, labels) -> None:
    result = p(demo_index, text)
    assert result.intent == "compare_accounts"
    assert [m.resolution.name for m in result.accounts] == labels
    assert all(m.resolution.status == "none" for m in result.accounts if m.resolution.name is None)


# Questions that name no account: lists, people, segments, metrics, follow-ups, chat.
NOT_ACCOUNTS = [
    ("renewals next quarter", "renewals_upcoming"),
    ("my accounts", "my_accounts"),
    ("red accounts over 100k", "portfolio_at_risk"),
    ("what's due this week", "milestones_due"),
    ("renewals for lena", "renewals_upcoming"),
    ("renewals for lenas accounts", "renewals_upcoming"),
    ("enterprise accounts", "my_accounts"),
    ("nrr last quarter", "metrics"),
    ("nrr for ttm", "metrics"),
    ("renewals for healthcare accounts", "renewals_upcoming"),
    ("renewals for mid-market", "renewals_upcoming"),
    ("milestones due for the rollout", "milestones_due"),
    ("renewals for nxet quarter", "renewals_upcoming"),
    ("escalate billing sync for the finance team", "escalate"),
    ("csat for enterprise", "metrics"),
    ("nps vs csat", "metrics"),
    ("overdue for marco", "milestones_overdue"),
    ("and its renewal?", "renewals_upcoming"),
    ("order more coffee", "unknown"),
    ("what's the weather in berlin", "unknown"),
    ("how fast does bamboo grow", "unknown"),
    ("how tall is everest", "unknown"),
    ("how big is jupiter", "unknown"),
    ("tell me a joke", "unknown"),
    ("how are you", "help"),
]


@pytest.mark.parametrize(("text", "intent"), NOT_ACCOUNTS)
def test_no_account_lookup_without_a_name(demo_index, text, intent) -> None:
    result = p(demo_index, text)
    assert result.intent == intent, result.question()
    assert _unknown(result) == [], result.question()


def test_a_word_of_the_trade_is_not_a_name(demo_index) -> None:
    # A one-account question took any word the lexicon did not know for a name.
    assert _unknown(p(demo_index, "how is onboarding going")) == []
    assert _unknown(p(demo_index, "what's the plan for the kickoff")) == []


def test_the_rest_of_a_name_already_found_is_not_another_name(demo_index) -> None:
    # "oceanic airlies": the alias is found, its mistyped ending is not a second company.
    result = p(demo_index, "side by side: stark indusries, prestige")
    assert _unknown(result) == []


def test_a_name_that_a_looser_lookup_would_take_is_offered_not_answered(demo_index) -> None:
    result = p(demo_index, "when does acm renew")
    assert result.account.status == "none"
    assert result.account.candidates[0].name == "Acme Corp"


def test_a_person_we_know_is_not_a_company(demo_index) -> None:
    assert p(demo_index, "renewals for priya").owner == "Priya"
    assert _unknown(p(demo_index, "renewals for priya")) == []


def test_the_word_list_ships_and_is_small() -> None:
    words = common_words()
    assert 10_000 < len(words) < 12_000
    assert {"weather", "coffee", "lunch", "contract"} <= words
    assert not {"zorgtech", "quintex", "berlin"} & words  # no made-up names, no proper names
    assert is_ordinary("onboarding") and is_ordinary("ninety") and is_ordinary("qaurter")
    assert not is_ordinary("zorgtech")


def test_the_user_is_told_there_is_no_such_account(demo_container) -> None:
    from bot.console import ConsoleChat

    chat = ConsoleChat(demo_container, "dana@example.com")
    for text in (
        "when's zorgtech up for renewal",
        "nps for quintex",
        "overdue milestones for brambleworks",
    ):
        out = chat.ask_json(text)
        assert "couldn't find an account called" in out["rendered"], out["rendered"]
        assert out["reply"]["template"] == "account_not_found", out["reply"]["template"]
        # No list of the book's renewals, metrics or milestones after it.
        assert len(out["rendered"].strip().splitlines()) <= 2, out["rendered"]

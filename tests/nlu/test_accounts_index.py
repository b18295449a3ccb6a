"""Account-name resolution: exact, alias, prefix, typos, ambiguity, suggestions, mentions in text."""

from __future__ import annotations

import time

import pytest

from domain.accounts_index import AccountIndex, AccountName, fold


def test_fold_ignores_case_punctuation_accents_and_possessives() -> None:
    assert fold("Acme Corp.") == fold("acme corp") == "acme corp"
    assert fold("Acme's") == "acme"
    assert fold("Nestlé’s Café") == "nestle cafe"
    assert fold("  ") == ""


def test_exact_name_is_case_and_punctuation_insensitive(demo_index, ids) -> None:
    for query in ("Acme Corp", "acme corp", "ACME CORP.", " acme   corp "):
        res = demo_index.resolve(query)
        assert (res.status, res.account_id, res.name) == ("exact", ids["Acme Corp"], "Acme Corp")
    assert demo_index.resolve("gekko & co").name == "Gekko & Co"


def test_alias(demo_index, ids) -> None:
    res = demo_index.resolve("ACME Corporation")
    assert (res.status, res.account_id) == ("alias", ids["Acme Corp"])
    assert demo_index.resolve("stark").status == "alias"
    assert demo_index.resolve("Umbrella Corp").account_id == ids["Umbrella Corporation"]


def test_unique_prefix_or_word(demo_index, ids) -> None:
    assert demo_index.resolve("piper").account_id == ids["Pied Piper"]
    assert demo_index.resolve("massive").account_id == ids["Massive Dynamic"]
    res = demo_index.resolve("wayne enterprise")
    assert (res.status, res.account_id) == ("fuzzy", ids["Wayne Enterprises"])
    assert demo_index.resolve("glob").account_id == ids["Globex"]


def test_typos_resolve_fuzzily(demo_index, ids) -> None:
    for query, name in [
        ("acmee", "Acme Corp"),
        ("globx", "Globex"),
        ("initec", "Initech"),
        ("tyrel", "Tyrell Corporation"),
        ("wonkaa", "Wonka Industries"),
        ("nakatomy trading", "Nakatomi Trading"),
    ]:
        res = demo_index.resolve(query)
        assert res.status == "fuzzy", query
        assert res.account_id == ids[name], query
        assert 80 <= res.candidates[0].score <= 100


def test_close_pair_is_ambiguous_with_both_choices(demo_index, ids) -> None:
    for query in ("umbrella", "Umbrella", "umbrela"):
        res = demo_index.resolve(query)
        assert res.status == "ambiguous", query
        assert res.account_id is None
        assert {c.name for c in res.candidates} == {"Umbrella Corporation", "Umbrella Health"}
    assert demo_index.resolve("umbrella health").status == "exact"


def test_ambiguous_choices_are_limited(big_index) -> None:
    res = big_index.resolve("harbor", limit=5)
    assert res.status == "ambiguous"
    assert len(res.candidates) == 5
    assert all(c.name.lower().startswith("harbor") for c in res.candidates)


def test_nothing_good_gives_none_with_suggestions(demo_index) -> None:
    res = demo_index.resolve("cyberdain")
    assert res.status == "none" and res.account_id is None
    assert res.candidates[0].name == "Cyberdyne Systems"
    assert demo_index.resolve("zzzzqqq").candidates == ()
    assert demo_index.resolve("").status == "none"
    assert demo_index.resolve("???").status == "none"


def test_duplicate_names_are_ambiguous() -> None:
    index = AccountIndex([AccountName(1, "Acme"), AccountName(2, "ACME")])
    res = index.resolve("acme")
    assert res.status == "ambiguous"
    assert {c.id for c in res.candidates} == {1, 2}
    assert len(index) == 2


def test_word_order_matters_for_partial_names(big_index) -> None:
    # "health yarrow" asks about Yarrow accounts' health, not for "Yarrow Health".
    found = big_index.find_in_text("health yarrow")
    assert found is not None
    res, span = found
    assert span == "yarrow"
    assert res.status == "ambiguous"


@pytest.mark.parametrize(
    ("text", "name", "span"),
    [
        ("how's acme doing", "Acme Corp", "acme"),
        ("acme's health?", "Acme Corp", "acme's"),
        ("how's acmee doing", "Acme Corp", "acmee"),
        ("check umbrella health", "Umbrella Health", "umbrella health"),
        ("is Stark Industries ok", "Stark Industries", "Stark Industries"),
        ("prep me for the globex QBR", "Globex", "globex"),
        ("wayne enterprise health score?", "Wayne Enterprises", "wayne"),
        ("how is wayne enterprize", "Wayne Enterprises", "wayne"),
        ("tailspn systems health", "Tailspin Systems", "tailspn systems"),
        ("qbr prep pls - tyrel", "Tyrell Corporation", "tyrel"),
        ("what's the plan w/ gekko", "Gekko & Co", "gekko"),
    ],
)
def test_find_in_text(demo_index, text, name, span) -> None:
    found = demo_index.find_in_text(text)
    assert found is not None
    res, matched = found
    assert res.name == name
    assert matched == span


def test_possessive_ends_a_name(demo_index) -> None:
    res, span = demo_index.find_in_text("umbrella's health?")
    assert res.status == "ambiguous"
    assert span == "umbrella's"


def test_no_mention(demo_index) -> None:
    for text in ("", "   ", "what renews next quarter", "anything I should worry about?", "🔥🔥"):
        assert demo_index.find_in_text(text) is None


def test_big_portfolio_typos_and_numbers(big_index) -> None:
    res, _ = big_index.find_in_text("what changed at litwre bank 6093 this week")
    assert res.status == "fuzzy" and res.name == "Litware Bank 6093"
    res, _ = big_index.find_in_text("how's acme doing")
    assert res.name == "Acme Corp"


def test_find_in_text_is_fast_with_10000_names(big_index) -> None:
    texts = [
        "how's acmee doing",
        "what changed at qarry healh 5261 this week",
        "prep me for the kestrel QBR",
        "escalate eergreen htels 3212 sev1 SSO is down for all users",
    ] * 25
    for text in texts:  # warm the typo caches, as a running bot would
        big_index.find_in_text(text)
    start = time.perf_counter()
    for text in texts:
        big_index.find_in_text(text)
    per_call_ms = (time.perf_counter() - start) * 1e3 / len(texts)
    assert per_call_ms < 5.0  # generous: the benchmark holds the real target


def test_typo_prefers_the_name_the_user_typed_in_full(big_index) -> None:
    # Willow Motors has numbered siblings ("Willow Motors 1258"); the typed words cover only one.
    res = big_index.resolve("wilow mtors")
    assert (res.status, res.name) == ("fuzzy", "Willow Motors")
    res = big_index.resolve("wilow mtors 1258")
    assert res.name == "Willow Motors 1258"


def test_name_word_similarity(demo_index) -> None:
    assert demo_index.name_word_similarity("globex") == 100.0
    assert 80 <= demo_index.name_word_similarity("globx") < 100
    assert demo_index.name_word_similarity("weather") == 0.0


def test_names_typed_without_spaces(demo_index, ids) -> None:
    assert demo_index.resolve("acmecorp").account_id == ids["Acme Corp"]
    res, span = demo_index.find_in_text("piedpiper plan")
    assert (res.name, span) == ("Pied Piper", "piedpiper")


def test_suggestions_ignore_legal_form_words(demo_index) -> None:
    # "corp" alone would make every "... Corp" look similar.
    assert demo_index.resolve("zzqxv corp").candidates == ()
    assert demo_index.suggest("acmecorpp")[0].name == "Acme Corp"


def _mentions(index: AccountIndex, text: str) -> list[tuple[str, str | None, str]]:
    return [(m.resolution.status, m.resolution.name, m.text) for m in index.find_mentions(text)]


def test_a_typo_of_a_word_that_never_starts_a_name_does_not_start_a_mention(demo_index) -> None:
    # "Paper" is one letter from "Piper", which only ever ends a name: an ordinary word.
    assert _mentions(demo_index, "why did Paper Street drop") == []
    # Behind the name's first word it still completes the name, as one mention.
    assert _mentions(demo_index, "can we upsell Stark Industires?") == [
        ("alias", "Stark Industries", "Stark")
    ]
    assert [m[1] for m in _mentions(demo_index, "how is Dunder Mfiflin doing")] == [
        "Dunder Mifflin"
    ]


def test_legal_form_words_tell_apart_names_that_share_the_rest(demo_index, ids) -> None:
    # Umbrella Corporation and Umbrella Health: "corporation", typed, says which one.
    res = demo_index.find_mentions("how is Umbrela Corporation doing?")[0].resolution
    assert (res.status, res.account_id) == ("fuzzy", ids["Umbrella Corporation"])
    assert demo_index.resolve("umbrela corporation").account_id == ids["Umbrella Corporation"]
    assert demo_index.find_mentions("how is umbrela doing")[0].resolution.status == "ambiguous"


def test_a_name_ending_typed_right_allows_two_typos_before_it(demo_index, ids) -> None:
    for text, name in (
        ("prep the Oenic Airlines QBR", "Oceanic Airlines"),
        ("how is Praioe Airlines doing?", "Prairie Airlines"),
        ("how is blelws analytics doing", "Bellows Analytics"),
    ):
        res = demo_index.find_mentions(text)[0].resolution
        assert (res.status, res.account_id) == ("fuzzy", ids[name]), text


def test_an_unknown_company_sharing_a_name_ending_is_none(demo_index) -> None:
    # Not Evergreen Bank, Vertex Freight or Indigo Partners: companies we do not have.
    for text, span in (
        ("NPS for Orion Bank?", "Orion Bank"),
        ("what changed at Quantum Freight this week", "Quantum Freight"),
        ("Granite Partners - any overdue milestones?", "Granite Partners"),
        ("Expansion opportunities at Blue Yonder Airlines?", "Blue Yonder Airlines"),
        ("When is Zephyr Health renewing?", "Zephyr Health"),
    ):
        assert _mentions(demo_index, text) == [("none", None, span)], text
    # In lower case the ending word is just a word.
    assert _mentions(demo_index, "how is the overall health") == []


def test_a_name_word_inside_another_proper_name_is_not_the_account(demo_index) -> None:
    assert _mentions(demo_index, "Who is Bruce Wayne?") == []
    assert _mentions(demo_index, "Who played Willy Wonka in the film?") == []
    assert _mentions(demo_index, "Wayne Gretzky stats") == []
    # Opening a sentence, a word is capitalised anyway: "Hi Acme", "Ping Globex".
    assert [m[1] for m in _mentions(demo_index, "Ping Globex about the renewal")] == ["Globex"]
    assert [m[1] for m in _mentions(demo_index, "how is Wayne doing")] == ["Wayne Enterprises"]


def test_in_title_case_capitals_do_not_mark_other_names(demo_index) -> None:
    from domain.accounts_index import is_title_case

    assert is_title_case("Escalate Acme Billing Failure")
    assert is_title_case("HOW IS ACME DOING TODAY")
    assert not is_title_case("NPS for Duff Beer?")
    assert not is_title_case("Who is Bruce Wayne?")
    # "Billing" is capitalised like every word here: Acme is still Acme.
    assert [m[1] for m in _mentions(demo_index, "Escalate Acme Billing Failure")] == ["Acme Corp"]
    assert [m[1] for m in _mentions(demo_index, "Check Overall Health For Acme")] == ["Acme Corp"]
    # An unknown word before a name's ending is still not that account.
    assert _mentions(demo_index, "What Is The Renewal Date For Orion Bank") == [
        ("none", None, "Orion Bank")
    ]

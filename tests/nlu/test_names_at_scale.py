"""Names at scale: the asker's own and recently discussed accounts come first; the index follows changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session

from domain.accounts_index import AccountIndex, AccountName, Preference
from domain.nlu import parse
from handlers import name_index
from handlers.name_index import account_index
from storage.models import CSM, Account

TODAY = date(2026, 11, 23)


def test_an_ambiguous_nickname_offers_the_askers_own_account_first(big_index) -> None:
    plain = big_index.find_mentions("how's tundra doing")[0].resolution
    assert plain.status == "ambiguous"
    everything = big_index.resolve("tundra", limit=500)
    assert len(everything.candidates) > 50  # a nickname fits many of 10,000 accounts
    mine = everything.candidates[-1].id  # one that would never make the first five by itself
    assert mine not in {c.id for c in plain.candidates}
    owned = Preference([], frozenset({mine}))
    ranked = parse("how's tundra doing", index=big_index, today=TODAY, prefer=owned)
    assert ranked.account is not None and ranked.account.status == "ambiguous"
    assert ranked.account.candidates[0].id == mine
    # A recently discussed one comes before the asker's own.
    recent = everything.candidates[-2].id
    both = Preference([recent], frozenset({mine}))
    first_two = [c.id for c in big_index.resolve("tundra", prefer=both).candidates[:2]]
    assert first_two == [recent, mine]


def test_a_patched_index_answers_like_a_fresh_one() -> None:
    names = [
        AccountName(i, f"Harbor {w}", ()) for i, w in enumerate(("Pharma", "Capital", "Labs"), 1)
    ]
    names.append(AccountName(4, "Acme Corp", ("Acme",)))
    old = AccountIndex(names).warm()
    assert (
        old.resolve("acme corp").account_id == 4 and old.resolve("harbor capital").account_id == 2
    )
    new = old.apply(
        [AccountName(4, "Acme Industries", ("ACME",)), AccountName(5, "Zorblax Holdings", ())],
        removed=[2],
    )
    fresh = AccountIndex(
        [
            names[0],
            names[2],
            AccountName(4, "Acme Industries", ("ACME",)),
            AccountName(5, "Zorblax Holdings", ()),
        ]
    ).warm()
    for query in (
        "acme industries",
        "acme",
        "acme corp",
        "harbor",
        "harbor capital",
        "zorblax",
        "zorblx holdngs",
    ):
        got, want = new.resolve(query), fresh.resolve(query)
        assert (got.status, got.account_id, [c.id for c in got.candidates]) == (
            want.status,
            want.account_id,
            [c.id for c in want.candidates],
        ), query
    for name in (
        "_postings",
        "_exact",
        "_alias",
        "_deletes",
        "_trigrams",
        "_vocab",
        "_weak",
        "_shape",
    ):
        got, want = new.__dict__[name], fresh.__dict__[name]
        if name in ("_exact", "_alias"):
            got = {k: sorted(v) for k, v in got.items()}
            want = {k: sorted(v) for k, v in want.items()}
        assert got == want, name


def _account(name: str, owner: int, n: int) -> Account:
    return Account(external_id=f"X-{n}", name=name, owner_id=owner, aliases=[])


def test_the_index_is_patched_when_accounts_change_not_rebuilt(engine, monkeypatch) -> None:
    with Session(engine) as session:
        csm = CSM(name="Dana Whitfield", email="dana@example.com")
        session.add(csm)
        session.flush()
        for n in range(40):
            session.add(_account(f"Willow Motors {n}", csm.id or 0, n))
        session.add(_account("Acme Corp", csm.id or 0, 99))
        session.commit()
    builds: list[int] = []
    real_init = AccountIndex.__init__

    def counting(self, accounts):  # type: ignore[no-untyped-def]
        builds.append(1)
        real_init(self, accounts)

    monkeypatch.setattr(AccountIndex, "__init__", counting)
    with Session(engine) as session:
        first = account_index(session)
        assert first.resolve("acme corp").status == "exact" and len(builds) == 1
        assert account_index(session) is first  # nothing changed: the same index
        # A rename, a new account and a deletion: patched, not rebuilt.
        later = datetime.now(UTC) + timedelta(seconds=5)
        acme = session.exec(text("SELECT id FROM account WHERE name = 'Acme Corp'")).scalar_one()
        session.exec(
            text("UPDATE account SET name = 'Acme Industries', updated_at = :t WHERE id = :i"),
            params={"t": later, "i": acme},
        )
        session.add(_account("Zorblax Holdings", 1, 100))
        session.exec(text("DELETE FROM account WHERE name = 'Willow Motors 7'"))
        session.commit()
        patched = account_index(session)
        assert patched is first and len(builds) == 1  # the same index, patched in place
        assert patched.resolve("acme industries").account_id == acme
        assert patched.resolve("acme corp").status != "exact"
        assert patched.resolve("zorblax").name == "Zorblax Holdings"
        assert patched.resolve("willow motors 7").account_id is None
        assert len(patched) == 41
    # Many changes at once (a big import): rebuilt.
    monkeypatch.setattr(name_index, "_DELTA_MAX_ROWS", 2)
    monkeypatch.setattr(name_index, "_DELTA_MAX_SHARE", 0.0)
    with Session(engine) as session:
        for n in range(200, 210):
            session.add(_account(f"Quarry Labs {n}", 1, n))
        session.commit()
        rebuilt = account_index(session)
        assert len(builds) == 2 and rebuilt.resolve("quarry labs 205").name == "Quarry Labs 205"


def test_in_chat_the_askers_own_and_the_recent_account_come_first(demo_container) -> None:
    from bot.console import ConsoleChat

    # "harbor" fits Harbor Analytics (Dana's), Harbor Pharma (Lena's) and Harbor Capital (Marco's).
    dana = ConsoleChat(demo_container, "dana@example.com").ask_json("how's harbor doing")
    assert dana["reply"]["template"] == "account_choices"
    assert dana["reply"]["context"]["choices"][0]["name"] == "Harbor Analytics"
    marco = ConsoleChat(demo_container, "marco@example.com")
    assert marco.ask_json("how's harbor doing")["reply"]["context"]["choices"][0]["name"] == (
        "Harbor Capital"
    )
    # Marco talks about Harbor Pharma; the next ambiguous "harbor" offers it first.
    marco.ask_json("how is harbor pharma doing")
    again = marco.ask_json("plan for harbor")["reply"]["context"]["choices"]
    assert [c["name"] for c in again[:2]] == ["Harbor Pharma", "Harbor Capital"]

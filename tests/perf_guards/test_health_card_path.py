"""What a warm `/health <account>` costs in statements, and that its read-only path shows the same card.

No timings (bench/bench_slack.py has those): these keep the request path from growing back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.config import Settings
from bot.container import Container
from bot.slack.app import SlackEdge, build_slack
from domain.health_model import load_health_models
from handlers.context import Actor, ChatContext
from handlers.demo import seed_demo
from handlers.health import account_health, health_card
from handlers.name_index import account_index
from storage.db import engine_for
from storage.models import CSM, Account
from tests.slack.conftest import (
    ALEX,
    DANA,
    SECRET,
    SINGLE_WORKSPACE,
    InlineExecutor,
    ack_json,
    command_body,
    dispatch,
)
from tests.slack.fake_slack import FakeSlack, running_fake

TODAY = date(2026, 11, 23)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    for fake in running_fake():
        fake.add_user(DANA, "dana@example.com", "Dana Whitfield")
        fake.add_user(ALEX, "alex@example.com", "Alex Morgan")
        yield fake


@pytest.fixture
def edge(demo_url: str, fake: FakeSlack) -> Iterator[SlackEdge]:
    """The real Slack app on a copy of the demo portfolio, Slack's Web API faked."""
    settings = Settings(
        database_url=demo_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        today=TODAY.isoformat(),
    )
    container = Container(settings=settings)
    yield build_slack(container, listener_executor=InlineExecutor(), oauth=SINGLE_WORKSPACE)
    container.engine.dispose()
    engine_for.cache_clear()


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """Every statement SQLAlchemy sends on this engine while the block runs."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_a_warm_health_command_runs_four_statements(edge: SlackEdge) -> None:
    # The first request fills the caches (who Dana is, whether C111 is shared, the name index).
    first = ack_json(dispatch(edge, command_body("/health", "acme")))
    with counted(edge.services.container.engine) as statements:
        again = ack_json(dispatch(edge, command_body("/health", "acme")))
    assert again == first
    # The account with its owner, the score history, the newest snapshot, the sentiment. The
    # name index's change check goes to the driver directly (one statement, not counted here).
    assert len(statements) <= 4, statements
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_slack_is_asked_once_not_per_request(edge: SlackEdge, fake: FakeSlack) -> None:
    """auth.test (bolt's single-workspace authorization), users.info and conversations.info
    are cached: ten commands cost Slack one call of each, and answering costs none."""
    for _ in range(10):
        ack_json(dispatch(edge, command_body("/health", "acme")))
    assert sorted(fake.methods()) == ["auth.test", "conversations.info", "users.info"]


def test_a_manager_reads_the_card_without_loading_objects(edge: SlackEdge) -> None:
    # Alex manages Acme's owner: the owner's manager comes with the account row.
    ack_json(dispatch(edge, command_body("/health", "acme", user=ALEX)))
    with counted(edge.services.container.engine) as statements:
        answer = ack_json(dispatch(edge, command_body("/health", "acme", user=ALEX)))
    assert len(statements) <= 4, statements
    assert "Acme" in answer["text"]
    # ...and still lets them set the sentiment of their team's account.
    assert any(block.get("block_id") == "sentiment" for block in answer["blocks"])


def _contexts(session: Session, ctx: ChatContext, account_id: int) -> tuple[Any, Any]:
    models = load_health_models(None)
    fast = account_health(session, ctx=ctx, models=models, account_id=account_id)
    account = session.get(Account, account_id)
    assert account is not None
    slow = health_card(session, account, ctx=ctx, models=models)
    return fast, slow


def test_the_row_path_shows_what_the_orm_path_shows(any_engine: Engine) -> None:
    """On SQLite and PostgreSQL: the card from an account row equals the card from an Account."""
    seed_demo(
        any_engine,
        today=TODAY,
        accounts=12,
        days=40,
        snapshot_days=2,
        models=load_health_models(None),
    )
    with Session(any_engine) as session:
        csms = session.exec(select(CSM)).all()
        accounts = session.exec(select(Account).order_by(Account.id)).all()
        for csm in csms:
            actor = Actor(csm_id=csm.id, name=csm.name, email=csm.email, role=csm.role)
            ctx = ChatContext(platform="slack", actor=actor, today=TODAY)
            for account in accounts[:6]:
                assert account.id is not None
                fast, slow = _contexts(session, ctx, account.id)
                assert fast.template == slow.template == "health_card"
                assert json.dumps(fast.context, default=str) == json.dumps(
                    slow.context, default=str
                )
                assert fast.text == slow.text


def test_a_pending_rename_is_seen_by_the_index(any_engine: Engine) -> None:
    """The index's change check runs below the ORM: it flushes first, as an ORM query would."""
    seed_demo(
        any_engine,
        today=TODAY,
        accounts=6,
        days=10,
        snapshot_days=1,
        models=load_health_models(None),
    )
    with Session(any_engine) as session:
        account_index(session)
        account = session.exec(select(Account).order_by(Account.id)).first()
        assert account is not None
        account.name = "Zyxwv Renamed Holdings"
        account.updated_at = func.now()  # type: ignore[assignment]
        session.add(account)
        found = account_index(session).resolve("Zyxwv Renamed Holdings")
        assert found.account_id == account.id
        session.rollback()

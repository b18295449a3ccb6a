"""Per-process Slack state: event receipts (both backends), caches, and failing closed on lookups."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bot.config import Settings
from bot.container import Container
from bot.slack.services import SlackServices, TTLCache, web_client
from storage.platform_models import SlackEventReceipt
from tests.slack.fake_slack import FakeSlack


def services_on(engine: Engine, fake: FakeSlack) -> SlackServices:
    settings = Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        slack_bot_token="xoxb-test",
        slack_api_url=fake.api_url,
    )
    container = Container(settings=settings)
    container.__dict__["engine"] = engine  # the fixture's engine, not a second pool
    return SlackServices(container=container, client=web_client(settings))


def test_an_event_id_is_accepted_once_on_each_backend(any_engine: Engine, fake: FakeSlack) -> None:
    services = services_on(any_engine, fake)
    assert services.first_delivery("Ev1") is True
    assert services.first_delivery("Ev1") is False
    assert services.first_delivery("Ev2") is True
    assert services.first_delivery(None) is True  # nothing to key on: process it


def test_old_receipts_are_pruned(any_engine: Engine, fake: FakeSlack) -> None:
    services = services_on(any_engine, fake)
    with Session(any_engine) as session:
        old = datetime.now(UTC) - timedelta(days=3)
        session.add(SlackEventReceipt(event_id="EvOld", received_at=old))
        session.add(SlackEventReceipt(event_id="EvNew"))
        session.commit()
    assert services.prune_receipts() == 1
    with Session(any_engine) as session:
        assert session.exec(select(func.count()).select_from(SlackEventReceipt)).one() == 1


def test_ttl_cache_expires_and_stays_bounded() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=0.05, maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") is None and cache.get("c") == 3  # oldest evicted
    time.sleep(0.06)
    assert cache.get("c") is None


def test_an_unreadable_channel_is_treated_as_external(engine: Engine, fake: FakeSlack) -> None:
    services = services_on(engine, fake)
    fake.fail("conversations.info", error="channel_not_found", times=2)
    assert services.channel("C404").external is True  # fail closed: show no account data
    assert services.channel("D404").external is False  # a DM is nobody's shared channel
    assert services.channel("C111").external is False


def test_an_unknown_slack_user_is_read_only(engine: Engine, fake: FakeSlack) -> None:
    services = services_on(engine, fake)
    actor = services.actor("UNOBODY")
    assert not actor.known and actor.role == "unknown"
    services.actor("UNOBODY")
    assert len(fake.calls_to("users.info")) == 1  # cached, even when unknown


def test_a_failed_profile_lookup_is_retried_soon(engine: Engine, fake: FakeSlack) -> None:
    services = services_on(engine, fake)
    fake.add_user("UX", "x@example.com", "X")
    fake.fail("users.info", error="internal_error")
    assert not services.actor("UX").known
    services.actors.clear()  # as if FAILED_LOOKUP_TTL passed (the profile was not cached)
    services.actor("UX")
    assert len(fake.calls_to("users.info")) == 2

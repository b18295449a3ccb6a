"""Slack channels with a guest or an outsider in them are shared channels for Share and the scheduler's notifier.

Through the real code against the fake Web API: a members lookup that fails or runs past the cap
counts as "has outsiders", and answers are cached (docs/access.md, "Shared channels"). The
scheduler's own run (reminders, alerts, CSM_SHARED_CHANNEL_ANSWERS) is in
tests/scheduler/test_scheduled_posts_guests.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.container import Container
from bot.slack.app import SlackEdge
from bot.slack.audience import MEMBER_CAP
from bot.slack.notifier import SHARED_CHANNEL, SlackNotifier
from handlers.access import OUTSIDERS_HERE
from handlers.reply import Reply
from scheduler.notifier import DeliveryError
from tests.slack.conftest import DANA, MARCO, block_actions_body, dispatch
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_notifier import alert

GUEST = "UGUEST"
CHANNEL = "C0ACME"


def risk_alert() -> Reply:
    """A scheduled post naming an account (test_notifier's risk list of one)."""
    return alert()


def refused(notifier: SlackNotifier, channel: str = CHANNEL) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        notifier.send(channel, risk_alert())
    return caught.value


def channel_posts(fake: FakeSlack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel]


# -- the scheduler's notifier ----------------------------------------------------------------------
def test_a_channel_with_a_guest_gets_no_scheduled_post(
    container: Container, fake: FakeSlack
) -> None:
    fake.add_guest(GUEST, "pat@acme.example")
    fake.set_members(CHANNEL, [DANA, GUEST])
    error = refused(SlackNotifier(container))
    assert error.permanent and error.reason == SHARED_CHANNEL
    assert channel_posts(fake) == []


def test_a_member_of_another_organisation_counts_too(container: Container, fake: FakeSlack) -> None:
    fake.add_user("USTRANGE", "lee@elsewhere.example", "Lee", is_stranger=True)
    fake.set_members(CHANNEL, [DANA, "USTRANGE"])
    assert refused(SlackNotifier(container)).reason == SHARED_CHANNEL
    assert channel_posts(fake) == []


def test_a_channel_of_internal_members_gets_the_post_and_the_answer_is_cached(
    container: Container, fake: FakeSlack
) -> None:
    fake.set_members(CHANNEL, [DANA, MARCO])
    notifier = SlackNotifier(container)
    notifier.send(CHANNEL, risk_alert())
    notifier.send(CHANNEL, risk_alert())
    assert len(channel_posts(fake)) == 2
    # One roll call for both posts; the bot itself is never looked up.
    [members] = fake.calls_to("conversations.members")
    assert members.args["channel"] == CHANNEL and int(members.args["limit"]) <= 1000
    assert sorted(c.args["user"] for c in fake.calls_to("users.info")) == [DANA, MARCO]


def test_a_dm_needs_no_roll_call(container: Container, fake: FakeSlack) -> None:
    SlackNotifier(container).send("D0DANA", risk_alert())
    SlackNotifier(container).send(DANA, risk_alert())
    assert fake.calls_to("conversations.members") == []


def test_members_are_read_page_by_page(container: Container, fake: FakeSlack) -> None:
    # The guest is on the second page (a page is at most 1000 ids).
    internal = [f"UEMP{n:04d}" for n in range(1200)]
    for user in internal:
        fake.add_user(user, f"{user.lower()}@example.com")
    fake.add_guest(GUEST, "pat@acme.example")
    fake.set_members(CHANNEL, [*internal, GUEST])
    assert refused(SlackNotifier(container)).reason == SHARED_CHANNEL
    pages = fake.calls_to("conversations.members")
    assert len(pages) == 2 and pages[1].args["cursor"]


def test_a_channel_past_the_cap_counts_as_having_outsiders(
    container: Container, fake: FakeSlack
) -> None:
    fake.set_members(CHANNEL, [f"UEMP{n:05d}" for n in range(MEMBER_CAP + 1)])
    assert refused(SlackNotifier(container)).reason == SHARED_CHANNEL
    # Nobody was looked up, and the roll call stopped once past the cap.
    assert fake.calls_to("users.info") == []
    assert len(fake.calls_to("conversations.members")) <= MEMBER_CAP // 1000 + 2


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "fetch_members_failed"])
def test_a_members_lookup_that_fails_counts_as_having_outsiders(
    container: Container, fake: FakeSlack, error: str
) -> None:
    fake.fail("conversations.members", error=error)
    assert refused(SlackNotifier(container)).reason == SHARED_CHANNEL
    assert channel_posts(fake) == []


def test_a_member_who_cannot_be_looked_up_counts_as_an_outsider(
    container: Container, fake: FakeSlack
) -> None:
    fake.set_members(CHANNEL, [DANA, "UNOBODY"])  # users.info: user_not_found
    assert refused(SlackNotifier(container)).reason == SHARED_CHANNEL


def test_a_rate_limited_or_refused_lookup_waits_like_conversations_info(
    container: Container, fake: FakeSlack
) -> None:
    fake.set_members(CHANNEL, [DANA])
    notifier = SlackNotifier(container)
    fake.fail("conversations.members", status=429, retry_after=3)
    limited = refused(notifier)
    assert limited.reason == "ratelimited" and not limited.permanent
    fake.fail("conversations.members", error="token_revoked")
    paused = refused(notifier)
    assert paused.workspace and not paused.permanent
    fake.fail("users.info", status=503)
    assert not refused(notifier).permanent  # Slack failed: tried again later
    # None of these answers was cached: Slack answers now, and the post is made.
    notifier.send(CHANNEL, risk_alert())
    assert len(channel_posts(fake)) == 1


# -- Share in channel ------------------------------------------------------------------------------
def share(edge: SlackEdge, fake: FakeSlack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    body = block_actions_body(
        {"type": "button", "action_id": "share", "value": '{"k":"health","a":1}'},
        channel=channel,
        response_url=fake.response_url(),
    )
    assert dispatch(edge, body).status == 200
    return [c.args for c in fake.calls_to("webhook:r1")]


def test_share_into_a_channel_with_a_guest_is_refused(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.add_guest(GUEST, "pat@acme.example")
    fake.set_members(CHANNEL, [DANA, GUEST])
    [answer] = share(edge, fake)
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert answer["text"] == OUTSIDERS_HERE
    # Nothing for the channel, and the private copy stays where it was.
    assert "Acme Corp" not in str(answer)
    assert fake.calls_to("chat.postMessage") == []


def test_share_into_a_channel_of_internal_members_posts_it(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.set_members(CHANNEL, [DANA, MARCO])
    shared, deleted = share(edge, fake)
    assert shared["response_type"] == "in_channel"
    assert shared["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    assert deleted["delete_original"] is True
    # A second Share reads the cached roll call.
    share(edge, fake)
    assert len(fake.calls_to("conversations.members")) == 1


def test_share_where_the_members_cannot_be_read_is_refused(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.fail("conversations.members", error="fetch_members_failed")
    [answer] = share(edge, fake)
    assert answer["response_type"] == "ephemeral" and answer["text"] == OUTSIDERS_HERE


def test_share_past_the_member_cap_is_refused(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.set_members(CHANNEL, [f"UEMP{n:05d}" for n in range(MEMBER_CAP + 1)])
    [answer] = share(edge, fake)
    assert answer["text"] == OUTSIDERS_HERE

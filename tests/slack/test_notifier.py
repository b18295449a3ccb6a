"""The scheduler's Slack notifier: posts rendered blocks; 429, 5xx and dead channels become DeliveryError."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.container import Container
from bot.slack.notifier import SlackNotifier
from handlers.reply import Reply
from scheduler.notifier import DeliveryError, Notifier
from storage.models import CSM
from tests.slack.conftest import assert_valid_blocks, mrkdwn_texts
from tests.slack.fake_slack import FakeSlack


def alert(name: str = "Acme Corp") -> Reply:
    """A scheduled risk post as the scheduler would queue it (data text included)."""
    return Reply(
        template="risks",
        context={
            "scope": "your accounts",
            "band": None,
            "accounts": [
                {
                    "id": 1,
                    "name": name,
                    "score": 41,
                    "band": "red",
                    "delta_7d": -9,
                    "top_driver": "Active seats %",
                    "forecast_red_in_days": None,
                    "arr": 480000.0,
                    "days_to_renewal": 75,
                }
            ],
            "total": 1,
            "counts": {"red": 1, "amber": 0, "green": 0},
            "arr_at_risk": 480000.0,
        },
        text=f"{name} turned red",
        visibility="channel",
    )


def test_posts_rendered_blocks_and_returns_the_ts(container: Container, fake: FakeSlack) -> None:
    notifier = SlackNotifier(container)
    assert isinstance(notifier, Notifier)
    ts = notifier.send("C123", alert())
    [call] = fake.calls_to("chat.postMessage")
    assert call.args["channel"] == "C123"
    assert ts == "1700000000.000001"
    assert_valid_blocks(call.args["blocks"])
    assert call.args["text"] == "Acme Corp turned red"
    assert call.headers["authorization"] == "Bearer xoxb-test"


def test_data_text_is_escaped(container: Container, fake: FakeSlack) -> None:
    SlackNotifier(container).send("C123", alert("<!channel> Corp"))
    [call] = fake.calls_to("chat.postMessage")
    assert "<!channel>" not in call.args["text"]
    assert all("<!channel>" not in t for t in mrkdwn_texts(call.args["blocks"]))


def test_a_csm_target_goes_to_their_dm(container: Container, fake: FakeSlack) -> None:
    with Session(container.engine) as session:
        dana = session.get(CSM, 1)
        assert dana is not None and dana.slack_user_id is None
    SlackNotifier(container).send("csm:1", alert())
    # Not linked yet: found by email, and the post goes to the user id (the app's DM with them).
    assert fake.calls_to("users.lookupByEmail")[0].args["email"] == "dana@example.com"
    assert fake.calls_to("chat.postMessage")[0].args["channel"] == "UDANA"


def test_a_csm_unknown_to_slack_is_a_permanent_failure(
    container: Container, fake: FakeSlack
) -> None:
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send("csm:6", alert())  # Jordan has no Slack user in the fake
    assert caught.value.permanent


def test_429_raises_delivery_error_with_retry_after(container: Container, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=429, error="ratelimited", retry_after=7)
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send("C123", alert())
    assert caught.value.retry_after == 7.0
    assert not caught.value.permanent
    # The notifier itself did not retry (and sleep): the outbox decides when to try again.
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_5xx_is_transient_and_its_outcome_unknown(container: Container, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=503)
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send("C123", alert())
    assert caught.value.reason == "http_503"
    assert not caught.value.permanent and caught.value.retry_after is None
    # Slack: "some aspect of the operation may have succeeded": look it up before re-sending.
    assert caught.value.unknown


@pytest.mark.parametrize("error", ["channel_not_found", "is_archived", "not_in_channel"])
def test_dead_channels_are_permanent(container: Container, fake: FakeSlack, error: str) -> None:
    fake.fail("chat.postMessage", error=error)
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send("C123", alert())
    assert caught.value.permanent and caught.value.reason == error


def test_a_reply_without_a_slack_template_falls_back_to_its_text(
    container: Container, fake: FakeSlack
) -> None:
    reply = Reply(template="no_such_template", context={}, text="Digest: 3 <renewals>")
    SlackNotifier(container).send("C123", reply)
    [call] = fake.calls_to("chat.postMessage")
    assert call.args["text"] == "Digest: 3 &lt;renewals&gt;"


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "account_inactive"])
def test_a_refused_token_pauses_the_workspace_instead_of_failing_the_message(
    container: Container, fake: FakeSlack, error: str
) -> None:
    fake.fail("chat.postMessage", error=error)
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send("C123", alert())
    assert caught.value.workspace and not caught.value.permanent
    assert caught.value.reason == error


def test_a_missing_scope_names_the_scope_and_the_probe_waits_for_it(
    container: Container, fake: FakeSlack
) -> None:
    notifier = SlackNotifier(container)
    fake.scopes = ("commands",)  # chat:write was removed from the app
    fake.fail("chat.postMessage", error="missing_scope")
    with pytest.raises(DeliveryError) as caught:
        notifier.send("C123", alert())
    assert caught.value.workspace
    # The fake answers without a "needed" field: the reason is the bare error.
    reason = "missing_scope:chat:write"
    # The send asked auth.test once already (the bot's own user id, for the members check).
    before = len(fake.calls_to("auth.test"))
    with pytest.raises(DeliveryError):
        notifier.probe(reason)  # auth.test works, but chat:write is still not granted
    fake.scopes = ("commands", "chat:write")
    notifier.probe(reason)
    assert len(fake.calls_to("auth.test")) - before == 2


def test_a_post_carries_its_delivery_id_and_can_be_found_by_it(
    container: Container, fake: FakeSlack
) -> None:
    from datetime import UTC, datetime, timedelta

    notifier = SlackNotifier(container)
    since = datetime.now(UTC) - timedelta(minutes=1)
    ts = notifier.send_tagged("C123", alert(), "d-42")
    notifier.send_tagged("C123", alert(), "d-43")
    [first, _] = fake.calls_to("chat.postMessage")
    assert first.args["metadata"] == {
        "event_type": "csm_delivery",
        "event_payload": {"delivery_id": "d-42"},
    }
    assert notifier.find_tagged("C123", "d-42", since) == ts
    assert notifier.find_tagged("C123", "d-99", since) is None
    [lookup, _] = fake.calls_to("conversations.history")
    assert lookup.args["include_all_metadata"] in (True, "true", "1", 1)


def test_a_dm_is_found_through_the_apps_dm_channel(container: Container, fake: FakeSlack) -> None:
    from datetime import UTC, datetime, timedelta

    notifier = SlackNotifier(container)
    since = datetime.now(UTC) - timedelta(minutes=1)
    ts = notifier.send_tagged("csm:1", alert(), "d-7")
    assert notifier.find_tagged("csm:1", "d-7", since) == ts
    assert fake.calls_to("conversations.open")[0].args["users"] == "UDANA"


def test_a_dropped_answer_is_not_retried_by_the_sdk(container: Container, fake: FakeSlack) -> None:
    """slack_sdk's default client re-posts after a connection error: a second message."""
    fake.drop_rate = 1.0
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send_tagged("C123", alert(), "d-1")
    assert caught.value.unknown
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(fake.posts()) == 1  # it was accepted: the outbox will find it, not re-send it

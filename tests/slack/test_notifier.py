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


def test_5xx_is_transient(container: Container, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=503)
    with pytest.raises(DeliveryError) as caught:
        SlackNotifier(container).send("C123", alert())
    assert caught.value.reason == "http_503"
    assert not caught.value.permanent and caught.value.retry_after is None


@pytest.mark.parametrize(
    "error", ["channel_not_found", "is_archived", "not_in_channel", "account_inactive"]
)
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

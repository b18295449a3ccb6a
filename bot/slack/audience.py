"""Who is in a Slack channel: whether anyone there (a guest, another organisation's member) may not see account data."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from slack_sdk import WebClient

from handlers import access

if TYPE_CHECKING:
    from bot.slack.services import SlackProfile

# Past this many members the roll call is not made: a channel that big is no account channel,
# and a users.info per member would take minutes. It counts as having outsiders.
MEMBER_CAP = 2000
# conversations.members takes up to 1000 a page (Slack suggests 200); fewer pages, fewer calls.
PAGE_SIZE = 1000
# Pages read at most: enough to pass the cap, so a cursor that never ends cannot loop forever.
MAX_PAGES = MEMBER_CAP // PAGE_SIZE + 2

TOO_MANY = "too_many_members"
UNKNOWN = "unknown_members"  # conversations.members or users.info failed: cannot tell

# What each reason is called in logs.
DESCRIBED = {
    access.GUEST: "a guest",
    access.EXTERNAL: "a member of another organisation",
    TOO_MANY: f"more than {MEMBER_CAP} members",
    UNKNOWN: "members I could not look up",
}


def needs_check(channel_id: str) -> bool:
    """DMs (D…) and user ids (a post to U…/W… lands in the app's DM with them) have no audience
    beyond the person; a channel or group DM (C…, G…) does."""
    return channel_id[:1] not in ("D", "U", "W")


def member_ids(client: WebClient, channel_id: str) -> list[str] | None:
    """Everyone in the channel (conversations.members, by cursor); None past MEMBER_CAP.

    Raises what the Web API raises (channel_not_found, not_in_channel, ratelimited, ...).
    """
    members: list[str] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = client.conversations_members(channel=channel_id, limit=PAGE_SIZE, cursor=cursor)
        members.extend(str(m) for m in page.get("members") or [])
        if len(members) > MEMBER_CAP:
            return None
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return members
    return None


def outsider(
    client: WebClient,
    channel_id: str,
    profile: Callable[[str], SlackProfile],
    *,
    skip: Collection[str] = (),
) -> str | None:
    """Why someone in the channel may not see account data (access.GUEST, access.EXTERNAL or
    TOO_MANY), or None when everyone may. ``profile`` is a (cached) users.info lookup; ``skip``
    the bot's own user id. Raises what either call raises: the caller decides between "try
    again later" and "cannot tell" (which counts as outsiders)."""
    members = member_ids(client, channel_id)
    if members is None:
        return TOO_MANY
    for user_id in members:
        if user_id in skip:
            continue
        barred = profile(user_id).barred
        if barred:
            return barred  # one is enough: stop looking people up
    return None

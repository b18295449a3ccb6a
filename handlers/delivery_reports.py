"""What admins are told about deliveries: failures grouped by cause, and a workspace that paused posting."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from handlers.reply import Reply

# Causes and what an admin can do about them.
ADVICE: dict[str, str] = {
    "channel_not_found": "The channel was deleted or the id is wrong: fix the account's channel.",
    "not_in_channel": "Invite the app to the channel (/invite @CSM Assistant).",
    "is_archived": "The channel is archived: map the account to a live channel.",
    "expired": "Not delivered before its deadline (the platform was down or paused): "
    "`csm-bot outbox retry --kind KIND` sends them anyway.",
    "bot_removed": "The bot was removed from the conversation: add it back.",
    "conversation_not_found": "Nobody installed the app there yet.",
    "cannot_compose": "The content could not be built (the account or person is gone).",
}


def delivery_report_reply(
    *,
    platform: str,
    cause: str,
    since: datetime,
    until: datetime,
    failures: list[dict[str, Any]],
    examples: int = 10,
) -> Reply:
    """One admin message for every delivery that failed for one cause in a window."""
    total = len(failures)
    kinds = Counter(f["kind"] for f in failures)
    targets = sorted({f["target"] for f in failures})
    context = {
        "report": {
            "platform": platform,
            "cause": cause,
            "total": total,
            "kinds": dict(sorted(kinds.items())),
            "targets": targets[:examples],
            "target_count": len(targets),
            "examples": failures[:examples],
            "advice": ADVICE.get(cause, ""),
            "retry": f"csm-bot outbox retry --since {since:%Y-%m-%dT%H:%M}",
        },
        # What this report covered, so the next one of the same cause starts after it.
        "window": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "ids": [f["id"] for f in failures],
        },
    }
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    text = (
        f"{total} {'delivery' if total == 1 else 'deliveries'} failed on {platform} "
        f"({cause}) since {since:%Y-%m-%d %H:%M} UTC: {by_kind}. "
        f"See `csm-bot outbox --status failed`."
    )
    return Reply(template="delivery_report", context=context, text=text, visibility="channel")


def delivery_paused_reply(
    *, platform: str, workspace: str, reason: str, since: datetime, probe_seconds: float
) -> Reply:
    """Told once when a workspace refuses every post (token revoked, scope missing)."""
    minutes = max(1, round(probe_seconds / 60))
    context = {
        "pause": {
            "platform": platform,
            "workspace": workspace,
            "reason": reason,
            "since": since.isoformat(),
            "probe_minutes": minutes,
        }
    }
    text = (
        f"Posting to {platform} is paused since {since:%Y-%m-%d %H:%M} UTC: {reason}. "
        f"Nothing is lost: scheduled posts wait and go out by themselves once the token works "
        f"again (checked every {minutes} min)."
    )
    return Reply(template="delivery_paused", context=context, text=text, visibility="channel")

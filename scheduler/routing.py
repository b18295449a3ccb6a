"""Where a post goes: the account channel, the owner's DM, the team risk channel or the manager's DM."""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.config import SchedulerConfig
from storage.models import Account


def csm_target(csm_id: int) -> str:
    """A DM target; each notifier resolves it to the CSM's user on its platform."""
    return f"csm:{csm_id}"


def account_channel(account: Account | None, platform: str) -> str | None:
    if account is None:
        return None
    if platform == "slack":
        return account.slack_channel_id
    if platform == "teams":
        return account.teams_conversation_id
    return f"account:{account.id}"


def targets(
    kind: str,
    *,
    platform: str,
    config: SchedulerConfig,
    account: Account | None = None,
    csm_id: int | None = None,
    manager_id: int | None = None,
    fallback: bool = True,
    admin_ids: Sequence[int] = (),
    routes: Sequence[str] | None = None,
) -> list[str]:
    """The targets of one post on one platform, in route order, without duplicates.

    A route that has nowhere to go (an account without a channel) falls back to the owner's DM,
    so a post is never dropped because a channel was not mapped; unless ``fallback`` is off,
    for a post whose news the owner's digest carries anyway. A post about an account nobody
    owns also goes to the team's channel for unowned accounts, or else to every admin
    (``admin_ids``): someone has to pick it up. ``routes`` replaces the kind's configured ones.
    """
    routes = config.routes.get(kind, ("csm_dm",)) if routes is None else routes
    if not routes:
        return []  # a kind routed nowhere is switched off
    out: list[str] = []
    unmapped = False
    for route in routes:
        target: str | None = None
        if route == "account_channel":
            target = account_channel(account, platform)
            unmapped = unmapped or target is None
        elif route == "csm_dm":
            target = csm_target(csm_id) if csm_id is not None else None
        elif route == "manager_dm":
            target = csm_target(manager_id) if manager_id is not None else None
        elif route == "risk_channel":
            target = config.risk_channel.get(platform) or (
                "risk" if platform == "console" else None
            )
        if target and target not in out:
            out.append(target)
    if fallback and (unmapped or not out) and csm_id is not None and csm_target(csm_id) not in out:
        out.append(csm_target(csm_id))
    if account is not None and csm_id is None:
        for target in unowned_targets(platform=platform, config=config, admin_ids=admin_ids):
            if target not in out:
                out.append(target)
    return out


def unowned_targets(
    *, platform: str, config: SchedulerConfig, admin_ids: Sequence[int]
) -> list[str]:
    """Who picks up news about accounts nobody owns: the team's channel for them, else the admins."""
    channel = config.unowned_channel.get(platform)
    return [channel] if channel else [csm_target(a) for a in admin_ids]

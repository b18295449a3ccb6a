"""Who is asking, from where, and on which day: what every handler needs besides the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Platform = Literal["console", "slack", "teams", "api", "scheduler"]


@dataclass(frozen=True)
class Actor:
    """The person behind a request, matched to a person record when we know them (csm_id None = unknown).

    What an actor may see and change is decided by handlers.access from ``role`` and ``barred``.

    Attributes:
        role: admin | manager | csm | viewer for people with a record; "unknown" otherwise;
            "service" for the data API's token and "system" for the scheduler's own posts.
        barred: why this person sees no account data whatever their record says
            (handlers.access.BARRED_REASONS: a Slack guest or external user, a Teams guest or a user
            of another tenant); None when nothing bars them.
        manager_id: the manager a person is attached to (a viewer's team).
    """

    csm_id: int | None
    name: str
    email: str | None = None
    role: str = "csm"
    platform_user_id: str | None = None
    barred: str | None = None
    manager_id: int | None = None

    @property
    def known(self) -> bool:
        return self.csm_id is not None


@dataclass(frozen=True)
class ChatContext:
    """Where a message came from and what may be shown there.

    Attributes:
        platform: which edge the request came through.
        actor: who asked.
        today: the business date (injected so tests and backfills are deterministic).
        thread_key: identifies the conversation for follow-ups ("slack:C1:1700.1"); None = no memory.
        external: the channel is shared with another organisation (Slack Connect, Teams guests).
        allowed_account_ids: in an external channel, the only accounts that may be shown.
        request_key: the platform's own id of this request (Slack view, trigger or event id,
            Teams activity id): whatever the request creates is created once for it, so a retry
            or a resubmission finds what the first attempt made.
        audience_known: whether the platform told us who is in the conversation. False for a
            Slack DM between two people (the bot is not in it, so it cannot tell a guest or a
            Slack Connect DM apart): answers there stay private to the asker.
    """

    platform: Platform
    actor: Actor
    today: date
    thread_key: str | None = None
    external: bool = False
    allowed_account_ids: frozenset[int] = field(default_factory=frozenset)
    request_key: str | None = None
    audience_known: bool = True

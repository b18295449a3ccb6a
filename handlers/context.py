"""Who is asking, from where, and on which day: what every handler needs besides the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Platform = Literal["console", "slack", "teams", "api", "scheduler"]


@dataclass(frozen=True)
class Actor:
    """The person behind a request, matched to a CSM when we know them (csm_id None = unknown)."""

    csm_id: int | None
    name: str
    email: str | None = None
    role: str = "csm"  # csm | manager | admin | unknown
    platform_user_id: str | None = None

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
    """

    platform: Platform
    actor: Actor
    today: date
    thread_key: str | None = None
    external: bool = False
    allowed_account_ids: frozenset[int] = field(default_factory=frozenset)

"""The contract every platform notifier implements, and a recording notifier for tests and the console."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from handlers.reply import Reply


class DeliveryError(Exception):
    """A send that did not happen; tells the dispatcher whether and when to try again.

    Attributes:
        reason: short machine-friendly cause ("ratelimited", "channel_not_found", "http_503"...).
        retry_after: seconds the platform asked us to wait (HTTP 429 Retry-After), if it said.
        permanent: retrying cannot help (channel gone, bot removed, message rejected).
    """

    def __init__(
        self, reason: str = "error", retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


@runtime_checkable
class Notifier(Protocol):
    """Posts a Reply to a target on one platform and returns the platform's message id.

    Targets are what routing produced: a channel/conversation id, or ``csm:<id>`` for a CSM's DM
    (the notifier resolves it to the person's user on its platform). Failures raise DeliveryError.
    """

    platform: str

    def send(self, target: str, reply: Reply) -> str: ...


@dataclass
class Sent:
    """One message a RecordingNotifier received."""

    target: str
    reply: Reply
    message_id: str


@dataclass
class RecordingNotifier:
    """Keeps every message instead of posting it; optionally fails on chosen targets.

    ``failures`` maps a target to a list of DeliveryErrors raised (one per call, in order) before
    sends to that target succeed; use it to play 429s, 5xx and permanent errors.
    """

    platform: str = "console"
    sent: list[Sent] = field(default_factory=list)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, target: str, reply: Reply) -> str:
        with self._lock:
            self.calls += 1
            queued = self.failures.get(target)
            if queued:
                raise queued.pop(0)
            message_id = f"{self.platform}-{len(self.sent) + 1}"
            self.sent.append(Sent(target, reply, message_id))
            return message_id

    def to(self, target: str) -> list[Reply]:
        """Replies sent to one target, in order."""
        return [s.reply for s in self.sent if s.target == target]

    def templates(self) -> list[str]:
        return [s.reply.template for s in self.sent]

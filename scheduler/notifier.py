"""The contract every platform notifier implements, and a recording notifier for tests and the console."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from handlers.reply import Reply


class DeliveryError(Exception):
    """A send that did not happen (or may have): tells the dispatcher what to do next.

    Attributes:
        reason: short machine-friendly cause ("ratelimited", "channel_not_found", "http_503"...).
        retry_after: seconds the platform asked us to wait (HTTP 429 Retry-After), if it said.
        permanent: retrying cannot help this message (channel gone, bot removed, message rejected).
        unknown: the request may have reached the platform and been accepted (timeout, dropped
            connection, gateway timeout): before sending again, look the delivery id up.
        workspace: the whole workspace is refused (token revoked, scope missing): pause the
            platform instead of failing each message, and probe until it works again.
    """

    def __init__(
        self,
        reason: str = "error",
        retry_after: float | None = None,
        permanent: bool = False,
        *,
        unknown: bool = False,
        workspace: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        self.unknown = unknown
        self.workspace = workspace


class LookupUnavailable(Exception):
    """The platform offers no way to find a message by its delivery id (Teams' Bot Connector)."""


@runtime_checkable
class Notifier(Protocol):
    """Posts a Reply to a target on one platform and returns the platform's message id.

    Targets are what routing produced: a channel/conversation id, or ``csm:<id>`` for a CSM's DM
    (the notifier resolves it to the person's user on its platform). Failures raise DeliveryError.
    """

    platform: str

    def send(self, target: str, reply: Reply) -> str: ...


@runtime_checkable
class TrackingNotifier(Notifier, Protocol):
    """A notifier that writes the delivery id into each post and can find a post by it again.

    ``find_tagged`` returns the message id of the post carrying ``delivery_id`` made at or after
    ``since``, None when there is none, or raises LookupUnavailable / DeliveryError.
    ``probe`` raises DeliveryError while the workspace still refuses us (``reason`` is the pause
    reason, e.g. "missing_scope:chat:write"). ``pacing_key`` names the thing the platform counts
    its limits on (a Teams channel and its threads are one). ``workspace`` names the workspace or
    tenant this notifier posts to.
    """

    workspace: str

    def send_tagged(self, target: str, reply: Reply, delivery_id: str) -> str: ...

    def find_tagged(self, target: str, delivery_id: str, since: datetime) -> str | None: ...

    def probe(self, reason: str) -> None: ...

    def pacing_key(self, target: str) -> str: ...


@dataclass
class Sent:
    """One message a RecordingNotifier received."""

    target: str
    reply: Reply
    message_id: str
    delivery_id: str | None = None


@dataclass
class RecordingNotifier:
    """Keeps every message instead of posting it; optionally fails on chosen targets.

    ``failures`` maps a target to a list of exceptions raised (one per call, in order) before sends
    to that target succeed; use it to play 429s, 5xx and permanent errors. A DeliveryError with
    ``unknown=True`` queued here is raised *after* the message was kept, like a post whose answer
    was lost on the way back. It tracks delivery ids like a real platform, so lookups work.
    """

    platform: str = "console"
    workspace: str = "default"
    sent: list[Sent] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    probe_failures: list[DeliveryError] = field(default_factory=list)
    calls: int = 0
    lookups: int = 0
    probes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, target: str, reply: Reply) -> str:
        return self._post(target, reply, None)

    def send_tagged(self, target: str, reply: Reply, delivery_id: str) -> str:
        return self._post(target, reply, delivery_id)

    def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
        with self._lock:
            self.calls += 1
            queued = self.failures.get(target)
            failure = queued.pop(0) if queued else None
            if failure is not None and not (isinstance(failure, DeliveryError) and failure.unknown):
                raise failure
            message_id = f"{self.platform}-{len(self.sent) + 1}"
            self.sent.append(Sent(target, reply, message_id, delivery_id))
            if failure is not None:
                raise failure  # accepted, but the answer never came back
            return message_id

    def find_tagged(self, target: str, delivery_id: str, since: datetime) -> str | None:
        with self._lock:
            self.lookups += 1
            for s in self.sent:
                if s.target == target and s.delivery_id == delivery_id:
                    return s.message_id
        return None

    def probe(self, reason: str) -> None:
        with self._lock:
            self.probes += 1
            if self.probe_failures:
                raise self.probe_failures.pop(0)

    def pacing_key(self, target: str) -> str:
        return target

    def to(self, target: str) -> list[Reply]:
        """Replies sent to one target, in order."""
        return [s.reply for s in self.sent if s.target == target]

    def templates(self) -> list[str]:
        return [s.reply.template for s in self.sent]

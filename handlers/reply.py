"""The Reply a handler returns: a template name, plain data, a plain-text fallback and who may see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Visibility = Literal["private", "channel"]
AttachmentKind = Literal["chart", "qbr_pack"]


@dataclass(frozen=True)
class Attachment:
    """A file that follows a reply, made after the text has gone out (never on the answer's path).

    Attributes:
        kind: "chart" (``data`` is the chart spec's to_dict(), drawn when sent) or "qbr_pack"
            (``data`` names the account, variant and day; the deck is built when sent).
        title: what the file is called in chat.
        data: plain JSON-ready data; never bytes, a session or a platform object.
    """

    kind: AttachmentKind
    title: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "data": self.data}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Attachment:
        kind = value.get("kind")
        if kind not in ("chart", "qbr_pack"):
            raise ValueError(f"unknown attachment kind {kind!r}")
        return cls(
            kind=kind, title=str(value.get("title") or ""), data=dict(value.get("data") or {})
        )


@dataclass(frozen=True)
class Reply:
    """What to say, independent of any chat platform.

    Attributes:
        template: name of the template each platform renders (``templates/<platform>/<name>.*.j2``).
        context: JSON-serialisable data for the template; never a platform object.
        text: a plain-text fallback (notifications, screen readers, logs).
        visibility: "private" (ephemeral, only the asker) or "channel" (posted for everyone).
        intent: the intent that produced it, when it answers a chat message.
        entities: the entities the parser found (for --json output and follow-ups).
        attachments: charts or a deck that follow the text (each platform sends them after it).
    """

    template: str
    context: dict[str, Any]
    text: str
    visibility: Visibility = "private"
    intent: str | None = None
    entities: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "context": self.context,
            "text": self.text,
            "visibility": self.visibility,
            "intent": self.intent,
            "entities": self.entities,
            "attachments": [a.to_dict() for a in self.attachments],
        }

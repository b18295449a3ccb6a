"""The Reply a handler returns: a template name, plain data, a plain-text fallback and who may see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Visibility = Literal["private", "channel"]


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
    """

    template: str
    context: dict[str, Any]
    text: str
    visibility: Visibility = "private"
    intent: str | None = None
    entities: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "context": self.context,
            "text": self.text,
            "visibility": self.visibility,
            "intent": self.intent,
            "entities": self.entities,
        }

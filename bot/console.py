"""The local chat: the same conversational handler as Slack and Teams, rendered as text in a terminal."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from bot.container import Container
from bot.render import render_text
from handlers.ask import answer
from handlers.context import Actor, ChatContext
from handlers.identity import default_console_actor
from handlers.reply import Reply

logger = logging.getLogger(__name__)

SCHEMA_MISSING = (
    "The database has no tables yet. Run `csm-bot demo` for a demo portfolio, or "
    "`csm-bot db upgrade` and then `csm-bot import ...` for your own data."
)


class SchemaMissing(RuntimeError):
    """The configured database was never migrated."""


class ConsoleChat:
    """One person's conversation with the assistant in a terminal (follow-ups remembered)."""

    def __init__(self, container: Container, as_email: str | None = None) -> None:
        self.container = container
        self._ensure_schema()
        with container.session() as session:
            self.actor: Actor = default_console_actor(
                session, as_email or container.settings.console_user
            )
        # One conversation per chat session (or `ask --stdin` batch): yesterday's one-shot
        # `csm-bot ask` must not decide what today's "and its renewal?" is about.
        self.conversation = uuid.uuid4().hex[:12]

    def _ensure_schema(self) -> None:
        from sqlalchemy import inspect

        if not inspect(self.container.engine).has_table("account"):
            raise SchemaMissing(SCHEMA_MISSING)

    def context(self) -> ChatContext:
        return ChatContext(
            platform="console",
            actor=self.actor,
            today=self.container.today(),
            thread_key=f"console:{self.actor.email or 'anonymous'}:{self.conversation}",
        )

    def reply(self, text: str) -> Reply:
        with self.container.session() as session:
            return answer(session, text, self.context(), models=self.container.health_models)

    def ask(self, text: str) -> str:
        return render_text(self.reply(text))

    def ask_json(self, text: str) -> dict[str, Any]:
        reply = self.reply(text)
        entities = dict(reply.entities)
        question = entities.pop("question", None)
        return {
            "text": text,
            "intent": reply.intent,
            # Everything the message was understood to ask: intent and every constraint.
            "question": question,
            "entities": entities,
            "reply": {
                "template": reply.template,
                "context": reply.context,
                "text": reply.text,
                "visibility": reply.visibility,
            },
            "rendered": render_text(reply),
        }

    def ask_lines(self, lines: Iterable[str]) -> Iterator[str]:
        """One JSON object per input line (blank lines included, so outputs line up with inputs)."""
        for line in lines:
            yield json.dumps(self.ask_json(line.rstrip("\n")), ensure_ascii=False, default=str)

    def greeting(self) -> str:
        who = self.actor.name if self.actor.known else "there"
        return (
            f"Hi {who}! I'm your CSM Assistant. Ask me things like “how is acme doing?”, "
            "“what renews in the next 60 days?”, “which of my accounts are at risk?” or type "
            "“help”. Ctrl-D or “quit” leaves."
        )

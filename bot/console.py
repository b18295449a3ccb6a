"""The local chat: the same conversational handler as Slack and Teams, rendered as text in a terminal."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bot.container import Container
from bot.render import render_text
from handlers.ask import answer
from handlers.attachments import OutFile, safe_files
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
        return "\n".join(self.answer_lines(text))

    def answer_lines(self, text: str) -> Iterator[str]:
        """The text answer first; then, once it is out, each chart or pack it has, as a file."""
        reply = self.reply(text)
        yield render_text(reply)
        yield from self.follow_ups(reply)

    def follow_ups(self, reply: Reply) -> Iterator[str]:
        """A line per file written for the reply's attachments (and for a chart, its sparkline)."""
        written, problems = self.files_of(reply)
        for out, path in written:
            label = "Chart" if out.is_image else "File"
            yield f"{label}: {out.title} → {path}"
            yield f"  {out.description}"
        for problem in problems:
            yield f"Not attached: {problem}"

    def files_of(self, reply: Reply) -> tuple[list[tuple[OutFile, Path]], list[str]]:
        """The reply's attachments made and written under files_dir; what could not be made."""
        if not reply.attachments:
            return [], []
        files, problems = safe_files(
            self.container.session,
            reply.attachments,
            ctx=self.context(),
            models=self.container.health_models,
        )
        return [(out, self.write(out)) for out in files], problems

    def write(self, out: OutFile) -> Path:
        """The file under files_dir (charts are named by content, so asking twice writes once)."""
        folder = Path(self.container.settings.files_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / out.filename
        path.write_bytes(out.content)
        return path

    def ask_json(self, text: str) -> dict[str, Any]:
        """The answer as data; its attachments are listed (kind, title), not made: a script asking
        many questions should not wait for drawings (the text chat and `ask` make them)."""
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
            "attachments": [{"kind": a.kind, "title": a.title} for a in reply.attachments],
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

"""Turns a Reply's attachments into files: a chart drawn from its spec, a QBR pack built from the data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from charts.cache import render_cached
from charts.specs import spec_from_dict
from domain.health_model import HealthModels
from handlers.context import ChatContext
from handlers.errors import HandlerError, NotFound
from handlers.reply import Attachment, Reply

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutFile:
    """A file to send: bytes, name, type, a title for chat and a one-line text description."""

    filename: str
    content: bytes
    mime: str
    title: str
    description: str

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")


def chart_file(attachment: Attachment) -> OutFile:
    """The PNG of a chart attachment (drawn once per content; see charts.cache)."""
    spec = spec_from_dict(attachment.data)
    rendered = render_cached(spec)
    return OutFile(
        rendered.filename, rendered.png, "image/png", attachment.title, rendered.alt_text
    )


def pack_file(
    session: Session, attachment: Attachment, *, ctx: ChatContext, models: HealthModels
) -> OutFile:
    """The QBR pack of an attachment, built for (and as seen by) the person in ``ctx``."""
    from handlers.qbr_pack import build_pack

    data = attachment.data
    day = data.get("today")
    if day:
        ctx = ChatContext(
            platform=ctx.platform,
            actor=ctx.actor,
            today=date.fromisoformat(str(day)),
            thread_key=ctx.thread_key,
            external=ctx.external,
            allowed_account_ids=ctx.allowed_account_ids,
        )
    built = build_pack(
        session,
        ctx=ctx,
        models=models,
        account_id=int(data["account_id"]),
        variant=data.get("variant") or "executive",
    )
    if isinstance(built, Reply):
        # Gone, or not to be shown here: the reply says why.
        raise NotFound(built.text)
    return OutFile(built.filename, built.content, built.mime, attachment.title, built.summary)


def materialise(
    session: Session | None,
    attachment: Attachment,
    *,
    ctx: ChatContext,
    models: HealthModels,
) -> OutFile:
    """The file of any attachment; a QBR pack needs a session (charts carry their data)."""
    if attachment.kind == "chart":
        return chart_file(attachment)
    if session is None:
        raise ValueError("a QBR pack is built from the database: pass a session")
    return pack_file(session, attachment, ctx=ctx, models=models)


def delivery_context(today: date) -> ChatContext:
    """Who a scheduled delivery's files are made for: the assistant itself, reading (the routing
    already decided who receives the post)."""
    from handlers.access import system_actor

    return ChatContext(platform="scheduler", actor=system_actor(), today=today)


def safe_files(
    open_session: Callable[[], AbstractContextManager[Session]],
    attachments: tuple[Attachment, ...],
    *,
    ctx: ChatContext,
    models: HealthModels,
) -> tuple[list[OutFile], list[str]]:
    """Every attachment as a file, and a line per one that could not be made (nothing raises:
    the text answer is already out, and one failed chart must not lose the others)."""
    files: list[OutFile] = []
    problems: list[str] = []
    for attachment in attachments:
        try:
            if attachment.kind == "chart":
                files.append(chart_file(attachment))
            else:
                with open_session() as session:
                    files.append(pack_file(session, attachment, ctx=ctx, models=models))
        except HandlerError as exc:
            problems.append(f"{attachment.title}: {exc.message}")
        except Exception:
            logger.exception("could not make %s attachment %r", attachment.kind, attachment.title)
            problems.append(f"{attachment.title}: it could not be made (logged)")
    return files, problems

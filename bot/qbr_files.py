"""Writes a QBR pack for the CLI: a .pptx, or Markdown with its chart images in a folder beside it."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.console import ConsoleChat
from handlers.accounts import resolve_account
from handlers.errors import HandlerError
from handlers.reply import Reply

logger = logging.getLogger(__name__)


def write_pack(chat: ConsoleChat, account: str, out: Path, *, fmt: str, variant: str) -> str:
    """Build the pack as ``chat``'s person may see it and write it; returns what was written.

    Raises ValueError with a one-line message when the account cannot be named or shown.
    """
    from decks.markdown import render_markdown
    from decks.pptx_deck import render_pptx
    from handlers.qbr_pack import build_outline

    container = chat.container
    ctx = chat.context()
    with container.session() as session:
        found = resolve_account(session, ctx=ctx, intent="qbr_prep", query=account)
        if isinstance(found, Reply):
            raise ValueError(found.text)
        try:
            outline = build_outline(
                session,
                found,
                ctx=ctx,
                models=container.health_models,
                variant=variant,  # type: ignore[arg-type]
            )
        except HandlerError as exc:
            raise ValueError(exc.message) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    charts = len(outline.charts())
    if fmt == "md":
        image_dir = f"{out.stem}_files"
        deck = render_markdown(outline, image_dir=image_dir)
        out.write_text(deck.text, encoding="utf-8")
        for relative, png in deck.images.items():
            path = out.parent / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        return f"{out}: {outline.title}, {len(outline.slides) + 1} sections, {charts} charts in {out.parent / image_dir}"
    out.write_bytes(render_pptx(outline))
    return f"{out}: {outline.title}, {len(outline.slides) + 1} slides, {charts} charts"

"""Renders the same Outline as Markdown: headings, bullets, chart images beside it, notes as quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from charts.specs import ChartSpec
from decks.outline import Outline
from decks.pptx_deck import ChartRenderer, chart_png

_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class MarkdownDeck:
    """The Markdown text and the chart images it links to (relative path -> PNG bytes)."""

    text: str
    images: dict[str, bytes] = field(default_factory=dict)


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")[:40] or "chart"


def _escape(text: str) -> str:
    # Data (account names, notes) must not turn into links or HTML in a Markdown viewer.
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("[", "\\[").replace("]", "\\]")


def render_markdown(
    outline: Outline, *, image_dir: str | None = None, render_chart: ChartRenderer | None = None
) -> MarkdownDeck:
    """Markdown of an outline. With image_dir, each chart is rendered to ``image_dir/NN-kind.png``
    and linked; without it the chart is described by its one-line summary."""
    lines = [f"# {_escape(outline.title)}", "", _escape(outline.subtitle), ""]
    if outline.notes:
        lines += [f"> Notes: {_escape(outline.notes)}", ""]
    images: dict[str, bytes] = {}
    for number, slide in enumerate(outline.slides, start=2):
        lines += [f"## {number}. {_escape(slide.title)}", ""]
        if slide.subtitle:
            lines += [f"*{_escape(slide.subtitle)}*", ""]
        for bullet in slide.bullets:
            lines.append("  " * bullet.level + f"- {_escape(bullet.text)}")
        if slide.bullets:
            lines.append("")
        if slide.chart is not None:
            lines += [_chart_line(slide.chart, number, image_dir, images, render_chart), ""]
        if slide.notes:
            lines += [f"> Notes: {_escape(slide.notes)}", ""]
    return MarkdownDeck(text="\n".join(lines).rstrip() + "\n", images=images)


def _chart_line(
    spec: ChartSpec,
    number: int,
    image_dir: str | None,
    images: dict[str, bytes],
    render_chart: ChartRenderer | None,
) -> str:
    alt = _escape(spec.summary())
    if image_dir is None:
        return f"*Chart: {alt}*"
    render_chart = render_chart or chart_png
    path = f"{image_dir}/{number:02d}-{_slug(spec.kind)}.png"
    images[path] = render_chart(spec)
    return f"![{alt}]({path})"

"""Renders an Outline as a 16:9 PowerPoint deck with python-pptx: charts as pictures, notes kept."""

from __future__ import annotations

import io
from collections.abc import Callable

from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.slide import Slide as PptxSlide
from pptx.util import Emu, Inches, Pt

from charts.specs import ChartSpec
from decks.outline import Bullet, Outline, Slide

WIDTH, HEIGHT = Inches(13.333), Inches(7.5)
MARGIN = Inches(0.5)
TITLE_HEIGHT = Inches(1.0)
INK = RGBColor(0x1D, 0x35, 0x57)
MUTED = RGBColor(0x5F, 0x6B, 0x7A)
# Layouts of python-pptx's default template.
TITLE_LAYOUT, TITLE_ONLY_LAYOUT = 0, 5
# Pictures for a projector: sharper than the chat PNGs.
DECK_DPI = 150

ChartRenderer = Callable[[ChartSpec], bytes]


def chart_png(spec: ChartSpec) -> bytes:
    """A chart drawn for a deck (cached by content like every chart)."""
    from charts.cache import render_cached

    return render_cached(spec, dpi=DECK_DPI).png


def render_pptx(outline: Outline, *, render_chart: ChartRenderer | None = None) -> bytes:
    """The .pptx bytes of an outline; render_chart turns a chart spec into PNG bytes."""
    render_chart = render_chart or chart_png
    deck = Presentation()
    deck.slide_width, deck.slide_height = WIDTH, HEIGHT
    deck.core_properties.title = outline.title
    deck.core_properties.subject = outline.subtitle
    _title_slide(deck, outline)
    for slide in outline.slides:
        _content_slide(deck, slide, render_chart)
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _notes(page: PptxSlide, text: str) -> None:
    if text:
        page.notes_slide.notes_text_frame.text = text


def _title_slide(deck: Presentation, outline: Outline) -> None:  # type: ignore[valid-type]
    page = deck.slides.add_slide(deck.slide_layouts[TITLE_LAYOUT])
    title, subtitle = page.shapes.title, page.placeholders[1]
    for shape in (title, subtitle):
        shape.left, shape.width = MARGIN, WIDTH - 2 * MARGIN
    title.text = outline.title
    subtitle.text = outline.subtitle
    _notes(page, outline.notes)


def _content_slide(deck: Presentation, slide: Slide, render_chart: ChartRenderer) -> None:  # type: ignore[valid-type]
    page = deck.slides.add_slide(deck.slide_layouts[TITLE_ONLY_LAYOUT])
    title = page.shapes.title
    title.left, title.top = MARGIN, Inches(0.3)
    title.width, title.height = WIDTH - 2 * MARGIN, TITLE_HEIGHT
    title.text = slide.title
    paragraph = title.text_frame.paragraphs[0]
    paragraph.font.size, paragraph.font.bold, paragraph.font.color.rgb = Pt(30), True, INK
    top = Inches(0.3) + TITLE_HEIGHT + Inches(0.1)
    body_height = HEIGHT - top - Inches(0.4)
    text_width = WIDTH - 2 * MARGIN
    if slide.chart is not None:
        # Bullets on the left third, the chart (16:9) on the right two thirds.
        text_width = Emu(int((WIDTH - 2 * MARGIN) * 0.34))
        picture_left = MARGIN + text_width + Inches(0.2)
        picture_width = WIDTH - picture_left - MARGIN
        png = render_chart(slide.chart)
        picture = page.shapes.add_picture(io.BytesIO(png), picture_left, top, width=picture_width)
        picture.name = f"chart:{slide.chart.kind}"
    if slide.subtitle or slide.bullets:
        _text_box(page, slide, MARGIN, top, text_width, body_height)
    _notes(page, slide.notes)


def _text_box(page: PptxSlide, slide: Slide, left: Emu, top: Emu, width: Emu, height: Emu) -> None:
    box = page.shapes.add_textbox(left, top, width, height)
    frame = box.text_frame
    frame.word_wrap = True
    lines: list[Bullet] = list(slide.bullets)
    first = True
    if slide.subtitle:
        frame.text = slide.subtitle
        frame.paragraphs[0].font.size = Pt(16)
        frame.paragraphs[0].font.color.rgb = MUTED
        first = False
    size = Pt(18) if len(lines) <= 6 else Pt(14)
    for line in lines:
        paragraph = frame.paragraphs[0] if first else frame.add_paragraph()
        first = False
        paragraph.text = ("• " if line.level == 0 else "– ") + line.text
        paragraph.level = line.level
        paragraph.font.size = size if line.level == 0 else Pt(size.pt - 2)
        paragraph.font.color.rgb = INK if line.level == 0 else MUTED
        paragraph.space_after = Pt(6)

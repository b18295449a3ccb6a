"""A deck as plain data: slides with a title, bullets, an optional chart and speaker notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from charts.specs import ChartSpec


@dataclass(frozen=True)
class Bullet:
    """One line of a slide; level 1 is a sub-point of the bullet above it."""

    text: str
    level: int = 0


@dataclass(frozen=True)
class Slide:
    """One slide. ``section`` names the part of the review it belongs to (for tests and Markdown).

    notes: the speaker notes; for a QBR they name where every number on the slide comes from.
    """

    title: str
    section: str
    bullets: tuple[Bullet, ...] = ()
    chart: ChartSpec | None = None
    notes: str = ""
    subtitle: str = ""


@dataclass(frozen=True)
class Outline:
    """A whole deck: the title slide's text and the slides after it."""

    title: str
    subtitle: str
    slides: tuple[Slide, ...] = field(default_factory=tuple)
    notes: str = ""

    def sections(self) -> list[str]:
        """The sections in slide order, each once."""
        seen: list[str] = []
        for slide in self.slides:
            if slide.section not in seen:
                seen.append(slide.section)
        return seen

    def charts(self) -> list[ChartSpec]:
        return [s.chart for s in self.slides if s.chart is not None]


def bullets(*lines: str | tuple[str, int]) -> tuple[Bullet, ...]:
    """Bullets from strings (level 0) or (text, level) pairs."""
    out: list[Bullet] = []
    for line in lines:
        if isinstance(line, tuple):
            out.append(Bullet(line[0], line[1]))
        else:
            out.append(Bullet(line))
    return tuple(out)

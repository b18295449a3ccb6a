"""Charts as one line of text: a sparkline for terminals and plain-text fallbacks."""

from __future__ import annotations

from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(
    values: Sequence[float], *, lo: float | None = None, hi: float | None = None, width: int = 24
) -> str:
    """Values as block characters, lowest ▁ to highest █; long series are sampled to ``width``.

    lo/hi fix the scale (0..100 for health scores, so a flat 80 does not read as a cliff);
    without them the series' own range is used.
    """
    if not values:
        return ""
    if len(values) > width:
        step = (len(values) - 1) / (width - 1)
        values = [values[round(i * step)] for i in range(width)]
    low = min(values) if lo is None else lo
    high = max(values) if hi is None else hi
    if high <= low:
        return BLOCKS[len(BLOCKS) // 2] * len(values)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[min(top, max(0, round((v - low) / (high - low) * top)))] for v in values)

"""Rendered charts cached by the hash of their content: the same data is drawn once."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from charts.specs import ChartSpec

logger = logging.getLogger(__name__)

# Bump when the drawing changes, so cached PNGs of the old look are not served.
RENDER_VERSION = 1
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


def content_key(spec: ChartSpec, dpi: int) -> str:
    """sha256 of everything that decides the picture: the spec's data, the size, the drawing version."""
    canonical = json.dumps(
        spec.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(f"{RENDER_VERSION}:{dpi}:{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class RenderedChart:
    """A chart ready to send: PNG bytes with a file name, a title and alt text from its spec."""

    key: str
    png: bytes
    kind: str
    title: str
    alt_text: str
    dpi: int

    @property
    def filename(self) -> str:
        return f"{self.kind.replace('_', '-')}-{self.key[:12]}.png"


class ChartCache:
    """A thread-safe LRU of rendered PNGs, bounded by total bytes."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            png = self._items.get(key)
            if png is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return png

    def put(self, key: str, png: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = png
            self._size += len(png)
            while self._size > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._items)


_DEFAULT = ChartCache()


def default_cache() -> ChartCache:
    return _DEFAULT


def render_cached(
    spec: ChartSpec, *, dpi: int | None = None, cache: ChartCache | None = None
) -> RenderedChart:
    """The chart of a spec, drawn only when this exact content has not been drawn before."""
    from charts.render import CHAT_DPI, render

    dpi = dpi or CHAT_DPI
    cache = cache or _DEFAULT
    key = content_key(spec, dpi)
    png = cache.get(key)
    if png is None:
        png = render(spec, dpi=dpi)
        cache.put(key, png)
    return RenderedChart(
        key=key, png=png, kind=spec.kind, title=spec.title, alt_text=spec.summary(), dpi=dpi
    )

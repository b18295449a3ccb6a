"""Who may change what: kept for its importers; the rules themselves live in handlers.access."""

from __future__ import annotations

from handlers.access import can_change, deciders, require_change, who_may_change

__all__ = ["can_change", "deciders", "require_change", "who_may_change"]

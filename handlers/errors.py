"""Errors a user can cause; each platform turns them into a clear message, and nothing changes."""

from __future__ import annotations


class HandlerError(Exception):
    """Base for errors that carry a message fit to show the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(HandlerError):
    """The actor may read this but not change it."""


class NotFound(HandlerError):
    """The thing the request names does not exist (any more)."""


class ValidationFailed(HandlerError):
    """Input did not pass validation; ``errors`` maps a field name to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors

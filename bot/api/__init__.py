"""The data API: CSV/JSON imports and account health over HTTP, behind a bearer token."""

from bot.api.http import routes

__all__ = ["routes"]

"""Imports every module that defines tables, so metadata (and Alembic) sees the whole schema."""

from storage import models, platform_models, scheduler_models, sync_models  # noqa: F401

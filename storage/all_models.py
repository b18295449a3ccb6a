"""Imports every module that defines tables, so metadata (and Alembic) sees the whole schema."""

from bot.slack import models as slack_models  # noqa: F401
from bot.teams import models as teams_models  # noqa: F401
from scheduler import models as scheduler_models  # noqa: F401
from storage import models  # noqa: F401

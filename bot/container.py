"""The long-lived services of one process (settings, database engine, health models, clock), built once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.config import Settings, get_settings
from storage.db import engine_for, session_scope

if TYPE_CHECKING:
    from domain.health_model import HealthModels

logger = logging.getLogger(__name__)


@dataclass
class Container:
    """Wiring shared by the CLI, the local chat, the HTTP server and the scheduler."""

    settings: Settings = field(default_factory=get_settings)

    @cached_property
    def engine(self) -> Engine:
        return engine_for(self.settings.database_url)

    @cached_property
    def health_models(self) -> HealthModels:
        from domain.health_model import load_health_models

        return load_health_models(self.settings.health_model)

    def today(self) -> date:
        """The business date: CSM_TODAY when pinned (demos, tests), else the real date."""
        if self.settings.today:
            return date.fromisoformat(self.settings.today)
        return date.today()

    def warm_up(self) -> threading.Thread:
        """Get the first message's work done before it arrives, in the background: the account-name
        index with every structure it builds on first need, the intent model and the word list.

        A message that arrives meanwhile waits for this build instead of starting its own.
        """

        def work() -> None:
            from domain.nlu.intent_model import default_model
            from domain.nlu.ordinary import common_words
            from handlers.name_index import warm_account_index

            try:
                default_model()
                common_words()  # the word list that tells a name from a word (read on first need)
                with self.session() as session:
                    index = warm_account_index(session)
                logger.info("name index ready: %d accounts", len(index))
            except Exception:  # a cold first message is slower, not wrong: log and carry on
                logger.exception("warm-up failed")

        thread = threading.Thread(target=work, name="warm-up", daemon=True)
        thread.start()
        return thread

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session

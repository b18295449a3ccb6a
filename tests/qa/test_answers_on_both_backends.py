"""The portfolio answers read rows below SQLAlchemy's type processing (10,000 accounts): the same
questions give the same answers on PostgreSQL as on SQLite."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from domain.health_model import load_health_models
from handlers.ask import answer
from handlers.context import Actor, ChatContext
from handlers.demo import seed_demo
from storage.db import make_engine
from storage.models import CSM

TODAY = date(2026, 11, 23)
QUESTIONS = (
    "renewals next quarter",
    "renewals > $50k in the next 6 months",
    "my accounts",
    "which accounts are at risk",
    "how much ARR is at risk this quarter",
    "top 5 accounts by ARR",
    "overdue milestones",
    "what should I focus on today?",
    "GRR for my book this year",
    "churn rate last quarter",
    "metrics",
    "expansion signals",
)


def answers(engine: Engine) -> dict[str, Any]:
    models = load_health_models(None)
    out: dict[str, Any] = {}
    with Session(engine) as session:
        for email in ("dana@example.com", "alex@example.com"):
            csm = session.exec(select(CSM).where(CSM.email == email)).one()
            actor = Actor(csm_id=csm.id, name=csm.name, email=csm.email, role=csm.role)
            for n, question in enumerate(QUESTIONS):
                ctx = ChatContext(
                    platform="console", actor=actor, today=TODAY, thread_key=f"t:{email}:{n}"
                )
                reply = answer(session, question, ctx, models=models)
                out[f"{email}: {question}"] = json.loads(
                    json.dumps({"text": reply.text, "context": reply.context}, default=str)
                )
                session.commit()
    return out


def test_the_same_answers_on_each_backend(
    any_engine: Engine, migrated_sqlite_template: Path, tmp_path: Path
) -> None:
    models = load_health_models(None)
    reference_path = tmp_path / "reference.db"
    shutil.copyfile(migrated_sqlite_template, reference_path)
    reference = make_engine(f"sqlite:///{reference_path}")
    for engine in (reference, any_engine):
        seed_demo(engine, today=TODAY, accounts=24, days=40, snapshot_days=8, models=models)
    expected, got = answers(reference), answers(any_engine)
    reference.dispose()
    assert any(v["context"].get("renewals") for v in expected.values())  # not all empty
    for key, value in expected.items():
        assert got[key] == value, key

"""The Teams size rule's cost: a Reply → message with the whole activity measured in UTF-16 (and lists
cut until it fits), next to rendering the card alone and measuring it in UTF-8 (the rule before)."""

# Replies come from the real handlers on a small demo portfolio (12 accounts), plus Acme's success
# plan grown to 40 long milestones (too big for one message: cut once, rendered twice). Each figure
# is the median of several rounds of N renders, in the same process.
#
#     .venv/bin/python bench/bench_teams_cards.py [--renders 300]

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TODAY = "2026-11-23"


def replies(db: Path) -> dict[str, Any]:
    from sqlmodel import select

    from bot.config import Settings
    from bot.container import Container
    from handlers import health, plan
    from handlers.context import Actor, ChatContext
    from handlers.demo import seed_demo
    from storage.db import make_engine, upgrade
    from storage.models import CSM, Account, Milestone, Objective, SuccessPlan

    url = f"sqlite:///{db}"
    upgrade(url)
    engine = make_engine(url)
    seed_demo(engine, today=__import__("datetime").date.fromisoformat(TODAY), accounts=12, days=30)
    engine.dispose()
    container = Container(settings=Settings(database_url=url, today=TODAY))
    with container.session() as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        ctx = ChatContext(
            platform="teams",
            actor=Actor(csm_id=dana.id, name=dana.name, email=dana.email, role=dana.role),
            today=container.today(),
        )
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        out = {
            "health card": health.account_health(
                session, ctx=ctx, models=container.health_models, account_id=acme.id
            ),
            "success plan": plan.success_plan(session, ctx=ctx, account_id=acme.id),
        }
        success_plan = session.exec(
            select(SuccessPlan).where(SuccessPlan.account_id == acme.id)
        ).one()
        objective = session.exec(
            select(Objective).where(Objective.plan_id == success_plan.id)
        ).first()
        for n in range(40):
            session.add(
                Milestone(
                    objective_id=objective.id,
                    account_id=acme.id or 0,
                    title=f"Milestone {n:02d}: " + "roll out reporting to a region " * 16,
                    position=100 + n,
                )
            )
        session.flush()
        out["long success plan"] = plan.success_plan(session, ctx=ctx, account_id=acme.id)
    return out


def card_then_utf8(reply: Any) -> int:
    """The rule before: render the card, measure it alone in UTF-8."""
    from bot.render import render_json

    card = render_json("teams", reply.template, reply.context)
    return len(json.dumps(card, separators=(",", ":")).encode("utf-8"))


def whole_message_utf16(reply: Any) -> Any:
    """The rule now: the whole activity in UTF-16, lists cut until it fits."""
    from bot.teams.cards import message_for

    return message_for(reply)


def median_ms(work: Callable[[], Any], renders: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(renders):
            work()
        times.append((time.perf_counter() - started) / renders * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=300)
    args = parser.parse_args()
    import logging

    from bot.teams.cards import activity_size

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        built = replies(Path(tmp) / "bench.db")
    from bot.render import render_json
    from bot.teams.cards import utf16_size

    print(
        f"{'reply':<18} {'before: card, UTF-8':>21} {'(as Teams counts it)':>21}"
        f" {'now: message, UTF-16':>22} {'time ratio':>10}"
    )
    for name, reply in built.items():
        before = median_ms(lambda r=reply: card_then_utf8(r), args.renders)
        now = median_ms(lambda r=reply: whole_message_utf16(r), args.renders)
        size_before = card_then_utf8(reply)
        size_now = activity_size(whole_message_utf16(reply))
        teams_counts = utf16_size(render_json("teams", reply.template, reply.context))
        print(
            f"{name:<18} {before:>8.3f} ms ({size_before / 1000:>5.1f} kB)"
            f" {teams_counts / 1000:>13.1f} kB UTF-16"
            f" {now:>9.3f} ms ({size_now / 1000:>5.1f} kB) {now / before:>9.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""QA regressions: the daily digest's notification line reads as English."""

from __future__ import annotations

from datetime import date

from handlers.context import ChatContext
from handlers.digests import daily_digest
from handlers.identity import actor_by_email


def test_qa_daily_digest_text_singular_escalation(demo_container) -> None:
    with demo_container.session() as session:
        dana = actor_by_email(session, "dana@example.com")
        assert dana is not None
        ctx = ChatContext(platform="scheduler", actor=dana, today=date(2026, 11, 23))
        reply = daily_digest(session, ctx=ctx, csm_id=dana.csm_id)
    assert reply.context["escalations_total"] == 1  # Acme's sev1
    assert reply.text.endswith("; 1 open escalation.")
    assert "of 12 accounts;" in reply.text
    assert "16 overdue milestones;" in reply.text


def test_qa_manager_digest_header_counts_todays_book(demo_container) -> None:
    from bot.render import render_text
    from handlers.digests import manager_digest

    with demo_container.session() as session:
        alex = actor_by_email(session, "alex@example.com")
        assert alex is not None
        ctx = ChatContext(platform="scheduler", actor=alex, today=date(2026, 11, 23))
        reply = manager_digest(session, ctx=ctx, manager_id=alex.csm_id)
    ctx_ = reply.context
    # Coho Software churned on 2026-10-30: it is in the quarter's GRR base, not in today's book.
    assert ctx_["accounts"] == sum(c["accounts"] for c in ctx_["csms"]) == 58
    assert ctx_["churned_this_quarter"] == 1
    assert ctx_["quarter"]["start_arr"] > ctx_["arr_total"]
    assert round(ctx_["arr_total"]) == 10_465_400
    text = render_text(reply)
    assert "58 accounts, $10.5M ARR across 6 CSMs (1 churned this quarter)\n" in text
    assert "; 1 account worse," in reply.text

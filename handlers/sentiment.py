"""CSM sentiment: the explicit subjective indicator (green/amber/red + reason), set from chat."""

from __future__ import annotations

from sqlmodel import Session, select

from domain.health_model import HealthModels
from handlers.audit import record
from handlers.context import ChatContext
from handlers.errors import NotFound, ValidationFailed
from handlers.health import SENTIMENT_KEY, SENTIMENT_VALUES, health_card, rescore_today
from handlers.permissions import require_change
from handlers.reply import Reply
from storage.models import Account, IndicatorReading

REASON_MAX = 300


def set_sentiment(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    account_id: int,
    value: str,
    reason: str | None = None,
) -> Reply:
    """Record today's sentiment for an account (one per day; a second call the same day replaces it)."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"Account {account_id} no longer exists.")
    errors: dict[str, str] = {}
    if value not in SENTIMENT_VALUES:
        errors["value"] = "must be green, amber or red"
    reason = (reason or "").strip() or None
    if reason and len(reason) > REASON_MAX:
        errors["reason"] = f"Keep the reason under {REASON_MAX} characters"
    if errors:
        raise ValidationFailed(errors)
    require_change(session, ctx.actor, account, "the sentiment")
    existing = session.exec(
        select(IndicatorReading).where(
            IndicatorReading.account_id == account_id,
            IndicatorReading.indicator_key == SENTIMENT_KEY,
            IndicatorReading.day == ctx.today,
        )
    ).first()
    before = {"value": existing.value, "note": existing.note} if existing else None
    reading = existing or IndicatorReading(
        account_id=account_id, indicator_key=SENTIMENT_KEY, day=ctx.today, value=0.0
    )
    reading.value = SENTIMENT_VALUES[value]
    reading.note = reason
    reading.source = f"csm:{ctx.actor.csm_id}"
    session.add(reading)
    record(
        session,
        ctx=ctx,
        action="sentiment.set",
        entity="account",
        entity_id=account_id,
        before=before,
        after={"value": reading.value, "note": reason},
    )
    session.flush()
    # Rescore today so the card shows the effect at once, not after the nightly job.
    rescore_today(session, account, models=models, today=ctx.today)
    return health_card(session, account, ctx=ctx, models=models)

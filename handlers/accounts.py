"""Finding the account a request is about, and the facts about it every reply shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import bindparam, func
from sqlalchemy.engine import Row
from sqlmodel import Session, col, select

from domain.accounts_index import Resolution
from handlers import access
from handlers.context import ChatContext
from handlers.name_index import pending_flushed
from handlers.reply import Reply
from storage.models import CSM, Account, HealthSnapshot

T = TypeVar("T")


def not_here_reply() -> Reply:
    """What an external (shared) channel gets instead of another account's data."""
    reason = (
        "This channel is shared with another organisation, so I only show the account it is "
        "mapped to here. Ask me in a direct message instead."
    )
    return Reply(template="not_here", context={"reason": reason}, text=reason)


def resolution_reply(resolution: Resolution, intent: str) -> Reply:
    """Reply for a name that did not resolve to one account: suggestions or a choice."""
    if resolution.status == "ambiguous":
        choices = [{"id": c.id, "name": c.name} for c in resolution.candidates]
        names = ", ".join(c["name"] for c in choices)
        return Reply(
            template="account_choices",
            context={"query": resolution.query, "intent": intent, "choices": choices},
            text=f"Which account do you mean by “{resolution.query}”? {names}",
        )
    suggestions = [{"id": c.id, "name": c.name} for c in resolution.candidates]
    text = f"I couldn't find an account called “{resolution.query}”."
    if suggestions:
        text += " Did you mean " + ", ".join(s["name"] for s in suggestions) + "?"
    return Reply(
        template="account_not_found",
        context={"query": resolution.query, "suggestions": suggestions},
        text=text,
    )


def unresolved_reply(ctx: ChatContext, resolution: Resolution, intent: str) -> Reply:
    """What to say when a name did not resolve to one account the context may show.

    In a shared channel nothing but the mapped accounts resolves, and the answer names no
    other account and does not say whether one exists: it says why it shows nothing.
    """
    if ctx.external:
        return not_here_reply()
    return resolution_reply(resolution, intent)


def resolve_account(
    session: Session,
    *,
    ctx: ChatContext,
    intent: str,
    query: str | None = None,
    account_id: int | None = None,
) -> Account | Reply:
    """The Account the request names, or the Reply to send instead (not found, which one, not here)."""
    return resolve_loaded(
        session,
        lambda found: session.get(Account, found),
        ctx=ctx,
        intent=intent,
        query=query,
        account_id=account_id,
    )


def resolve_loaded(
    session: Session,
    load: Callable[[int], T | None],
    *,
    ctx: ChatContext,
    intent: str,
    query: str | None = None,
    account_id: int | None = None,
) -> T | Reply:
    """resolve_account with the loading left to the caller (an ORM Account, or a read-only row).

    Raises access.NoAccess for someone who may not read accounts (before any name is looked at);
    in a shared channel only the accounts mapped to it resolve, so no other name comes back.
    """
    access.require(session, ctx, access.Action.READ_ACCOUNT)
    account: T | None = None
    if account_id is not None:
        account = load(account_id)
        if account is None:
            return unresolved_reply(
                ctx,
                Resolution(
                    status="none",
                    query=str(account_id),
                    account_id=None,
                    name=None,
                    candidates=(),
                ),
                intent,
            )
        found = account_id
    else:
        text = (query or "").strip()
        if not text:
            return Reply(
                template="account_not_found",
                context={"query": "", "suggestions": []},
                text="Which account? Try “health acme”.",
            )
        resolution = access.visible_index(session, ctx).resolve(text)
        if resolution.account_id is None or resolution.status in ("ambiguous", "none"):
            return unresolved_reply(ctx, resolution, intent)
        found = resolution.account_id
        account = load(found)
        if account is None:  # deleted between index build and now
            return unresolved_reply(ctx, resolution, intent)
    if not access.shown_here(ctx, found):
        return not_here_reply()
    return account


@dataclass(frozen=True)
class OwnerFacts:
    """The owner CSM as a read-only card needs it (name and email to show, manager for rights)."""

    id: int
    name: str
    email: str | None
    manager_id: int | None


_ACCOUNT = Account.__table__
_CSM = CSM.__table__
# Built once: composing a statement costs more than SQLite takes to answer it.
_ACCOUNT_WITH_OWNER = (
    select(  # type: ignore[call-overload]
        _ACCOUNT,
        _CSM.c.name.label("owner_name"),
        _CSM.c.email.label("owner_email"),
        _CSM.c.manager_id.label("owner_manager_id"),
    )
    .select_from(_ACCOUNT.outerjoin(_CSM, _CSM.c.id == _ACCOUNT.c.owner_id))
    .where(_ACCOUNT.c.id == bindparam("account_id"))
)


def account_row(session: Session, account_id: int) -> Row[Any] | None:
    """One account as a read-only row (attributes named like Account's), with its owner's facts.

    For read-only replies such as the health card: one Core statement instead of two ORM loads.
    """
    pending_flushed(session)
    return (
        session.connection().execute(_ACCOUNT_WITH_OWNER, {"account_id": account_id}).one_or_none()
    )


def owner_from_row(row: Any) -> OwnerFacts | None:
    """The owner facts account_row() joined in; None when the account has no (existing) owner."""
    if row.owner_id is None or row.owner_name is None:
        return None
    return OwnerFacts(
        id=row.owner_id, name=row.owner_name, email=row.owner_email, manager_id=row.owner_manager_id
    )


def csms_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, CSM]:
    """The CSMs with these ids (owners of a list of rows) in one query; None ids are skipped."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = session.exec(select(CSM).where(col(CSM.id).in_(wanted))).all()
    return {c.id: c for c in rows if c.id}


def owner_of(session: Session, account: Account) -> CSM | None:
    return session.get(CSM, account.owner_id) if account.owner_id else None


def account_summary(
    session: Session, account: Account, today: date, *, owner: CSM | OwnerFacts | None = None
) -> dict[str, Any]:
    """The facts about an account that most replies show, as plain data.

    owner: the account's owner when the caller has it already (else it is looked up).
    """
    if owner is None:
        owner = owner_of(session, account)
    return {
        "id": account.id,
        "name": account.name,
        "external_id": account.external_id,
        "segment": account.segment,
        "tier": account.tier,
        "arr": account.arr,
        "lifecycle_stage": account.lifecycle_stage,
        "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
        "days_to_renewal": (account.renewal_date - today).days if account.renewal_date else None,
        "licensed_seats": account.licensed_seats,
        "owner": {"id": owner.id, "name": owner.name, "email": owner.email} if owner else None,
    }


def latest_snapshots(
    session: Session, account_ids: list[int] | None, today: date
) -> dict[int, HealthSnapshot]:
    """The newest snapshot on or before today for each account (all accounts when ids is None)."""
    newest = (
        select(HealthSnapshot.account_id, func.max(HealthSnapshot.day).label("day"))
        .where(HealthSnapshot.day <= today)
        .group_by(HealthSnapshot.account_id)
    )
    if account_ids is not None:
        if not account_ids:
            return {}
        newest = newest.where(HealthSnapshot.account_id.in_(account_ids))
    sub = newest.subquery()
    rows = session.exec(
        select(HealthSnapshot).join(
            sub,
            (HealthSnapshot.account_id == sub.c.account_id) & (HealthSnapshot.day == sub.c.day),
        )
    ).all()
    return {row.account_id: row for row in rows}


def snapshot_on_or_before(session: Session, account_id: int, day: date) -> HealthSnapshot | None:
    return session.exec(
        select(HealthSnapshot)
        .where(HealthSnapshot.account_id == account_id, HealthSnapshot.day <= day)
        .order_by(HealthSnapshot.day.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()


def scores_on(session: Session, account_ids: list[int], day: date) -> dict[int, float | None]:
    """Each account's score on a past day (its newest snapshot on or before it), for deltas."""
    if not account_ids:
        return {}
    sub = (
        select(HealthSnapshot.account_id, func.max(HealthSnapshot.day).label("day"))
        .where(HealthSnapshot.day <= day, HealthSnapshot.account_id.in_(account_ids))
        .group_by(HealthSnapshot.account_id)
        .subquery()
    )
    rows = session.exec(
        select(HealthSnapshot.account_id, HealthSnapshot.score).join(
            sub,
            (HealthSnapshot.account_id == sub.c.account_id) & (HealthSnapshot.day == sub.c.day),
        )
    ).all()
    return {r[0]: r[1] for r in rows}

"""Who may change what: the owner CSM, the owner's manager, or an admin. Everyone else reads."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from handlers.context import Actor
from handlers.errors import PermissionDenied
from storage.models import CSM, Account


def can_change(session: Session, actor: Actor, account: Account, *, owner: Any = None) -> bool:
    """owner: the account's owner CSM (or its OwnerFacts) when the caller has it; else looked up."""
    if actor.csm_id is None:
        return False
    if actor.role == "admin" or account.owner_id == actor.csm_id:
        return True
    if actor.role == "manager" and account.owner_id is not None:
        if owner is None or owner.id != account.owner_id:
            owner = session.get(CSM, account.owner_id)
        return owner is not None and owner.manager_id == actor.csm_id
    return False


def who_may_change(session: Session, account: Account) -> str:
    """ "Dana Whitfield (the owner), their manager or an admin": said wherever someone may not."""
    owner = session.get(CSM, account.owner_id) if account.owner_id else None
    who = (
        f"{owner.name} (the owner), their manager" if owner else "the account owner, their manager"
    )
    return f"{who} or an admin"


def deciders(session: Session, account: Account) -> list[int]:
    """The CSM ids who may change things on an account: the owner, the owner's manager, admins.

    In that order, so a platform that can only single out a few people keeps the closest ones.
    """
    ids: list[int] = []
    owner = session.get(CSM, account.owner_id) if account.owner_id else None
    if owner is not None and owner.id is not None:
        ids.append(owner.id)
        if owner.manager_id is not None:
            ids.append(owner.manager_id)
    admins = session.exec(select(CSM.id).where(CSM.role == "admin").order_by(col(CSM.id))).all()
    ids += [a for a in admins if a is not None and a not in ids]
    return ids


def require_change(session: Session, actor: Actor, account: Account, what: str) -> None:
    """Raise PermissionDenied, with a message that says who can, unless the actor may change it."""
    if can_change(session, actor, account):
        return
    if actor.csm_id is None:
        raise PermissionDenied(
            f"I don't know you yet, so I can't let you change {what} for {account.name}. "
            "Ask an admin to add your email to CSM Assistant."
        )
    raise PermissionDenied(
        f"Only {who_may_change(session, account)} can change {what} for {account.name}. "
        "Nothing was changed."
    )

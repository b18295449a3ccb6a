"""Matching a chat user to a CSM: by the platform id we stored, else by email (then we store the id)."""

from __future__ import annotations

import logging

from sqlalchemy import func
from sqlmodel import Session, select

from handlers.context import Actor, Platform
from storage.models import CSM

logger = logging.getLogger(__name__)

_ID_COLUMN = {"slack": "slack_user_id", "teams": "teams_user_id"}


def actor_of(csm: CSM, platform_user_id: str | None = None) -> Actor:
    return Actor(
        csm_id=csm.id,
        name=csm.name,
        email=csm.email,
        role=csm.role,
        platform_user_id=platform_user_id,
        manager_id=csm.manager_id,
    )


def unknown_actor(
    user_id: str | None, name: str | None = None, *, barred: str | None = None
) -> Actor:
    """Someone we cannot match (or may not trust): they see no account data (handlers.access)."""
    return Actor(
        csm_id=None, name=name or "someone", role="unknown", platform_user_id=user_id, barred=barred
    )


def actor_for(
    session: Session,
    *,
    platform: Platform,
    user_id: str,
    email: str | None = None,
    name: str | None = None,
    link: bool = True,
) -> Actor:
    """The Actor for a platform user; links the platform id to the person on the first email match.

    Linking happens once: a person already linked to another user id of this platform is never
    matched by email alone (someone else with their email address does not become them).

    Args:
        link: store the platform id on an email match; False when the request could not be
            verified (Teams' local development mode), so nothing unverified is remembered.
    """
    column_name = _ID_COLUMN.get(platform)
    if column_name:
        column = getattr(CSM, column_name)
        csm = session.exec(select(CSM).where(column == user_id)).first()
        if csm is not None:
            return actor_of(csm, user_id)
    if email:
        csm = session.exec(
            select(CSM).where(func.lower(CSM.email) == email.strip().lower())
        ).first()
        if csm is not None:
            linked = getattr(csm, column_name) if column_name else None
            if linked and linked != user_id:
                logger.warning(
                    "%s user %s has the email of person %s, who is linked to another %s user: "
                    "not matched",
                    platform,
                    user_id,
                    csm.id,
                    platform,
                )
                return unknown_actor(user_id, name)
            if column_name and link and not linked:
                setattr(csm, column_name, user_id)
                session.add(csm)
                session.flush()
            return actor_of(csm, user_id)
    return unknown_actor(user_id, name)


def actor_by_email(session: Session, email: str | None) -> Actor | None:
    """The local chat's `--as EMAIL`; None when nobody has that email."""
    if not email:
        return None
    csm = session.exec(select(CSM).where(func.lower(CSM.email) == email.strip().lower())).first()
    return actor_of(csm) if csm else None


def default_console_actor(session: Session, email: str | None) -> Actor:
    """Who the local chat answers as: the CSM with that email, else the first CSM.

    An email nobody has gives an unknown, read-only actor: silently answering as someone else
    would hand out their write rights.
    """
    if email:
        return actor_by_email(session, email) or unknown_actor(None, email)
    csm = session.exec(select(CSM).where(CSM.role == "csm").order_by(CSM.id)).first()
    return actor_of(csm) if csm else unknown_actor(None, "you")

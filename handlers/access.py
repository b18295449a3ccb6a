"""Who may see and change what: the access rules of CSM Assistant, in one place (docs/access.md).

Every path asks here: Slack, Teams, the local chat, the scheduler and the data API build a
ChatContext (who asks, from where) and the handlers call ``require``/``may``/``can_change`` and
``visible_index`` before they show or change anything. Closed by default: an actor with no
person record, or one the platform tells us is a guest or from another organisation, sees no
account data at all and gets one line saying who can add them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from domain.accounts_index import AccountIndex, AccountName
from handlers.context import Actor, ChatContext
from handlers.errors import PermissionDenied
from handlers.name_index import account_index
from storage.models import CSM, Account

# People's roles, most rights first. "viewer": internal staff (sales, support) who read.
ROLES = ("admin", "manager", "csm", "viewer")
# Not people: the data API's bearer token, and the scheduler when it posts for nobody in particular.
SERVICE_ROLE = "service"
SYSTEM_ROLE = "system"

# Why someone sees no account data even though we may know their email.
UNKNOWN = "unknown"  # no person record (or a record with no role we know)
GUEST = "guest"  # Slack guest (is_restricted / is_ultra_restricted), Teams guest or anonymous
EXTERNAL = "external"  # Slack user of another organisation (is_stranger, Slack Connect)
OTHER_TENANT = "other_tenant"  # Teams user of another Microsoft 365 tenant
UNVERIFIED = "unverified"  # the platform could not tell us who this is (an outage): for now
BARRED_REASONS = (UNKNOWN, GUEST, EXTERNAL, OTHER_TENANT, UNVERIFIED)


class Action(StrEnum):
    """What a request does, as far as access is concerned."""

    READ_ACCOUNT = "read_account"  # one account: health card, plan, changes, renewal, QBR prep
    READ_PORTFOLIO = "read_portfolio"  # lists: risks, renewals, my accounts, overdue, App Home
    CHANGE_ACCOUNT = "change_account"  # milestones, sentiment, alerts, escalation updates
    OPEN_ESCALATION = "open_escalation"
    OWN_SETTINGS = "own_settings"  # one's own digest time and timezone
    IMPORT_DATA = "import_data"  # the data API's imports


# The role × action table of docs/access.md. CHANGE_ACCOUNT here means "may change some
# accounts": which ones is can_change's rule (own, the team's, or all).
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "admin": frozenset(
        {
            Action.READ_ACCOUNT,
            Action.READ_PORTFOLIO,
            Action.CHANGE_ACCOUNT,
            Action.OPEN_ESCALATION,
            Action.OWN_SETTINGS,
        }
    ),
    "manager": frozenset(
        {
            Action.READ_ACCOUNT,
            Action.READ_PORTFOLIO,
            Action.CHANGE_ACCOUNT,
            Action.OPEN_ESCALATION,
            Action.OWN_SETTINGS,
        }
    ),
    "csm": frozenset(
        {
            Action.READ_ACCOUNT,
            Action.READ_PORTFOLIO,
            Action.CHANGE_ACCOUNT,
            Action.OPEN_ESCALATION,
            Action.OWN_SETTINGS,
        }
    ),
    "viewer": frozenset({Action.READ_ACCOUNT, Action.READ_PORTFOLIO, Action.OWN_SETTINGS}),
    SERVICE_ROLE: frozenset({Action.READ_ACCOUNT, Action.IMPORT_DATA}),
    SYSTEM_ROLE: frozenset({Action.READ_ACCOUNT, Action.READ_PORTFOLIO}),
}


def service_actor(name: str = "data API") -> Actor:
    """Whoever holds the data API's bearer token: reads account health and imports, nothing else."""
    return Actor(csm_id=None, name=name, role=SERVICE_ROLE)


def system_actor() -> Actor:
    """The scheduler posting for nobody in particular (a team channel): reads, never changes."""
    return Actor(csm_id=None, name="CSM Assistant", role=SYSTEM_ROLE)


# -- people, as the data API may change them --------------------------------------------------------
# The platform ids that say who a chat user is (handlers.identity links them from verified requests).
IDENTITY_FIELDS = ("slack_user_id", "teams_user_id", "teams_aad_object_id")
NO_ADMIN_BY_TOKEN = (
    "the data API cannot grant or remove the admin role; an admin does that on the server "
    "(csm-bot people set EMAIL --role ...)"
)
NO_LINK_BY_TOKEN = (
    "the data API cannot link a person to a Slack or Teams user; the link is made from their "
    "own first message, or on the server (csm-bot people set EMAIL --slack-id ...)"
)


def service_person_refusals(
    stored: Mapping[str, Any] | None, wanted: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """What the data API's token may not change about a person: (column, reason) pairs.

    The token manages the team (names, roles below admin, managers, time zones) but not who is
    an admin nor who is who in chat: otherwise whoever holds an integration's token could make
    themselves an admin, or point an admin's record at their own Slack user and answer as them.
    stored: the person as stored (None for a new one); wanted: the columns the request sets.
    """
    stored = stored or {}
    refusals: list[tuple[str, str]] = []
    role = wanted.get("role")
    if role is not None and (role == "admin") != (stored.get("role") == "admin"):
        refusals.append(("role", NO_ADMIN_BY_TOKEN))
    for name in IDENTITY_FIELDS:
        if name in wanted and (wanted[name] or None) != (stored.get(name) or None):
            refusals.append((name, NO_LINK_BY_TOKEN))
    return refusals


class NoAccess(PermissionDenied):
    """The actor may not see account data at all; the message says who can add them."""


# -- who is barred ---------------------------------------------------------------------------------
def barred_reason(actor: Actor) -> str | None:
    """Why this actor sees no account data, or None when their role decides."""
    if actor.barred:
        return actor.barred
    if actor.role in (SERVICE_ROLE, SYSTEM_ROLE):
        return None
    if actor.csm_id is None or actor.role not in ROLES:
        return UNKNOWN
    return None


def may(actor: Actor, action: Action) -> bool:
    """The role × action table, after the barred check (no account is involved yet)."""
    if barred_reason(actor) is not None:
        return False
    return action in ROLE_ACTIONS.get(actor.role, frozenset())


def admin_names(session: Session, limit: int = 3) -> list[str]:
    """Who can add people: the admins, by name."""
    rows = session.exec(
        select(CSM.name).where(CSM.role == "admin").order_by(col(CSM.name)).limit(limit)
    ).all()
    return [name for name in rows if name]


def _who_can_add(session: Session) -> str:
    names = admin_names(session)
    if not names:
        return "whoever runs CSM Assistant here"
    if len(names) == 1:
        return f"{names[0]} (an admin)"
    return ", ".join(names[:-1]) + f" or {names[-1]} (admins)"


def no_access_line(session: Session, actor: Actor) -> str:
    """The one friendly line a barred actor gets instead of account data."""
    who = _who_can_add(session)
    reason = barred_reason(actor) or UNKNOWN
    if reason == GUEST:
        return (
            "Guest accounts can't see customer data in CSM Assistant. "
            f"If you need access, ask {who}."
        )
    if reason == UNVERIFIED:
        return (
            "I couldn't check who you are just now (the chat platform didn't answer), so I "
            "can't show account data yet. Try again in a moment."
        )
    if reason in (EXTERNAL, OTHER_TENANT):
        return (
            "You're signed in from another organisation, so I can't show you customer data. "
            f"If you work here and need access, ask {who} to add you."
        )
    return f"I don't know you yet, so I can't show you account data. Ask {who} to add you."


def _role_refusal(actor: Actor, action: Action) -> str:
    if action == Action.OPEN_ESCALATION:
        return (
            "Viewers can read accounts but not open escalations. Ask the account's owner or "
            "their manager to open it. Nothing was opened."
        )
    if action == Action.CHANGE_ACCOUNT:
        return "Viewers can read accounts but not change them. Nothing was changed."
    if action == Action.IMPORT_DATA:
        return "Imports need the data API token or the command line. Nothing was imported."
    return f"Your role ({actor.role}) doesn't allow that."


def require(session: Session, ctx: ChatContext, action: Action) -> None:
    """Raise NoAccess (barred) or PermissionDenied (role) unless the actor may do ``action``."""
    if barred_reason(ctx.actor) is not None:
        raise NoAccess(no_access_line(session, ctx.actor))
    if not may(ctx.actor, action):
        raise PermissionDenied(_role_refusal(ctx.actor, action))


# -- which accounts --------------------------------------------------------------------------------
def can_change(session: Session, actor: Actor, account: Any, *, owner: Any = None) -> bool:
    """May ``actor`` change this account (milestones, sentiment, alerts, escalations)?

    The owner CSM, the owner's manager, or an admin; never a viewer or a barred actor.
    owner: the account's owner CSM (or its OwnerFacts) when the caller has it; else looked up.
    """
    if not may(actor, Action.CHANGE_ACCOUNT) or actor.csm_id is None:
        return False
    if actor.role == "admin" or account.owner_id == actor.csm_id:
        return True
    if actor.role == "manager" and account.owner_id is not None:
        if owner is None or owner.id != account.owner_id:
            owner = session.get(CSM, account.owner_id)
        return owner is not None and owner.manager_id == actor.csm_id
    return False


def who_may_change(session: Session, account: Any) -> str:
    """ "Dana Whitfield (the owner), their manager or an admin": said wherever someone may not."""
    owner = session.get(CSM, account.owner_id) if account.owner_id else None
    who = (
        f"{owner.name} (the owner), their manager" if owner else "the account owner, their manager"
    )
    return f"{who} or an admin"


def deciders(session: Session, account: Any) -> list[int]:
    """The person ids who may change things on an account: the owner, the owner's manager, admins.

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
    if barred_reason(actor) is not None:
        raise NoAccess(no_access_line(session, actor))
    if actor.role == "viewer":
        raise PermissionDenied(_role_refusal(actor, Action.CHANGE_ACCOUNT))
    raise PermissionDenied(
        f"Only {who_may_change(session, account)} can change {what} for {account.name}. "
        "Nothing was changed."
    )


def shown_here(ctx: ChatContext, account_id: int | None) -> bool:
    """The shared-channel rule: there, only the accounts mapped to the channel may be shown."""
    return not ctx.external or (account_id is not None and account_id in ctx.allowed_account_ids)


def shared_channel_accounts(mapped: Iterable[int | None], *, enabled: bool) -> frozenset[int]:
    """What a channel shared with another organisation may show: the accounts mapped to it, and
    only when the admins turned that on (CSM_SHARED_CHANNEL_ANSWERS); by default nothing, since
    the customer reads along (design.md: "only the account mapped to that channel, and only when
    configured")."""
    if not enabled:
        return frozenset()
    return frozenset(i for i in mapped if i is not None)


def escalations_shown_here(ctx: ChatContext) -> bool:
    """Escalations are internal (severity, owner, notes, SLA): never opened, shown or changed in a
    channel shared with another organisation, not even those of the account mapped to it."""
    return not ctx.external


# Said when an answer may not be posted for everyone (a Share button where we cannot tell who is in).
NOT_SHAREABLE = (
    "I can't see who is in this conversation (I'm not part of it), so I don't post account data "
    "into it: someone from outside, or a guest, may be in it. The answer stays private to you."
)


# Said when Share is refused because a guest or someone of another organisation is in the channel.
OUTSIDERS_HERE = (
    "This channel has guests or people from outside the company, so I don't post account data "
    "into it. The answer stays private to you."
)


def shareable_here(ctx: ChatContext) -> bool:
    """Whether an answer may be posted for everyone in the conversation (Slack's Share): only
    where we know who is in it. In a shared channel, shown_here decides what on top."""
    return ctx.audience_known


def lists_shown_here(ctx: ChatContext) -> bool:
    """Portfolio lists name many customers: never in a channel shared with another organisation."""
    return not ctx.external


# Scheduled posts about one account: its alert, its renewal reminder, its QBR prep. The only
# scheduled posts a channel shared with another organisation may get (summaries, digests and
# lists name many customers), and only about the account mapped to that channel.
# QBR prep is the CSM's own preparation (risks, what to leave out of the review): never there.
ONE_ACCOUNT_POSTS = frozenset({"risk_alert", "renewal_reminder"})


def post_shown_here(ctx: ChatContext, template: str, context: Mapping[str, Any]) -> bool:
    """The shared-channel rule for a scheduled post (a Reply's template and context)."""
    if not ctx.external:
        return True
    if template not in ONE_ACCOUNT_POSTS:
        return False
    account = context.get("account")
    account_id = account.get("id") if isinstance(account, Mapping) else None
    return isinstance(account_id, int) and shown_here(ctx, account_id)


def post_shown_in_shared_channel(
    mapped: Iterable[int | None],
    template: str,
    context: Mapping[str, Any],
    *,
    today: date,
    enabled: bool,
) -> bool:
    """``post_shown_here`` for a scheduled post to a channel shared with another organisation:
    the scheduler there may show the accounts ``mapped`` to it, when ``enabled`` (see
    ``shared_channel_accounts``)."""
    ctx = ChatContext(
        platform="scheduler",
        actor=system_actor(),
        today=today,
        external=True,
        allowed_account_ids=shared_channel_accounts(mapped, enabled=enabled),
    )
    return post_shown_here(ctx, template, context)


def visible_index(session: Session, ctx: ChatContext) -> AccountIndex:
    """The account names a request may resolve against (and suggest from).

    In a shared channel only the mapped accounts are in it, so "which one do you mean" and
    "did you mean" can never name another customer there.
    """
    if not ctx.external:
        return account_index(session)
    if not ctx.allowed_account_ids:
        return AccountIndex(())
    rows = session.exec(
        select(Account.id, Account.name, Account.aliases).where(
            col(Account.id).in_(ctx.allowed_account_ids)
        )
    ).all()
    return AccountIndex(
        AccountName(id=row[0], name=row[1], aliases=tuple(row[2] or ()))
        for row in rows
        if row[0] is not None
    )


@dataclass(frozen=True)
class Scope:
    """Which accounts a portfolio question covers, and how to say so."""

    owner_ids: frozenset[int] | None  # None = every account
    label: str


def _team(session: Session, manager_id: int) -> frozenset[int]:
    reports = session.exec(select(CSM.id).where(CSM.manager_id == manager_id)).all()
    return frozenset({manager_id, *[r for r in reports if r]})


def book_of(session: Session, actor: Actor, owner: str | None) -> Scope:
    """The default scope of a list: owner None, "me" or "team" (names are the caller's to resolve).

    A CSM's book is their own accounts, and their team their manager's team; a manager's book,
    their team's; an admin's, everyone's; a viewer's, the team they are attached to (their
    manager's), or everyone's when attached to none. "team" with no team to name is everyone.
    Reading is never limited by the book: anyone allowed to read may name any account or person.
    """
    if owner == "me":
        return Scope(frozenset({actor.csm_id or 0}), "your accounts")
    if actor.role == "manager" and actor.csm_id is not None and owner in ("team", None):
        return Scope(_team(session, actor.csm_id), "your team's accounts")
    if actor.role == "viewer" and actor.manager_id is not None:
        return Scope(_team(session, actor.manager_id), "your team's accounts")
    # A CSM's "my team" is the team they belong to: their manager's reports (and the manager).
    if owner == "team" and actor.role == "csm" and actor.manager_id is not None:
        return Scope(_team(session, actor.manager_id), "your team's accounts")
    if actor.role in ("admin", "viewer", SYSTEM_ROLE) or owner == "team":
        return Scope(None, "all accounts")
    return Scope(frozenset({actor.csm_id or 0}), "your accounts")

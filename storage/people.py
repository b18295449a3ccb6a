"""The team: add, change, import and list people (CSMs, managers, admins, viewers), keyed by email."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from storage.bulk import table
from storage.models import utcnow

if TYPE_CHECKING:
    from storage.csv_import import ImportReport, RowError, _Counts, _Row

logger = logging.getLogger(__name__)

# Columns a people row may set, as stored on the csm table (email is the key; manager_email is
# resolved to manager_id).
PERSON_FIELDS = (
    "name",
    "role",
    "timezone",
    "digest_time",
    "digest_weekends",
    "work_start",
    "work_end",
    "interrupts",
    "slack_user_id",
    "teams_user_id",
    "teams_aad_object_id",
)
# A None for these means "keep what is there" (the column cannot be empty).
_KEEP_WHEN_EMPTY = (
    "name",
    "role",
    "timezone",
    "digest_time",
    "digest_weekends",
    "work_start",
    "work_end",
)
# Platform ids that identify one person: two people cannot share one.
_UNIQUE_IDS = ("slack_user_id", "teams_user_id", "teams_aad_object_id")

# What a sender may not change about a person, given the stored person (None: a new one) and
# the columns a row sets: (column, reason) pairs. The data API passes handlers.access's rule;
# the server's own command line passes none.
PersonCheck = Callable[[Mapping[str, Any] | None, Mapping[str, Any]], list[tuple[str, str]]]


def add_command(email: str, role: str = "csm") -> str:
    """The exact command that adds someone: what an error about an unknown person suggests."""
    return f'csm-bot people add {email} --name "FULL NAME" --role {role}'


class PersonExists(ValueError):
    """`people add` for an email that is already on the team with other values."""


class PersonUnknown(LookupError):
    """`people set` for an email nobody has."""


# ---------------------------------------------------------------------------------------------
# used by storage.csv_import for the "people" kind


def resolve_people(
    conn: Connection,
    rows: list[_Row],
    errors: list[RowError],
    *,
    check: PersonCheck | None = None,
) -> None:
    """Check what a people import refers to: new people have names, managers exist, ids are free.

    ``check``: what the sender may not change (the data API may not make admins, for one).
    """
    from storage.csv_import import RowError

    emails = {r.values.get("email") for r in rows} - {None}
    managers = {r.values.get("manager_email") for r in rows} - {None}
    known = _people_by_email(conn, emails | managers)
    first: dict[str, int] = {}
    for row in rows:
        email = row.values.get("email")
        if email is None:
            continue
        if email in first:
            errors.append(
                RowError(
                    row.line, "email", f"duplicate of row {first[email]} ({email}) in this file"
                )
            )
            continue
        first[email] = row.line
        if check is not None:
            wanted = {name: row.values.get(name) for name in row.columns if name != "email"}
            for column, reason in check(known.get(email), wanted):
                errors.append(RowError(row.line, column, reason))
        if email not in known and not row.values.get("name"):
            errors.append(RowError(row.line, "name", "a new person needs a name"))
        stored = known.get(email) or {}
        start = row.values.get("work_start") or stored.get("work_start") or "09:00"
        end = row.values.get("work_end") or stored.get("work_end") or "18:00"
        if ("work_start" in row.columns or "work_end" in row.columns) and start == end:
            errors.append(
                RowError(
                    row.line, "work_end", "working hours need an end different from their start"
                )
            )
        manager = row.values.get("manager_email")
        if manager == email:
            errors.append(RowError(row.line, "manager_email", "a person cannot manage themselves"))
        elif manager is not None and manager not in known and manager not in emails:
            errors.append(
                RowError(
                    row.line,
                    "manager_email",
                    f"no person with email {manager!r}: add them first "
                    f"({add_command(manager, 'manager')}) or include them in the same import",
                )
            )
    _check_platform_ids(conn, rows, errors)
    _check_loops(conn, rows, errors)


def _check_loops(conn: Connection, rows: list[_Row], errors: list[RowError]) -> None:
    """Nobody may end up above themselves: the team as it would be after this import (its rows
    over the database) has no management loop (Lee reports to Sam, who reports to Lee)."""
    from storage.csv_import import RowError

    setting = [r for r in rows if r.values.get("email") and "manager_email" in r.columns]
    if not setting:
        return
    csm, boss = table("csm"), table("csm").alias("boss")
    manager_of: dict[str, str | None] = {
        str(email).lower(): (str(manager).lower() if manager else None)
        for email, manager in conn.execute(
            select(csm.c.email, boss.c.email).outerjoin(boss, boss.c.id == csm.c.manager_id)
        ).all()
    }
    for row in setting:
        manager_of[row.values["email"]] = row.values.get("manager_email")
    for row in setting:
        email = row.values["email"]
        chain = [email]
        current = manager_of.get(email)
        while current is not None and current not in chain:
            chain.append(current)
            current = manager_of.get(current)
        if current == email and len(chain) > 1:
            loop = " → ".join([*chain, email])
            errors.append(RowError(row.line, "manager_email", f"a management loop: {loop}"))


def _check_platform_ids(conn: Connection, rows: list[_Row], errors: list[RowError]) -> None:
    """A Slack or Teams id belongs to one person: within the file and against the database."""
    from storage.csv_import import RowError

    csm = table("csm")
    for column in _UNIQUE_IDS:
        wanted = {r.values[column]: r for r in rows if r.values.get(column)}
        if not wanted:
            continue
        seen: dict[str, int] = {}
        for row in rows:
            value = row.values.get(column)
            if not value:
                continue
            if value in seen:
                errors.append(
                    RowError(row.line, column, f"{value} is also given on row {seen[value]}")
                )
            seen.setdefault(value, row.line)
        holders = conn.execute(
            select(csm.c[column], func.lower(csm.c.email)).where(csm.c[column].in_(sorted(wanted)))
        ).all()
        for value, holder in holders:
            row = wanted[value]
            if holder != row.values.get("email"):
                errors.append(RowError(row.line, column, f"{value} already belongs to {holder}"))


def write_people(
    conn: Connection, rows: list[_Row], counts: _Counts, *, actor_label: str, source: str
) -> None:
    """Insert new people, update changed ones, then set managers (who may be new in this file).

    Every added or changed person leaves an audit entry with the values before and after:
    a role is an access right.
    """
    csm = table("csm")
    stamp = utcnow()
    emails = [r.values["email"] for r in rows]
    current = {email: dict(rec) for email, rec in _people_by_email(conn, set(emails)).items()}
    new = [r for r in rows if r.values["email"] not in current]
    if new:
        inserts = []
        for row in new:
            values = _desired(row)
            inserts.append(
                {
                    "role": "csm",
                    "timezone": "UTC",
                    "digest_time": "08:30",
                    "digest_weekends": False,
                    "work_start": "09:00",
                    "work_end": "18:00",
                    **values,
                    "email": row.values["email"],
                    "manager_id": None,
                    "created_at": stamp,
                }
            )
        for values in inserts:  # one by one: ids come back on every backend
            conn.execute(csm.insert().values(**values))
    managers = {r.values["manager_email"] for r in rows if r.values.get("manager_email")}
    ids = {
        email: rec["id"] for email, rec in _people_by_email(conn, set(emails) | managers).items()
    }
    audit: list[dict[str, Any]] = []
    for row in rows:
        email = row.values["email"]
        before = current.get(email)
        desired = _desired(row)
        if "manager_email" in row.columns:
            manager = row.values.get("manager_email")
            desired["manager_id"] = ids.get(manager) if manager else None
        if before is None:
            counts.inserted += 1
            if desired.get("manager_id") is not None:
                conn.execute(
                    csm.update()
                    .where(csm.c.id == ids[email])
                    .values(manager_id=desired["manager_id"])
                )
            audit.append(_audit("person.add", email, None, dict(desired), actor_label, source))
            continue
        changes = {k: v for k, v in desired.items() if before.get(k) != v}
        if not changes:
            counts.unchanged += 1
            continue
        conn.execute(csm.update().where(csm.c.id == before["id"]).values(**changes))
        counts.updated += 1
        audit.append(
            _audit(
                "person.update",
                email,
                dict({k: before.get(k) for k in changes}),
                dict(changes),
                actor_label,
                source,
            )
        )
    if audit:
        conn.execute(table("audit_log").insert(), audit)


def _desired(row: _Row) -> dict[str, Any]:
    out = {name: row.values.get(name) for name in PERSON_FIELDS if name in row.columns}
    for name in _KEEP_WHEN_EMPTY:
        if name in out and out[name] is None:
            del out[name]
    return out


def _audit(
    action: str,
    email: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    actor_label: str,
    source: str,
) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "actor_id": None,
        "actor_label": actor_label,
        "source": source,
        "action": action,
        "entity": "csm",
        "entity_id": email,
        "before": before,
        "after": after,
    }


def _people_by_email(conn: Connection, emails: set[str]) -> dict[str, Mapping[str, Any]]:
    """Rows of the csm table by lower-case email (emails are matched case-insensitively)."""
    if not emails:
        return {}
    csm = table("csm")
    key = func.lower(csm.c.email)
    found: dict[str, Mapping[str, Any]] = {}
    ordered = sorted(emails)
    for start in range(0, len(ordered), 500):
        batch = ordered[start : start + 500]
        for rec in conn.execute(select(csm, key.label("key")).where(key.in_(batch))).mappings():
            found[rec["key"]] = rec
    return found


# ---------------------------------------------------------------------------------------------
# one person at a time: the CLI's `people add|set` and the API's POST/PATCH /api/v1/people


def add_person(
    engine: Engine,
    record: Mapping[str, Any],
    *,
    actor_label: str,
    source: str,
    check: PersonCheck | None = None,
) -> ImportReport:
    """Add one person; the same values again change nothing, other values for an existing email
    raise PersonExists (changing someone is `set`, so a typo cannot silently demote an admin)."""
    from storage.csv_import import import_records

    email = str(record.get("email") or "").strip().lower()
    existing = find_person(engine, email) if email else None
    if existing is not None:
        differing = _differing(existing, record)
        if differing:
            raise PersonExists(
                f"{email} is already on the team ({existing['name']}, {existing['role']}); "
                f"change them with: csm-bot people set {email} "
                + " ".join(f"--{_option(k)} {shlex.quote(str(record[k]))}" for k in differing)
            )
    return import_records(
        engine,
        "people",
        None,
        [dict(record)],
        actor_label=actor_label,
        source=source,
        name=email,
        person_check=check,
    )


def set_person(
    engine: Engine,
    email: str,
    changes: Mapping[str, Any],
    *,
    actor_label: str,
    source: str,
    check: PersonCheck | None = None,
) -> ImportReport:
    """Change some of one person's values; PersonUnknown when nobody has that email."""
    from storage.csv_import import import_records

    key = email.strip().lower()
    if find_person(engine, key) is None:
        raise PersonUnknown(f"no person with email {email!r}; add them with: {add_command(key)}")
    return import_records(
        engine,
        "people",
        None,
        [{"email": key, **changes}],
        actor_label=actor_label,
        source=source,
        person_check=check,
        name=key,
    )


def _differing(existing: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Columns of ``record`` whose value differs from the stored person (roughly compared)."""
    out = []
    for key, value in record.items():
        if key in ("email", "manager_email") or value in (None, ""):
            continue
        stored = existing.get(key)
        if str(stored).lower() != str(value).strip().lower():
            out.append(key)
    if (
        record.get("manager_email")
        and (existing.get("manager_email") or "") != str(record["manager_email"]).strip().lower()
    ):
        out.append("manager_email")
    return out


def _option(column: str) -> str:
    return {
        "manager_email": "manager",
        "timezone": "tz",
        "slack_user_id": "slack-id",
        "teams_user_id": "teams-id",
        "teams_aad_object_id": "teams-aad-id",
    }.get(column, column.replace("_", "-"))


@dataclass(frozen=True)
class Person:
    """One person as `people list` and GET /api/v1/people show them."""

    email: str
    name: str
    role: str
    manager_email: str | None
    timezone: str
    digest_time: str
    digest_weekends: bool
    slack_user_id: str | None
    teams_user_id: str | None
    teams_aad_object_id: str | None
    accounts: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def find_person(engine: Engine, email: str) -> dict[str, Any] | None:
    found = list_people(engine, email=email)
    return found[0].as_dict() if found else None


def list_people(
    engine: Engine, *, role: str | None = None, email: str | None = None
) -> list[Person]:
    """Everyone on the team (or one role, or one email), by name, with how many accounts they own."""
    csm, account = table("csm"), table("account")
    boss = csm.alias("boss")
    owned = (
        select(account.c.owner_id, func.count().label("n"))
        .where(account.c.owner_id.is_not(None))
        .group_by(account.c.owner_id)
        .subquery()
    )
    stmt = (
        select(
            csm,
            func.lower(boss.c.email).label("manager_email"),
            func.coalesce(owned.c.n, 0).label("accounts"),
        )
        .outerjoin(boss, boss.c.id == csm.c.manager_id)
        .outerjoin(owned, owned.c.owner_id == csm.c.id)
        .order_by(csm.c.name, csm.c.email)
    )
    if role is not None:
        stmt = stmt.where(csm.c.role == role)
    if email is not None:
        stmt = stmt.where(func.lower(csm.c.email) == email.strip().lower())
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [
        Person(
            email=r["email"].lower(),
            name=r["name"],
            role=r["role"],
            manager_email=r["manager_email"],
            timezone=r["timezone"],
            digest_time=r["digest_time"],
            digest_weekends=bool(r["digest_weekends"]),
            slack_user_id=r["slack_user_id"],
            teams_user_id=r["teams_user_id"],
            teams_aad_object_id=r["teams_aad_object_id"],
            accounts=int(r["accounts"]),
        )
        for r in rows
    ]

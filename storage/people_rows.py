"""The "people" kind of an import: checking people rows against the team and writing them.

storage.csv_import calls ``resolve_people`` and ``write_people`` for that kind; storage.people's
one-person-at-a-time changes go through the same import, so the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from storage.bulk import table
from storage.import_rows import ImportCounts, ImportRow, RowError
from storage.models import utcnow

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


def resolve_people(
    conn: Connection,
    rows: list[ImportRow],
    errors: list[RowError],
    *,
    check: PersonCheck | None = None,
) -> None:
    """Check what a people import refers to: new people have names, managers exist, ids are free.

    ``check``: what the sender may not change (the data API may not make admins, for one).
    """
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


def _check_loops(conn: Connection, rows: list[ImportRow], errors: list[RowError]) -> None:
    """Nobody may end up above themselves: the team as it would be after this import (its rows
    over the database) has no management loop (Lee reports to Sam, who reports to Lee)."""
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


def _check_platform_ids(conn: Connection, rows: list[ImportRow], errors: list[RowError]) -> None:
    """A Slack or Teams id belongs to one person: within the file and against the database."""
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
    conn: Connection, rows: list[ImportRow], counts: ImportCounts, *, actor_label: str, source: str
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


def _desired(row: ImportRow) -> dict[str, Any]:
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

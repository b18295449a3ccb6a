"""Whether a database holds anything but the demo portfolio, so `csm-bot demo` never wipes real data."""

from __future__ import annotations

import re

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.engine import Engine

from storage.bulk import table
from storage.demo_names import ADMIN, CSM_PEOPLE, EMAIL_DOMAIN, MANAGER

# What the demo writes: ACC-0001... accounts, and its own people at example.com.
_DEMO_ACCOUNT = re.compile(r"^ACC-\d{4,5}$")
_DEMO_EMAILS = frozenset(f"{local}@{EMAIL_DOMAIN}" for _, local, _ in (*CSM_PEOPLE, MANAGER, ADMIN))
# Audit entries only real data leaves: imports, syncs, the people commands and the data API.
_REAL_SOURCES = ("import", "api", "sync", "cli")


def foreign_data(engine: Engine) -> str | None:
    """What in the database is not demo data ("2 accounts that are not demo accounts (CRM-1001,
    CRM-1002)"), or None when it is empty or holds only what `csm-bot demo` wrote.

    Demo data is recognised by what the demo writes (its account ids and people) and by the
    audit log: anything imported, synced or added through the API or the people commands
    leaves an entry there.
    """
    if not inspect(engine).has_table("account"):
        return None
    acc, csm, audit = table("account"), table("csm"), table("audit_log")
    with engine.connect() as conn:
        ids = [
            i
            for i in conn.execute(select(acc.c.external_id)).scalars()
            if not _DEMO_ACCOUNT.match(i)
        ]
        if ids:
            return f"{_count(len(ids), 'account')} that {'is' if len(ids) == 1 else 'are'} not demo accounts ({_some(ids)})"
        emails = [
            e
            for e in conn.execute(select(func.lower(csm.c.email))).scalars()
            if e not in _DEMO_EMAILS
        ]
        if emails:
            return f"{_count(len(emails), 'person', 'people')} not in the demo ({_some(emails)})"
        imports = conn.execute(
            select(func.count()).where(
                or_(audit.c.source.in_(_REAL_SOURCES), audit.c.action.like("person.%"))
            )
        ).scalar_one()
        if imports:
            return f"{_count(imports, 'imported or synced change')} in its audit log"
    return None


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _some(values: list[str], shown: int = 3) -> str:
    head = ", ".join(sorted(values)[:shown])
    return head + (", …" if len(values) > shown else "")

"""Whose accounts "my team" means: a CSM's team is their manager's team, not the whole company."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from bot.console import ConsoleChat


def test_a_csms_team_is_their_managers_team_not_everyone(demo_container: Any) -> None:
    """Dana (a CSM) asks about "my team": her manager's reports, not a second team's accounts."""
    with demo_container.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO csm (name, email, role, timezone, digest_time, digest_weekends,"
                " created_at) VALUES ('Mia Torres', 'mia@example.com', 'manager', 'UTC', '08:00',"
                " false, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "UPDATE csm SET manager_id = (SELECT id FROM csm WHERE email = 'mia@example.com')"
                " WHERE email = 'lena@example.com'"
            )
        )
        lena_accounts = conn.execute(
            text(
                "SELECT count(*) FROM account a JOIN csm c ON c.id = a.owner_id"
                " WHERE c.email = 'lena@example.com'"
            )
        ).scalar_one()
    assert lena_accounts > 0
    out = ConsoleChat(demo_container, "dana@example.com").ask_json(
        "renewals for my team next 365 days"
    )
    rows = out["reply"]["context"]["renewals"]
    assert rows and "your team's" in out["reply"]["text"]
    owners = {r["owner"] for r in rows}
    assert "Lena Fischer" not in owners and {"Dana Whitfield", "Marco Rossi"} <= owners

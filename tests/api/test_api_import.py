"""POST /api/v1/import/{kind}: CSV and JSON bodies, all-or-nothing validation, recompute, limits."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from bot.container import Container
from tests.api.conftest import AUTH, build_app, fingerprint, set_token
from tests.conftest import DEMO_TODAY

CSV = {**AUTH, "Content-Type": "text/csv"}
TODAY = DEMO_TODAY.isoformat()


def acme_id(container: Container) -> tuple[int, str]:
    with container.engine.connect() as conn:
        row = conn.execute(
            text("SELECT id, external_id FROM account WHERE name = 'Acme Corp'")
        ).one()
    return int(row[0]), str(row[1])


def today_snapshot(container: Container, account_id: int) -> tuple[float | None, str]:
    with container.engine.connect() as conn:
        row = conn.execute(
            text("SELECT score, band FROM health_snapshot WHERE account_id = :a AND day = :d"),
            {"a": account_id, "d": TODAY},
        ).one()
    return row[0], row[1]


def api_audits(container: Container) -> list[tuple[str, str, str, str]]:
    with container.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT entity, actor_label, source, after FROM audit_log "
                "WHERE source = 'api' ORDER BY id"
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_csv_body_imports_with_counts_and_reposting_changes_nothing(
    client: TestClient, api_container: Container
) -> None:
    _, ext = acme_id(api_container)
    body = (
        "account_external_id,indicator_key,day,value,source\n"
        f"{ext},support_tickets,2026-11-22,6,zendesk\n"
        f"{ext},feature_adoption,2026-11-22,44.5,\n"
    )
    first = client.post("/api/v1/import/readings", content=body, headers=CSV)
    assert first.status_code == 200, first.text
    counts = first.json()
    assert counts["kind"] == "readings"
    assert counts["rows"] == 2
    assert counts["inserted"] + counts["updated"] == counts["imported"] == 2
    assert counts["accounts_changed"] == 1
    assert len(api_audits(api_container)) == 1
    before = fingerprint(api_container.engine)

    again = client.post("/api/v1/import/readings", content=body, headers=CSV)

    assert again.status_code == 200
    assert again.json() | {"health_recomputed": 0} == {
        "kind": "readings",
        "rows": 2,
        "inserted": 0,
        "updated": 0,
        "unchanged": 2,
        "imported": 0,
        "accounts_changed": 0,
        "health_recomputed": 0,
    }
    assert fingerprint(api_container.engine) == before  # not even an audit row


def test_json_rows_create_accounts_and_leave_the_api_audit_trail(
    client: TestClient, api_container: Container
) -> None:
    rows = [
        {
            "external_id": "API-1",
            "name": "Json Widgets",
            "arr": 125000,
            "licensed_seats": 40,
            "segment": "Enterprise",
            "aliases": ["JW", "Json W"],
            "renewal_date": "2027-06-30",
            "tier": None,
        },
        {"External_ID": "API-2", "Name": "Second Json Ltd", "arr": 1200.5},
    ]
    response = client.post("/api/v1/import/accounts", json={"rows": rows}, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["rows"], answer["inserted"], answer["updated"]) == (2, 2, 0)
    # New accounts are scored at once (insufficient data, but the snapshot exists).
    assert answer["health_recomputed"] == 2
    with api_container.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT external_id, name, arr, licensed_seats, segment, aliases FROM account "
                "WHERE external_id LIKE 'API-%' ORDER BY external_id"
            )
        ).all()
    assert [tuple(r[:5]) for r in found] == [
        ("API-1", "Json Widgets", 125000.0, 40, "enterprise"),
        ("API-2", "Second Json Ltd", 1200.5, None, "mid-market"),
    ]
    assert json.loads(found[0][5]) == ["JW", "Json W"]
    ((entity, actor, source, after),) = api_audits(api_container)
    assert (entity, actor, source) == ("accounts", "api", "api")
    assert json.loads(after) == {
        "format": "records",
        "rows": 2,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
    }


def test_a_key_left_out_keeps_the_value_and_null_clears_it(
    client: TestClient, api_container: Container
) -> None:
    first = {"external_id": "API-3", "name": "Keeper", "tier": "gold", "licensed_seats": 10}
    assert client.post("/api/v1/import/accounts", json={"rows": [first]}, headers=AUTH).is_success
    second = {"external_id": "API-3", "name": "Keeper", "tier": None}
    response = client.post("/api/v1/import/accounts", json={"rows": [second]}, headers=AUTH)
    assert response.json()["updated"] == 1
    with api_container.engine.connect() as conn:
        tier, seats = conn.execute(
            text("SELECT tier, licensed_seats FROM account WHERE external_id = 'API-3'")
        ).one()
    assert (tier, seats) == (None, 10)


def test_readings_import_recomputes_todays_health(
    client: TestClient, api_container: Container
) -> None:
    account_id, ext = acme_id(api_container)
    before = today_snapshot(api_container, account_id)
    awful = {
        "product_usage": 3,
        "feature_adoption": 2,
        "support_tickets": 60,
        "exec_engagement": 300,
        "payment_days_overdue": 120,
    }
    rows = [
        {"account_external_id": ext, "indicator_key": key, "day": TODAY, "value": value}
        for key, value in awful.items()
    ]
    response = client.post("/api/v1/import/readings", json={"rows": rows}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["health_recomputed"] == 1
    after = today_snapshot(api_container, account_id)
    assert after != before
    assert after[1] == "red"
    assert after[0] is not None and before[0] is not None and after[0] < before[0]


def test_bad_rows_among_good_ones_are_all_listed_and_nothing_is_written(
    client: TestClient, api_container: Container
) -> None:
    _, ext = acme_id(api_container)
    before = fingerprint(api_container.engine)
    good = {"account_external_id": ext, "indicator_key": "nps", "value": 20}
    rows = [
        good | {"day": "2026-11-20"},
        good | {"day": "2026-11-21", "account_external_id": "NOPE-1"},  # row 2
        good | {"day": "2026-11-22"},
        good | {"day": "2026-11-31"},  # row 4: no such date
        good | {"day": "2026-11-19", "value": True},  # row 5: not a number
        # row 6: a wrong key, a missing one and a bad value, all reported at once
        {"account_external_id": ext, "day": "2026-11-18", "value": "x", "colour": "red"},
        "not an object",  # row 7
    ]
    response = client.post("/api/v1/import/readings", json={"rows": rows}, headers=AUTH)
    assert response.status_code == 422
    answer = response.json()
    assert answer["imported"] == 0
    assert [(e["row"], e["column"]) for e in answer["errors"]] == [
        (2, "account_external_id"),
        (4, "day"),
        (5, "value"),
        (6, "colour"),
        (6, "indicator_key"),
        (6, "value"),
        (7, None),
    ]
    assert "NOPE-1" in answer["errors"][0]["reason"]
    assert "YYYY-MM-DD" in answer["errors"][1]["reason"]
    assert fingerprint(api_container.engine) == before


def test_csv_errors_use_line_numbers_like_the_file_import(
    client: TestClient, api_container: Container
) -> None:
    before = fingerprint(api_container.engine)
    body = "external_id,name,arr\r\nAPI-10,Fine Ltd,100\r\nAPI-11,Broke Ltd,lots\r\nAPI-12,,5\r\n"
    response = client.post("/api/v1/import/accounts", content=body.encode("utf-8-sig"), headers=CSV)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"row": 3, "column": "arr", "reason": "not a number: 'lots'"},
        {"row": 4, "column": "name", "reason": "required value is empty"},
    ]
    assert fingerprint(api_container.engine) == before


def test_milestone_changes_are_attributed_to_the_api(
    client: TestClient, api_container: Container
) -> None:
    with api_container.engine.connect() as conn:
        ext, acc_ext, objective, title = conn.execute(
            text(
                "SELECT m.external_id, a.external_id, o.title, m.title FROM milestone m "
                "JOIN account a ON a.id = m.account_id JOIN objective o ON o.id = m.objective_id "
                "WHERE m.status != 'blocked' ORDER BY m.id LIMIT 1"
            )
        ).one()
    row = {
        "external_id": ext,
        "account_external_id": acc_ext,
        "objective": objective,
        "title": title,
        "status": "blocked",
    }
    response = client.post("/api/v1/import/milestones", json={"rows": [row]}, headers=AUTH)
    assert response.json()["updated"] == 1
    assert response.json()["health_recomputed"] == 0  # milestones do not feed the score
    with api_container.engine.connect() as conn:
        event = conn.execute(
            text(
                "SELECT e.field, e.to_value, e.actor_label, e.note FROM milestone_event e "
                "JOIN milestone m ON m.id = e.milestone_id WHERE m.external_id = :x "
                "ORDER BY e.id DESC LIMIT 1"
            ),
            {"x": ext},
        ).one()
    assert tuple(event) == ("status", "blocked", "api", "api import")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Bearer not-the-token"}, "wrong"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer tést".encode("latin-1")}, "wrong"),
    ],
)
def test_missing_or_wrong_token_is_401_and_nothing_runs(
    client: TestClient, api_container: Container, headers: dict[str, str | bytes], message: str
) -> None:
    before = fingerprint(api_container.engine)
    rows = [{"external_id": "API-401", "name": "Sneaky"}]
    response = client.post("/api/v1/import/accounts", json={"rows": rows}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert message in response.json()["message"]
    # Unknown kinds are not revealed to strangers either.
    assert (
        client.post("/api/v1/import/contacts", json={"rows": []}, headers=headers).status_code
        == 401
    )
    assert fingerprint(api_container.engine) == before


@pytest.mark.parametrize("token", [None, "", "   "])
def test_api_is_disabled_without_a_token(demo_container: Container, token: str | None) -> None:
    set_token(demo_container, token)
    with TestClient(build_app(demo_container)) as client:
        for response in (
            client.post("/api/v1/import/accounts", json={"rows": []}, headers=AUTH),
            client.get("/api/v1/accounts/ACC-0001/health", headers=AUTH),
        ):
            assert response.status_code == 503
            assert response.json()["error"] == "api_disabled"
            assert "CSM_API_TOKEN" in response.json()["message"]


def test_unknown_kind_lists_the_allowed_kinds(client: TestClient) -> None:
    response = client.post("/api/v1/import/contacts", json={"rows": []}, headers=AUTH)
    assert response.status_code == 404
    assert response.json()["kinds"] == [
        "people",
        "accounts",
        "readings",
        "milestones",
        "renewals",
        "surveys",
    ]


def test_oversize_body_is_413_before_anything_is_parsed(api_container: Container) -> None:
    before = fingerprint(api_container.engine)
    body = "external_id,name\n" + "".join(f"BIG-{i},Big {i}\n" for i in range(200))
    assert len(body) > 2000
    with TestClient(build_app(api_container, max_body_bytes=2000)) as client:
        declared = client.post("/api/v1/import/accounts", content=body, headers=CSV)
        # A chunked body has no Content-Length: the limit is counted while streaming.
        chunked = client.post(
            "/api/v1/import/accounts",
            content=iter([body[:1500].encode(), body[1500:].encode()]),
            headers=CSV,
        )
        small = client.post("/api/v1/import/accounts", content=body[:300], headers=CSV)
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["limit_bytes"] == 2000
    assert fingerprint(api_container.engine) != before  # the small one went through
    assert small.status_code == 200


def test_bad_media_type_and_bad_json_are_clear_errors(client: TestClient) -> None:
    form = client.post(
        "/api/v1/import/accounts",
        content="a=b",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    latin = client.post(
        "/api/v1/import/accounts",
        content=b"external_id,name\n",
        headers={**AUTH, "Content-Type": "text/csv; charset=latin-1"},
    )
    assert latin.status_code == 415
    broken = client.post(
        "/api/v1/import/accounts",
        content=b'{"rows": [',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    shape = client.post("/api/v1/import/accounts", json=[{"external_id": "X"}], headers=AUTH)
    assert (shape.status_code, shape.json()["error"]) == (400, "invalid_body")
    not_utf8 = client.post(
        "/api/v1/import/accounts",
        content="external_id,name\nX-1,Caf\xe9\n".encode("latin-1"),
        headers=CSV,
    )
    assert not_utf8.status_code == 422
    assert "not UTF-8" in not_utf8.json()["errors"][0]["reason"]


def test_demo_today_is_pinned(api_container: Container) -> None:
    # The recompute and the health card both use the container's business date.
    assert api_container.today() == date(2026, 11, 23)

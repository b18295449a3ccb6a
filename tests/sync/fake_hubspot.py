"""A local fake of HubSpot's CRM v3 API, answering as its documentation shows.

Shapes, from developers.hubspot.com (CRM API reference, "Error handling", "API usage"):
- GET /crm/v3/objects/{companies|deals}?limit&after&properties&associations&archived:
  {"results": [{"id", "properties": {...}, "createdAt", "updatedAt", "archived",
  "associations"?: {"companies": {"results": [{"id", "type"}]}}}],
  "paging": {"next": {"after", "link"}}}; the last page has no "paging".
- GET /crm/v3/owners/: {"results": [{"id", "email", "firstName", "lastName", "userId",
  "createdAt", "updatedAt", "archived"}]}.
- Errors: {"status": "error", "message", "correlationId", "category"}; a 429 adds
  "errorType": "RATE_LIMIT" and "policyName" (e.g. "TEN_SECONDLY_ROLLING").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.sync.fake_http import Answer, FakeServer, Request

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
STAMP = "2026-11-20T10:15:30.000Z"


def hubspot_error(status: int, message: str, category: str, **extra: Any) -> Answer:
    return Answer(
        status,
        {
            "status": "error",
            "message": message,
            "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
            "category": category,
            **extra,
        },
    )


RATE_LIMITED = Answer(
    429,
    {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "5e8f2d31-4d7a-4b6c-9f1e-2a3b4c5d6e7f",
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "publicapi",
    },
    {"Retry-After": "1"},
)


@dataclass
class FakeHubSpot:
    companies: list[dict[str, Any]] = field(default_factory=list)  # {"id", "properties"}
    deals: list[dict[str, Any]] = field(default_factory=list)  # {"id", "properties", "company"}
    owners: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2  # small pages, so every test follows paging.next.after
    server: FakeServer | None = None

    def start(self) -> FakeHubSpot:
        self.server = FakeServer(self.route).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def route(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return hubspot_error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if request.path == "/crm/v3/objects/companies":
            return self._list(request, self.companies, "companies")
        if request.path == "/crm/v3/objects/deals":
            return self._list(request, self.deals, "deals")
        if request.path == "/crm/v3/owners/":
            return self._list(request, self.owners, "owners")
        return hubspot_error(404, "resource not found", "OBJECT_NOT_FOUND")

    def _list(self, request: Request, rows: list[dict[str, Any]], what: str) -> Answer:
        start = int(request.query.get("after", ["0"])[0])
        limit = min(int(request.query.get("limit", ["10"])[0]), self.page_size)
        wanted = {p for value in request.query.get("properties", []) for p in value.split(",")}
        associations = request.query.get("associations", [])
        results = [
            self._owner(row) if what == "owners" else self._object(row, wanted, associations)
            for row in rows[start : start + limit]
        ]
        body: dict[str, Any] = {"results": results}
        if start + limit < len(rows):
            after = str(start + limit)
            body["paging"] = {
                "next": {
                    "after": after,
                    "link": f"https://api.hubapi.com{request.path}?after={after}",
                }
            }
        return Answer(200, body)

    @staticmethod
    def _object(row: dict[str, Any], wanted: set[str], associations: list[str]) -> dict[str, Any]:
        # HubSpot returns the requested properties (null when unset) and a few it always sends.
        props = {"createdate": STAMP, "hs_lastmodifieddate": STAMP, "hs_object_id": row["id"]}
        props |= {name: row["properties"].get(name) for name in wanted}
        out: dict[str, Any] = {
            "id": row["id"],
            "properties": props,
            "createdAt": STAMP,
            "updatedAt": STAMP,
            "archived": False,
        }
        if "companies" in associations and row.get("company"):
            out["associations"] = {
                "companies": {"results": [{"id": row["company"], "type": "deal_to_company"}]}
            }
        return out

    @staticmethod
    def _owner(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "email": row["email"],
            "firstName": row.get("firstName", ""),
            "lastName": row.get("lastName", ""),
            "userId": 9586504,
            "userIdIncludingInactive": 9586504,
            "type": "PERSON",
            "createdAt": "2019-12-25T13:01:35.228Z",
            "updatedAt": "2023-08-22T13:40:26.790Z",
            "archived": False,
        }

"""A local fake of the Salesforce REST API, answering as its documentation shows.

Shapes, from the Salesforce REST API Developer Guide:
- OAuth 2.0 client credentials flow, POST /services/oauth2/token: {"access_token", "signature",
  "instance_url", "id", "token_type": "Bearer", "issued_at"}; a refused login answers 400
  {"error": "invalid_client", "error_description": "invalid client credentials"}.
- Query, GET /services/data/vXX.X/query?q=SOQL: {"totalSize", "done", "nextRecordsUrl"?,
  "records": [{"attributes": {"type", "url"}, <fields>...}]}; a relationship field
  (Owner.Email) comes as a nested record with its own attributes. The remaining batches are
  read from nextRecordsUrl ("/services/data/vXX.X/query/01gD0000002HU6KIAW-2000").
- Errors ("Status Codes and Error Responses"): a JSON array [{"message", "errorCode"}], e.g. 401
  INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED, 503 SERVER_UNAVAILABLE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.sync.fake_http import Answer, FakeServer, Request

VERSION = "62.0"
TOKEN = "00DRO000000Fake!AQ4AQFakeAccessToken"
CLIENT_ID = "3MVG9fake.client.id"
CLIENT_SECRET = "fake-client-secret"
LOCATOR = "01gRO0000016PIAYA2"


def error(status: int, code: str, message: str, **headers: str) -> Answer:
    return Answer(status, [{"message": message, "errorCode": code}], headers)


@dataclass
class FakeSalesforce:
    """Accounts and Opportunities as stored records (field name -> value; "Owner" a dict)."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    opportunities: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 2  # small batches, so every test pages through nextRecordsUrl
    soql: list[str] = field(default_factory=list)
    server: FakeServer | None = None

    def start(self, tls: Any) -> FakeSalesforce:
        self.server = FakeServer(self.route, tls=tls).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    # -- routes -------------------------------------------------------------------------------

    def route(self, request: Request) -> Answer:
        if request.path == "/services/oauth2/token":
            return self._token(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        base = f"/services/data/v{VERSION}/query"
        if request.path.rstrip("/") == base:
            soql = request.query["q"][0]
            self.soql.append(soql)
            return self._page(soql, 0)
        match = re.fullmatch(rf"{base}/{LOCATOR}-(\d+)-(\d+)", request.path)
        if match:
            return self._page(self.soql[int(match[1])], int(match[2]))
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, request: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
        ):
            return Answer(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        return Answer(
            200,
            {
                "access_token": TOKEN,
                "signature": "cqTfKrLzeA0h9lnNOYXSbZ0T8nvUENUzWfzMZGTwhdM=",
                "instance_url": self.url,
                "id": f"{self.url}/id/00DRO000000Fake/005RO000000Fake",
                "token_type": "Bearer",
                "issued_at": "1732353845000",
                "scope": "api",
            },
        )

    def _page(self, soql: str, start: int) -> Answer:
        fields, sobject = _parse(soql)
        rows = self.accounts if sobject == "Account" else self.opportunities
        batch = rows[start : start + self.batch_size]
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": start + self.batch_size >= len(rows),
            "records": [self._record(sobject, row, fields) for row in batch],
        }
        if not body["done"]:
            body["nextRecordsUrl"] = (
                f"/services/data/v{VERSION}/query/{LOCATOR}-{self.soql.index(soql)}-"
                f"{start + self.batch_size}"
            )
        return Answer(200, body)

    @staticmethod
    def _record(sobject: str, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/v{VERSION}/sobjects/{sobject}/{row['Id']}",
            }
        }
        for name in fields:
            if "." in name:
                relation, sub = name.split(".", 1)
                related = row.get(relation)
                if related is None:
                    out[relation] = None
                    continue
                node = out.setdefault(
                    relation,
                    {
                        "attributes": {
                            "type": "User",
                            "url": f"/services/data/v{VERSION}/sobjects/User/005RO0000001",
                        }
                    },
                )
                node[sub] = related.get(sub)
            else:
                out[name] = row.get(name)
        return out


def _parse(soql: str) -> tuple[list[str], str]:
    match = re.match(r"SELECT (.+?) FROM (\w+)", soql)
    assert match, soql
    return [f.strip() for f in match[1].split(",")], match[2]

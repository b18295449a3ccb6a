"""Salesforce: accounts, and opportunities as renewals, through SOQL (simple-salesforce's query_all_iter)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from storage.sync.base import HttpPolicy, Record, SourceError, days_in, first_line

logger = logging.getLogger(__name__)

# Our account columns and the Account fields they come from; a source's `fields` adds to and
# overrides these (a custom ARR__c, Contract_End__c...), and `null` leaves a column out.
ACCOUNT_FIELDS: dict[str, str] = {"external_id": "Id", "name": "Name", "owner_email": "Owner.Email"}
# Opportunity fields a renewal is read from; status, likelihood and closing follow from them.
OPPORTUNITY_FIELDS: dict[str, str] = {
    "external_id": "Id",
    "account_external_id": "AccountId",
    "renewal_date": "CloseDate",
    "arr": "Amount",
}
_STATUS_FIELDS = ("Probability", "IsClosed", "IsWon")
DEFAULT_API_VERSION = "62.0"


@dataclass
class SoqlSpec:
    """Which records to read (a WHERE clause) and which fields feed which of our columns."""

    where: str | None = None
    fields: Mapping[str, str | None] = field(default_factory=dict)


@dataclass
class SalesforceSource:
    """Reads Accounts and (optionally) renewal Opportunities.

    Log in with an External Client App / Connected App's client credentials flow (``login_url``
    is your My Domain URL, https://MyDomain.my.salesforce.com) or give an ``access_token`` and
    ``instance_url`` obtained elsewhere.
    """

    name: str
    accounts: SoqlSpec
    renewals: SoqlSpec | None = None
    login_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    instance_url: str | None = None
    access_token: str | None = None
    api_version: str = DEFAULT_API_VERSION
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    _client: Any = field(default=None, init=False, repr=False)

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("accounts", "renewals") if self.renewals is not None else ("accounts",)

    # -- reading ------------------------------------------------------------------------------

    def fetch(self, kind: str) -> list[Record]:
        if kind == "accounts":
            mapping = _mapping(ACCOUNT_FIELDS, self.accounts.fields)
            return [
                days_in(_columns(r, mapping))
                for r in self._query("Account", mapping.values(), self.accounts.where)
            ]
        assert self.renewals is not None
        mapping = _mapping(OPPORTUNITY_FIELDS, self.renewals.fields)
        rows = self._query("Opportunity", [*mapping.values(), *_STATUS_FIELDS], self.renewals.where)
        return [days_in(_renewal(r, mapping)) for r in rows]

    def _query(self, sobject: str, fields: Any, where: str | None) -> list[dict[str, Any]]:
        from simple_salesforce.exceptions import SalesforceError

        names = list(dict.fromkeys(fields))  # in order, once each
        soql = f"SELECT {', '.join(names)} FROM {sobject}" + (f" WHERE {where}" if where else "")
        client = self._connect()
        try:
            return list(client.query_all_iter(soql, **self._request_options()))
        except SalesforceError as exc:
            raise SourceError(f"Salesforce refused the {sobject} query: {_sf_error(exc)}") from exc
        except requests.RequestException as exc:
            raise SourceError(f"cannot reach Salesforce: {first_line(str(exc))}") from exc

    # -- connecting ---------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=self.policy.retry())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _request_options(self) -> dict[str, Any]:
        """Per request, since REQUESTS_CA_BUNDLE in the environment would override a session's
        own ``verify`` (a long-standing requests behaviour)."""
        options: dict[str, Any] = {"timeout": self.policy.timeout}
        if self.policy.ca_bundle:
            options["verify"] = self.policy.ca_bundle
        return options

    def _connect(self) -> Any:
        from simple_salesforce import Salesforce

        if self._client is not None:
            return self._client
        session = self._session()
        instance_url, token = self.instance_url, self.access_token
        if not token:
            instance_url, token = self._login(session)
        self._client = Salesforce(
            instance_url=instance_url, session_id=token, session=session, version=self.api_version
        )
        return self._client

    def _login(self, session: requests.Session) -> tuple[str, str]:
        """OAuth 2.0 client credentials flow: POST /services/oauth2/token on the My Domain URL."""
        url = f"{(self.login_url or '').rstrip('/')}/services/oauth2/token"
        try:
            answer = session.post(
                url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                **self._request_options(),
            )
        except requests.RequestException as exc:
            raise SourceError(f"cannot reach {url}: {first_line(str(exc))}") from exc
        body = _json(answer.text)
        if answer.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            detail = (
                f"{body.get('error')}: {body.get('error_description')}"
                if isinstance(body, dict) and body.get("error")
                else f"HTTP {answer.status_code}"
            )
            raise SourceError(f"Salesforce login failed ({detail})")
        return body["instance_url"], body["access_token"]


def _mapping(defaults: Mapping[str, str], given: Mapping[str, str | None]) -> dict[str, str]:
    merged: dict[str, str | None] = {**defaults, **given}
    return {column: path for column, path in merged.items() if path}


def _value(record: Mapping[str, Any], path: str) -> Any:
    """A field of a record; "Owner.Email" walks into the related record (None when empty)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _columns(record: Mapping[str, Any], mapping: Mapping[str, str]) -> Record:
    return {column: _value(record, path) for column, path in mapping.items()}


def _renewal(record: Mapping[str, Any], mapping: Mapping[str, str]) -> Record:
    """An opportunity as a renewal: won = renewed at its amount, lost = churned, else open."""
    out = _columns(record, mapping)
    probability = record.get("Probability")
    if probability is not None and "likelihood" not in mapping:
        out["likelihood"] = f"{probability}%"
    if record.get("IsClosed"):
        won = bool(record.get("IsWon"))
        out["status"] = "renewed" if won else "churned"
        out["renewed_arr"] = out.get("arr") if won else 0
        out["closed_on"] = out.get("renewal_date")
    else:
        out["status"] = "open"
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _sf_error(exc: Any) -> str:
    """Salesforce's own words: errors come as [{"message": ..., "errorCode": ...}]."""
    status = getattr(exc, "status", None)
    body = getattr(exc, "content", None)  # parsed JSON, or the text when it was not JSON
    if isinstance(body, bytes | str):
        body = _json(body.decode() if isinstance(body, bytes) else body)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return f"HTTP {status} {first.get('errorCode')}: {first.get('message')}"
    return f"HTTP {status}"

"""HubSpot: companies as accounts and deals as renewals, through hubspot-api-client (get_page, paging with `after`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from storage.sync.base import HttpPolicy, Record, SourceError, days_in, first_line

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
# Our account columns and the company properties they come from (`fields` adds and overrides;
# null leaves one out). external_id is the company's record id; owner_email comes from its owner.
COMPANY_FIELDS: dict[str, str] = {"name": "name"}
DEAL_FIELDS: dict[str, str] = {"renewal_date": "closedate", "arr": "amount"}
_DEAL_STATUS = ("dealstage", "pipeline", "hs_deal_stage_probability")


@dataclass
class CompaniesSpec:
    """Which companies are customers (property: value filters) and which properties feed our columns."""

    where: Mapping[str, str] = field(default_factory=lambda: {"lifecyclestage": "customer"})
    fields: Mapping[str, str | None] = field(default_factory=dict)


@dataclass
class DealsSpec:
    """Which deals are renewals (a pipeline id) and which stages close them."""

    pipeline: str | None = None
    won_stages: tuple[str, ...] = ("closedwon",)
    lost_stages: tuple[str, ...] = ("closedlost",)
    fields: Mapping[str, str | None] = field(default_factory=dict)


@dataclass
class HubSpotSource:
    """Reads companies (and optionally renewal deals) with a private app's access token."""

    name: str
    access_token: str
    companies: CompaniesSpec = field(default_factory=CompaniesSpec)
    deals: DealsSpec | None = None
    base_url: str | None = None  # tests and proxies; default https://api.hubapi.com
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    _client: Any = field(default=None, init=False, repr=False)

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("accounts", "renewals") if self.deals is not None else ("accounts",)

    def fetch(self, kind: str) -> list[Record]:
        if kind == "accounts":
            return self._accounts()
        return self._renewals()

    # -- companies ----------------------------------------------------------------------------

    def _accounts(self) -> list[Record]:
        mapping = _mapping(COMPANY_FIELDS, self.companies.fields)
        wanted = [*mapping.values(), *self.companies.where, "hubspot_owner_id"]
        api = self._hubspot().crm.companies.basic_api
        owners: dict[str, str] | None = None
        out: list[Record] = []
        for company in self._pages(api.get_page, "companies", properties=_once(wanted)):
            props = company.properties or {}
            if any((props.get(k) or "") != v for k, v in self.companies.where.items()):
                continue
            record: Record = {"external_id": company.id}
            record.update({column: props.get(prop) for column, prop in mapping.items()})
            owner = props.get("hubspot_owner_id")
            if owner and "owner_email" not in mapping:
                owners = owners if owners is not None else self._owner_emails()
                record["owner_email"] = owners.get(owner)
            out.append(days_in(record))
        return out

    def _owner_emails(self) -> dict[str, str]:
        """Owner id -> email (hubspot_owner_id names an owner, imports name people by email)."""
        api = self._hubspot().crm.owners.owners_api
        return {o.id: o.email for o in self._pages(api.get_page, "owners") if o.email}

    # -- deals --------------------------------------------------------------------------------

    def _renewals(self) -> list[Record]:
        assert self.deals is not None
        spec = self.deals
        mapping = _mapping(DEAL_FIELDS, spec.fields)
        api = self._hubspot().crm.deals.basic_api
        out: list[Record] = []
        for deal in self._pages(
            api.get_page,
            "deals",
            properties=_once([*mapping.values(), *_DEAL_STATUS]),
            associations=["companies"],
        ):
            props = deal.properties or {}
            if spec.pipeline and props.get("pipeline") != spec.pipeline:
                continue
            record: Record = {
                "external_id": deal.id,
                "account_external_id": _company_of(deal),
            }
            record.update({column: props.get(prop) for column, prop in mapping.items()})
            stage = props.get("dealstage")
            probability = props.get("hs_deal_stage_probability")
            if probability not in (None, "") and "likelihood" not in mapping:
                record["likelihood"] = probability
            if stage in spec.won_stages or stage in spec.lost_stages:
                won = stage in spec.won_stages
                record["status"] = "renewed" if won else "churned"
                record["renewed_arr"] = record.get("arr") if won else 0
                record["closed_on"] = record.get("renewal_date")
            else:
                record["status"] = "open"
            out.append(days_in(record))
        return out

    # -- the client ---------------------------------------------------------------------------

    def _hubspot(self) -> Any:
        from hubspot import HubSpot

        if self._client is None:
            options: dict[str, Any] = {
                "access_token": self.access_token,
                "retry": self.policy.retry(),
            }
            if self.base_url:
                options["host"] = self.base_url.rstrip("/")
            if self.policy.ca_bundle:
                options["ssl_ca_cert"] = self.policy.ca_bundle
            self._client = HubSpot(**options)
        return self._client

    def _pages(self, get_page: Callable[..., Any], what: str, **query: Any) -> Iterator[Any]:
        """Every object of a list endpoint, following paging.next.after until there is none."""
        after: str | None = None
        while True:
            try:
                page = get_page(
                    limit=PAGE_SIZE,
                    after=after,
                    archived=False,
                    _request_timeout=self.policy.timeout,
                    **query,
                )
            except _api_errors() as exc:
                raise _source_error(exc, what) from exc
            yield from page.results or []
            nxt = page.paging.next if page.paging else None
            if nxt is None or not nxt.after:
                return
            after = nxt.after


def _api_errors() -> tuple[type[Exception], ...]:
    """What a HubSpot call raises for an error answer (each API package has its own class) or
    when the network fails (urllib3 gives up after its retries)."""
    from hubspot.crm.companies.exceptions import ApiException as CompaniesError
    from hubspot.crm.deals.exceptions import ApiException as DealsError
    from hubspot.crm.owners.exceptions import ApiException as OwnersError
    from urllib3.exceptions import HTTPError

    return (CompaniesError, DealsError, OwnersError, HTTPError)


def _source_error(exc: Exception, what: str) -> SourceError:
    """HubSpot's own words, as one line: {"status": "error", "message": ..., "category"...}."""
    status = getattr(exc, "status", None)
    if status is None:
        return SourceError(f"cannot reach HubSpot: {first_line(str(exc))}")
    body = _json(getattr(exc, "body", None))
    message = body.get("message") if isinstance(body, dict) else None
    kind = (body.get("errorType") or body.get("category")) if isinstance(body, dict) else None
    label = f"HTTP {status}" + (f" {kind}" if kind else "")
    reason = message or getattr(exc, "reason", "") or "no message"
    return SourceError(f"HubSpot refused reading {what}: {label}: {reason}")


def _company_of(deal: Any) -> str | None:
    associations = deal.associations or {}
    companies = associations.get("companies")
    results = companies.results if companies is not None else None
    return results[0].id if results else None


def _mapping(defaults: Mapping[str, str], given: Mapping[str, str | None]) -> dict[str, str]:
    merged: dict[str, str | None] = {**defaults, **given}
    return {column: prop for column, prop in merged.items() if prop}


def _once(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _json(data: Any) -> Any:
    try:
        return json.loads(data.decode() if isinstance(data, bytes) else data or "")
    except ValueError:
        return None

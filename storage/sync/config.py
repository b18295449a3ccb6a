"""The sync configuration file (CSM_SYNC_CONFIG): sources, their credentials from the environment, their mappings."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from storage.sync.base import SYNC_KINDS, HttpPolicy, Source

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TYPES = ("sql", "salesforce", "hubspot")


class SyncConfigError(ValueError):
    """The file is unusable; the message names the file, the source and the key."""


@dataclass(frozen=True)
class SyncConfig:
    sources: tuple[Source, ...]

    def named(self, name: str | None) -> tuple[Source, ...]:
        if name is None:
            return self.sources
        found = tuple(s for s in self.sources if s.name == name)
        if not found:
            known = ", ".join(s.name for s in self.sources) or "none"
            raise SyncConfigError(f"no source named {name!r} (configured: {known})")
        return found


def load_sync_config(path: str | Path, env: Mapping[str, str] | None = None) -> SyncConfig:
    """Read and check the file; ``${NAME}`` anywhere is replaced by that environment variable,
    so secrets stay out of the file."""
    label = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SyncConfigError(
            f"{label}: cannot read the sync configuration: {exc.strerror}"
        ) from exc
    except yaml.YAMLError as exc:
        raise SyncConfigError(f"{label}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        raise SyncConfigError(f"{label}: expected `sources:` with a list of sources (docs/sync.md)")
    values = os.environ if env is None else env
    sources: list[Source] = []
    for i, entry in enumerate(raw["sources"], start=1):
        where = f"{label}: source {i}"
        if not isinstance(entry, dict):
            raise SyncConfigError(f"{where}: expected a mapping with name and type")
        entry = _expand(entry, values, where)
        name = entry.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise SyncConfigError(f"{where}: `name` must be lower-case letters, digits, - or _")
        where = f"{label}: source {name!r}"
        if any(s.name == name for s in sources):
            raise SyncConfigError(f"{where}: the name is used twice")
        kind = entry.get("type")
        if kind not in TYPES:
            raise SyncConfigError(f"{where}: `type` must be one of {', '.join(TYPES)}")
        sources.append(_BUILDERS[kind](name, entry, where))
    return SyncConfig(tuple(sources))


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match[1]
            if name not in env:
                raise SyncConfigError(
                    f"{where}: ${{{name}}} is used but not set in the environment"
                )
            return env[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    return value


def _required(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SyncConfigError(f"{where}: `{key}` is required")
    return value.strip()


def _policy(entry: Mapping[str, Any], where: str) -> HttpPolicy:
    try:
        return HttpPolicy(
            attempts=int(entry.get("attempts", 5)),
            backoff=float(entry.get("backoff_seconds", 1.0)),
            timeout=float(entry.get("timeout_seconds", 30.0)),
            ca_bundle=entry.get("ca_bundle"),
        )
    except (TypeError, ValueError) as exc:
        raise SyncConfigError(
            f"{where}: attempts, backoff_seconds and timeout_seconds are numbers"
        ) from exc


def _fields(
    entry: Mapping[str, Any], where: str, allowed: tuple[str, ...]
) -> dict[str, str | None]:
    fields = entry.get("fields") or {}
    if not isinstance(fields, dict):
        raise SyncConfigError(f"{where}: `fields` maps our columns to theirs")
    unknown = [k for k in fields if k not in allowed]
    if unknown:
        raise SyncConfigError(
            f"{where}: unknown column(s) {', '.join(unknown)} in fields (ours: {', '.join(allowed)})"
        )
    return {str(k): (str(v) if v is not None else None) for k, v in fields.items()}


def _section(entry: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SyncConfigError(f"{where}: `{key}` must be a mapping")
    return value


def _sql(name: str, entry: dict[str, Any], where: str) -> Source:
    from storage.sync.sql import SqlSource

    queries = entry.get("queries")
    if not isinstance(queries, dict) or not queries:
        raise SyncConfigError(f"{where}: `queries` maps kinds ({', '.join(SYNC_KINDS)}) to SQL")
    unknown = [k for k in queries if k not in SYNC_KINDS]
    if unknown:
        raise SyncConfigError(
            f"{where}: unknown kind(s) {', '.join(unknown)} (use {', '.join(SYNC_KINDS)})"
        )
    return SqlSource(
        name=name,
        url=_required(entry, "url", where),
        queries={k: str(v) for k, v in queries.items()},
        timeout=float(entry.get("timeout_seconds", 30.0)),
    )


def _salesforce(name: str, entry: dict[str, Any], where: str) -> Source:
    from storage.csv_import import SPECS
    from storage.sync.salesforce import DEFAULT_API_VERSION, SalesforceSource, SoqlSpec

    accounts = _section(entry, "accounts", where) or {}
    renewals = _section(entry, "renewals", where)
    if renewals is not None and not renewals.get("where"):
        raise SyncConfigError(
            f"{where}: renewals.where says which opportunities are renewals, e.g. Type = 'Renewal'"
        )
    direct = entry.get("access_token") and entry.get("instance_url")
    if not direct:
        for key in ("login_url", "client_id", "client_secret"):
            _required(entry, key, where + " (or access_token and instance_url)")
    return SalesforceSource(
        name=name,
        accounts=SoqlSpec(
            where=accounts.get("where"),
            fields=_fields(
                accounts, where + ", accounts", tuple(c.name for c in SPECS["accounts"])
            ),
        ),
        renewals=None
        if renewals is None
        else SoqlSpec(
            where=renewals["where"],
            fields=_fields(
                renewals, where + ", renewals", tuple(c.name for c in SPECS["renewals"])
            ),
        ),
        login_url=entry.get("login_url"),
        client_id=entry.get("client_id"),
        client_secret=entry.get("client_secret"),
        instance_url=entry.get("instance_url"),
        access_token=entry.get("access_token"),
        api_version=str(entry.get("api_version", DEFAULT_API_VERSION)),
        policy=_policy(entry, where),
    )


def _hubspot(name: str, entry: dict[str, Any], where: str) -> Source:
    from storage.csv_import import SPECS
    from storage.sync.hubspot import CompaniesSpec, DealsSpec, HubSpotSource

    companies = _section(entry, "companies", where) or {}
    deals = _section(entry, "deals", where)
    company_where = companies.get("where", {"lifecyclestage": "customer"}) or {}
    if not isinstance(company_where, dict):
        raise SyncConfigError(f"{where}: companies.where maps property names to values")
    return HubSpotSource(
        name=name,
        access_token=_required(entry, "access_token", where),
        companies=CompaniesSpec(
            where={str(k): str(v) for k, v in company_where.items()},
            fields=_fields(
                companies, where + ", companies", tuple(c.name for c in SPECS["accounts"])
            ),
        ),
        deals=None
        if deals is None
        else DealsSpec(
            pipeline=deals.get("pipeline"),
            won_stages=tuple(deals.get("won_stages", ("closedwon",))),
            lost_stages=tuple(deals.get("lost_stages", ("closedlost",))),
            fields=_fields(deals, where + ", deals", tuple(c.name for c in SPECS["renewals"])),
        ),
        base_url=entry.get("base_url"),
        policy=_policy(entry, where),
    )


_BUILDERS = {"sql": _sql, "salesforce": _salesforce, "hubspot": _hubspot}

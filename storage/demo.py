"""Deterministic demo portfolio: people, accounts, readings, plans, renewals, QBRs, surveys, escalations."""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from domain.health import SCORE_AT_CEILING, SCORE_AT_FLOOR, SCORE_AT_GREEN, SCORE_AT_RED
from storage.arr_history import record_account_arr
from storage.bulk import indexes_built_after, insert_dicts, insert_tuples, table, wipe_all
from storage.demo_names import ADMIN, CSM_PEOPLE, EMAIL_DOMAIN, MANAGER, portfolio_names
from storage.demo_plan import AccountPlan, weighted_pick
from storage.demo_scenarios import apply_scenario

if TYPE_CHECKING:
    from domain.health_model import HealthModel, HealthModels, Indicator

logger = logging.getLogger(__name__)

# Bump whenever the generated data changes, so cached benchmark databases get rebuilt.
GENERATOR_VERSION = 4

ACME, GLOBEX, INITECH = "Acme Corp", "Globex", "Initech"

# name -> (share of accounts, ARR range, licensed seats range)
SEGMENTS: dict[str, tuple[float, tuple[int, int], tuple[int, int]]] = {
    "enterprise": (0.2, (250_000, 1_500_000), (400, 3_000)),
    "mid-market": (0.45, (40_000, 250_000), (80, 600)),
    "smb": (0.35, (6_000, 40_000), (10, 80)),
}

# Archetype: (share, latent health range today). "declining" and "improving" move over time.
ARCHETYPES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("healthy", 0.55, (78, 95)),
    ("steady_amber", 0.22, (56, 74)),
    ("declining", 0.08, (55, 68)),
    ("improving", 0.07, (70, 85)),
    ("red", 0.08, (22, 46)),
)

_FIRST = (
    "Ava",
    "Ben",
    "Chloe",
    "Diego",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kara",
    "Liam",
    "Maya",
    "Nikhil",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xia",
    "Yusuf",
    "Zoe",
)
_LAST = (
    "Adams",
    "Baker",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fernandes",
    "Garcia",
    "Huang",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okoro",
    "Patel",
    "Quist",
    "Ramos",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Vargas",
    "Weber",
    "Yilmaz",
    "Zhang",
)
_STAKEHOLDERS = (
    ("champion", ("Head of Operations", "Customer Success Lead", "Product Owner", "IT Manager")),
    ("decision_maker", ("VP Operations", "Director of IT", "Head of Digital", "CIO")),
    ("sponsor", ("COO", "CFO", "Chief Digital Officer", "CEO")),
)

# Objective templates: title, KPI, unit, baseline range, improvement factor, milestone titles.
_OBJECTIVES: tuple[tuple[str, str, str, tuple[float, float], float, tuple[str, ...]], ...] = (
    (
        "Drive adoption across all licensed teams",
        "Weekly active seats",
        "%",
        (30, 55),
        1.6,
        (
            "Admin training completed",
            "Rollout to second region",
            "Usage review with champion",
            "Enable SSO for all users",
        ),
    ),
    (
        "Cut time spent on manual reporting",
        "Hours saved per week",
        "h",
        (0, 5),
        6.0,
        (
            "Reporting workshop",
            "Automated weekly report live",
            "Retire legacy spreadsheets",
            "Share savings with sponsor",
        ),
    ),
    (
        "Reduce support load",
        "Tickets per month",
        "tickets",
        (25, 60),
        0.5,
        (
            "Knowledge base rollout",
            "Top-10 issue review",
            "Self-service portal launched",
            "Quarterly ticket review",
        ),
    ),
    (
        "Expand to the finance department",
        "Finance users onboarded",
        "users",
        (0, 10),
        8.0,
        (
            "Finance discovery call",
            "Pilot with finance team",
            "Finance rollout plan signed off",
            "Finance go-live",
        ),
    ),
    (
        "Executive alignment on outcomes",
        "Exec reviews held per year",
        "reviews",
        (0, 1),
        4.0,
        ("Success plan agreed with sponsor", "Outcome dashboard shared", "Exec business review"),
    ),
)

_ESCALATIONS = (
    ("Data export jobs failing since upgrade", "sev1"),
    ("Reporting dashboards time out", "sev2"),
    ("SSO login loop for EU users", "sev2"),
    ("Invoice disputed by finance", "sev3"),
    ("API rate limits blocking sync", "sev2"),
)


@dataclass(frozen=True)
class DemoSummary:
    """What the demo seed wrote."""

    accounts: int
    csms: int
    readings: int
    snapshots: int
    milestones: int
    renewals: int
    qbrs: int
    surveys: int
    escalations: int
    today: date


def _value_for_score(ind: Indicator, score: float) -> float:
    """Invert the piecewise-linear indicator score: which raw value scores ``score``."""
    score = min(100.0, max(0.0, score))
    points = (
        (SCORE_AT_FLOOR, ind.floor),
        (SCORE_AT_RED, ind.red),
        (SCORE_AT_GREEN, ind.green),
        (SCORE_AT_CEILING, ind.ceiling),
    )
    for (s0, v0), (s1, v1) in itertools.pairwise(points):
        if score <= s1:
            return v0 + (v1 - v0) * (score - s0) / (s1 - s0)
    return ind.ceiling


def _plan_accounts(
    count: int, today: date, seed: int, model_keys: tuple[str, ...]
) -> list[AccountPlan]:
    """Decide every account's profile; the story accounts get fixed, recognisable ones."""
    names = portfolio_names(count, seed=seed)
    segments = tuple((name, share) for name, (share, _, _) in SEGMENTS.items())
    archetypes = tuple((name, share) for name, share, _ in ARCHETYPES)
    ranges = {name: rng_range for name, _, rng_range in ARCHETYPES}
    # Two generated accounts churned recently (logo churn needs some), in larger portfolios.
    churn_slots = {count - 3: 24, count - 7: 67} if count >= 40 else {}
    accounts: list[AccountPlan] = []
    for i, (name, aliases) in enumerate(names):
        rng = random.Random(f"{seed}:{i}:{name}")
        segment = weighted_pick(rng, segments)
        archetype = weighted_pick(rng, archetypes)
        lo, hi = ranges[archetype]
        base_now = rng.uniform(lo, hi)
        base_then, change_days = base_now, 0
        if archetype == "declining":
            base_then, change_days = base_now + rng.uniform(12, 25), rng.randint(30, 80)
        elif archetype == "improving":
            base_then, change_days = base_now - rng.uniform(12, 22), rng.randint(40, 90)
        renewal_in = rng.randint(3, 120) if rng.random() < 0.45 else rng.randint(121, 365)
        start = today - timedelta(days=rng.randint(120, 1400))
        acct = AccountPlan(
            index=i,
            external_id=f"ACC-{i + 1:04d}",
            name=name,
            aliases=list(aliases),
            segment=segment,
            owner_index=i % len(CSM_PEOPLE),
            arr=0.0,
            seats=0,
            start=start,
            renewal=today + timedelta(days=renewal_in),
            archetype=archetype,
            stage="adoption",
            rng=rng,
            base_now=base_now,
            base_then=base_then,
            change_days=change_days,
        )
        acct.offsets = {key: rng.gauss(0, 5) for key in model_keys}
        if i in churn_slots:
            acct.churned_on = today - timedelta(days=churn_slots[i])
            acct.archetype, acct.base_now, acct.base_then = "red", 30.0, 30.0
            acct.renewal = acct.churned_on
        accounts.append(acct)

    _shape_stories(accounts, today)
    if count > 12:
        # Small accounts that never send the slow indicators: their weight is redistributed.
        smb = [a for a in accounts[12:] if a.segment == "smb" and a.churned_on is None]
        for acct in smb[:2]:
            acct.missing = frozenset({"nps", "exec_engagement"})
    for acct in accounts:
        _money_and_stage(acct, today)
    return accounts


def _shape_stories(accounts: list[AccountPlan], today: date) -> None:
    by_name = {a.name: a for a in accounts}
    if acme := by_name.get(ACME):
        # Leading indicators slide for ~6 weeks: amber today and heading for red.
        acme.segment, acme.owner_index, acme.archetype = "enterprise", 0, "declining"
        acme.base_then, acme.base_now, acme.change_days = 86.0, 54.0, 44
        acme.renewal = today + timedelta(days=75)
        acme.offsets = dict.fromkeys(acme.offsets, 0.0)
    if globex := by_name.get(GLOBEX):
        # Healthy and using nearly every licence: an expansion signal.
        globex.segment, globex.owner_index, globex.archetype = "enterprise", 0, "healthy"
        globex.base_then = globex.base_now = 88.0
        globex.change_days = 0
        globex.renewal = today + timedelta(days=210)
        globex.offsets = dict.fromkeys(globex.offsets, 0.0)
        globex.offsets["product_usage"] = 9.0
    if initech := by_name.get(INITECH):
        # Middling health, a plan behind schedule, and a renewal close enough to worry about.
        initech.segment, initech.owner_index, initech.archetype = "mid-market", 0, "steady_amber"
        initech.base_then = initech.base_now = 62.0
        initech.change_days = 0
        initech.renewal = today + timedelta(days=45)
        initech.offsets = dict.fromkeys(initech.offsets, 0.0)


def _money_and_stage(acct: AccountPlan, today: date) -> None:
    _, (arr_lo, arr_hi), (seats_lo, seats_hi) = SEGMENTS[acct.segment]
    rng = acct.rng
    # Log-uniform: many modest contracts, a few big ones, as in real books of business.
    acct.arr = round(math.exp(rng.uniform(math.log(arr_lo), math.log(arr_hi))), -2)
    acct.seats = int(math.exp(rng.uniform(math.log(seats_lo), math.log(seats_hi))))
    if acct.name == GLOBEX:
        acct.arr, acct.seats = 640_000.0, 800
    elif acct.name == ACME:
        acct.arr, acct.seats = 480_000.0, 1_200
    elif acct.name == INITECH:
        acct.arr, acct.seats = 96_000.0, 240
    if (today - acct.start).days < 150 and acct.name not in (ACME, GLOBEX, INITECH):
        acct.stage = "onboarding"
    elif (acct.renewal - today).days <= 90:
        acct.stage = "renewal"
    elif acct.base_now >= 82 or acct.name == GLOBEX:
        acct.stage = "expansion"
    else:
        acct.stage = "adoption"


# ---------------------------------------------------------------------------------------------
# readings


def _series(acct: AccountPlan, model: HealthModel, today: date, days: int) -> Iterator[tuple]:
    """Daily readings (account_id, key, day, value, source) of every indicator for one account."""
    rng = random.Random(f"{acct.rng.random()}")
    first = -(days - 1)
    last = 0
    if acct.churned_on is not None:
        last = -(today - acct.churned_on).days
    offsets = range(first, last + 1)
    if not offsets:
        return  # churned before the window of readings began: nothing to read
    day_of = [today + timedelta(days=t) for t in offsets]
    aid = acct.id
    for ind in model.indicators:
        key = ind.key
        if key in acct.missing:
            continue
        values = _indicator_values(acct, ind, offsets, rng)
        for day, value in zip(day_of, values, strict=True):
            yield (aid, key, day, value, "demo")


def _indicator_values(
    acct: AccountPlan, ind: Indicator, offsets: range, rng: random.Random
) -> list[float]:
    key = ind.key
    latent = acct.latent
    story = acct.name
    if key == "exec_engagement":
        return _days_since_touch(acct, ind, offsets, rng)
    if key == "payment_days_overdue":
        return _days_overdue(acct, offsets, rng)
    if key in ("nps", "csm_sentiment"):
        # Step functions: NPS changes when a survey wave closes (~quarterly), sentiment when the
        # CSM re-rates the account (~every 3 weeks).
        period = 91 if key == "nps" else 21
        phase = rng.randrange(period)
        values: list[float] = []
        current: float | None = None
        for t in offsets:
            if current is None or (t + phase) % period == 0:
                score = latent(t, key) + rng.gauss(0, 4 if key == "nps" else 3)
                if story == ACME and key == "nps":
                    score = 67.0  # the lagging view still looks fine: that is the point
                if key == "csm_sentiment":
                    current = 3.0 if score >= 74 else 2.0 if score >= 50 else 1.0
                else:
                    current = float(round(_value_for_score(ind, score)))
            values.append(current)
        return values
    noise = {"product_usage": 1.5, "feature_adoption": 0.8, "support_tickets": 5.0}.get(key, 2.0)
    out: list[float] = []
    for t in offsets:
        value = _value_for_score(ind, latent(t, key) + rng.gauss(0, noise))
        if key == "support_tickets":
            out.append(float(max(0, round(value))))
        else:
            out.append(round(value, 1))
    return out


def _days_since_touch(
    acct: AccountPlan, ind: Indicator, offsets: range, rng: random.Random
) -> list[float]:
    """A sawtooth: days since the last executive meeting, reset at each meeting."""
    if acct.name == ACME:
        last_touch = -58  # the sponsor went quiet when the slide began
        return [
            float(max(0, t - last_touch)) if t >= last_touch else float(t % 35) for t in offsets
        ]

    def gap(t: int) -> int:
        # Healthier accounts meet their sponsor more often; the value averages ~0.8 x target.
        target = _value_for_score(ind, acct.latent(t, ind.key) + rng.gauss(0, 6))
        return min(150, max(7, int(target * 1.6)))

    out: list[float] = []
    next_gap = gap(offsets[0])
    since = rng.randrange(next_gap)
    for t in offsets:
        if since >= next_gap:
            since, next_gap = 0, gap(t)
        out.append(float(since))
        since += 1
    return out


def _days_overdue(acct: AccountPlan, offsets: range, rng: random.Random) -> list[float]:
    """Mostly 0; invoices slip now and then, more often and longer for unhappy customers."""
    out: list[float] = []
    overdue = 0
    health = acct.base_now
    for _t in offsets:
        if overdue:
            pays = rng.random() < (0.12 if health >= 60 else 0.02)
            overdue = 0 if pays else overdue + 1
        elif rng.random() < (0.004 if health >= 60 else 0.02):
            overdue = 1
        out.append(float(overdue))
    if acct.archetype == "red" and not out[-1] and len(out) > 40 and rng.random() < 0.6:
        # a long-unpaid invoice is what many red accounts look like
        start = len(out) - rng.randint(20, 40)
        out[start:] = [float(d) for d in range(1, len(out) - start + 1)]
    if acct.name in (GLOBEX, ACME):
        out = [0.0] * len(out)
    return out


# ---------------------------------------------------------------------------------------------
# the rest of the portfolio


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _stakeholders(acct: AccountPlan) -> list[dict[str, Any]]:
    rng = random.Random(f"people:{acct.external_id}")
    domain = "".join(ch for ch in acct.name.lower() if ch.isalnum())[:20] + ".example"
    rows = []
    for role, titles in _STAKEHOLDERS:
        name = _person(rng)
        local = name.lower().replace(" ", ".")
        rows.append(
            {
                "account_id": acct.id,
                "name": name,
                "email": f"{local}@{domain}",
                "title": rng.choice(titles),
                "role": role,
            }
        )
    return rows


def _milestone_rows(
    acct: AccountPlan, objective_id: int, template: tuple, today: date, owner_id: int, seq: int
) -> list[dict[str, Any]]:
    """2-4 milestones spread around today, statuses consistent with the account's health."""
    rng = random.Random(f"ms:{acct.external_id}:{objective_id}")
    titles = list(template[5])
    n = rng.randint(2, min(4, len(titles)))
    stamp = datetime.combine(today, time(9), tzinfo=UTC)
    # Work the CSM does not own is the customer's: their champion drives it.
    champion = next((p["name"] for p in _stakeholders(acct) if p["role"] == "champion"), None)
    rows = []
    for pos in range(n):
        due = today + timedelta(days=-60 + pos * rng.randint(20, 45) + rng.randint(-5, 5))
        if due < today:
            # Past-due work is done, except at struggling accounts where some slips.
            slip = 0.45 if acct.base_now < 60 else 0.1
            status = (
                rng.choice(("in_progress", "at_risk", "blocked")) if rng.random() < slip else "done"
            )
        else:
            status = weighted_pick(
                rng, (("not_started", 0.5), ("in_progress", 0.4), ("at_risk", 0.1))
            )
        csm_owned = rng.random() < 0.6
        rows.append(
            {
                "objective_id": objective_id,
                "account_id": acct.id,
                "external_id": f"MS-{seq + pos:06d}",
                "title": titles[pos],
                "owner_id": owner_id if csm_owned else None,
                "owner_name": None if csm_owned else champion,
                "due_date": due,
                "status": status,
                "completed_on": due - timedelta(days=rng.randint(0, 5))
                if status == "done"
                else None,
                "note": None,
                "position": pos,
                "updated_at": stamp,
            }
        )
    if acct.name == INITECH and _overdue_count(rows, today) < 2:
        for row, days_late in zip(rows, (21, 8), strict=False):
            row["due_date"] = today - timedelta(days=days_late)
            row["status"] = "in_progress" if days_late > 10 else "at_risk"
            row["completed_on"] = None
    if acct.name == GLOBEX:
        for row in rows:
            if row["due_date"] < today:
                row["status"] = "done"
                row["completed_on"] = row["completed_on"] or row["due_date"]
    return rows


def _overdue_count(rows: list[dict[str, Any]], today: date) -> int:
    """How many of these milestone rows are overdue (due before today and not done)."""
    return sum(1 for r in rows if r["due_date"] < today and r["status"] != "done")


def _surveys(acct: AccountPlan, today: date, days: int, seq: int) -> list[dict[str, Any]]:
    """NPS waves each quarter, CSAT after support cases, the odd CES answer."""
    rng = random.Random(f"survey:{acct.external_id}")
    rows: list[dict[str, Any]] = []
    health = acct.base_now
    if acct.name == ACME:
        health = 74.0
    first = today - timedelta(days=days - 1)
    if acct.churned_on is not None:
        today = acct.churned_on

    def add(kind: str, score: int, day: date) -> None:
        rows.append(
            {
                "account_id": acct.id,
                "external_id": f"SRV-{seq + len(rows):07d}",
                "kind": kind,
                "score": score,
                "respondent": _person(rng),
                "responded_on": day,
                "comment": None,
            }
        )

    wave = today - timedelta(days=rng.randint(5, 60))
    while wave >= first:
        for _ in range(rng.randint(2, 4)):
            # promoters get likelier as health rises
            p = min(0.95, max(0.05, (health - 30) / 70))
            add("nps", 9 + rng.randint(0, 1) if rng.random() < p else rng.randint(3, 8), wave)
        wave -= timedelta(days=91)
    for _ in range(max(1, days // 60)):
        day = today - timedelta(days=rng.randint(0, days - 1))
        good = rng.random() < min(0.95, health / 100 + 0.1)
        add("csat", rng.randint(4, 5) if good else rng.randint(1, 3), day)
    if rng.random() < 0.5:
        day = today - timedelta(days=rng.randint(0, days - 1))
        add("ces", rng.randint(5, 7) if health >= 60 else rng.randint(2, 5), day)
    return rows


# ---------------------------------------------------------------------------------------------
# entry point


def write_demo(
    engine: Engine,
    *,
    today: date,
    accounts: int = 60,
    days: int = 365,
    seed: int = 7,
    models: HealthModels | None = None,
    scenario: str | None = None,
) -> DemoSummary:
    """Wipe the database and write a deterministic demo portfolio (no health snapshots: the
    use case handlers.demo.seed_demo computes those after this returns).

    The same ``seed`` and ``today`` always give the same rows (ids included), so demos, tests and
    benchmarks can rely on them. Large portfolios go through bulk Core inserts in one transaction
    (readings through COPY on PostgreSQL). ``scenario`` names a storage.demo_scenarios shaping of
    the accounts' histories (known falls, recoveries and plateaus, for backtesting the forecast).
    """
    if accounts < 1 or days < 1:
        raise ValueError("accounts and days must be at least 1")
    if models is None:
        from domain.health_model import load_health_models

        models = load_health_models(None)
    stamp = datetime.combine(today, time(6), tzinfo=UTC)
    plans = _plan_accounts(accounts, today, seed, models.default.keys)
    if scenario is not None:
        apply_scenario(scenario, plans, today=today, days=days, seed=seed)

    with engine.begin() as conn:
        wipe_all(conn)
        csm_ids = _write_people(conn, stamp)
        _write_accounts(conn, plans, csm_ids, stamp)
        readings_table = table("indicator_reading")
        with indexes_built_after(conn, readings_table):
            # Generated lazily, so 6M readings never sit in memory at once.
            rows = (
                row
                for acct in plans
                for row in _series(acct, models.for_segment(acct.segment), today, days)
            )
            readings = insert_tuples(
                conn,
                readings_table,
                ("account_id", "indicator_key", "day", "value", "source"),
                rows,
            )
        counts = _write_portfolio(conn, plans, csm_ids, today, days, stamp)
        # ARR history from the accounts and their renewals, through the one ARR-history writer.
        record_account_arr(conn, [a.id for a in plans], source="demo", today=today, at=stamp)

    summary = DemoSummary(
        accounts=len(plans),
        csms=len(csm_ids),
        readings=readings,
        snapshots=0,
        today=today,
        **counts,
    )
    logger.info("demo portfolio written: %s", summary)
    return summary


def _write_people(conn: Connection, stamp: datetime) -> list[int]:
    """CSMs first (Dana gets id 1: the local chat answers as her), then manager and admin."""
    csm = table("csm")

    def row(person: tuple[str, str, str], role: str) -> dict[str, Any]:
        name, local, tz = person
        return {
            "name": name,
            "email": f"{local}@{EMAIL_DOMAIN}",
            "role": role,
            "manager_id": None,
            "timezone": tz,
            "digest_time": "08:30",
            "digest_weekends": False,
            "created_at": stamp,
        }

    # One insert per person keeps the ids in this order on every backend.
    for person in CSM_PEOPLE:
        conn.execute(csm.insert(), [row(person, "csm")])
    conn.execute(csm.insert(), [row(MANAGER, "manager")])
    conn.execute(csm.insert(), [row(ADMIN, "admin")])
    ids = dict(conn.execute(select(csm.c.email, csm.c.id)).all())
    manager_id = ids[f"{MANAGER[1]}@{EMAIL_DOMAIN}"]
    csm_ids = [ids[f"{local}@{EMAIL_DOMAIN}"] for _, local, _ in CSM_PEOPLE]
    conn.execute(csm.update().where(csm.c.id.in_(csm_ids)).values(manager_id=manager_id))
    return [*csm_ids, manager_id, ids[f"{ADMIN[1]}@{EMAIL_DOMAIN}"]]


def _write_accounts(
    conn: Connection, plans: list[AccountPlan], csm_ids: list[int], stamp: datetime
) -> None:
    account = table("account")
    insert_dicts(
        conn,
        account,
        (
            {
                "external_id": a.external_id,
                "name": a.name,
                "aliases": a.aliases,
                "owner_id": csm_ids[a.owner_index],
                "segment": a.segment,
                "tier": {"enterprise": "tier 1", "mid-market": "tier 2"}.get(a.segment, "tier 3"),
                "arr": a.arr,
                "lifecycle_stage": a.stage,
                "start_date": a.start,
                "renewal_date": None if a.churned_on else a.renewal,
                "churned_on": a.churned_on,
                "licensed_seats": a.seats,
                "slack_channel_id": None,
                "teams_conversation_id": None,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for a in plans
        ),
    )
    ids = dict(conn.execute(select(account.c.external_id, account.c.id)).all())
    for a in plans:
        a.id = ids[a.external_id]


def _write_portfolio(
    conn: Connection,
    plans: list[AccountPlan],
    csm_ids: list[int],
    today: date,
    days: int,
    stamp: datetime,
) -> dict[str, int]:
    """Stakeholders, success plans, renewals, QBRs, surveys and escalations."""
    insert_dicts(conn, table("stakeholder"), (r for a in plans for r in _stakeholders(a)))

    live = [a for a in plans if a.churned_on is None]
    plan_tbl, obj_tbl = table("success_plan"), table("objective")
    insert_dicts(
        conn,
        plan_tbl,
        (
            {"account_id": a.id, "title": f"{a.name} success plan", "created_at": stamp}
            for a in live
        ),
    )
    plan_ids = dict(conn.execute(select(plan_tbl.c.account_id, plan_tbl.c.id)).all())
    chosen: dict[int, list[tuple]] = {}
    objective_rows = []
    for a in live:
        rng = random.Random(f"obj:{a.external_id}")
        templates = rng.sample(_OBJECTIVES, rng.randint(2, 3))
        chosen[a.id] = templates
        for pos, (title, kpi, unit, (lo, hi), factor, _) in enumerate(templates):
            baseline = round(rng.uniform(lo, hi), 1)
            target = round(baseline * factor if baseline else factor * 2, 1)
            progress = min(1.0, max(0.0, (a.base_now - 30) / 60 + rng.uniform(-0.15, 0.15)))
            objective_rows.append(
                {
                    "plan_id": plan_ids[a.id],
                    "title": title,
                    "kpi": kpi,
                    "kpi_baseline": baseline,
                    "kpi_target": target,
                    "kpi_current": round(baseline + (target - baseline) * progress, 1),
                    "kpi_unit": unit,
                    "position": pos,
                }
            )
    insert_dicts(conn, obj_tbl, objective_rows)
    obj_ids = {
        (plan_id, pos): oid
        for oid, plan_id, pos in conn.execute(
            select(obj_tbl.c.id, obj_tbl.c.plan_id, obj_tbl.c.position)
        )
    }
    milestones: list[dict[str, Any]] = []
    for a in live:
        for pos, template in enumerate(chosen[a.id]):
            milestones.extend(
                _milestone_rows(
                    a,
                    obj_ids[(plan_ids[a.id], pos)],
                    template,
                    today,
                    csm_ids[a.owner_index],
                    len(milestones) + 1,
                )
            )
    _set_hurdles(milestones, objective_rows, obj_ids)
    insert_dicts(conn, table("milestone"), milestones)
    insert_dicts(
        conn, table("kpi_reading"), _kpi_history(milestones, objective_rows, obj_ids, today)
    )

    renewals = _renewal_rows(plans, today)
    insert_dicts(conn, table("renewal"), renewals)
    qbrs = _qbr_rows(live, today)
    insert_dicts(conn, table("qbr"), qbrs)
    surveys = 0
    for start in range(0, len(plans), 1000):
        rows = [
            r
            for a in plans[start : start + 1000]
            for r in _surveys(a, today, days, seq=a.index * 100 + 1)
        ]
        surveys += insert_dicts(conn, table("survey_response"), rows)
    escalations = _write_escalations(conn, live, csm_ids, today)
    return {
        "milestones": len(milestones),
        "renewals": len(renewals),
        "qbrs": len(qbrs),
        "surveys": surveys,
        "escalations": escalations,
    }


def _objective_id(row: dict[str, Any], obj_ids: dict[tuple[int, int], int]) -> int:
    return obj_ids[(row["plan_id"], row["position"])]


def _set_hurdles(
    milestones: list[dict[str, Any]],
    objective_rows: list[dict[str, Any]],
    obj_ids: dict[tuple[int, int], int],
) -> None:
    """The hurdler plan: each milestone carries the KPI value it should reach, in even steps from
    the objective's baseline to its target, the last milestone reaching the target."""
    objectives = {_objective_id(o, obj_ids): o for o in objective_rows}
    by_objective: dict[int, list[dict[str, Any]]] = {}
    for row in milestones:
        by_objective.setdefault(row["objective_id"], []).append(row)
    for objective_id, rows in by_objective.items():
        objective = objectives[objective_id]
        baseline, target = objective["kpi_baseline"], objective["kpi_target"]
        rows.sort(key=lambda r: (r["due_date"], r["position"]))
        for step, row in enumerate(rows, start=1):
            row["kpi_target"] = round(baseline + (target - baseline) * step / len(rows), 1)
        rows.sort(key=lambda r: r["position"])
    for row in milestones:
        row.setdefault("kpi_target", None)


# KPI measurements: every two weeks from the plan's start until today.
KPI_EVERY_DAYS = 14


def _kpi_history(
    milestones: list[dict[str, Any]],
    objective_rows: list[dict[str, Any]],
    obj_ids: dict[tuple[int, int], int],
    today: date,
) -> list[dict[str, Any]]:
    """Fortnightly KPI readings from baseline (45 days before the first milestone) to today's
    value, which is the objective's kpi_current, so the plan chart and the card agree."""
    first_due: dict[int, date] = {}
    for row in milestones:
        current = first_due.get(row["objective_id"])
        first_due[row["objective_id"]] = (
            min(current, row["due_date"]) if current else row["due_date"]
        )
    out: list[dict[str, Any]] = []
    for objective in objective_rows:
        objective_id = _objective_id(objective, obj_ids)
        start = min(first_due.get(objective_id, today), today) - timedelta(days=45)
        baseline, current = objective["kpi_baseline"], objective["kpi_current"]
        span = max((today - start).days, 1)
        rng = random.Random(f"kpi:{objective_id}")
        noise = abs(objective["kpi_target"] - baseline) * 0.04
        day = start
        while day < today:
            share = (day - start).days / span
            value = baseline if day == start else baseline + (current - baseline) * share
            if day != start:
                value += rng.uniform(-noise, noise)
            out.append(
                {
                    "objective_id": objective_id,
                    "day": day,
                    "value": round(value, 1),
                    "source": "demo",
                }
            )
            day += timedelta(days=KPI_EVERY_DAYS)
        out.append({"objective_id": objective_id, "day": today, "value": current, "source": "demo"})
    return out


def _renewal_rows(plans: list[AccountPlan], today: date) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for a in plans:
        rng = random.Random(f"renewal:{a.external_id}")
        last_year = a.renewal - timedelta(days=365)
        if last_year > a.start:
            prior_arr = round(a.arr / rng.uniform(0.92, 1.25), -2)
            rows.append(
                {
                    "account_id": a.id,
                    "external_id": f"REN-{a.index + 1:05d}-1",
                    "renewal_date": last_year,
                    "arr": prior_arr,
                    "likelihood": None,
                    "status": "renewed",
                    "renewed_arr": a.arr,
                    "closed_on": last_year,
                }
            )
        churned = a.churned_on is not None
        rows.append(
            {
                "account_id": a.id,
                "external_id": f"REN-{a.index + 1:05d}-2",
                "renewal_date": a.renewal,
                "arr": a.arr,
                "likelihood": None if churned else round(min(0.97, max(0.1, a.base_now / 100)), 2),
                "status": "churned" if churned else "open",
                "renewed_arr": 0.0 if churned else None,
                "closed_on": a.churned_on,
            }
        )
    return rows


def _qbr_rows(live: list[AccountPlan], today: date) -> list[dict[str, Any]]:
    """Past reviews for most accounts; upcoming ones, some exactly 3 and 14 days out (reminders)."""
    rows: list[dict[str, Any]] = []
    fixed = {GLOBEX: 14, ACME: 3, INITECH: 21}
    for a in live:
        rng = random.Random(f"qbr:{a.external_id}")
        if a.segment == "smb" and a.name not in fixed:
            continue  # small accounts get pooled webinars, not QBRs
        past = today - timedelta(days=rng.randint(60, 110))
        upcoming = fixed.get(a.name)
        if upcoming is None:
            upcoming = rng.choice((3, 14)) if rng.random() < 0.12 else rng.randint(1, 90)
        attendees = [{"name": p["name"], "role": p["role"]} for p in _stakeholders(a)]
        for when, status in ((past, "done"), (today + timedelta(days=upcoming), "scheduled")):
            rows.append(
                {
                    "account_id": a.id,
                    "scheduled_for": datetime.combine(when, time(15), tzinfo=UTC),
                    "title": f"{a.name} quarterly business review",
                    "status": status,
                    # The account's own stakeholders, so the prep names the people the CSM knows.
                    "attendees": attendees,
                }
            )
    return rows


def _write_escalations(
    conn: Connection, live: list[AccountPlan], csm_ids: list[int], today: date
) -> int:
    """One open escalation at Acme, one at the reddest account, and a few resolved ones."""
    esc_tbl, ev_tbl = table("escalation"), table("escalation_event")
    reds = sorted((a for a in live if a.name != ACME), key=lambda a: a.base_now)
    picks: list[tuple[AccountPlan, str]] = []
    acme = next((a for a in live if a.name == ACME), None)
    if acme:
        picks.append((acme, "open"))
    if reds:
        picks.append((reds[0], "acknowledged"))
    picks += [(a, "resolved") for a in reds[1:4]]
    count = 0
    for n, (a, status) in enumerate(picks):
        title, severity = _ESCALATIONS[n % len(_ESCALATIONS)]
        opened = datetime.combine(today - timedelta(days=2 + n * 9), time(10, 15), tzinfo=UTC)
        owner = csm_ids[a.owner_index]
        ack = opened + timedelta(hours=1) if status != "open" else None
        resolved = opened + timedelta(days=3) if status == "resolved" else None
        eid = conn.execute(
            esc_tbl.insert().values(
                account_id=a.id,
                title=title,
                description=f"{a.name}: {title.lower()}.",
                severity=severity,
                status=status,
                owner_id=owner,
                opened_by_id=owner,
                opened_at=opened,
                acknowledged_at=ack,
                resolved_at=resolved,
                ack_due_at=opened + timedelta(hours=4 if severity == "sev1" else 24),
                resolve_due_at=opened + timedelta(days=2 if severity == "sev1" else 5),
            )
        ).inserted_primary_key[0]
        events = [("opened", None, "open", opened)]
        if ack:
            events.append(("status", "open", "acknowledged", ack))
        if resolved:
            events.append(("status", "acknowledged", "resolved", resolved))
        insert_dicts(
            conn,
            ev_tbl,
            (
                {
                    "escalation_id": eid,
                    "actor_id": owner,
                    "actor_label": "demo",
                    "at": at,
                    "kind": kind,
                    "from_value": frm,
                    "to_value": to,
                    "note": None,
                }
                for kind, frm, to, at in events
            ),
        )
        count += 1
    return count

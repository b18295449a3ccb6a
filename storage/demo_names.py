"""Account and people names for the demo portfolio and the large generated ones used by benchmarks."""

from __future__ import annotations

import random

# Accounts the demo tells stories with; the first three are the ones the README walks through.
STORY_ACCOUNTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Acme Corp", ("Acme", "ACME Corporation")),
    ("Globex", ("Globex Corporation",)),
    ("Initech", ()),
    # A deliberately close pair, so "umbrella" has to ask which one.
    ("Umbrella Corporation", ("Umbrella Corp",)),
    ("Umbrella Health", ()),
    ("Hooli", ()),
    ("Stark Industries", ("Stark",)),
    ("Wayne Enterprises", ("Wayne",)),
    ("Soylent Corp", ("Soylent",)),
    ("Wonka Industries", ("Wonka",)),
    ("Cyberdyne Systems", ("Cyberdyne",)),
    ("Tyrell Corporation", ("Tyrell",)),
    ("Massive Dynamic", ()),
    ("Pied Piper", ()),
    ("Vandelay Industries", ("Vandelay",)),
    ("Dunder Mifflin", ("Dunder",)),
    ("Prestige Worldwide", ()),
    ("Oceanic Airlines", ("Oceanic",)),
    ("Aperture Science", ("Aperture",)),
    ("Nakatomi Trading", ("Nakatomi",)),
    ("Bluth Company", ("Bluth",)),
    ("Sterling Cooper", ()),
    ("Gekko & Co", ("Gekko",)),
    ("Krusty Krab", ()),
)

_PREFIXES = (
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Proseware",
    "Adatum",
    "Wingtip",
    "Blue Yonder",
    "Coho",
    "Lucerne",
    "Margie",
    "Trey",
    "Wide World",
    "Alpine",
    "Fourth Coffee",
    "Humongous",
    "Graphic",
    "Woodgrove",
    "Datum",
    "Bellows",
    "Brightline",
    "Cobalt",
    "Evergreen",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Pinnacle",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidewater",
    "Upland",
    "Vertex",
    "Willow",
    "Zephyr",
    "Aurora",
    "Beacon",
    "Cascade",
    "Delta",
    "Ember",
    "Falcon",
    "Glacier",
    "Horizon",
    "Indigo",
    "Jasper",
    "Kestrel",
    "Lumen",
    "Mosaic",
    "Nova",
    "Onyx",
    "Prairie",
    "Quartz",
    "Riverbend",
    "Sable",
    "Tundra",
    "Umber",
    "Vista",
    "Westfield",
    "Yarrow",
)
_SUFFIXES = (
    "Labs",
    "Logistics",
    "Health",
    "Energy",
    "Foods",
    "Media",
    "Retail",
    "Bank",
    "Insurance",
    "Analytics",
    "Robotics",
    "Pharma",
    "Motors",
    "Airlines",
    "Software",
    "Telecom",
    "Capital",
    "Studios",
    "Systems",
    "Partners",
    "Outfitters",
    "Biotech",
    "Freight",
    "Hotels",
)

CSM_PEOPLE: tuple[tuple[str, str, str], ...] = (
    # name, email local part, IANA timezone
    ("Dana Whitfield", "dana", "America/New_York"),
    ("Marco Rossi", "marco", "Europe/Rome"),
    ("Priya Nair", "priya", "Asia/Kolkata"),
    ("Sam Okafor", "sam", "Europe/London"),
    ("Lena Fischer", "lena", "Europe/Berlin"),
    ("Jordan Lee", "jordan", "America/Los_Angeles"),
)
MANAGER = ("Alex Morgan", "alex", "America/Chicago")
ADMIN = ("Robin Admin", "admin", "UTC")
EMAIL_DOMAIN = "example.com"


def generated_account_names(count: int, *, seed: int = 7) -> list[str]:
    """Unique plausible company names beyond the story accounts, deterministic for a seed."""
    rng = random.Random(seed)
    taken = {name.lower() for name, _ in STORY_ACCOUNTS}
    names: list[str] = []
    combos = [f"{p} {s}" for p in _PREFIXES for s in _SUFFIXES]
    rng.shuffle(combos)
    serial = 0
    while len(names) < count:
        base = combos[len(names) % len(combos)] if len(names) < len(combos) else None
        if base is None:
            serial += 1
            base = f"{rng.choice(_PREFIXES)} {rng.choice(_SUFFIXES)} {serial}"
        if base.lower() not in taken:
            taken.add(base.lower())
            names.append(base)
    return names


def portfolio_names(count: int, *, seed: int = 7) -> list[tuple[str, tuple[str, ...]]]:
    """The story accounts first, then generated names, ``count`` in all."""
    story = list(STORY_ACCOUNTS[:count])
    extra = generated_account_names(max(0, count - len(story)), seed=seed)
    return story + [(name, ()) for name in extra]

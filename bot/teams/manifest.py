"""Builds the Teams app package (manifest.json + two icons, zipped) that an admin uploads to Teams."""

from __future__ import annotations

import itertools
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MANIFEST_VERSION = "1.16"
MANIFEST_SCHEMA = f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
ACCENT = (0x2E, 0x5B, 0xFF)

# Teams shows at most 10 commands per scope; titles ≤ 32 chars, descriptions ≤ 128.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("home", "Your day: red and amber accounts, renewals, overdue milestones"),
    ("health acme", "Health card for an account: score, trend, drivers, forecast"),
    ("plan acme", "Success plan with milestones you can move"),
    ("renewals 60", "Renewals in the next 60 days"),
    ("risks", "Accounts at risk, worst first"),
    ("my accounts", "Your portfolio with health"),
    ("escalate", "Open an escalation: a form, then a thread where every update lands"),
    ("qbr acme", "QBR prep: value delivered, risks, agenda"),
    ("settings", "Your digest time, working hours and what interrupts you"),
    ("help", "Everything the assistant can do (overdue, changes acme...)"),
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def build_manifest(
    app_id: str,
    domains: Sequence[str] = (),
    *,
    name: str = "CSM Assistant",
    version: str = "1.0.0",
    developer_url: str = "https://github.com/csm-assistant/csm-assistant",
) -> dict[str, Any]:
    """The manifest.json content for the bot registered as ``app_id`` (the Entra app / bot id)."""
    if not _GUID.match(app_id):
        raise ValueError(
            f"the Teams app id must be the bot's Microsoft App ID (a GUID), not {app_id!r}"
        )
    bad = [d for d in domains if not _DOMAIN.match(d)]
    if bad:
        raise ValueError(f"valid domains are host names without scheme or path: {', '.join(bad)}")
    commands = [{"title": title, "description": description} for title, description in COMMANDS]
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": "CSM Assistant contributors",
            "websiteUrl": developer_url,
            "privacyUrl": developer_url + "#privacy",
            "termsOfUseUrl": developer_url + "#license",
        },
        "name": {"short": name[:30], "full": f"{name} for Customer Success Managers"[:100]},
        "description": {
            "short": "Account health, success plans and renewals in chat"[:80],
            "full": (
                "A self-hosted assistant for Customer Success Managers: ask how an account is "
                "doing, move success-plan milestones from a card, see renewals and risks, and get "
                "renewal reminders, risk alerts and a daily digest."
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": app_id,
                "scopes": ["personal", "team", "groupChat"],
                # QBR decks arrive through the file consent card, in the personal chat.
                "supportsFiles": True,
                "isNotificationOnly": False,
                "commandLists": [
                    {"scopes": ["personal"], "commands": commands},
                    {"scopes": ["team", "groupChat"], "commands": commands},
                ],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": list(dict.fromkeys(domains)),
    }


def write_teams_package(out_dir: Path | str, app_id: str, domains: Sequence[str] = ()) -> Path:
    """Write manifest.json, color.png (192×192) and outline.png (32×32) to ``out_dir`` and zip them.

    Returns the path of the zip, ready for "Upload a custom app" in Teams.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(app_id, domains)
    files = {
        "manifest.json": json.dumps(manifest, indent=2).encode("utf-8"),
        "color.png": color_icon(),
        "outline.png": outline_icon(),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    package = out / "csm-assistant-teams.zip"
    # Teams wants the three files at the root of the zip, no folder.
    with zipfile.ZipFile(package, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return package


def color_icon(size: int = 192) -> bytes:
    """Full-colour icon: white check mark on the accent colour (opaque)."""
    return _png(size, lambda x, y: (255, 255, 255, 255) if _mark(x, y, size) else (*ACCENT, 255))


def outline_icon(size: int = 32) -> bytes:
    """Outline icon: white mark on a transparent background, as Teams requires."""
    return _png(size, lambda x, y: (255, 255, 255, 255) if _mark(x, y, size) else (0, 0, 0, 0))


def _mark(x: int, y: int, size: int) -> bool:
    """A rising line (a chart going up) with a thick stroke, scaled to the icon."""
    u, v = x / size, 1 - y / size
    stroke = 0.09
    # Three segments: up, down a little, then up to the corner.
    points = ((0.18, 0.30), (0.42, 0.55), (0.58, 0.42), (0.84, 0.74))
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        dx, dy = x1 - x0, y1 - y0
        t = max(0.0, min(1.0, ((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy)))
        if ((u - x0 - t * dx) ** 2 + (v - y0 - t * dy) ** 2) ** 0.5 <= stroke / 2:
            return True
    return False


def _png(size: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    """A minimal RGBA PNG, so building a package needs no imaging library."""
    rows = b"".join(
        b"\x00" + b"".join(struct.pack("4B", *pixel(x, y)) for x in range(size))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )

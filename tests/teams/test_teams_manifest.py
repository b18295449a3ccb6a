"""The Teams app package: a v1.16 manifest with the bot, its scopes and commands, and two valid icons."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from bot.teams.manifest import build_manifest, write_teams_package

APP_ID = "00000000-1111-2222-3333-444444444444"


def png_info(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) after checking signature and chunk CRCs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    return width, height, depth, colour


def test_package_holds_manifest_and_icons_at_the_zip_root(tmp_path: Path) -> None:
    package = write_teams_package(tmp_path / "out", APP_ID, ["csm.example.com"])

    with zipfile.ZipFile(package) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(zf.read("manifest.json"))
        assert png_info(zf.read("color.png"))[:2] == (192, 192)
        assert png_info(zf.read("outline.png"))[:2] == (32, 32)
    assert manifest["manifestVersion"] == "1.16"
    assert manifest["$schema"].endswith("/v1.16/MicrosoftTeams.schema.json")
    assert manifest["id"] == APP_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert manifest["validDomains"] == ["csm.example.com"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_outline_icon_is_white_on_transparent(tmp_path: Path) -> None:
    write_teams_package(tmp_path, APP_ID)
    data = (tmp_path / "outline.png").read_bytes()
    assert png_info(data)[2:] == (8, 6)  # 8-bit RGBA
    idat = data[data.index(b"IDAT") + 4 :]
    raw = zlib.decompressobj().decompress(idat)
    pixels = {
        raw[row * (1 + 32 * 4) + 1 + i * 4 : row * (1 + 32 * 4) + 5 + i * 4]
        for row in range(32)
        for i in range(32)
    }
    assert pixels == {b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"}


def test_manifest_respects_teams_field_limits() -> None:
    manifest = build_manifest(APP_ID)
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["name"]["full"]) <= 100
    assert (
        len(manifest["description"]["short"]) <= 80 and len(manifest["description"]["full"]) <= 4000
    )
    for command_list in manifest["bots"][0]["commandLists"]:
        assert 1 <= len(command_list["commands"]) <= 10
        for command in command_list["commands"]:
            assert len(command["title"]) <= 32 and len(command["description"]) <= 128
    titles = [c["title"] for c in manifest["bots"][0]["commandLists"][0]["commands"]]
    assert {"health acme", "plan acme", "renewals 60", "risks", "help"} <= set(titles)


@pytest.mark.parametrize(
    ("app_id", "domains"), [("not-a-guid", []), (APP_ID, ["https://csm.example.com/x"])]
)
def test_bad_ids_and_domains_are_refused(app_id: str, domains: list[str]) -> None:
    with pytest.raises(ValueError):
        build_manifest(app_id, domains)

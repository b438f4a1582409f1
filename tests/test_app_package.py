"""The Teams app package: the built manifest.json passes Microsoft's official schema, the icons have the sizes and
colours Teams demands, and a bad bot id stops the build with one clear line."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from appPackage import build as app_build

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
BOT_ID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
ENV = {"MicrosoftAppId": BOT_ID, "BOT_DOMAIN": "mfa-bot.contoso.com"}


def _newest_stable_schema_version() -> str:
    versions = [
        p.name[1:]
        for p in SCHEMAS.iterdir()
        if p.name.startswith("v") and p.name[1:].replace(".", "").isdigit()
    ]
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def _validator(version: str) -> jsonschema.protocols.Validator:
    folder = SCHEMAS / f"v{version}"
    schema = json.loads((folder / "MicrosoftTeams.schema.json").read_text(encoding="utf-8"))
    # Every schema file of that version, registered under its file name: $refs resolve locally, never online.
    resources = [
        (
            p.name,
            Resource.from_contents(json.loads(p.read_text(encoding="utf-8")), default_specification=DRAFT4),
        )
        for p in folder.glob("*.json")
    ]
    registry: Registry = Registry().with_resources(resources)
    cls = jsonschema.validators.validator_for(schema)
    # (No check_schema: Microsoft's schema uses ECMAScript \\p{L} patterns that Python's re cannot compile.
    # None of them applies to properties this manifest uses; one that did would raise, not pass silently.)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    if not SCHEMAS.is_dir():
        pytest.fail("node_modules/@microsoft/app-manifest is missing: run `make setup-node`")
    out = tmp_path_factory.mktemp("pkg")
    proc = subprocess.run(
        [sys.executable, "-m", "appPackage.build", "--out", str(out)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == out / "appPackage.zip"
    with zipfile.ZipFile(out / "appPackage.zip") as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and RGBA rows of an 8-bit RGBA PNG (all five row filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert (depth, colour_type, interlace) == (8, 6, 0), "expected 8-bit RGBA, not interlaced"
    raw, stride, bpp = zlib.decompress(idat), width * 4, 4
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        prev = line
    return width, height, [[tuple(r[i : i + 4]) for i in range(0, stride, 4)] for r in rows]


def test_package_holds_manifest_and_both_icons(package: dict[str, bytes]) -> None:
    assert set(package) == {"manifest.json", "color.png", "outline.png"}


def test_manifest_passes_the_official_teams_schema(package: dict[str, bytes]) -> None:
    manifest: dict[str, Any] = json.loads(package["manifest.json"])
    version = _newest_stable_schema_version()
    assert manifest["manifestVersion"] == version
    assert manifest["$schema"].endswith(f"/v{version}/MicrosoftTeams.schema.json")
    errors = sorted(_validator(version).iter_errors(manifest), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_official_schema_rejects_a_broken_manifest(package: dict[str, bytes]) -> None:
    manifest = json.loads(package["manifest.json"])
    manifest["bots"][0]["botId"] = "not-a-guid"
    manifest["bots"][0]["scopes"].append("everywhere")
    del manifest["icons"]
    assert len(list(_validator(manifest["manifestVersion"]).iter_errors(manifest))) >= 3


def test_manifest_carries_the_ids_scopes_commands_and_domain(package: dict[str, bytes]) -> None:
    manifest = json.loads(package["manifest.json"])
    bot = manifest["bots"][0]
    assert bot["botId"] == BOT_ID
    assert manifest["id"] == str(uuid.uuid5(app_build.TEAMS_APP_NAMESPACE, BOT_ID)) != BOT_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    personal = next(c for c in bot["commandLists"] if c["scopes"] == ["personal"])
    assert [c["title"] for c in personal["commands"]] == [
        "help",
        "set phone",
        "remove phone",
        "history",
        "status",
        "cancel",
    ]
    assert manifest["validDomains"] == ["mfa-bot.contoso.com"]
    assert manifest["developer"]["privacyUrl"] == "https://mfa-bot.contoso.com/"
    assert "webApplicationInfo" not in manifest
    assert "${" not in package["manifest.json"].decode()


def test_teams_app_id_and_sso_resource_come_from_the_environment() -> None:
    app_id = "0a1b2c3d-0000-4000-8000-00000000abcd"
    manifest = app_build.manifest(
        {**ENV, "TEAMS_APP_ID": app_id.upper(), "APP_SSO_RESOURCE": f"api://mfa-bot.contoso.com/{BOT_ID}"}
    )
    assert manifest["id"] == app_id
    assert manifest["webApplicationInfo"] == {"id": BOT_ID, "resource": f"api://mfa-bot.contoso.com/{BOT_ID}"}
    _validator(manifest["manifestVersion"]).validate(manifest)


def test_color_icon_is_192_square_full_colour(package: dict[str, bytes]) -> None:
    width, height, rows = _png(package["color.png"])
    assert (width, height) == (192, 192)
    pixels = {p for row in rows for p in row}
    assert all(p[3] == 255 for p in pixels), "the colour icon has no transparency"
    assert len({p[:3] for p in pixels}) >= 3


def test_outline_icon_is_32_square_white_on_transparent(package: dict[str, bytes]) -> None:
    width, height, rows = _png(package["outline.png"])
    assert (width, height) == (32, 32)
    pixels = [p for row in rows for p in row]
    assert all(p[3] == 0 or p[:3] == (255, 255, 255) for p in pixels)
    assert any(p[3] == 255 for p in pixels) and any(p[3] == 0 for p in pixels)


def test_committed_icons_are_what_the_generator_draws(tmp_path: Path) -> None:
    from appPackage import icons

    color, outline = icons.write_icons(tmp_path)
    assert color.read_bytes() == (ROOT / "appPackage" / "color.png").read_bytes()
    assert outline.read_bytes() == (ROOT / "appPackage" / "outline.png").read_bytes()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MicrosoftAppId is not set"),
        ({"MicrosoftAppId": "my-bot"}, "MicrosoftAppId must be a GUID"),
        ({"MicrosoftAppId": BOT_ID + "0"}, "MicrosoftAppId must be a GUID"),
        ({**ENV, "TEAMS_APP_ID": "x"}, "TEAMS_APP_ID must be a GUID"),
        ({**ENV, "BOT_DOMAIN": "not a host"}, "BOT_DOMAIN must be a host name"),
        ({"MicrosoftAppId": BOT_ID}, "APP_WEBSITE_URL is not set"),
        ({**ENV, "APP_PRIVACY_URL": "http://insecure.example"}, "APP_PRIVACY_URL must be an https:// URL"),
    ],
)
def test_build_refuses_bad_settings_with_one_line_and_writes_nothing(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appPackage.build", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()

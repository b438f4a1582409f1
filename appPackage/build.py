"""Builds the Teams app package: `python -m appPackage.build [--out DIR]` → DIR/appPackage.zip (default build/).

The zip holds manifest.json (appPackage/manifest.template.json with the ids filled in), color.png and
outline.png. Variables (read from the environment by `main` only):

  MicrosoftAppId   the bot's Microsoft Entra app id (GUID), required; the same setting the bot itself uses
  TEAMS_APP_ID     the Teams app id (GUID); default: a UUID derived from MicrosoftAppId (stable across builds)
  BOT_DOMAIN       the bot's public host name (e.g. mfa-bot.contoso.com); goes to validDomains and is the
                   default for the developer URLs
  APP_VERSION      manifest version, semver (default 1.0.0)
  APP_DEVELOPER_NAME, APP_WEBSITE_URL, APP_PRIVACY_URL, APP_TERMS_URL   shown in the Teams app details
  APP_SSO_RESOURCE optional: adds webApplicationInfo {id: MicrosoftAppId, resource: this value}

A missing or wrong value stops the build with one line naming it (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "manifest.template.json"
ICONS = ("color.png", "outline.png")
DEFAULT_OUT = HERE.parent / "build"
# Namespace for deriving the Teams app id from the bot id (any fixed UUID; never change it, or the app id moves).
TEAMS_APP_NAMESPACE = uuid.UUID("5a3f3c52-8d2e-4b7e-9a43-6f0e4b1f7c21")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HOST = re.compile(
    r"^(?=.{1,253}$)(?:\*\.)?(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$"
)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


class BuildError(Exception):
    """One line for the person running the build."""


def _guid(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not _GUID.match(value):
        raise BuildError(f"{name} must be a GUID like 00000000-0000-0000-0000-000000000000, got {value!r}")
    return value.lower()


def _domain(environ: Mapping[str, str]) -> str | None:
    value = environ.get("BOT_DOMAIN", "").strip()
    if not value:
        return None
    host = urlsplit(value).hostname if "://" in value else value.rstrip("/")
    if not host or not _HOST.match(host):
        raise BuildError(f"BOT_DOMAIN must be a host name like mfa-bot.contoso.com, got {value!r}")
    return host.lower()


def _url(environ: Mapping[str, str], name: str, default: str | None) -> str:
    value = environ.get(name, "").strip() or default
    if not value:
        raise BuildError(f"{name} is not set (or set BOT_DOMAIN, from which it defaults)")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise BuildError(f"{name} must be an https:// URL, got {value!r}")
    return value


def derived_teams_app_id(bot_id: str) -> str:
    return str(uuid.uuid5(TEAMS_APP_NAMESPACE, bot_id.lower()))


def manifest(environ: Mapping[str, str]) -> dict[str, Any]:
    """The filled-in manifest, or BuildError naming the first bad setting."""
    bot_id = _guid(environ, "MicrosoftAppId")
    if bot_id is None:
        raise BuildError("MicrosoftAppId is not set: it is the bot's Microsoft Entra app id (a GUID)")
    app_id = _guid(environ, "TEAMS_APP_ID") or derived_teams_app_id(bot_id)
    domain = _domain(environ)
    website = _url(environ, "APP_WEBSITE_URL", f"https://{domain}/" if domain else None)
    version = environ.get("APP_VERSION", "").strip() or "1.0.0"
    if not _SEMVER.match(version):
        raise BuildError(f"APP_VERSION must be a version like 1.0.0, got {version!r}")
    developer = environ.get("APP_DEVELOPER_NAME", "").strip() or "IT Service Desk"
    if len(developer) > 32:
        raise BuildError("APP_DEVELOPER_NAME must be at most 32 characters")
    values = {
        "MicrosoftAppId": bot_id,
        "TEAMS_APP_ID": app_id,
        "BOT_DOMAIN": domain or "",
        "APP_VERSION": version,
        "DEVELOPER_NAME": developer,
        "WEBSITE_URL": website,
        "PRIVACY_URL": _url(environ, "APP_PRIVACY_URL", website),
        "TERMS_URL": _url(environ, "APP_TERMS_URL", website),
    }
    # Substituted value by value in the parsed JSON, so no value can break the JSON around it.
    filled = _fill(json.loads(TEMPLATE.read_text(encoding="utf-8")), values)
    filled["validDomains"] = [d for d in filled.get("validDomains", []) if d]
    resource = environ.get("APP_SSO_RESOURCE", "").strip()
    if resource:
        filled["webApplicationInfo"] = {"id": bot_id, "resource": resource}
    return filled


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return Template(node).substitute(values)
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    return node


def build(environ: Mapping[str, str], out_dir: Path = DEFAULT_OUT) -> Path:
    """Writes out_dir/appPackage.zip and returns its path."""
    data = json.dumps(manifest(environ), indent=2, ensure_ascii=False) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "appPackage.zip"
    partial = out_dir / "appPackage.zip.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", data)
        for icon in ICONS:
            zf.write(HERE / icon, icon)
    partial.replace(target)
    return target


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appPackage.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: build/)")
    args = parser.parse_args(argv)
    try:
        path = build(os.environ if environ is None else environ, args.out)
    except BuildError as exc:
        print(f"appPackage: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

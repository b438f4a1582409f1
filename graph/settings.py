"""The one validated settings object for everything that talks to Microsoft Graph.

`GraphSettings.from_env(os.environ)` is the only place that reads the environment for graph/. A missing or
malformed value raises `SettingsError` with one line naming the variable, so a misconfiguration shows at
start-up and not as a stack trace at the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import phonenumbers

Getter = Callable[[str], "str | None"]

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
# How long a 409 phoneNumberNotUnique is followed by reads of the phone methods to see whether Graph stored the
# number anyway. Microsoft documents no delay; the runbook waits 5 s from production experience, so the default
# looks longer than that (the answer comes as soon as the number shows).
DEFAULT_CONFLICT_READBACK_SECONDS = 8.0
MAX_CONFLICT_READBACK_SECONDS = 60.0

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A tenant may be named by its GUID or by one of its verified domain names (contoso.onmicrosoft.com).
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
# Deliberately plain: one @, no spaces or angle brackets, a dotted domain. Not RFC 5322, but what a mailbox
# address in Entra looks like.
_MAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def env_getter(environ: Mapping[str, str]) -> Getter:
    """Read a variable from `environ`: surrounding white space removed, unset or blank as None."""

    def get(name: str) -> str | None:
        value = environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    return get


class SettingsError(ValueError):
    """A setting is missing or malformed. The message is one line and names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


@dataclass(frozen=True)
class ServiceDesk:
    """Who users should contact; shown in notification mails and cards."""

    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    portal_url: str | None = None


@dataclass(frozen=True)
class GraphSettings:
    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_certificate: str | None = None  # path to a PEM with private key and certificate
    client_certificate_password: str | None = field(default=None, repr=False)
    authority_host: str = DEFAULT_AUTHORITY_HOST
    base_url: str = DEFAULT_BASE_URL
    scope: str = "https://graph.microsoft.com/.default"
    mail_sender: str | None = None
    service_desk: ServiceDesk = field(default_factory=ServiceDesk)
    default_region: str | None = None
    ca_file: str | None = None  # private CA bundle (SSL_CERT_FILE, else REQUESTS_CA_BUNDLE); None = system
    conflict_readback_seconds: float = DEFAULT_CONFLICT_READBACK_SECONDS
    # The Teams app's manifest id (the `id` of appPackage's manifest.json, its externalId in the tenant app
    # catalog): the bot installs that app for a user it must reach in Teams. None: it installs nothing.
    teams_app_id: str | None = None

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def uses_certificate(self) -> bool:
        return self.client_certificate is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GraphSettings:
        get = env_getter(environ)
        tenant_id = _required(get, "GRAPH_TENANT_ID")
        if not (GUID.match(tenant_id) or _DOMAIN.match(tenant_id)):
            raise SettingsError("GRAPH_TENANT_ID", "must be the tenant's GUID or a domain name of the tenant")
        client_id = _required(get, "GRAPH_CLIENT_ID")
        if not GUID.match(client_id):
            raise SettingsError("GRAPH_CLIENT_ID", "must be the application (client) id, a GUID")

        secret = get("GRAPH_CLIENT_SECRET")
        certificate = get("GRAPH_CLIENT_CERTIFICATE")
        if secret and certificate:
            raise SettingsError(
                "GRAPH_CLIENT_SECRET",
                "set either GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE, not both",
            )
        if not secret and not certificate:
            raise SettingsError(
                "GRAPH_CLIENT_SECRET",
                "missing: set GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE (path to a PEM)",
            )
        password = get("GRAPH_CLIENT_CERTIFICATE_PASSWORD")
        if certificate:
            _check_certificate(certificate)
        elif password:
            raise SettingsError(
                "GRAPH_CLIENT_CERTIFICATE_PASSWORD", "is set but GRAPH_CLIENT_CERTIFICATE is not"
            )

        authority_host = _https_url(get, "GRAPH_AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST, allow_path=False)
        base_url = _https_url(get, "GRAPH_BASE_URL", DEFAULT_BASE_URL, allow_path=True)
        parts = urlsplit(base_url)
        scope = get("GRAPH_SCOPE") or f"{parts.scheme}://{parts.netloc}/.default"
        if " " in scope:
            raise SettingsError("GRAPH_SCOPE", "must be one scope, e.g. https://graph.microsoft.com/.default")

        mail_sender = _mail(get, "MAIL_SENDER")
        service_desk = ServiceDesk(
            display_name=get("SERVICE_DESK_DISPLAY_NAME"),
            email=_mail(get, "SERVICE_DESK_EMAIL"),
            phone=get("SERVICE_DESK_PHONE"),
            portal_url=_optional_https_url(get, "SERVICE_DESK_PORTAL_URL"),
        )
        if service_desk.phone and len(service_desk.phone) > 64:
            raise SettingsError("SERVICE_DESK_PHONE", "is longer than 64 characters")

        region = get("PHONE_DEFAULT_REGION")
        if region is not None:
            region = region.upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise SettingsError(
                    "PHONE_DEFAULT_REGION", f"'{region}' is not a known region code such as DE"
                )

        return cls(
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=secret,
            client_certificate=certificate,
            client_certificate_password=password,
            authority_host=authority_host,
            base_url=base_url,
            scope=scope,
            mail_sender=mail_sender,
            service_desk=service_desk,
            default_region=region,
            ca_file=_ca_file(get),
            teams_app_id=_teams_app_id(get),
            conflict_readback_seconds=_seconds(
                get,
                "CONFLICT_READBACK_SECONDS",
                DEFAULT_CONFLICT_READBACK_SECONDS,
                MAX_CONFLICT_READBACK_SECONDS,
            ),
        )


def _required(get: Getter, name: str) -> str:
    value = get(name)
    if value is None:
        raise SettingsError(name, "missing")
    return value


def _https_url(get: Getter, name: str, default: str, *, allow_path: bool, keep_query: bool = False) -> str:
    value = get(name)
    if value is None:
        return default
    return _check_https(name, value, allow_path=allow_path, keep_query=keep_query)


def _optional_https_url(get: Getter, name: str) -> str | None:
    value = get(name)
    if value is None:
        return None
    return _check_https(name, value, allow_path=True, keep_query=True)


def _check_https(name: str, value: str, *, allow_path: bool, keep_query: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise SettingsError(name, f"must be an https URL, got '{_short(value)}'")
    if parts.username or parts.password:
        raise SettingsError(name, "must not contain credentials")
    if (parts.query or parts.fragment) and not keep_query:
        raise SettingsError(name, "must not contain a query or fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise SettingsError(name, "must be the host only, e.g. https://login.microsoftonline.com")
    return value.rstrip("/")


def _seconds(get: Getter, name: str, default: float, maximum: float) -> float:
    value = get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(name, f"must be a number of seconds, got '{_short(value)}'") from None
    if not 0 <= seconds <= maximum:  # also refuses nan and inf
        raise SettingsError(name, f"must be from 0 to {maximum:g} seconds, got '{_short(value)}'")
    return seconds


def _teams_app_id(get: Getter) -> str | None:
    value = get("TEAMS_APP_ID")
    if value is not None and not GUID.match(value):
        raise SettingsError(
            "TEAMS_APP_ID", f"must be the Teams app's manifest id, a GUID, got '{_short(value)}'"
        )
    return value.lower() if value else None


def _mail(get: Getter, name: str) -> str | None:
    value = get(name)
    if value is not None and not _MAIL.match(value):
        raise SettingsError(name, f"'{_short(value)}' does not look like a mail address")
    return value


def _read_pem_file(name: str, path: str) -> bytes:
    """The first megabyte of the PEM file that variable `name` points at; SettingsError if it cannot be read."""
    if not os.path.isfile(path):
        raise SettingsError(name, f"no such file: {path}")
    try:
        with open(path, "rb") as fh:
            return fh.read(1_000_000)
    except OSError as exc:
        raise SettingsError(name, f"cannot read {path}: {exc.strerror or exc}") from None


def _check_certificate(path: str) -> None:
    name = "GRAPH_CLIENT_CERTIFICATE"
    text = _read_pem_file(name, path)
    if b"PRIVATE KEY-----" not in text:
        raise SettingsError(name, f"{path} holds no PEM private key")
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise SettingsError(name, f"{path} holds no PEM certificate")


def _ca_file(get: Getter) -> str | None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = get(name)
        if value is None:
            continue
        head = _read_pem_file(name, value)
        if b"-----BEGIN CERTIFICATE-----" not in head:
            raise SettingsError(name, f"{value} holds no PEM certificate")
        return value
    return None


def _short(value: str, limit: int = 80) -> str:
    value = value.replace("\n", " ").replace("\r", " ")
    return value if len(value) <= limit else value[:limit] + "…"

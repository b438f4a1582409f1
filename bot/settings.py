"""The bot's one validated settings object: the Bot Framework's own variable names, the bot's rules and the
Graph settings.

`BotSettings.from_env(os.environ)` is the only place (with graph/settings.py) that reads the environment. A
missing or malformed value raises `SettingsError` whose message is one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from graph.settings import GUID, Getter, GraphSettings, SettingsError, env_getter

__all__ = ["BotSettings", "BotFrameworkConfig", "SettingsError", "VerificationPolicy"]

# How a caller can be verified (the request card's choice "How was the caller verified?")
VERIFICATION_METHODS: tuple[str, ...] = ("teams", "code", "manager", "in_person")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_APP_TYPES = {
    "singletenant": "SingleTenant",
    "userassignedmsi": "UserAssignedMSI",
    "multitenant": "MultiTenant",
}
# Passed through to botbuilder's ConfigurationBotFrameworkAuthentication unchanged (tests serve their own OpenID
# metadata and sign their own tokens; sovereign clouds set CHANNEL_SERVICE).
PASS_THROUGH = (
    "CHANNEL_SERVICE",
    "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL",
    "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
    "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL",
    "TO_CHANNEL_FROM_BOT_LOGIN_URL",
    "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE",
    "OAUTH_URL",
)


@dataclass(frozen=True)
class BotFrameworkConfig:
    """What ConfigurationBotFrameworkAuthentication reads (attribute names are botbuilder's)."""

    APP_ID: str | None = None
    APP_PASSWORD: str | None = field(default=None, repr=False)
    APP_TYPE: str = "SingleTenant"
    APP_TENANTID: str | None = None
    CERTIFICATE_THUMBPRINT: str | None = None
    CERTIFICATE_PRIVATE_KEY_FILE: str | None = None
    CHANNEL_SERVICE: str | None = None
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str | None = None
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str | None = None
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str | None = None
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str | None = None
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str | None = None
    OAUTH_URL: str | None = None

    @property
    def authentication_enabled(self) -> bool:
        return bool(self.APP_ID)


@dataclass(frozen=True)
class VerificationPolicy:
    """VERIFICATION_POLICY: which ways of verifying the caller are accepted for ordinary and for privileged
    targets, and whether a verified request for such a target still needs an approver. `enabled` False
    (VERIFICATION_POLICY=none) switches caller verification off."""

    enabled: bool = True
    ordinary: tuple[str, ...] = ("teams", "code", "manager")
    privileged: tuple[str, ...] = ("teams", "manager")
    ordinary_approval: bool = False
    privileged_approval: bool = True

    def accepted(self, privileged: bool) -> tuple[str, ...]:
        return self.privileged if privileged else self.ordinary

    def approval(self, privileged: bool) -> bool:
        """Whether a verified request for such a target needs an approver whatever APPROVAL_POLICY says."""
        return self.enabled and (self.privileged_approval if privileged else self.ordinary_approval)

    @classmethod
    def parse(cls, value: str | None) -> VerificationPolicy:
        """`ordinary=teams,code,manager;privileged=teams,manager+approval` (the default), or `none`. A class
        left out keeps its default; `+approval` after a list: such requests always need an approver."""
        text = (value or "").strip().lower()
        if not text:
            return cls()
        if text == "none":
            return cls(enabled=False, ordinary=(), privileged=())
        found: dict[str, tuple[tuple[str, ...], bool]] = {}
        for part in text.split(";"):
            if not part.strip():
                continue
            name, sep, methods = part.partition("=")
            name = name.strip()
            if not sep or name not in ("ordinary", "privileged"):
                raise SettingsError(
                    "VERIFICATION_POLICY",
                    f"'{part.strip()[:40]}' is not ordinary=<methods> or privileged=<methods> "
                    "(e.g. ordinary=teams,code,manager;privileged=teams,manager+approval, or none)",
                )
            if name in found:
                raise SettingsError("VERIFICATION_POLICY", f"{name} is given twice")
            methods = methods.strip()
            approval = methods.endswith("+approval")
            methods = methods.removesuffix("+approval")
            listed = tuple(dict.fromkeys(m.strip() for m in methods.split(",") if m.strip()))
            unknown = [m for m in listed if m not in VERIFICATION_METHODS]
            if unknown or not listed:
                raise SettingsError(
                    "VERIFICATION_POLICY",
                    f"{name}: '{(unknown[0] if unknown else methods)[:30]}' is not a method; use "
                    f"{', '.join(VERIFICATION_METHODS)} (or none for the whole setting)",
                )
            found[name] = (listed, approval)
        default = cls()
        ordinary, ordinary_approval = found.get("ordinary", (default.ordinary, default.ordinary_approval))
        privileged, privileged_approval = found.get(
            "privileged", (default.privileged, default.privileged_approval)
        )
        return cls(
            enabled=True,
            ordinary=ordinary,
            privileged=privileged,
            ordinary_approval=ordinary_approval,
            privileged_approval=privileged_approval,
        )


@dataclass(frozen=True)
class BotSettings:
    graph: GraphSettings | None  # None only in demo mode, where the demo builds it for its simulated tenant
    bot_framework: BotFrameworkConfig = field(default_factory=BotFrameworkConfig)
    host: str = "0.0.0.0"  # noqa: S104  (a server listens on all interfaces by default; HOST narrows it)
    port: int = 3978
    database_url: str | None = field(default=None, repr=False)
    data_dir: Path = Path("data")
    helpdesk_group_id: str = ""
    approver_group_id: str | None = None
    privileged_group_id: str = ""
    approval_policy: Literal["always", "privileged", "never"] = "privileged"
    approval_expiry_hours: float = 24.0
    approver_dm: bool = True
    manager_approval: bool = False
    sweep_interval_seconds: float = 60.0
    approver_conversation_id: str | None = None
    # The Bot Framework connector a 1:1 chat created through Graph is reached at, only while no conversation of the
    # tenant is stored (bot/teams/reach.py): Microsoft's public global Teams endpoint by default
    bot_service_url: str = "https://smba.trafficmanager.net/teams/"
    notify_default: bool = True
    role_cache_seconds: float = 120.0
    max_changes_per_requester_per_hour: int = 20  # 0 switches the limit off
    target_cooldown_minutes: float = 10.0  # 0 switches the cool-down off
    verification_policy: VerificationPolicy = field(default_factory=VerificationPolicy)
    verification_code_minutes: int = 10  # a one-time code is valid this long
    verification_timeout_minutes: int = 10  # the target (or manager) has this long to answer in Teams
    target_lock_hours: float = 24.0  # after "No, I did not ask": no change through the bot for this long
    shutdown_timeout_seconds: float = 30.0
    max_body_bytes: int = 1024 * 1024
    demo_mode: bool = False
    # No MicrosoftAppId outside demo mode: only with this explicit opt-in, and only on a loopback HOST
    allow_unauthenticated_inbound: bool = False
    log_level: str = "INFO"

    @property
    def tenant_id(self) -> str | None:
        return self.graph.tenant_id if self.graph else None

    @property
    def approval_expiry_seconds(self) -> float:
        return self.approval_expiry_hours * 3600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BotSettings:
        get = env_getter(environ)
        demo_mode = _bool(get, "DEMO_MODE", False)
        graph: GraphSettings | None
        if demo_mode and get("GRAPH_TENANT_ID") is None:
            graph = None
        else:
            graph = GraphSettings.from_env(environ)

        bot_framework = _bot_framework(get, graph)

        host = get("HOST") or "0.0.0.0"  # noqa: S104
        if len(host) > 255 or any(c.isspace() for c in host):
            raise SettingsError("HOST", f"'{host[:80]}' is not a host name or address")
        port = _int(get, "PORT", 3978, low=0, high=65535)
        allow_unauthenticated = _inbound_authentication(get, bot_framework, host, demo_mode)

        database_url, data_dir = database_settings(environ)

        helpdesk = _guid(
            get, "HELPDESK_GROUP_ID", required=not demo_mode or get("HELPDESK_GROUP_ID") is not None
        )
        privileged = _guid(
            get, "PRIVILEGED_GROUP_ID", required=not demo_mode or get("PRIVILEGED_GROUP_ID") is not None
        )
        policy = (get("APPROVAL_POLICY") or "privileged").lower()
        if policy not in ("always", "privileged", "never"):
            raise SettingsError(
                "APPROVAL_POLICY", f"must be always, privileged or never (got '{policy[:30]}')"
            )
        approver = _guid(get, "APPROVER_GROUP_ID", required=False)
        if approver is None and policy != "never" and not demo_mode:
            raise SettingsError(
                "APPROVER_GROUP_ID", f"missing: APPROVAL_POLICY={policy} needs an approver group"
            )

        return cls(
            graph=graph,
            bot_framework=bot_framework,
            host=host,
            port=port,
            database_url=database_url,
            data_dir=data_dir,
            helpdesk_group_id=helpdesk or "",
            approver_group_id=approver,
            privileged_group_id=privileged or "",
            approval_policy=policy,  # type: ignore[arg-type]
            approval_expiry_hours=_float(get, "APPROVAL_EXPIRY_HOURS", 24.0, low=0.01, high=24.0 * 30),
            approver_dm=_bool(get, "APPROVER_DM", True),
            manager_approval=_bool(get, "MANAGER_APPROVAL", False),
            sweep_interval_seconds=_float(get, "SWEEP_INTERVAL_SECONDS", 60.0, low=0.05, high=3600.0),
            approver_conversation_id=_text(get, "APPROVER_CONVERSATION_ID", 512),
            bot_service_url=_service_url(get),
            notify_default=_bool(get, "NOTIFY_DEFAULT", True),
            role_cache_seconds=_float(get, "ROLE_CACHE_SECONDS", 120.0, low=0.0, high=3600.0),
            max_changes_per_requester_per_hour=_int(
                get, "MAX_CHANGES_PER_REQUESTER_PER_HOUR", 20, low=0, high=10_000
            ),
            target_cooldown_minutes=_float(get, "TARGET_COOLDOWN_MINUTES", 10.0, low=0.0, high=7 * 24 * 60.0),
            verification_policy=VerificationPolicy.parse(get("VERIFICATION_POLICY")),
            verification_code_minutes=_int(get, "VERIFICATION_CODE_MINUTES", 10, low=1, high=60),
            verification_timeout_minutes=_int(get, "VERIFICATION_TIMEOUT_MINUTES", 10, low=1, high=24 * 60),
            target_lock_hours=_float(get, "TARGET_LOCK_HOURS", 24.0, low=0.01, high=24.0 * 30),
            shutdown_timeout_seconds=_float(get, "SHUTDOWN_TIMEOUT_SECONDS", 30.0, low=0.0, high=600.0),
            max_body_bytes=_int(get, "MAX_BODY_BYTES", 1024 * 1024, low=4096, high=16 * 1024 * 1024),
            demo_mode=demo_mode,
            allow_unauthenticated_inbound=allow_unauthenticated,
            log_level=_log_level(get),
        )


def database_settings(environ: Mapping[str, str]) -> tuple[str | None, Path]:
    """DATABASE_URL (None: the SQLite file under DATA_DIR) and DATA_DIR, as the bot and `python -m bot.persistence.audit` read
    them."""
    get = env_getter(environ)
    database_url = get("DATABASE_URL")
    if database_url is not None:
        scheme = urlsplit(database_url).scheme.lower()
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg", "postgresql", "postgres"):
            raise SettingsError(
                "DATABASE_URL",
                "must be postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path (got scheme "
                f"'{scheme[:30]}')",
            )
        if scheme in ("postgresql", "postgres"):
            database_url = "postgresql+asyncpg" + database_url[len(scheme) :]
    return database_url, Path(get("DATA_DIR") or "data")


def _bot_framework(get: Getter, graph: GraphSettings | None) -> BotFrameworkConfig:
    app_id = get("MicrosoftAppId")
    if app_id is not None and not GUID.match(app_id):
        raise SettingsError("MicrosoftAppId", "must be the bot's Microsoft App ID, a GUID")
    raw_type = get("MicrosoftAppType") or "SingleTenant"
    app_type = _APP_TYPES.get(raw_type.lower())
    if app_type is None:
        raise SettingsError(
            "MicrosoftAppType",
            f"must be SingleTenant, UserAssignedMSI or MultiTenant (got '{raw_type[:40]}')",
        )
    password = get("MicrosoftAppPassword")
    thumbprint = get("MicrosoftAppCertificateThumbprint")
    key_file = get("MicrosoftAppCertificatePrivateKey")
    tenant = get("MicrosoftAppTenantId")
    if tenant is not None and not GUID.match(tenant) and "." not in tenant:
        raise SettingsError("MicrosoftAppTenantId", "must be the tenant's GUID or domain name")
    if tenant is None and graph is not None:
        tenant = graph.tenant_id

    if app_id is None:
        for name, value in (
            ("MicrosoftAppPassword", password),
            ("MicrosoftAppCertificateThumbprint", thumbprint),
            ("MicrosoftAppCertificatePrivateKey", key_file),
        ):
            if value is not None:
                raise SettingsError("MicrosoftAppId", f"missing: {name} is set but MicrosoftAppId is not")
    else:
        if password and (thumbprint or key_file):
            raise SettingsError(
                "MicrosoftAppPassword", "set either MicrosoftAppPassword or a certificate, not both"
            )
        if (thumbprint is None) != (key_file is None):
            missing = (
                "MicrosoftAppCertificatePrivateKey"
                if key_file is None
                else "MicrosoftAppCertificateThumbprint"
            )
            raise SettingsError(
                missing, "missing: a certificate needs both the thumbprint and the private key file"
            )
        if thumbprint is not None and not re.fullmatch(r"[0-9A-Fa-f]{40}", thumbprint.replace(":", "")):
            raise SettingsError(
                "MicrosoftAppCertificateThumbprint", "must be the SHA-1 thumbprint (40 hex digits)"
            )
        if key_file is not None:
            if not os.path.isfile(key_file):
                raise SettingsError("MicrosoftAppCertificatePrivateKey", f"no such file: {key_file}")
        if app_type == "SingleTenant":
            if tenant is None:
                raise SettingsError("MicrosoftAppTenantId", "missing: SingleTenant needs the tenant id")
            if not password and not thumbprint:
                raise SettingsError(
                    "MicrosoftAppPassword",
                    "missing: SingleTenant needs MicrosoftAppPassword or a certificate "
                    "(MicrosoftAppCertificateThumbprint and MicrosoftAppCertificatePrivateKey)",
                )
        elif app_type == "UserAssignedMSI":
            if tenant is None:
                raise SettingsError("MicrosoftAppTenantId", "missing: UserAssignedMSI needs the tenant id")
            if password or thumbprint:
                raise SettingsError("MicrosoftAppPassword", "UserAssignedMSI uses no password or certificate")

    extra: dict[str, str | None] = {}
    for name in PASS_THROUGH:
        value = get(name)
        if value is not None and name.endswith("_URL"):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError(name, f"must be a URL, got '{value[:80]}'")
        extra[name] = value
    return BotFrameworkConfig(
        APP_ID=app_id,
        APP_PASSWORD=password,
        APP_TYPE=app_type,
        APP_TENANTID=tenant,
        CERTIFICATE_THUMBPRINT=thumbprint.replace(":", "").upper() if thumbprint else None,
        CERTIFICATE_PRIVATE_KEY_FILE=key_file,
        **extra,
    )


LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: an address only this machine can reach."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _inbound_authentication(get: Getter, bf: BotFrameworkConfig, host: str, demo_mode: bool) -> bool:
    """Whether the bot may run without inbound authentication (no MicrosoftAppId): never by accident. Outside demo
    mode that takes ALLOW_UNAUTHENTICATED_INBOUND=true and a HOST that only this machine can reach; without the
    app id otherwise, anyone who reaches the port could act as any Teams user."""
    allow = _bool(get, "ALLOW_UNAUTHENTICATED_INBOUND", False)
    if bf.authentication_enabled or demo_mode:
        return False
    if not allow:
        raise SettingsError(
            "MicrosoftAppId",
            "missing: the bot's Microsoft App ID authenticates every request from Teams (for local tests only: "
            "ALLOW_UNAUTHENTICATED_INBOUND=true with HOST=127.0.0.1)",
        )
    if not is_loopback(host):
        raise SettingsError(
            "ALLOW_UNAUTHENTICATED_INBOUND",
            f"true needs a loopback HOST (127.0.0.1, ::1 or localhost), not '{host[:80]}'",
        )
    return True


def _service_url(get: Getter) -> str:
    """BOT_SERVICE_URL: an https address (http only on a loopback host, for a local connector)."""
    value = get("BOT_SERVICE_URL")
    if value is None:
        return BotSettings.bot_service_url
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))
    if not secure or not parts.hostname or any(c.isspace() for c in value) or len(value) > 512:
        raise SettingsError(
            "BOT_SERVICE_URL",
            f"must be the connector's https address, e.g. https://smba.trafficmanager.net/teams/ (got "
            f"'{value[:80]}')",
        )
    return value if value.endswith("/") else value + "/"


def _guid(get: Getter, name: str, *, required: bool) -> str | None:
    value = get(name)
    if value is None:
        if required:
            raise SettingsError(name, "missing: the Entra group's object id")
        return None
    if not GUID.match(value):
        raise SettingsError(name, f"must be an Entra group object id (GUID), got '{value[:60]}'")
    return value.lower()


def _bool(get: Getter, name: str, default: bool) -> bool:
    value = get(name)
    if value is None:
        return default
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SettingsError(name, f"must be true or false (got '{value[:30]}')")


def _int(get: Getter, name: str, default: int, *, low: int, high: int) -> int:
    value = get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(name, f"must be a whole number (got '{value[:30]}')") from None
    if not low <= number <= high:
        raise SettingsError(name, f"must be between {low} and {high} (got {number})")
    return number


def _float(get: Getter, name: str, default: float, *, low: float, high: float) -> float:
    value = get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(name, f"must be a number (got '{value[:30]}')") from None
    if not low <= number <= high or number != number:
        raise SettingsError(name, f"must be between {low:g} and {high:g} (got {value[:30]})")
    return number


def _text(get: Getter, name: str, limit: int) -> str | None:
    value = get(name)
    if value is not None and len(value) > limit:
        raise SettingsError(name, f"is longer than {limit} characters")
    return value


def _log_level(get: Getter) -> str:
    value = (get("LOG_LEVEL") or "INFO").upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR (got '{value[:20]}')")
    return value

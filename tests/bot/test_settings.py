"""The bot's settings: defaults, the Bot Framework's variable names, and one clear line for each mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import BotSettings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
TENANT = "8f3c2a51-0d6e-4b7a-9c1f-2e4d6b8a0c11"
BOT_APP_ID = "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"
BASE = {
    "MicrosoftAppId": BOT_APP_ID,
    "MicrosoftAppPassword": "not-a-real-bot-password",
    "GRAPH_TENANT_ID": TENANT,
    "GRAPH_CLIENT_ID": "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f",
    "GRAPH_CLIENT_SECRET": "not-a-real-secret",
    "HELPDESK_GROUP_ID": "11111111-1111-1111-1111-000000000001",
    "APPROVER_GROUP_ID": "11111111-1111-1111-1111-000000000002",
    "PRIVILEGED_GROUP_ID": "11111111-1111-1111-1111-000000000003",
}


NO_APP: dict[str, str | None] = {"MicrosoftAppId": None, "MicrosoftAppPassword": None}


def env(**changes: str | None) -> dict[str, str]:
    result = dict(BASE)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def test_defaults_are_documented_values() -> None:
    s = BotSettings.from_env(env())
    assert (s.host, s.port) == ("0.0.0.0", 3978)
    assert s.database_url is None and s.data_dir == Path("data")
    assert s.approval_policy == "privileged"
    assert s.approval_expiry_hours == 24 and s.approver_dm is True and s.manager_approval is False
    assert s.sweep_interval_seconds == 60
    assert s.max_changes_per_requester_per_hour == 20 and s.target_cooldown_minutes == 10
    assert s.notify_default is True and s.demo_mode is False
    assert s.bot_framework.APP_ID == BOT_APP_ID and s.bot_framework.authentication_enabled
    assert s.bot_framework.APP_TYPE == "SingleTenant"
    assert s.allow_unauthenticated_inbound is False
    assert s.tenant_id == TENANT


def test_bot_framework_single_tenant_with_password_takes_the_tenant_from_graph() -> None:
    s = BotSettings.from_env(env(MicrosoftAppPassword="pw"))
    bf = s.bot_framework
    assert bf.APP_ID == "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f" and bf.APP_PASSWORD == "pw"
    assert bf.APP_TYPE == "SingleTenant" and bf.APP_TENANTID == TENANT
    assert "pw" not in repr(s)


def test_openid_metadata_overrides_pass_through() -> None:
    s = BotSettings.from_env(
        env(
            TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL="http://127.0.0.1:9/openid",
            TO_BOT_FROM_CHANNEL_TOKEN_ISSUER="https://issuer.example",
        )
    )
    assert s.bot_framework.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL == "http://127.0.0.1:9/openid"
    assert s.bot_framework.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER == "https://issuer.example"


def test_user_assigned_msi_needs_no_secret() -> None:
    s = BotSettings.from_env(env(MicrosoftAppType="UserAssignedMSI", MicrosoftAppPassword=None))
    assert s.bot_framework.APP_TYPE == "UserAssignedMSI"


def test_postgres_url_gets_the_async_driver() -> None:
    s = BotSettings.from_env(env(DATABASE_URL="postgresql://bot@db.internal/mfa"))
    assert s.database_url == "postgresql+asyncpg://bot@db.internal/mfa"


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"HELPDESK_GROUP_ID": None}, "HELPDESK_GROUP_ID"),
        ({"HELPDESK_GROUP_ID": "helpdesk"}, "HELPDESK_GROUP_ID"),
        ({"PRIVILEGED_GROUP_ID": None}, "PRIVILEGED_GROUP_ID"),
        ({"APPROVER_GROUP_ID": None}, "APPROVER_GROUP_ID"),
        ({"APPROVAL_POLICY": "sometimes"}, "APPROVAL_POLICY"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"NOTIFY_DEFAULT": "maybe"}, "NOTIFY_DEFAULT"),
        ({"ROLE_CACHE_SECONDS": "-1"}, "ROLE_CACHE_SECONDS"),
        ({"MAX_CHANGES_PER_REQUESTER_PER_HOUR": "many"}, "MAX_CHANGES_PER_REQUESTER_PER_HOUR"),
        ({"TARGET_COOLDOWN_MINUTES": "x"}, "TARGET_COOLDOWN_MINUTES"),
        ({"DATABASE_URL": "mysql://db/mfa"}, "DATABASE_URL"),
        ({"MicrosoftAppId": "bot"}, "MicrosoftAppId"),
        ({"MicrosoftAppId": None}, "MicrosoftAppId"),  # a password without the app id
        ({**NO_APP, "ALLOW_UNAUTHENTICATED_INBOUND": "perhaps"}, "ALLOW_UNAUTHENTICATED_INBOUND"),
        ({"MicrosoftAppPassword": None}, "MicrosoftAppPassword"),
        ({"MicrosoftAppType": "Anything"}, "MicrosoftAppType"),
        (
            {"MicrosoftAppPassword": None, "MicrosoftAppCertificateThumbprint": "AB" * 20},
            "MicrosoftAppCertificatePrivateKey",
        ),
        ({"TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": "not a url"}, "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL"),
        ({"GRAPH_TENANT_ID": None}, "GRAPH_TENANT_ID"),
    ],
)
def test_a_wrong_setting_is_named_in_one_line(changes: dict[str, str | None], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        BotSettings.from_env(env(**changes))
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


def test_without_an_app_id_the_bot_does_not_start() -> None:
    """No MicrosoftAppId would mean no inbound authentication: anyone reaching the port could act as any user."""
    with pytest.raises(SettingsError) as info:
        BotSettings.from_env(env(**NO_APP))
    message = str(info.value)
    assert message.startswith("MicrosoftAppId: missing") and "\n" not in message
    with pytest.raises(SettingsError, match="^MicrosoftAppId: missing"):
        BotSettings.from_env(env(**NO_APP, ALLOW_UNAUTHENTICATED_INBOUND="false", HOST="127.0.0.1"))


@pytest.mark.parametrize(
    "host", [None, "0.0.0.0", "::", "10.1.2.3", "bot.contoso.example", "127.0.0.1.nip.io"]
)
def test_running_without_inbound_authentication_needs_a_loopback_host(host: str | None) -> None:
    with pytest.raises(SettingsError) as info:
        BotSettings.from_env(env(**NO_APP, ALLOW_UNAUTHENTICATED_INBOUND="true", HOST=host))
    message = str(info.value)
    assert message.startswith("ALLOW_UNAUTHENTICATED_INBOUND: true needs a loopback HOST")
    assert "\n" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "LOCALHOST", "127.0.0.2"])
def test_running_without_inbound_authentication_is_an_explicit_opt_in_on_loopback(host: str) -> None:
    s = BotSettings.from_env(env(**NO_APP, ALLOW_UNAUTHENTICATED_INBOUND="true", HOST=host))
    assert s.allow_unauthenticated_inbound is True and not s.bot_framework.authentication_enabled


def test_with_an_app_id_the_opt_in_changes_nothing() -> None:
    s = BotSettings.from_env(env(ALLOW_UNAUTHENTICATED_INBOUND="true"))
    assert s.allow_unauthenticated_inbound is False and s.bot_framework.authentication_enabled


def test_demo_mode_needs_no_app_id() -> None:
    s = BotSettings.from_env(env(**NO_APP, DEMO_MODE="true"))
    assert s.demo_mode and not s.bot_framework.authentication_enabled
    assert s.allow_unauthenticated_inbound is False


def test_policy_never_needs_no_approver_group() -> None:
    s = BotSettings.from_env(env(APPROVAL_POLICY="never", APPROVER_GROUP_ID=None))
    assert s.approval_policy == "never" and s.approver_group_id is None


def _run_app(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    clean.update(environ)
    return subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_python_app_py_with_a_missing_setting_prints_one_line_and_exits_2() -> None:
    result = _run_app(env(HELPDESK_GROUP_ID=None))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["configuration error: HELPDESK_GROUP_ID: missing: the Entra group's object id"]
    assert "Traceback" not in result.stdout + result.stderr


def test_python_app_py_rejects_unknown_arguments() -> None:
    result = _run_app(env(), "--bogus")
    assert result.returncode == 2
    assert "unknown argument: --bogus" in result.stderr


def test_python_app_py_without_an_app_id_prints_one_line_and_exits_2() -> None:
    result = _run_app(env(**NO_APP))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("configuration error: MicrosoftAppId: missing"), lines
    assert "ALLOW_UNAUTHENTICATED_INBOUND" in lines[0]  # says how to run a local test bot
    assert "Traceback" not in result.stdout + result.stderr


def test_python_app_py_without_authentication_on_all_interfaces_prints_one_line_and_exits_2() -> None:
    result = _run_app(env(**NO_APP, ALLOW_UNAUTHENTICATED_INBOUND="true"))  # HOST defaults to 0.0.0.0
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "configuration error: ALLOW_UNAUTHENTICATED_INBOUND: true needs a loopback HOST "
        "(127.0.0.1, ::1 or localhost), not '0.0.0.0'"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_bot_service_url_defaults_to_the_public_global_teams_endpoint() -> None:
    assert BotSettings.from_env(env()).bot_service_url == "https://smba.trafficmanager.net/teams/"
    s = BotSettings.from_env(env(BOT_SERVICE_URL="https://smba.infra.gcc.teams.microsoft.com/teams"))
    assert s.bot_service_url == "https://smba.infra.gcc.teams.microsoft.com/teams/"
    assert BotSettings.from_env(env(BOT_SERVICE_URL="http://127.0.0.1:56150/_connector")).bot_service_url == (
        "http://127.0.0.1:56150/_connector/"
    )


@pytest.mark.parametrize(
    "value", ["http://smba.trafficmanager.net/teams/", "smba.trafficmanager.net", "https://"]
)
def test_a_bot_service_url_that_is_not_https_is_one_line(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        BotSettings.from_env(env(BOT_SERVICE_URL=value))
    assert str(info.value).startswith("BOT_SERVICE_URL: must be the connector's https address")

"""`python -m graph doctor` against the simulator: one permission, licence, group or setting switched off at a time.

The doctor runs the product's own stack (real msal for the token, real httpx to the simulator over HTTPS); the
simulator refuses what a tenant without that permission or licence refuses. Each case checks the status, the
permission or setting it names, the exit code and that nothing was changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph.doctor import EXCHANGE_MAIL_SEND, STATUSES, Report, diagnose, group_settings, render_table
from graph.settings import GraphSettings
from graph.simulator import DEFAULT_TEAMS_APP_EXTERNAL_ID
from tests.graph.test_cli import run_cli

HELPDESK = "11111111-1111-1111-1111-000000000001"
APPROVERS = "11111111-1111-1111-1111-000000000002"
PRIVILEGED = "11111111-1111-1111-1111-000000000003"
SENDER = "alex.wilber@contoso.example"
GROUPS = {"HELPDESK_GROUP_ID": HELPDESK, "APPROVER_GROUP_ID": APPROVERS, "PRIVILEGED_GROUP_ID": PRIVILEGED}
CHECK_KEYS = {"name", "status", "permission", "detail", "request_id"}


def _env(sim_env: dict[str, str], **changes: str) -> dict[str, str]:
    return {**sim_env, **GROUPS, "MAIL_SENDER": SENDER, **changes}


async def _doctor(env: dict[str, str], *, user: str | None = None) -> Report:
    return await diagnose(GraphSettings.from_env(env), user=user, groups=group_settings(env))


def _by_name(report: Report) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def _assert_shape(data: dict[str, Any]) -> None:
    assert set(data) == {"ok", "checks"} and isinstance(data["ok"], bool)
    for check in data["checks"]:
        assert set(check) == CHECK_KEYS
        assert check["status"] in STATUSES


def _revoke(sim: Any, *roles: str) -> None:
    app = sim.tenant.applications[0]
    app.roles = [r for r in app.roles if r not in roles]


async def test_a_tenant_with_everything_granted_passes_every_check(sim: Any, sim_env: dict[str, str]) -> None:
    report = await _doctor(_env(sim_env))
    checks = _by_name(report)
    assert report.exit_code == 0 and report.ok, render_table(report)
    expected_ok = {
        "sign_in",
        "users_read",
        "phone_read",
        "group_membership",
        "role_assignments",
        "role_eligibility",
        "group_eligibility",
        "role_assignable_groups",
        "app_owners",
        "registration_report",
        "mail_sender",
        "mail_send",
        "phone_write",
        *(f"group:{name}" for name in GROUPS),
    }
    assert {name for name, c in checks.items() if c.status == "ok"} == expected_ok
    assert checks["teams_app_installation"].status == checks["teams_app_catalog"].status == "not configured"
    assert checks["teams_app_catalog"].permission == "TEAMS_APP_ID"
    assert checks["group:HELPDESK_GROUP_ID"].detail == "Helpdesk"
    # every check that asked Graph carries Graph's request-id
    asked = {c.request_id for c in report.checks if c.request_id}
    assert asked <= {call.request_id for call in sim.calls}
    assert len(asked) == len(expected_ok) - 3  # sign-in and the two permissions read from the token
    _assert_shape(report.to_json())


async def test_the_doctor_changes_nothing(sim: Any, sim_env: dict[str, str]) -> None:
    before = sim.tenant.to_dict()
    await _doctor(_env(sim_env))
    assert sim.tenant.to_dict() == before
    assert sim.outbox == []
    writes = [(c.method, c.path) for c in sim.calls if c.method != "GET"]
    assert all(path.endswith("/checkMemberGroups") for _, path in writes), writes


@pytest.mark.parametrize(
    ("revoked", "check", "permission"),
    [
        (("User.Read.All",), "users_read", "User.Read.All (or Directory.Read.All)"),
        (("User.Read.All",), "mail_sender", "User.Read.All (or Directory.Read.All)"),
        (
            ("UserAuthenticationMethod.ReadWrite.All",),
            "phone_read",
            "UserAuthMethod-Phone.Read.All (or UserAuthenticationMethod.Read.All)",
        ),
        (
            ("UserAuthenticationMethod.ReadWrite.All",),
            "phone_write",
            "UserAuthMethod-Phone.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)",
        ),
        (
            ("GroupMember.Read.All",),
            "group_membership",
            "GroupMember.Read.All and User.Read.All (or Directory.Read.All)",
        ),
        (("GroupMember.Read.All",), "group:APPROVER_GROUP_ID", "GroupMember.Read.All (or Group.Read.All)"),
        (("GroupMember.Read.All",), "role_assignable_groups", "GroupMember.Read.All (or Group.Read.All)"),
        (
            ("RoleManagement.Read.Directory",),
            "role_assignments",
            "RoleManagement.Read.Directory (or Directory.Read.All)",
        ),
        (
            ("RoleManagement.Read.Directory",),
            "role_eligibility",
            "RoleEligibilitySchedule.Read.Directory (or RoleManagement.Read.Directory)",
        ),
        (
            ("PrivilegedEligibilitySchedule.Read.AzureADGroup",),
            "group_eligibility",
            "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        ),
        (("Application.Read.All",), "app_owners", "Application.Read.All (or Directory.Read.All)"),
        (("AuditLog.Read.All",), "registration_report", "AuditLog.Read.All"),
    ],
)
async def test_a_missing_permission_is_named_and_fails_the_run(
    sim: Any, sim_env: dict[str, str], revoked: tuple[str, ...], check: str, permission: str
) -> None:
    _revoke(sim, *revoked)
    report = await _doctor(_env(sim_env))
    found = _by_name(report)[check]
    assert (found.status, found.permission) == ("missing", permission), render_table(report)
    assert report.exit_code == 2 and not report.ok
    assert report.to_json()["ok"] is False
    if check not in ("phone_write", "mail_send"):  # read from the token, no call
        assert found.request_id in {c.request_id for c in sim.calls}
    # everything else the application holds still passes
    assert _by_name(report)["sign_in"].status == "ok"


async def test_without_users_read_the_checks_that_need_a_user_say_why(
    sim: Any, sim_env: dict[str, str]
) -> None:
    _revoke(sim, "User.Read.All")
    checks = _by_name(await _doctor(_env(sim_env)))
    for name in ("phone_read", "group_membership"):
        assert checks[name].status == "not checked"
        assert "reading users failed" in checks[name].detail


@pytest.mark.parametrize(
    ("switch", "checks", "licence"),
    [
        ("p1_licensed", ["registration_report"], "Microsoft Entra ID P1 or P2"),
        ("pim_licensed", ["role_eligibility", "group_eligibility"], "Microsoft Entra ID P2"),
    ],
)
async def test_a_missing_licence_is_reported_but_does_not_fail_the_run(
    sim: Any, sim_env: dict[str, str], switch: str, checks: list[str], licence: str
) -> None:
    sim.behaviour.update({switch: False})
    report = await _doctor(_env(sim_env))
    for name in checks:
        found = _by_name(report)[name]
        assert (found.status, found.permission) == ("not licensed", licence)
        assert found.request_id
    assert report.exit_code == 0 and report.ok
    assert all(c.status in ("ok", "not licensed", "not configured") for c in report.checks)


@pytest.mark.parametrize("setting", list(GROUPS))
async def test_a_configured_group_the_tenant_does_not_have_names_its_setting(
    sim: Any, sim_env: dict[str, str], setting: str
) -> None:
    del sim.tenant.groups[GROUPS[setting]]
    report = await _doctor(_env(sim_env))
    found = _by_name(report)[f"group:{setting}"]
    assert (found.status, found.permission) == ("missing", setting)
    assert GROUPS[setting] in found.detail and found.request_id
    assert report.exit_code == 2
    assert [c.name for c in report.problems] == [f"group:{setting}"]


async def test_a_mail_sender_the_tenant_does_not_have_names_mail_sender(
    sim: Any, sim_env: dict[str, str]
) -> None:
    report = await _doctor(_env(sim_env, MAIL_SENDER="nobody@contoso.example"))
    found = _by_name(report)["mail_sender"]
    assert (found.status, found.permission) == ("missing", "MAIL_SENDER")
    assert report.exit_code == 2


async def test_sending_mail_through_the_exchange_role_is_not_checked_and_does_not_fail(
    sim: Any, sim_env: dict[str, str]
) -> None:
    _revoke(sim, "Mail.Send")  # README's set-up: the Exchange Online role, scoped; nothing in the token
    sim.tenant.applications[0].exchange_mail_send = [SENDER]
    report = await _doctor(_env(sim_env))
    found = _by_name(report)["mail_send"]
    assert (found.status, found.permission) == ("not checked", EXCHANGE_MAIL_SEND)
    assert f"-Resource {SENDER}" in found.detail
    assert report.exit_code == 0 and sim.outbox == []


async def test_mail_send_granted_in_entra_id_works_but_is_called_too_broad(
    sim: Any, sim_env: dict[str, str]
) -> None:
    found = _by_name(await _doctor(_env(sim_env)))["mail_send"]
    assert found.status == "ok"
    assert "every mailbox" in found.detail and "Application Mail.Send" in found.detail


async def test_without_a_mail_sender_the_mail_checks_are_not_configured(
    sim: Any, sim_env: dict[str, str]
) -> None:
    env = _env(sim_env)
    del env["MAIL_SENDER"]
    _revoke(sim, "Mail.Send")
    report = await _doctor(env)
    checks = _by_name(report)
    assert checks["mail_sender"].status == checks["mail_send"].status == "not configured"
    assert report.exit_code == 0


async def test_an_unknown_user_to_check_with_names_the_option(sim: Any, sim_env: dict[str, str]) -> None:
    report = await _doctor(_env(sim_env), user="nobody@contoso.example")
    found = _by_name(report)["users_read"]
    assert (found.status, found.permission) == ("missing", "--user")
    assert report.exit_code == 2


async def test_the_given_user_is_the_one_whose_phone_methods_are_read(
    sim: Any, sim_env: dict[str, str]
) -> None:
    report = await _doctor(_env(sim_env), user="alex.wilber@contoso.example")
    assert report.exit_code == 0
    paths = [c.path for c in sim.calls]
    assert any(
        p.endswith("/users/00000000-0000-0000-0000-0000000000a1/authentication/phoneMethods") for p in paths
    ), paths


async def test_a_wrong_client_secret_fails_sign_in_and_names_the_setting(
    sim: Any, sim_env: dict[str, str]
) -> None:
    report = await _doctor(_env(sim_env, GRAPH_CLIENT_SECRET="not-the-secret"))
    sign_in = _by_name(report)["sign_in"]
    assert (sign_in.status, sign_in.permission) == ("failed", "GRAPH_CLIENT_SECRET")
    assert "AADSTS7000215" in sign_in.detail
    assert report.exit_code == 2
    assert all(c.status == "not checked" for c in report.checks if c.name != "sign_in")
    assert not [c for c in sim.calls if c.path != "/$batch"]  # Graph was never asked


async def test_graph_not_answering_exits_1(sim: Any, sim_env: dict[str, str]) -> None:
    sim.faults.inject("*", r"^/v1\.0/", 503, 1000)
    report = await _doctor(_env(sim_env))
    assert report.exit_code == 1 and not report.ok
    users = _by_name(report)["users_read"]
    assert users.status == "failed" and "503" in users.detail


async def test_sign_in_service_not_answering_exits_1(sim: Any, sim_env: dict[str, str]) -> None:
    sim.faults.inject("POST", r"/oauth2/v2\.0/token$", 503, 1000)
    report = await _doctor(_env(sim_env))
    sign_in = _by_name(report)["sign_in"]
    assert sign_in.status == "failed" and "did not answer" in sign_in.detail
    assert report.exit_code == 1


def test_doctor_json_as_a_subprocess(sim_thread: Any, sim_thread_env: dict[str, str]) -> None:
    del sim_thread.tenant.groups[APPROVERS]
    proc = run_cli(_env(sim_thread_env), "doctor", "--json")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    data = json.loads(lines[0])
    _assert_shape(data)
    assert data["ok"] is False and proc.returncode == 2
    problems = [c for c in data["checks"] if c["status"] not in ("ok", "not configured", "not licensed")]
    assert [(c["name"], c["permission"]) for c in problems] == [
        ("group:APPROVER_GROUP_ID", "APPROVER_GROUP_ID")
    ]
    assert "Traceback" not in proc.stderr


def test_doctor_prints_a_table_and_exits_0_on_a_healthy_tenant(
    sim_thread: Any, sim_thread_env: dict[str, str]
) -> None:
    proc = run_cli(_env(sim_thread_env), "doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header.split()[:2] == ["Feature", "Status"] and "Graph request-id" in header
    assert "Result: every required check is ok." in proc.stdout


def test_doctor_with_a_missing_setting_is_one_line_and_exit_2(sim_thread_env: dict[str, str]) -> None:
    env = dict(sim_thread_env)
    del env["GRAPH_CLIENT_ID"]
    proc = run_cli(env, "doctor", "--json")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: GRAPH_CLIENT_ID: missing"


# ------------------------------------------------------------------------------------- the Teams app (TEAMS_APP_ID)

TEAMS_GRANTS = ("AppCatalog.Read.All", "TeamsAppInstallation.ReadWriteSelfForUser.All")


def _teams_env(sim: Any, sim_env: dict[str, str]) -> dict[str, str]:
    app = sim.tenant.applications[0]
    app.roles = [*app.roles, *TEAMS_GRANTS]
    return _env(sim_env, TEAMS_APP_ID=DEFAULT_TEAMS_APP_EXTERNAL_ID)


async def test_with_teams_app_id_the_catalog_and_the_installation_permission_are_checked(
    sim: Any, sim_env: dict[str, str]
) -> None:
    env = _teams_env(sim, sim_env)
    before = sim.tenant.to_dict()
    report = await _doctor(env)
    checks = _by_name(report)
    assert report.exit_code == 0, render_table(report)
    catalog, install = checks["teams_app_catalog"], checks["teams_app_installation"]
    assert catalog.status == install.status == "ok"
    assert "b1c5353a-7aca-41b3-830f-27d5218fe0e5" in catalog.detail
    (call,) = [c for c in sim.calls if c.path.endswith("/appCatalogs/teamsApps")]
    assert call.request_id == catalog.request_id
    assert call.query["$filter"] == f"externalId eq '{DEFAULT_TEAMS_APP_EXTERNAL_ID}'"
    assert "not used" in install.detail  # read from the token: installing is a change
    assert sim.tenant.teams_app_installations == [] and sim.tenant.to_dict() == before


async def test_an_app_not_in_the_catalog_names_teams_app_id_and_fails_the_run(
    sim: Any, sim_env: dict[str, str]
) -> None:
    env = _teams_env(sim, sim_env)
    sim.behaviour.update({"teams_app_in_catalog": False})
    report = await _doctor(env)
    found = _by_name(report)["teams_app_catalog"]
    assert (found.status, found.permission) == ("missing", "TEAMS_APP_ID")
    assert DEFAULT_TEAMS_APP_EXTERNAL_ID in found.detail and found.request_id
    assert report.exit_code == 2 and [c.name for c in report.problems] == ["teams_app_catalog"]


@pytest.mark.parametrize(
    ("revoked", "check", "permission"),
    [
        ("AppCatalog.Read.All", "teams_app_catalog", "AppCatalog.Read.All (or AppCatalog.ReadWrite.All)"),
        (
            "TeamsAppInstallation.ReadWriteSelfForUser.All",
            "teams_app_installation",
            "TeamsAppInstallation.ReadWriteSelfForUser.All (or TeamsAppInstallation.ReadWriteForUser.All)",
        ),
    ],
)
async def test_a_missing_teams_permission_is_named(
    sim: Any, sim_env: dict[str, str], revoked: str, check: str, permission: str
) -> None:
    env = _teams_env(sim, sim_env)
    _revoke(sim, revoked)
    report = await _doctor(env)
    found = _by_name(report)[check]
    assert (found.status, found.permission) == ("missing", permission), render_table(report)
    assert report.exit_code == 2 and [c.name for c in report.problems] == [check]

"""A 403 names the permission of the endpoint that refused: one table (graph/permissions.py), tested per endpoint.

Each call is made the way the product makes it (real msal, real httpx) against the simulator, which refuses that
one endpoint with 403; the error that comes back must name the table's permission for it. And every call a full
run makes has a row, so no 403 falls through to a guess.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from graph.client import BatchItem, GraphClient
from graph.directory import Directory, user_path
from graph.errors import GraphError, PermissionDeniedError
from graph.outcome import OutcomeKind
from graph.owner_search import REPORT_PATH
from graph.permissions import ENDPOINTS, requirement_for
from graph.workflow import UNKNOWN_PERMISSION, required_permission
from tests.graph.workflow_helpers import Stack, add_user, make_stack, request

SENDER = "helpdesk@contoso.example"
APPROVERS = "11111111-1111-1111-1111-000000000002"  # "MFA Approvers" in the test tenant


@pytest.fixture
async def stack(sim: Any, sim_env: dict[str, str]) -> Any:
    if sim.tenant.user_by_address(SENDER) is None:
        sim.tenant.add_user(
            {
                "id": "5e7de700-0000-4000-8000-000000000001",
                "userPrincipalName": SENDER,
                "displayName": "Helpdesk",
                "mail": SENDER,
            }
        )
    async for s in make_stack(sim, dict(sim_env, MAIL_SENDER=SENDER)):
        yield s


# ------------------------------------------------------------------------------------------ the table itself


@pytest.mark.parametrize(
    ("method", "url", "least", "alternative"),
    [
        ("GET", "/users/a@contoso.example", "User.Read.All", None),
        ("GET", "/users?$filter=mail eq 'a@b.example'", "User.Read.All", None),
        ("GET", "/users/x/authentication/phoneMethods", "UserAuthMethod-Phone.Read.All", "UserAuthenticationMethod.Read.All"),
        ("POST", "/users/x/authentication/phoneMethods", "UserAuthMethod-Phone.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"),
        ("PATCH", "/users/x/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7", "UserAuthMethod-Phone.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"),
        ("DELETE", "https://graph.microsoft.com/v1.0/users/x/authentication/phoneMethods/y", "UserAuthMethod-Phone.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"),
        ("GET", "https://graph.microsoft.com/v1.0/reports/authenticationMethods/userRegistrationDetails?$top=999", "AuditLog.Read.All", None),
        ("POST", "/users/helpdesk@contoso.example/sendMail", "Mail.Send", None),
        ("POST", "/users/x/checkMemberGroups", "GroupMember.Read.All", "User.Read.All"),
        ("GET", "/users/x/transitiveMemberOf", "GroupMember.Read.All", "Directory.Read.All"),
        ("GET", "/groups/g/transitiveMembers/microsoft.graph.user", "GroupMember.Read.All", None),
        ("GET", "/roleManagement/directory/roleAssignments", "RoleManagement.Read.Directory", None),
        ("GET", "/roleManagement/directory/roleEligibilityScheduleInstances", "RoleEligibilitySchedule.Read.Directory", "RoleManagement.Read.Directory"),
        ("GET", "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances", "PrivilegedEligibilitySchedule.Read.AzureADGroup", None),
        ("GET", "/applications(appId='5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f')/owners", "Application.Read.All", None),
        ("GET", "/servicePrincipals(appId='5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f')/owners", "Application.Read.All", None),
        ("GET", "/users/x/manager", "User.Read.All", None),
        ("GET", "/organization", "Organization.Read.All", None),
        ("GET", "/appCatalogs/teamsApps", "AppCatalog.Read.All", "AppCatalog.ReadWrite.All"),
        ("POST", "/users/x/teamwork/installedApps", "TeamsAppInstallation.ReadWriteSelfForUser.All", "TeamsAppInstallation.ReadWriteForUser.All"),
        ("GET", "/users/x/teamwork/installedApps", "TeamsAppInstallation.ReadWriteSelfForUser.All", "TeamsAppInstallation.ReadForUser.All"),
        ("GET", "/users/x/teamwork/installedApps/i/chat", "TeamsAppInstallation.ReadWriteSelfForUser.All", "TeamsAppInstallation.ReadForUser.All"),
    ],
)  # fmt: skip
def test_each_call_names_its_narrowest_permission_first(
    method: str, url: str, least: str, alternative: str | None
) -> None:
    text = required_permission(method, url)
    assert text.startswith(least), text
    if alternative is not None:
        assert alternative in text


def test_a_call_the_table_does_not_know_says_so_instead_of_guessing_user_read_all() -> None:
    assert required_permission("GET", "/devices") == UNKNOWN_PERMISSION
    assert "User.Read.All" not in UNKNOWN_PERMISSION


def test_every_row_cites_microsofts_page() -> None:
    for row in ENDPOINTS:
        assert row.doc.startswith("https://learn.microsoft.com/graph/api/"), row.key


# ------------------------------------------------------------------------------------------ 403 per endpoint

Call = Callable[[GraphClient, Directory, Any], Awaitable[Any]]


async def _collect(client: GraphClient, path: str, params: dict[str, str] | None = None) -> None:
    async for _ in client.paginate(path, params):
        pass


async def _phones_in_batch(client: GraphClient, directory: Directory, user: Any) -> None:
    url = f"/users/{user.id}/authentication/phoneMethods"
    (result,) = await client.batch([BatchItem(id="1", method="GET", url=url)])
    raise result.error()


async def _owners(client: GraphClient, directory: Directory, user: Any) -> None:
    await _collect(
        client, "/applications(appId='5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f')/owners", {"$select": "id"}
    )


# (fault method, fault path regex, the product's call, permission named first)
CASES: list[tuple[str, str, Call, str]] = [
    ("GET", r"/users/[^/]+$", lambda c, d, u: d.find_user(u.upn), "User.Read.All"),
    ("GET", r"/phoneMethods$", lambda c, d, u: d.phone_state(u.id), "UserAuthMethod-Phone.Read.All"),
    ("GET", r"/phoneMethods$", _phones_in_batch, "UserAuthMethod-Phone.Read.All"),
    ("POST", r"/checkMemberGroups$", lambda c, d, u: d.member_groups(u.id, [APPROVERS]), "GroupMember.Read.All"),
    ("GET", r"/transitiveMembers", lambda c, d, u: d.group_members(APPROVERS), "GroupMember.Read.All"),
    ("GET", r"/transitiveMemberOf$", lambda c, d, u: _collect(c, f"{user_path(u.id)}/transitiveMemberOf"), "GroupMember.Read.All"),
    ("GET", r"/roleAssignments$", lambda c, d, u: _collect(c, "/roleManagement/directory/roleAssignments", {"$filter": f"principalId eq '{u.id}'"}), "RoleManagement.Read.Directory"),
    ("GET", r"/roleEligibilityScheduleInstances$", lambda c, d, u: _collect(c, "/roleManagement/directory/roleEligibilityScheduleInstances", {"$filter": f"principalId eq '{u.id}'"}), "RoleEligibilitySchedule.Read.Directory"),
    ("GET", r"/group/eligibilityScheduleInstances$", lambda c, d, u: _collect(c, "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances", {"$filter": f"principalId eq '{u.id}'"}), "PrivilegedEligibilitySchedule.Read.AzureADGroup"),
    ("GET", r"/owners$", _owners, "Application.Read.All"),
    ("GET", r"/manager$", lambda c, d, u: d.manager(u.id), "User.Read.All"),
    ("GET", r"/userRegistrationDetails$", lambda c, d, u: _collect(c, REPORT_PATH, {"$top": "999"}), "AuditLog.Read.All"),
    ("POST", r"/sendMail$", lambda c, d, u: c.post(f"/users/{SENDER}/sendMail", json={"message": {}}), "Mail.Send"),
    ("GET", r"/organization$", lambda c, d, u: c.get("/organization", params={"$select": "displayName"}), "Organization.Read.All"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "call", "permission"), CASES, ids=[c[1] for c in CASES])
async def test_a_403_on_an_endpoint_names_that_endpoints_permission(
    stack: Stack, method: str, path: str, call: Call, permission: str
) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    stack.sim.faults.inject(method, path, 403, times=5)
    with pytest.raises(PermissionDeniedError) as caught:
        await call(stack.client, Directory(stack.client), user)
    err = caught.value
    assert err.code == "Authorization_RequestDenied"
    named = required_permission(err.method, err.url)
    assert named.startswith(permission), (err.method, err.url, named)


async def test_a_refused_user_lookup_outcome_names_user_read_all_not_a_phone_permission(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("GET", r"/users/[^/]+$", 403, times=5)
    out = await stack.workflow.show(user.upn)
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert out.missing_permission is not None and out.missing_permission.startswith("User.Read.All")
    assert out.missing_permission in out.message


async def test_a_refused_phone_read_outcome_names_the_narrow_and_the_broad_permission(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("GET", r"/phoneMethods$", 403, times=5)
    out = await stack.workflow.show(user.upn)
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert out.missing_permission is not None
    assert out.missing_permission.startswith("UserAuthMethod-Phone.Read.All (or ")
    assert "UserAuthenticationMethod.Read.All" in out.missing_permission


async def test_an_app_without_any_phone_write_permission_is_told_the_narrow_one_first(
    stack: Stack,
) -> None:
    app = stack.sim.tenant.app(stack.settings.client_id)
    app.roles = [r for r in app.roles if "ReadWrite" not in r] + ["UserAuthMethod-Phone.Read.All"]
    await stack.client._tokens.invalidate()  # a new token carries the roles now granted
    user = add_user(stack.sim)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert (
        out.missing_permission
        == "UserAuthMethod-Phone.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)"
    )


# ------------------------------------------------------------------------------------------ completeness


async def test_every_call_a_full_run_makes_has_a_row_in_the_table(stack: Stack) -> None:
    """A set that meets the SMS sign-in conflict (owner search, $batch), the notification, and every directory
    read the bot makes: no call is left without a permission to name."""
    holder = add_user(stack.sim, name="Megan Holder", mobile="+49 1761112222", mobile_sms="ready")
    target = add_user(stack.sim, mobile="+49 1769999999")
    stack.sim.behaviour.conflict_stores_method = False
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", target.upn, "+49 176 1112222", notify=True))
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED and out.holder is not None
    directory = Directory(stack.client, app_id=stack.settings.client_id)
    with contextlib.suppress(GraphError):  # whatever it decides, every call it made must have a row
        await directory.privilege(holder.id)
    await directory.member_groups(holder.id, [APPROVERS])
    await directory.group_members(APPROVERS)
    await directory.manager(holder.id)
    await directory.organization_name()
    stack.sim.behaviour.conflict_stores_method = True
    done = await stack.workflow.run(request("set", target.upn, "+49 176 3334444", notify=True))
    assert done.kind is OutcomeKind.UPDATED and done.notification is not None
    calls = [c for c in stack.sim.calls[start:] if not c.path.endswith("/$batch")]
    assert {c.path.split("/")[-1] for c in calls} >= {
        "checkMemberGroups",
        "sendMail",
        "userRegistrationDetails",
    }
    unnamed = sorted({(c.method, c.path) for c in calls if requirement_for(c.method, c.path) is None})
    assert unnamed == []


def test_user_paths_the_directory_builds_are_in_the_table() -> None:
    for ref in ("a@contoso.example", "megan_fabrikam.example#EXT#@contoso.example", "$odd@contoso.example"):
        assert requirement_for("GET", user_path(ref)) is not None, ref
        assert requirement_for("GET", f"{user_path(ref)}/manager") is not None, ref

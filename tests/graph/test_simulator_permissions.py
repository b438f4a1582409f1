"""The simulator lets a call through with any permission set Microsoft's page accepts for it (graph/permissions.py),
the narrow one as well as the broad ones, and refuses a token without one, over real HTTPS with real msal tokens."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from graph import permissions
from graph.simulator import DEFAULT_TEAMS_APP_EXTERNAL_ID, Simulator
from graph.simulator.tenant import Application

from .simulator_helpers import http, token_for, uid

HELPDESK = "11111111-1111-1111-1111-000000000001"
BOT_APP_ID = "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"
MOBILE = "3179e48a-750b-4051-897c-87b9720928f7"
UNRELATED = "Calendars.Read"  # in no row of the table
TEAMS_APP = DEFAULT_TEAMS_APP_EXTERNAL_ID
CATALOG_ID = "b1c5353a-7aca-41b3-830f-27d5218fe0e5"
INSTALLATION = (
    "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMGExIyNiMWM1MzUzYS03YWNhLTQxYjMtODMwZi0yN2Q1MjE4ZmUwZTU"
)

# One call of each kind the bot makes: (method, path, query, body)
CALLS: dict[str, tuple[str, str, dict[str, str], Any]] = {
    "user_read": ("GET", f"/users/{uid('a1')}", {}, None),
    "phone_read": ("GET", f"/users/{uid('a1')}/authentication/phoneMethods", {}, None),
    "phone_write": ("DELETE", f"/users/{uid('a1')}/authentication/phoneMethods/{MOBILE}", {}, None),
    "report_read": ("GET", f"/reports/authenticationMethods/userRegistrationDetails/{uid('a1')}", {}, None),
    "mail_send": ("POST", f"/users/{uid('a1')}/sendMail", {}, {"message": {}}),
    "organization_read": ("GET", "/organization", {}, None),
    "check_member_groups": ("POST", f"/users/{uid('a1')}/checkMemberGroups", {}, {"groupIds": [HELPDESK]}),
    "transitive_member_of": ("GET", f"/users/{uid('a1')}/transitiveMemberOf", {}, None),
    "group_transitive_members": ("GET", f"/groups/{HELPDESK}/transitiveMembers", {}, None),
    "groups_list": ("GET", "/groups", {"$filter": "isAssignableToRole eq true"}, None),
    "group_get": ("GET", f"/groups/{HELPDESK}", {"$select": "id,displayName"}, None),
    "group_owners": ("GET", f"/groups/{HELPDESK}/owners", {}, None),
    "role_assignments": (
        "GET",
        "/roleManagement/directory/roleAssignments",
        {"$filter": f"principalId eq '{uid('a1')}'"},
        None,
    ),
    "role_eligibility": (
        "GET",
        "/roleManagement/directory/roleEligibilityScheduleInstances",
        {"$filter": f"principalId eq '{uid('a1')}'"},
        None,
    ),
    "group_eligibility": (
        "GET",
        "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
        {"$filter": f"principalId eq '{uid('a1')}'"},
        None,
    ),
    "app_owners": ("GET", f"/servicePrincipals(appId='{BOT_APP_ID}')/owners", {}, None),
    "teams_app_catalog": ("GET", "/appCatalogs/teamsApps", {"$filter": f"externalId eq '{TEAMS_APP}'"}, None),
    "teams_app_install": (
        "POST",
        f"/users/{uid('a1')}/teamwork/installedApps",
        {},
        {"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{CATALOG_ID}"},
    ),
    "teams_app_installed": (
        "GET",
        f"/users/{uid('a1')}/teamwork/installedApps",
        {"$expand": "teamsApp"},
        None,
    ),
    "teams_app_chat": ("GET", f"/users/{uid('a1')}/teamwork/installedApps/{INSTALLATION}/chat", {}, None),
}

ROWS = [row for row in permissions.ENDPOINTS if row.accepted]


def test_every_row_applications_may_call_has_a_call_here() -> None:
    assert {row.key for row in ROWS} == set(CALLS)


async def _status(sim: Simulator, roles: list[str], key: str) -> int:
    app = Application(str(uuid.uuid4()), "permission-test-secret", roles=roles)
    sim.tenant.applications.append(app)
    method, path, params, body = CALLS[key]
    async with http(sim, await token_for(sim, app.client_id)) as client:
        response = await client.request(method, path, params=params, json=body)
    return response.status_code


@pytest.mark.parametrize("row", ROWS, ids=[row.key for row in ROWS])
async def test_each_accepted_permission_set_is_let_through_and_none_is_refused(
    sim: Simulator, row: permissions.Requirement
) -> None:
    method, path, _, _ = CALLS[row.key]
    assert permissions.requirement_for(method, path) is row  # the call is the row's
    assert set(row.least.split(" and ")) in [set(a) for a in row.accepted]  # what README says to grant works
    for alternative in row.accepted:
        assert await _status(sim, sorted(alternative), row.key) != 403, sorted(alternative)
    assert await _status(sim, [UNRELATED], row.key) == 403

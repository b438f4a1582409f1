"""Directory look-ups against the simulator: users (guests too), phones, groups, privilege, manager, tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from graph.auth import TokenProvider
from graph.client import RetryPolicy, create_graph_client
from graph.directory import Directory, user_path
from graph.settings import GraphSettings

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
AUTH_ADMIN = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
REPORTS_READER = "4a5d8f65-41da-4de4-8968-e035b65339cf"


@pytest.fixture
async def directory(sim: Any, sim_env: dict[str, str]) -> AsyncIterator[Directory]:
    settings = GraphSettings.from_env(sim_env)
    client, close = await create_graph_client(settings, retry=RetryPolicy(deadline=5))
    try:
        yield Directory(client)
    finally:
        await close()


def new_user(sim: Any, **data: Any) -> Any:
    uid = str(uuid.uuid4())
    base = {
        "id": uid,
        "userPrincipalName": f"u{uid[:8]}@{sim.tenant.default_domain}",
        "displayName": f"User {uid[:8]}",
        "mail": f"u{uid[:8]}@{sim.tenant.default_domain}",
        "usageLocation": "DE",
    }
    base.update(data)
    return sim.tenant.add_user(base)


def add_group(sim: Any, *, assignable: bool, members: list[str] = (), owners: list[str] = ()) -> Any:  # type: ignore[assignment]
    from graph.simulator.tenant import Group

    gid = str(uuid.uuid4())
    group = Group(
        gid, f"Group {gid[:6]}", is_assignable_to_role=assignable, members=list(members), owners=list(owners)
    )
    sim.tenant.groups[gid] = group
    return group


def assign_role(sim: Any, template: str, name: str, principal: str, scope: str = "/") -> None:
    from graph.simulator.tenant import RoleAssignment

    sim.tenant.role_assignments.append(RoleAssignment(template, name, principal, scope))


async def test_find_user_by_object_id(sim: Any, directory: Directory) -> None:
    user = new_user(sim, displayName="Adele Vance", usageLocation="AT")
    found = await directory.find_user(user.id)
    assert found is not None
    assert (found.id, found.display_name, found.usage_location) == (user.id, "Adele Vance", "AT")


async def test_find_user_by_upn_is_case_insensitive(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    found = await directory.find_user("  " + user.upn.upper() + " ")
    assert found is not None and found.id == user.id


async def test_find_guest_by_ext_upn(sim: Any, directory: Directory) -> None:
    upn = f"alex_fabrikam.com#EXT#@{sim.tenant.default_domain}"
    guest = new_user(sim, userPrincipalName=upn, userType="Guest", mail="alex@fabrikam.com")
    found = await directory.find_user(upn)
    assert found is not None and found.id == guest.id and found.is_guest
    seen = [c for c in sim.calls if c.method == "GET" and "EXT" in c.path]
    assert seen and seen[0].status == 200  # the #EXT# reached Graph as part of the path, not as a fragment


async def test_find_user_by_mail_with_a_quote_in_it(sim: Any, directory: Directory) -> None:
    user = new_user(sim, mail="o'brien@fabrikam.example")
    found = await directory.find_user("o'brien@fabrikam.example")
    assert found is not None and found.id == user.id
    filters = [c.query.get("$filter") for c in sim.calls if c.path.endswith("/users")]
    assert "mail eq 'o''brien@fabrikam.example'" in filters


@pytest.mark.parametrize(
    "ref",
    ["", "   ", "nobody@contoso.example", "00000000-0000-0000-0000-000000000000", "no-at-sign", "a\nb@c.d"],
)
async def test_unknown_or_malformed_reference_finds_nobody(sim: Any, directory: Directory, ref: str) -> None:
    assert await directory.find_user(ref) is None


async def test_ten_kilobyte_reference_makes_no_graph_call(sim: Any, directory: Directory) -> None:
    before = len(sim.calls)
    assert await directory.find_user("a" * 10_000 + "@x.example") is None
    assert len(sim.calls) == before


async def test_phone_state_lists_every_phone_method(sim: Any, directory: Directory) -> None:
    user = new_user(
        sim,
        phoneMethods=[
            {"phoneType": "mobile", "phoneNumber": "+49 1701234567"},
            {"phoneType": "alternateMobile", "phoneNumber": "+49 1707654321"},
            {"phoneType": "office", "phoneNumber": "+49 301234567"},
        ],
    )
    state = await directory.phone_state(user.id)
    assert state.mobile is not None and state.mobile.phone_number == "+49 1701234567"
    assert state.mobile.id == "3179e48a-750b-4051-897c-87b9720928f7"
    assert state.alternate_mobile is not None and state.alternate_mobile.phone_number == "+49 1707654321"
    assert state.office is not None and state.office.sms_sign_in_state == "notSupported"
    assert (await directory.phone_state(new_user(sim).id)).methods == ()


async def test_member_groups_checks_in_chunks_of_twenty(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    inner = add_group(sim, assignable=False, members=[user.id])
    outer = add_group(sim, assignable=False, members=[inner.id])  # transitive
    others = [add_group(sim, assignable=False).id for _ in range(23)]
    asked = [*others[:12], outer.id.upper(), *others[12:], inner.id]
    found = await directory.member_groups(user.id, asked)
    assert found == {outer.id.upper(), inner.id}
    chunks = [c.json["groupIds"] for c in sim.calls if c.path.endswith("/checkMemberGroups")]
    assert [len(c) for c in chunks] == [20, 5]


async def test_plain_user_is_not_privileged(sim: Any, directory: Directory) -> None:
    privilege = await directory.privilege(new_user(sim).id)
    assert not privilege.is_privileged and privilege.roles == [] and privilege.role_assignable_groups == []


async def test_global_admin_is_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    assign_role(sim, GLOBAL_ADMIN, "Global Administrator", user.id)
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged and privilege.roles == ["Global Administrator"]


async def test_authentication_administrator_alone_is_harmless(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    assign_role(sim, AUTH_ADMIN, "Authentication Administrator", user.id)
    assign_role(sim, REPORTS_READER, "Reports Reader", user.id)
    privilege = await directory.privilege(user.id)
    assert not privilege.is_privileged and privilege.roles == []
    assert privilege.harmless_roles == ["Authentication Administrator", "Reports Reader"]


async def test_role_scoped_to_an_administrative_unit_still_counts(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    assign_role(
        sim, USER_ADMIN, "User Administrator", user.id, scope="/administrativeUnits/" + str(uuid.uuid4())
    )
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged and privilege.roles[0].startswith("User Administrator")


async def test_member_of_a_role_assignable_group_is_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    group = add_group(sim, assignable=True, members=[user.id])
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged
    assert privilege.role_assignable_groups == [f"{group.display_name} (member)"]


async def test_member_of_an_ordinary_group_is_not_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    add_group(sim, assignable=False, members=[user.id])
    assert not (await directory.privilege(user.id)).is_privileged


async def test_owner_of_a_role_assignable_group_is_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    group = add_group(sim, assignable=True, owners=[user.id])
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged
    assert privilege.role_assignable_groups == [f"{group.display_name} (owner)"]
    # read from the groups' side: ownedObjects refuses an application token
    assert [c for c in sim.calls if c.path.endswith("/ownedObjects")] == []
    [groups] = [c for c in sim.calls if c.path.endswith("/groups")]
    assert groups.query["$filter"] == "isAssignableToRole eq true" and groups.status == 200


async def test_owner_of_an_ordinary_group_is_not_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    add_group(sim, assignable=False, owners=[user.id])
    assert not (await directory.privilege(user.id)).is_privileged


async def test_owner_of_two_role_assignable_groups_is_named_with_both(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    first = add_group(sim, assignable=True, owners=[user.id])
    second = add_group(sim, assignable=True, owners=[new_user(sim).id, user.id], members=[user.id])
    privilege = await directory.privilege(user.id)
    assert privilege.role_assignable_groups == sorted(
        [f"{first.display_name} (owner)", f"{second.display_name} (owner)", f"{second.display_name} (member)"]
    )


async def test_a_token_that_cannot_read_groups_makes_a_group_member_privileged(
    sim: Any, directory: Directory
) -> None:
    from graph.directory import GROUP_MEMBERSHIPS_UNREADABLE, GROUP_OWNERS_UNREADABLE

    app = sim.tenant.applications[0]
    app.roles = [r for r in app.roles if r != "GroupMember.Read.All"]  # User.Read.All stays
    user = new_user(sim)
    add_group(sim, assignable=False, members=[user.id])
    privilege = await directory.privilege(user.id)
    # transitiveMemberOf answers with "limited information": whether the group is role-assignable is unknown
    assert privilege.is_privileged
    assert privilege.role_assignable_groups == [GROUP_MEMBERSHIPS_UNREADABLE, GROUP_OWNERS_UNREADABLE]


async def test_role_through_a_role_assignable_group_is_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    group = add_group(sim, assignable=True, members=[user.id])
    assign_role(sim, GLOBAL_ADMIN, "Global Administrator", group.id)
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged and "Global Administrator" in privilege.roles


def make_eligible(sim: Any, template: str, name: str, principal: str, scope: str = "/") -> None:
    from graph.simulator.tenant import RoleEligibility

    sim.tenant.role_eligibilities.append(RoleEligibility(template, name, principal, scope))


async def test_eligible_global_admin_is_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    make_eligible(sim, GLOBAL_ADMIN, "Global Administrator", user.id)
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged and privilege.roles == ["Global Administrator (eligible)"]


async def test_fixture_persona_eligible_for_global_admin_is_privileged(directory: Directory) -> None:
    privilege = await directory.privilege("00000000-0000-0000-0000-0000000000c8")
    assert privilege.is_privileged and privilege.roles == ["Global Administrator (eligible)"]


async def test_eligible_harmless_role_alone_is_not_privileged(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    make_eligible(sim, REPORTS_READER, "Reports Reader", user.id)
    privilege = await directory.privilege(user.id)
    assert not privilege.is_privileged and privilege.roles == []
    assert privilege.harmless_roles == ["Reports Reader (eligible)"]


async def test_active_role_is_named_without_eligible(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    assign_role(sim, GLOBAL_ADMIN, "Global Administrator", user.id)
    make_eligible(sim, GLOBAL_ADMIN, "Global Administrator", user.id)
    make_eligible(sim, USER_ADMIN, "User Administrator", user.id)
    privilege = await directory.privilege(user.id)
    assert privilege.roles == ["Global Administrator", "User Administrator (eligible)"]


async def test_tenant_without_pim_licence_has_no_eligible_roles(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    make_eligible(sim, GLOBAL_ADMIN, "Global Administrator", user.id)
    sim.behaviour.pim_licensed = False
    privilege = await directory.privilege(user.id)
    assert not privilege.is_privileged and privilege.roles == []
    refused = [c for c in sim.calls if "roleEligibilityScheduleInstances" in c.path]
    assert refused and refused[-1].status == 400


async def test_eligibility_without_permission_counts_as_privileged(sim: Any, directory: Directory) -> None:
    app = sim.tenant.applications[0]
    # active roles stay readable (Directory.Read.All), PIM eligibility does not accept that permission
    app.roles = [r for r in app.roles if r != "RoleManagement.Read.Directory"] + ["Directory.Read.All"]
    user = new_user(sim)
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged and privilege.roles == ["role eligibility could not be read"]
    refused = [c for c in sim.calls if "roleEligibilityScheduleInstances" in c.path]
    assert refused and refused[-1].status == 403


def make_group_eligible(sim: Any, group_id: str, principal: str, access: str = "member") -> None:
    from graph.simulator.tenant import GroupEligibility

    sim.tenant.group_eligibilities.append(GroupEligibility(group_id, principal, access))


@pytest.mark.parametrize("access", ["member", "owner"])
async def test_eligible_member_or_owner_of_a_role_assignable_group_is_privileged(
    sim: Any, directory: Directory, access: str
) -> None:
    user = new_user(sim)
    group = add_group(sim, assignable=True)
    make_group_eligible(sim, group.id, user.id, access)
    privilege = await directory.privilege(user.id)
    assert privilege.is_privileged and privilege.roles == []
    assert privilege.role_assignable_groups == [f"{group.display_name} (eligible {access})"]


async def test_eligibility_for_an_ordinary_group_does_not_count(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    make_group_eligible(sim, add_group(sim, assignable=False).id, user.id, "owner")
    assert not (await directory.privilege(user.id)).is_privileged


async def test_fixture_persona_eligible_for_tier0_admins_is_privileged(directory: Directory) -> None:
    privilege = await directory.privilege("00000000-0000-0000-0000-0000000000ca")
    assert privilege.is_privileged and privilege.role_assignable_groups == ["Tier-0 Admins (eligible member)"]


async def test_tenant_without_p2_has_no_eligible_group_members(sim: Any, directory: Directory) -> None:
    user = new_user(sim)
    make_group_eligible(sim, add_group(sim, assignable=True).id, user.id)
    sim.behaviour.pim_licensed = False
    assert not (await directory.privilege(user.id)).is_privileged
    refused = [c for c in sim.calls if "privilegedAccess/group/eligibilityScheduleInstances" in c.path]
    assert refused and refused[-1].status == 400


async def test_group_eligibility_without_permission_counts_as_privileged(
    sim: Any, directory: Directory
) -> None:
    app = sim.tenant.applications[0]
    app.roles = [r for r in app.roles if r != "PrivilegedEligibilitySchedule.Read.AzureADGroup"]
    privilege = await directory.privilege(new_user(sim).id)
    assert privilege.is_privileged
    assert privilege.role_assignable_groups == ["group eligibility (PIM for Groups) could not be read"]
    refused = [c for c in sim.calls if "privilegedAccess/group/eligibilityScheduleInstances" in c.path]
    assert refused and refused[-1].status == 403


BOT_APP_ID = "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"
JONI_ID = "00000000-0000-0000-0000-0000000000c9"  # owner of the bot's application in the test tenant


@dataclass
class BotDirectory:
    directory: Directory
    clock: list[float]  # the owners' cache clock, advanced by hand
    tokens: TokenProvider


@pytest.fixture
async def bot_directory(sim: Any, sim_env: dict[str, str]) -> AsyncIterator[BotDirectory]:
    """The directory as the bot builds it (its own app id), with a hand-driven clock for the owners' cache."""
    settings = GraphSettings.from_env(sim_env)
    assert settings.client_id == BOT_APP_ID
    clock = [1000.0]
    tokens = await TokenProvider.create(settings)
    client, close = await create_graph_client(settings, tokens=tokens, retry=RetryPolicy(deadline=5))
    try:
        directory = Directory(client, app_id=settings.client_id, clock=lambda: clock[0])
        yield BotDirectory(directory, clock, tokens)
    finally:
        await close()


def owner_calls(sim: Any) -> list[Any]:
    """The reads of the owners of the bot's application and service principal."""
    return [c for c in sim.calls if c.path.endswith("/owners") and "/groups/" not in c.path]


def group_owner_calls(sim: Any) -> list[Any]:
    """The reads of the role-assignable groups and of their owners."""
    return [
        c
        for c in sim.calls
        if c.path.endswith("/groups") or ("/groups/" in c.path and c.path.endswith("/owners"))
    ]


async def test_owner_of_the_bots_application_or_service_principal_is_privileged(
    sim: Any, bot_directory: BotDirectory
) -> None:
    directory = bot_directory.directory
    app = sim.tenant.app(BOT_APP_ID)
    sp_owner = new_user(sim)
    app.service_principal_owners = [sp_owner.id]
    joni = await directory.privilege(JONI_ID)
    assert joni.is_privileged and joni.roles == [] and joni.role_assignable_groups == []
    assert joni.ownerships == ["owner of this bot's application"]
    assert joni.reasons == ["owner of this bot's application"]
    assert (await directory.privilege(sp_owner.id)).ownerships == ["owner of this bot's service principal"]
    assert not (await directory.privilege(new_user(sim).id)).is_privileged
    # both lists were read once, by the application's client id
    paths = sorted(c.path for c in owner_calls(sim))
    assert paths == [
        f"/v1.0/applications(appId='{BOT_APP_ID}')/owners",
        f"/v1.0/servicePrincipals(appId='{BOT_APP_ID}')/owners",
    ]


async def test_without_the_bots_app_id_nobody_is_an_owner(sim: Any, directory: Directory) -> None:
    assert not (await directory.privilege(JONI_ID)).is_privileged
    assert owner_calls(sim) == []


async def test_owners_are_cached_then_read_again(sim: Any, bot_directory: BotDirectory) -> None:
    directory, clock = bot_directory.directory, bot_directory.clock
    newcomer = new_user(sim)
    assert not (await directory.privilege(newcomer.id)).is_privileged
    sim.tenant.app(BOT_APP_ID).owners.append(newcomer.id)
    assert not (await directory.privilege(newcomer.id)).is_privileged  # cached
    assert len(owner_calls(sim)) == 2
    clock[0] += 601
    assert (await directory.privilege(newcomer.id)).ownerships == ["owner of this bot's application"]
    assert len(owner_calls(sim)) == 4


async def test_owners_unreadable_make_every_target_privileged_and_name_the_permission(
    sim: Any, bot_directory: BotDirectory
) -> None:
    directory, clock = bot_directory.directory, bot_directory.clock
    app = sim.tenant.app(BOT_APP_ID)
    app.roles = [r for r in app.roles if r != "Application.Read.All"]
    privilege = await directory.privilege(new_user(sim).id)
    assert privilege.is_privileged
    assert privilege.ownerships == ["the owners of this bot's application could not be read"]
    owners = await directory.bot_owners()
    assert owners.missing_permission == "Application.Read.All" and owners.error
    assert {c.status for c in owner_calls(sim)} == {403}
    # the permission is granted: it is in the next token, and the owners are read again after a short while
    app.roles.append("Application.Read.All")
    await bot_directory.tokens.invalidate()
    clock[0] += 31
    assert not (await directory.privilege(new_user(sim).id)).is_privileged
    assert (await directory.bot_owners()).missing_permission is None


async def test_role_assignable_group_owners_are_cached_then_read_again(
    sim: Any, bot_directory: BotDirectory
) -> None:
    directory, clock = bot_directory.directory, bot_directory.clock
    group = add_group(sim, assignable=True, owners=[new_user(sim).id])
    newcomer = new_user(sim)
    assert not (await directory.privilege(newcomer.id)).is_privileged
    reads = len(group_owner_calls(sim))
    assert reads >= 2  # the groups, then the owners of each
    group.owners.append(newcomer.id)
    assert not (await directory.privilege(newcomer.id)).is_privileged  # cached
    assert len(group_owner_calls(sim)) == reads
    clock[0] += 601
    assert (await directory.privilege(newcomer.id)).role_assignable_groups == [
        f"{group.display_name} (owner)"
    ]
    assert len(group_owner_calls(sim)) == 2 * reads


async def test_group_owners_unreadable_make_every_target_privileged_and_name_the_permission(
    sim: Any, bot_directory: BotDirectory
) -> None:
    from graph.directory import GROUP_OWNERS_UNREADABLE

    directory, clock = bot_directory.directory, bot_directory.clock
    sim.faults.inject("GET", r"/groups$", 403, times=1)
    privilege = await directory.privilege(new_user(sim).id)
    assert privilege.is_privileged and privilege.role_assignable_groups == [GROUP_OWNERS_UNREADABLE]
    owners = await directory.role_assignable_group_owners()
    assert owners.error and (owners.missing_permission or "").startswith("GroupMember.Read.All")
    # a refusal is asked again after a short while, not at every check
    assert not [c for c in sim.calls if c.path.endswith("/groups") and c.status == 200]
    clock[0] += 31
    assert not (await directory.privilege(new_user(sim).id)).is_privileged
    assert (await directory.role_assignable_group_owners()).error is None


@pytest.mark.parametrize(
    "path",
    [
        r"/privilegedAccess/group/eligibilityScheduleInstances$",
        r"/roleEligibilityScheduleInstances$",
        r"/servicePrincipals\(appId=.*/owners$",
        r"/groups$",
        r"/groups/[^/]+/owners$",
    ],
    ids=["group-eligibility", "role-eligibility", "owners", "role-assignable-groups", "group-owners"],
)
async def test_graph_not_answering_a_privilege_source_is_an_error_not_a_guess(
    sim: Any, sim_env: dict[str, str], path: str
) -> None:
    from graph.errors import GraphUnavailableError

    settings = GraphSettings.from_env(sim_env)
    fast = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, deadline=5)
    client, close = await create_graph_client(settings, retry=fast)
    try:
        directory = Directory(client, app_id=settings.client_id)
        user = new_user(sim)
        sim.faults.inject("GET", path, 503, times=2)
        # "privileged because it could not be read" would cancel a request that is fine: the caller must be
        # told that Graph did not answer, and try again
        with pytest.raises(GraphUnavailableError):
            await directory.privilege(user.id)
        assert not (await directory.privilege(user.id)).is_privileged  # Graph answers again
    finally:
        await close()


async def test_owners_of_an_app_registered_in_another_tenant_are_those_of_its_service_principal(
    sim: Any, bot_directory: BotDirectory
) -> None:
    directory = bot_directory.directory
    sim.faults.inject("GET", r"/applications\(appId=.*/owners$", 404, times=1)
    sp_owner = new_user(sim)
    sim.tenant.app(BOT_APP_ID).service_principal_owners = [sp_owner.id]
    assert not (await directory.privilege(JONI_ID)).is_privileged  # no registration here: no owners of it
    assert (await directory.privilege(sp_owner.id)).ownerships == ["owner of this bot's service principal"]


async def test_manager_and_organization_name(sim: Any, directory: Directory) -> None:
    boss = new_user(sim, displayName="Megan Bowen")
    user = new_user(sim, managerId=boss.id)
    manager = await directory.manager(user.id)
    assert manager is not None and manager.id == boss.id and manager.display_name == "Megan Bowen"
    assert await directory.manager(boss.id) is None
    assert await directory.organization_name() == sim.tenant.display_name


async def test_group_members_are_the_enabled_member_users_of_every_page_and_nested_group(
    sim: Any, directory: Directory
) -> None:
    many = [new_user(sim).id for _ in range(1005)]  # more than one page of 999
    guest = new_user(sim, userType="Guest").id
    disabled = new_user(sim, accountEnabled=False).id
    nested_user = new_user(sim).id
    inner = add_group(sim, assignable=False, members=[nested_user, guest])
    outer = add_group(sim, assignable=False, members=[*many, disabled, inner.id])
    mark = len(sim.calls)
    found = await directory.group_members(outer.id.upper())
    assert found == {uid.lower() for uid in [*many, nested_user]}
    calls = sim.calls[mark:]
    assert len(calls) == 2 and all(c.status == 200 for c in calls)
    assert calls[0].path.endswith(f"/groups/{outer.id}/transitiveMembers/microsoft.graph.user")
    assert calls[0].query["$select"] == "id,userType,accountEnabled" and calls[0].query["$count"] == "true"
    assert "$skiptoken" in calls[1].query


async def test_group_members_without_user_details_counts_nobody(sim: Any, sim_env: dict[str, str]) -> None:
    from graph.simulator.tenant import Application

    app = Application(str(uuid.uuid4()), "groups-only-secret", roles=["GroupMember.Read.All"])
    sim.tenant.applications.append(app)
    env = {**sim_env, "GRAPH_CLIENT_ID": app.client_id, "GRAPH_CLIENT_SECRET": "groups-only-secret"}
    client, close = await create_graph_client(GraphSettings.from_env(env), retry=RetryPolicy(deadline=5))
    try:
        found = await Directory(client).group_members("11111111-1111-1111-1111-000000000002")
    finally:
        await close()
    assert found == set()  # whether they are guests cannot be told: no one counts


def test_user_path_encodes_guest_and_dollar_upns() -> None:
    assert (
        user_path("a_b.com#EXT#@contoso.onmicrosoft.com") == "/users/a_b.com%23EXT%23@contoso.onmicrosoft.com"
    )
    assert user_path("$adele@contoso.com") == "/users('$adele@contoso.com')"

"""Users, organization, mail and membership endpoints of the simulator, over real HTTPS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from graph.simulator import Simulator

from .simulator_helpers import assert_graph_error, http, token_for, uid

HELPDESK, APPROVERS, PRIVILEGED, TIER0, NESTED = (
    f"11111111-1111-1111-1111-00000000000{i}" for i in range(1, 6)
)
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"


@pytest.fixture
async def graph(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with http(sim, await token_for(sim)) as client:
        yield client


async def test_user_by_id_or_upn_with_default_and_selected_properties(graph: httpx.AsyncClient) -> None:
    by_id = (await graph.get(f"/users/{uid('c1')}")).json()
    by_upn = (await graph.get("/users/LYNNE.ROBBINS@contoso.example")).json()
    assert by_id["id"] == by_upn["id"] == uid("c1")
    assert "usageLocation" not in by_id and by_id["mail"] == "lynne.robbins@contoso.example"
    selected = (
        await graph.get(f"/users/{uid('c1')}", params={"$select": "id,displayName,usageLocation,userType"})
    ).json()
    assert {k: v for k, v in selected.items() if not k.startswith("@")} == {
        "id": uid("c1"),
        "displayName": "Lynne Robbins",
        "usageLocation": "DE",
        "userType": "Member",
    }
    bad = await graph.get(f"/users/{uid('c1')}", params={"$select": "id,shoeSize"})
    assert_graph_error(bad, 400, "Request_BadRequest")
    assert_graph_error(await graph.get("/users/nobody@contoso.example"), 404, "Request_ResourceNotFound")


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("mail eq 'adele@partner.example'", ["b2"]),
        ("userPrincipalName eq 'Grady.Archie@contoso.example'", ["c5"]),
        ("mobilePhone eq '+49 170 9876543'", ["c5"]),
        ("businessPhones/any(p:p eq '+49 1708880002')", ["d3"]),
        (
            "mobilePhone eq '+49 1708880002' or mobilePhone eq '+491708880002' or businessPhones/any(p:p eq '+49 1708880002')",
            ["d3"],
        ),
        (
            "(mail eq 'lee.gu@contoso.example') or (userPrincipalName eq 'uma.us@contoso.example')",
            ["c6", "d6"],
        ),
        ("startswith(displayName,'Nestor')", ["c3"]),
        ("userType eq 'Guest' and accountEnabled eq true", ["b2"]),
        ("mail eq 'o''brien@contoso.example'", []),
    ],
)
async def test_user_filters_our_searches_send(
    graph: httpx.AsyncClient, filter_: str, expected: list[str]
) -> None:
    r = await graph.get("/users", params={"$filter": filter_, "$select": "id"})
    assert r.status_code == 200, r.text
    assert [u["id"] for u in r.json()["value"]] == [uid(s) for s in expected]


@pytest.mark.parametrize(
    "filter_",
    [
        "mobilePhone gt '+49'",
        "endswith(mail,'x')",
        "shoeSize eq '42'",
        "mail eq",
        "mail eq 'a' or",
        "otherMails/any(p:p ne 'x')",
    ],
)
async def test_unsupported_user_filters_get_400(graph: httpx.AsyncClient, filter_: str) -> None:
    assert_graph_error(
        await graph.get("/users", params={"$filter": filter_}), 400, "Request_UnsupportedQuery"
    )


async def test_users_page_with_next_link(sim: Simulator, graph: httpx.AsyncClient) -> None:
    seen: list[str] = []
    url: str | None = "/users?$top=4&$select=id"
    pages = 0
    while url:
        body = (await graph.get(url)).json()
        assert len(body["value"]) <= 4
        seen.extend(u["id"] for u in body["value"])
        url = body.get("@odata.nextLink")
        pages += 1
    assert seen == sim.tenant.order and pages == -(-len(seen) // 4)
    assert_graph_error(await graph.get("/users", params={"$top": "1000"}), 400, "Request_BadRequest")
    assert_graph_error(
        await graph.get("/users", params={"$skiptoken": "garbage!"}), 400, "Request_BadRequest"
    )


async def test_organization_display_name(graph: httpx.AsyncClient) -> None:
    r = await graph.get("/organization", params={"$select": "displayName"})
    assert r.status_code == 200
    assert [{k: v for k, v in o.items() if not k.startswith("@")} for o in r.json()["value"]] == [
        {"displayName": "Contoso Test"}
    ]


def mail(to: str, content_type: str = "HTML") -> dict:
    return {
        "message": {
            "subject": "Your MFA phone number changed",
            "body": {"contentType": content_type, "content": "<p>Hello &amp; bye</p>"},
            "toRecipients": [{"emailAddress": {"address": to}}],
        },
        "saveToSentItems": False,
    }


async def test_send_mail_goes_to_the_outbox(sim: Simulator, graph: httpx.AsyncClient) -> None:
    r = await graph.post(
        "/users/servicedesk@contoso.example/sendMail", json=mail("lynne.robbins@contoso.example")
    )
    assert r.status_code == 202 and r.content == b""
    external = await graph.post(
        "/users/servicedesk@contoso.example/sendMail", json=mail("adele@partner.example", "Text")
    )
    assert external.status_code == 202
    first, second = sim.outbox
    assert first["sender"] == "servicedesk@contoso.example" and first["to"] == [
        "lynne.robbins@contoso.example"
    ]
    assert first["subject"] == "Your MFA phone number changed" and first["html"] == "<p>Hello &amp; bye</p>"
    assert first["text"] is None and first["contentType"] == "HTML" and first["saveToSentItems"] is False
    assert second["text"] == "<p>Hello &amp; bye</p>" and second["html"] is None


async def test_send_mail_without_mailboxes_is_refused(sim: Simulator, graph: httpx.AsyncClient) -> None:
    no_sender = await graph.post(
        "/users/ghost@contoso.example/sendMail", json=mail("lynne.robbins@contoso.example")
    )
    assert_graph_error(no_sender, 404, "ErrorInvalidUser")
    sender_no_box = await graph.post(
        f"/users/{uid('c4')}/sendMail", json=mail("lynne.robbins@contoso.example")
    )
    assert_graph_error(sender_no_box, 404, "MailboxNotEnabledForRESTAPI")
    sim.tenant.users[uid("c1")].has_mailbox = False
    recipient_no_box = await graph.post(
        "/users/servicedesk@contoso.example/sendMail", json=mail("lynne.robbins@contoso.example")
    )
    assert_graph_error(recipient_no_box, 404, "MailboxNotEnabledForRESTAPI")
    unknown_recipient = await graph.post(
        "/users/servicedesk@contoso.example/sendMail", json=mail("ghost@contoso.example")
    )
    assert_graph_error(unknown_recipient, 404, "ErrorInvalidUser")
    no_to = await graph.post(
        "/users/servicedesk@contoso.example/sendMail", json={"message": {"subject": "x"}}
    )
    assert_graph_error(no_to, 400, "ErrorInvalidRecipients")
    assert sim.outbox == []


async def test_send_mail_with_the_exchange_role_only_as_the_mailboxes_of_its_scope(sim: Simulator) -> None:
    from graph.simulator.tenant import Application

    # Role Based Access Control for Applications: "Application Mail.Send" scoped to one mailbox, no Mail.Send in
    # Entra ID (https://learn.microsoft.com/exchange/permissions-exo/application-rbac)
    app = Application(
        "7f3a9e5d-4c6b-4a8f-9d1e-2c3d4e5f6a74",
        "exchange-rbac-secret",
        roles=["User.Read.All"],
        exchange_mail_send=["servicedesk@contoso.example"],
    )
    sim.tenant.applications.append(app)
    async with http(sim, await token_for(sim, app.client_id)) as client:
        in_scope = await client.post(
            "/users/servicedesk@contoso.example/sendMail", json=mail("lynne.robbins@contoso.example")
        )
        out_of_scope = await client.post(
            "/users/lynne.robbins@contoso.example/sendMail", json=mail("servicedesk@contoso.example")
        )
    assert in_scope.status_code == 202
    assert_graph_error(out_of_scope, 403, "ErrorAccessDenied")
    assert [m["sender"] for m in sim.outbox] == ["servicedesk@contoso.example"]


async def test_check_member_groups_is_transitive_and_capped_at_20(graph: httpx.AsyncClient) -> None:
    r = await graph.post(
        f"/users/{uid('a1')}/checkMemberGroups", json={"groupIds": [HELPDESK, APPROVERS, NESTED]}
    )
    assert r.status_code == 200 and r.json()["value"] == [HELPDESK, NESTED]
    r = await graph.post(
        f"/users/{uid('a3')}/checkMemberGroups", json={"groupIds": [HELPDESK, APPROVERS, PRIVILEGED]}
    )
    assert r.json()["value"] == [APPROVERS, PRIVILEGED]
    too_many = await graph.post(f"/users/{uid('a1')}/checkMemberGroups", json={"groupIds": [HELPDESK] * 21})
    assert_graph_error(too_many, 400, "Request_BadRequest")


async def test_transitive_member_of_lists_groups_and_directory_roles(graph: httpx.AsyncClient) -> None:
    miriam = (await graph.get(f"/users/{uid('c7')}/transitiveMemberOf")).json()["value"]
    groups = [o for o in miriam if o["@odata.type"] == "#microsoft.graph.group"]
    roles = [o for o in miriam if o["@odata.type"] == "#microsoft.graph.directoryRole"]
    assert [(g["id"], g["isAssignableToRole"]) for g in groups] == [(TIER0, True)]
    assert [r["roleTemplateId"] for r in roles] == [USER_ADMIN]
    isaiah = (await graph.get(f"/users/{uid('b1')}/transitiveMemberOf")).json()["value"]
    assert [o.get("roleTemplateId") for o in isaiah] == [GLOBAL_ADMIN]
    alex = (await graph.get(f"/users/{uid('a1')}/transitiveMemberOf/microsoft.graph.group")).json()["value"]
    assert {g["id"] for g in alex} == {HELPDESK, NESTED}


async def test_owned_objects_refuse_an_application_token(sim: Simulator, graph: httpx.AsyncClient) -> None:
    # "Application: Not supported." (https://learn.microsoft.com/graph/api/user-list-ownedobjects)
    refused = await graph.get(f"/users/{uid('a2')}/ownedObjects")
    assert_graph_error(refused, 403, "Authorization_RequestDenied")
    sim.behaviour.owned_objects_app_only = True  # what an older revision of the page said
    owned = (await graph.get(f"/users/{uid('a2')}/ownedObjects")).json()["value"]
    assert [g["id"] for g in owned] == [HELPDESK]


async def test_role_assignable_groups_by_filter_and_their_owners(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.tenant.groups[TIER0].owners.extend([uid("c3"), uid("a3")])
    assignable = await graph.get(
        "/groups", params={"$filter": "isAssignableToRole eq true", "$select": "id,displayName"}
    )
    assert assignable.status_code == 200, assignable.text
    assert [{k: v for k, v in g.items() if not k.startswith("@")} for g in assignable.json()["value"]] == [
        {"id": TIER0, "displayName": "Tier-0 Admins"}
    ]
    # eq works by default; ne only as an advanced query (https://learn.microsoft.com/graph/aad-advanced-queries)
    plain_ne = await graph.get("/groups", params={"$filter": "isAssignableToRole ne true"})
    assert_graph_error(plain_ne, 400, "Request_UnsupportedQuery")
    advanced = await graph.get(
        "/groups",
        params={"$filter": "isAssignableToRole ne true", "$count": "true", "$select": "id"},
        headers={"ConsistencyLevel": "eventual"},
    )
    assert advanced.json()["@odata.count"] == 4 and TIER0 not in {g["id"] for g in advanced.json()["value"]}
    paged = await graph.get("/groups", params={"$top": "2", "$select": "id"})
    assert len(paged.json()["value"]) == 2 and "$skiptoken" in paged.json()["@odata.nextLink"]
    assert_graph_error(
        await graph.get("/groups", params={"$select": "id,shoeSize"}), 400, "Request_BadRequest"
    )

    owners = (await graph.get(f"/groups/{TIER0}/owners", params={"$select": "id,displayName"})).json()
    assert [(o["@odata.type"], o["id"], o["displayName"]) for o in owners["value"]] == [
        ("#microsoft.graph.user", uid("c3"), "Nestor Wilke"),
        ("#microsoft.graph.user", uid("a3"), sim.tenant.users[uid("a3")].display_name),
    ]
    missing = await graph.get("/groups/11111111-1111-1111-1111-0000000000ff/owners")
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


async def test_group_owners_without_a_user_permission_carry_only_type_and_id(sim: Simulator) -> None:
    from graph.simulator.tenant import Application

    sim.tenant.groups[TIER0].owners.append(uid("c3"))
    app = Application(
        "7f3a9e5d-4c6b-4a8f-9d1e-2c3d4e5f6a73", "group-owners-secret", roles=["GroupMember.Read.All"]
    )
    sim.tenant.applications.append(app)
    async with http(sim, await token_for(sim, app.client_id)) as client:
        owners = (await client.get(f"/groups/{TIER0}/owners")).json()["value"]
    assert owners and owners[0]["id"] == uid("c3") and owners[0]["displayName"] is None


async def test_user_read_alone_lists_memberships_but_not_what_the_groups_are(sim: Simulator) -> None:
    readonly = "6e2f8d4c-3b5a-4f7e-8c2d-1b2c3d4e5f60"  # User.Read.All and UserAuthMethod-Phone.Read.All
    async with http(sim, await token_for(sim, readonly)) as client:
        miriam = (await client.get(f"/users/{uid('c7')}/transitiveMemberOf")).json()["value"]
        groups_check = await client.post(f"/users/{uid('c7')}/checkMemberGroups", json={"groupIds": [TIER0]})
    [group] = [o for o in miriam if o["@odata.type"] == "#microsoft.graph.group"]
    assert group["id"] == TIER0 and group["isAssignableToRole"] is None  # "limited information"
    # checkMemberGroups for other users wants User.Read.All and GroupMember.Read.All together
    assert_graph_error(groups_check, 403, "Authorization_RequestDenied")


async def test_role_assignments_and_manager(graph: httpx.AsyncClient) -> None:
    assigned = await graph.get(
        "/roleManagement/directory/roleAssignments", params={"$filter": f"principalId eq '{uid('b1')}'"}
    )
    assert [a["roleDefinitionId"] for a in assigned.json()["value"]] == [GLOBAL_ADMIN]
    by_group = await graph.get(
        "/roleManagement/directory/roleAssignments",
        params={"$filter": f"roleDefinitionId eq '{USER_ADMIN}'", "$expand": "roleDefinition"},
    )
    only = by_group.json()["value"][0]
    assert only["principalId"] == TIER0 and only["roleDefinition"]["displayName"] == "User Administrator"
    assert_graph_error(
        await graph.get("/roleManagement/directory/roleAssignments"), 400, "Request_UnsupportedQuery"
    )
    manager = await graph.get(f"/users/{uid('c1')}/manager")
    assert manager.status_code == 200 and manager.json()["id"] == uid("a2")
    assert_graph_error(await graph.get(f"/users/{uid('c2')}/manager"), 404, "Request_ResourceNotFound")


ELIGIBILITIES = "/roleManagement/directory/roleEligibilityScheduleInstances"


async def test_role_eligibility_schedule_instances_by_principal(graph: httpx.AsyncClient) -> None:
    eligible = await graph.get(ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('c8')}'"})
    assert eligible.status_code == 200
    [item] = eligible.json()["value"]
    assert (item["principalId"], item["roleDefinitionId"], item["directoryScopeId"]) == (
        uid("c8"),
        GLOBAL_ADMIN,
        "/",
    )
    assert item["memberType"] == "Direct" and item["startDateTime"] and item["endDateTime"] is None
    active_admin = await graph.get(ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('b1')}'"})
    assert active_admin.json()["value"] == []  # active assignments are not eligibilities
    by_role = await graph.get(ELIGIBILITIES, params={"$filter": f"roleDefinitionId eq '{GLOBAL_ADMIN}'"})
    assert [i["principalId"] for i in by_role.json()["value"]] == [uid("c8")]
    assert_graph_error(await graph.get(ELIGIBILITIES), 400, "Request_UnsupportedQuery")


async def test_role_eligibility_needs_a_role_management_permission(sim: Simulator) -> None:
    readonly = "6e2f8d4c-3b5a-4f7e-8c2d-1b2c3d4e5f60"
    async with http(sim, await token_for(sim, readonly)) as client:
        denied = await client.get(ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('c8')}'"})
    assert_graph_error(denied, 403, "Authorization_RequestDenied")


async def test_role_eligibility_on_a_tenant_without_p2(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.behaviour.pim_licensed = False
    answer = await graph.get(ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('c8')}'"})
    assert_graph_error(answer, 400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")


GROUP_ELIGIBILITIES = "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"


async def test_pim_for_groups_eligibility_by_principal_or_group(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    from graph.simulator.tenant import GroupEligibility

    sim.tenant.group_eligibilities.append(GroupEligibility(HELPDESK, uid("c2"), "owner"))
    by_principal = await graph.get(GROUP_ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('ca')}'"})
    assert by_principal.status_code == 200
    [item] = by_principal.json()["value"]
    assert (item["principalId"], item["groupId"], item["accessId"]) == (uid("ca"), TIER0, "member")
    assert item["id"] == f"{TIER0}_member_{uid('ca')}"
    assert item["startDateTime"] and item["endDateTime"] is None
    assert "group" not in item
    owners = await graph.get(
        GROUP_ELIGIBILITIES, params={"$filter": f"groupId eq '{HELPDESK}' and accessId eq 'owner'"}
    )
    assert [(i["principalId"], i["accessId"]) for i in owners.json()["value"]] == [(uid("c2"), "owner")]
    expanded = await graph.get(
        GROUP_ELIGIBILITIES,
        params={
            "$filter": f"principalId eq '{uid('ca')}'",
            "$expand": "group($select=id,displayName,isAssignableToRole)",
        },
    )
    group = expanded.json()["value"][0]["group"]
    assert {k: v for k, v in group.items() if not k.startswith("@")} == {
        "id": TIER0,
        "displayName": "Tier-0 Admins",
        "isAssignableToRole": True,
    }
    # the page: "This method requires the $filter (eq) query parameter to scope the request to a principalId or
    # a groupId"
    assert_graph_error(await graph.get(GROUP_ELIGIBILITIES), 400, "Request_UnsupportedQuery")
    unscoped = await graph.get(GROUP_ELIGIBILITIES, params={"$filter": "accessId eq 'member'"})
    assert_graph_error(unscoped, 400, "Request_UnsupportedQuery")
    bad_expand = await graph.get(
        GROUP_ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('ca')}'", "$expand": "roleDefinition"}
    )
    assert_graph_error(bad_expand, 400, "Request_BadRequest")


async def test_pim_for_groups_eligibility_needs_its_own_permission(sim: Simulator) -> None:
    from graph.simulator.tenant import Application

    # neither the role-management nor a Directory permission reads PIM for Groups
    app = Application(
        "7f3a9e5d-4c6b-4a8f-9d1e-2c3d4e5f6a72",
        "pim-roles-secret",
        roles=["RoleManagement.Read.Directory", "Directory.Read.All"],
    )
    sim.tenant.applications.append(app)
    async with http(sim, await token_for(sim, app.client_id)) as client:
        denied = await client.get(GROUP_ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('ca')}'"})
    assert_graph_error(denied, 403, "Authorization_RequestDenied")


async def test_pim_for_groups_eligibility_on_a_tenant_without_p2(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.pim_licensed = False
    answer = await graph.get(GROUP_ELIGIBILITIES, params={"$filter": f"principalId eq '{uid('ca')}'"})
    assert_graph_error(answer, 400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")


BOT_APP_ID = "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"


async def test_owners_of_the_application_and_its_service_principal(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    app = sim.tenant.app(BOT_APP_ID)
    assert app is not None
    app.service_principal_owners = [uid("c3")]
    by_app_id = await graph.get(f"/applications(appId='{BOT_APP_ID}')/owners")
    assert by_app_id.status_code == 200
    [owner] = by_app_id.json()["value"]
    assert owner["@odata.type"] == "#microsoft.graph.user" and owner["id"] == uid("c9")
    assert owner["displayName"] == "Joni Sherman"
    by_object_id = await graph.get(f"/applications/{app.object_id}/owners", params={"$select": "id"})
    assert [o["id"] for o in by_object_id.json()["value"]] == [uid("c9")]
    sp = await graph.get(f"/servicePrincipals(appId='{BOT_APP_ID}')/owners", params={"$select": "id"})
    assert [o["id"] for o in sp.json()["value"]] == [uid("c3")]
    sp_by_id = await graph.get(f"/servicePrincipals/{app.service_principal_id}/owners")
    assert [o["id"] for o in sp_by_id.json()["value"]] == [uid("c3")]
    unknown = "00000000-1111-2222-3333-444444444444"
    assert_graph_error(
        await graph.get(f"/applications(appId='{unknown}')/owners"), 404, "Request_ResourceNotFound"
    )
    # the registration's object id is not the service principal's
    assert_graph_error(
        await graph.get(f"/servicePrincipals/{app.object_id}/owners"), 404, "Request_ResourceNotFound"
    )


async def test_owners_need_an_application_read_permission(sim: Simulator) -> None:
    readonly = "6e2f8d4c-3b5a-4f7e-8c2d-1b2c3d4e5f60"  # User.Read.All only
    async with http(sim, await token_for(sim, readonly)) as client:
        for kind in ("applications", "servicePrincipals"):
            path = f"/{kind}(appId='{BOT_APP_ID}')/owners"
            assert_graph_error(await client.get(path), 403, "Authorization_RequestDenied")


async def test_unknown_paths_and_me_are_refused(graph: httpx.AsyncClient) -> None:
    assert_graph_error(await graph.get("/me"), 400, "BadRequest")
    assert_graph_error(await graph.get("/groupz"), 400, "BadRequest")
    r = await graph.delete("/users")
    assert r.status_code == 405


ADVANCED = {"ConsistencyLevel": "eventual"}
MEMBER_SELECT = "id,userType,accountEnabled"


async def test_group_transitive_members_are_a_flat_list_of_nested_users_and_groups(
    graph: httpx.AsyncClient,
) -> None:
    body = (await graph.get(f"/groups/{NESTED}/transitiveMembers")).json()
    assert [(o["@odata.type"], o["id"]) for o in body["value"]] == [
        ("#microsoft.graph.user", uid("a1")),
        ("#microsoft.graph.user", uid("a2")),
        ("#microsoft.graph.group", HELPDESK),
    ]
    missing = await graph.get("/groups/11111111-1111-1111-1111-0000000000ff/transitiveMembers")
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


async def test_group_transitive_user_members_need_the_advanced_query_and_page_with_next_link(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    path = f"/groups/{APPROVERS}/transitiveMembers/microsoft.graph.user"
    plain = await graph.get(path, params={"$select": MEMBER_SELECT})
    assert_graph_error(plain, 400, "Request_UnsupportedQuery")
    no_count = await graph.get(path, params={"$select": MEMBER_SELECT}, headers=ADVANCED)
    assert_graph_error(no_count, 400, "Request_UnsupportedQuery")
    for n in range(5):
        sim.tenant.add_user(
            {"id": uid(f"e{n}"), "userPrincipalName": f"e{n}@contoso.example", "displayName": f"E{n}"}
        )
        sim.tenant.groups[NESTED].members.append(uid(f"e{n}"))
    sim.tenant.groups[APPROVERS].members.append(NESTED)  # nested: its members count, the group itself not
    sim.tenant.users[uid("e4")].user_type = "Guest"
    url: str | None = path
    params: dict[str, str] | None = {"$select": MEMBER_SELECT, "$count": "true", "$top": "3"}
    seen: list[dict[str, object]] = []
    pages = 0
    while url:
        body = (await graph.get(url, params=params, headers=ADVANCED)).json()
        assert body["@odata.count"] == 8
        seen.extend(body["value"])
        url, params, pages = body.get("@odata.nextLink"), None, pages + 1
    assert pages == 3
    # each user once, in a stable order across the pages
    assert [o["id"] for o in seen] == [uid(s) for s in ("a1", "a2", "a3", "e0", "e1", "e2", "e3", "e4")]
    assert {k for o in seen for k in o} == {"@odata.type", "id", "userType", "accountEnabled"}
    assert [o["id"] for o in seen if o["userType"] == "Guest"] == [uid("e4")]
    too_big = await graph.get(path, params={"$count": "true", "$top": "1000"}, headers=ADVANCED)
    assert_graph_error(too_big, 400, "Request_BadRequest")


async def test_group_transitive_members_without_a_user_permission_carry_only_type_and_id(
    sim: Simulator,
) -> None:
    from graph.simulator.tenant import Application

    app = Application(
        "7f3a9e5d-4c6b-4a8f-9d1e-2c3d4e5f6a71", "groups-only-secret", roles=["GroupMember.Read.All"]
    )
    sim.tenant.applications.append(app)
    async with http(sim, await token_for(sim, app.client_id)) as client:
        answer = await client.get(
            f"/groups/{PRIVILEGED}/transitiveMembers/microsoft.graph.user",
            params={"$select": MEMBER_SELECT, "$count": "true"},
            headers=ADVANCED,
        )
    assert answer.status_code == 200
    assert answer.json()["value"] == [
        {"@odata.type": "#microsoft.graph.user", "id": uid("a3"), "userType": None, "accountEnabled": None}
    ]

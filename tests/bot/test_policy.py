"""The policy against the Graph simulator: roles from transitive group membership, privileged targets, the
approval matrix, four eyes for approvers, the tenant, and the membership cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from botbuilder.schema import Activity, ConversationAccount

from bot.desk.graph_services import GraphServices
from bot.desk.policy import Policy, activity_tenant_id
from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.settings import BotSettings
from graph.outcome import TargetUser
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    ISAIAH,
    LYNNE_ID,
    MEGAN,
    MIRIAM_ID,
    OTHER_TENANT_ID,
    PATTI,
    PRADEEP,
    PRIVILEGED_GROUP,
    TENANT_ID,
    bot_environ,
)

NESTED_HELPDESK = "11111111-1111-1111-1111-000000000005"


def person(p: Any) -> Person:
    return Person(aad_object_id=p.aad, name=p.name)


def target(user_id: str, upn: str = "x@contoso.example", guest: bool = False) -> TargetUser:
    return TargetUser(
        id=user_id, user_principal_name=upn, display_name=upn, user_type="Guest" if guest else "Member"
    )


@pytest.fixture
async def graph(sim: Any, sim_env: dict[str, str]) -> AsyncIterator[GraphServices]:
    settings = BotSettings.from_env(bot_environ(sim_env, "unused"))
    assert settings.graph is not None
    services = await GraphServices.create(settings.graph)
    try:
        yield services
    finally:
        await services.close()


def make_policy(graph: GraphServices, sim_env: dict[str, str], **overrides: str) -> Policy:
    return Policy(graph.directory, BotSettings.from_env(bot_environ(sim_env, "unused", **overrides)))


@pytest.mark.parametrize(
    ("who", "helpdesk", "approver", "privileged"),
    [
        (ALEX, True, False, False),
        (MEGAN, True, True, False),
        (PATTI, False, True, True),
        (PRADEEP, False, False, False),
    ],
)
async def test_roles_follow_group_membership(
    graph: GraphServices, sim_env: dict[str, str], who: Any, helpdesk: bool, approver: bool, privileged: bool
) -> None:
    roles = await make_policy(graph, sim_env).roles(who.aad)
    assert (roles.helpdesk, roles.approver, roles.privileged) == (helpdesk, approver, privileged)


async def test_membership_counts_through_nested_groups(graph: GraphServices, sim_env: dict[str, str]) -> None:
    policy = make_policy(graph, sim_env, HELPDESK_GROUP_ID=NESTED_HELPDESK)
    assert (await policy.roles(ALEX.aad)).helpdesk is True
    assert (await policy.roles(PRADEEP.aad)).helpdesk is False


async def test_memberships_are_cached_then_read_again_after_expiry(
    sim: Any, graph: GraphServices, sim_env: dict[str, str]
) -> None:
    policy = make_policy(graph, sim_env, ROLE_CACHE_SECONDS="300")
    clock = [1000.0]
    policy._monotonic = lambda: clock[0]  # the cache's clock, advanced by hand
    assert (await policy.roles(PRADEEP.aad)).helpdesk is False
    calls = len(sim.calls)
    sim.tenant.groups["11111111-1111-1111-1111-000000000001"].members.append(PRADEEP.aad)
    assert (await policy.roles(PRADEEP.aad)).helpdesk is False  # cached: no Graph call
    assert len(sim.calls) == calls
    clock[0] += 301
    assert (await policy.roles(PRADEEP.aad)).helpdesk is True


async def test_no_cache_when_role_cache_seconds_is_zero(
    sim: Any, graph: GraphServices, sim_env: dict[str, str]
) -> None:
    policy = make_policy(graph, sim_env, ROLE_CACHE_SECONDS="0")
    await policy.roles(ALEX.aad)
    calls = len(sim.calls)
    await policy.roles(ALEX.aad)
    assert len(sim.calls) > calls


@pytest.mark.parametrize(
    ("tenant", "allowed"),
    [(TENANT_ID, True), (TENANT_ID.upper(), True), (OTHER_TENANT_ID, False), (None, False), ("", False)],
)
async def test_requester_must_come_from_the_configured_tenant(
    graph: GraphServices, sim_env: dict[str, str], tenant: str | None, allowed: bool
) -> None:
    decision = await make_policy(graph, sim_env).check_requester(person(ALEX), tenant)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason_key == "refusal.other_tenant"


async def test_requester_without_helpdesk_role_is_refused(
    graph: GraphServices, sim_env: dict[str, str]
) -> None:
    decision = await make_policy(graph, sim_env).check_requester(person(PRADEEP), TENANT_ID)
    assert not decision.allowed and decision.reason_key == "refusal.not_helpdesk"


def test_tenant_is_read_from_channel_data_then_conversation() -> None:
    a = Activity(
        channel_data={"tenant": {"id": "t1"}}, conversation=ConversationAccount(id="c", tenant_id="t2")
    )
    assert activity_tenant_id(a) == "t1"
    b = Activity(
        channel_data={"tenant": "nonsense"}, conversation=ConversationAccount(id="c", tenant_id="t2")
    )
    assert activity_tenant_id(b) == "t2"
    assert activity_tenant_id(Activity(conversation=ConversationAccount(id="c"))) is None


async def test_nobody_targets_themselves(graph: GraphServices, sim_env: dict[str, str]) -> None:
    decision = await make_policy(graph, sim_env).check_target(person(ALEX), target(ALEX.aad.upper()))
    assert not decision.allowed and decision.reason_key == "refusal.own_account"


@pytest.mark.parametrize(
    ("policy_name", "target_id", "approval", "group"),
    [
        ("never", DIEGO_ID, False, None),
        ("privileged", DIEGO_ID, False, None),
        ("always", DIEGO_ID, True, "approver"),
        ("privileged", ISAIAH.aad, True, "privileged"),
        ("always", MIRIAM_ID, True, "privileged"),
        ("never", ISAIAH.aad, False, None),
    ],
)
async def test_approval_matrix(
    sim: Any,
    graph: GraphServices,
    sim_env: dict[str, str],
    policy_name: str,
    target_id: str,
    approval: bool,
    group: str | None,
) -> None:
    sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    policy = make_policy(graph, sim_env, APPROVAL_POLICY=policy_name)
    decision = await policy.check_target(person(ALEX), target(target_id))
    assert decision.allowed
    assert decision.approval_required is approval and decision.approver_group == group


async def test_privileged_target_names_its_roles_and_is_refused_without_the_group(
    graph: GraphServices, sim_env: dict[str, str]
) -> None:
    policy = make_policy(graph, sim_env)
    decision = await policy.check_target(person(ALEX), target(ISAIAH.aad))
    assert not decision.allowed and decision.reason_key == "refusal.target_privileged"
    assert "Global Administrator" in decision.params["roles"]
    miriam = await policy.check_target(person(ALEX), target(MIRIAM_ID))
    assert not miriam.allowed and miriam.privileged


def _req(target_id: str = DIEGO_ID, privileged: bool = False) -> ChangeRequest:
    return ChangeRequest(
        id="r1",
        revision=2,
        state=RequestState.AWAITING_APPROVAL,
        action="set",
        requester=person(ALEX),
        target_id=target_id,
        target_upn="t@contoso.example",
        target_display_name="T",
        target_privileged=privileged,
        approver_group="privileged" if privileged else "approver",
    )


@pytest.mark.parametrize(
    ("who", "req_kwargs", "allowed", "reason"),
    [
        (MEGAN, {}, True, None),
        (PATTI, {}, True, None),
        (ALEX, {}, False, "refusal.approver_is_requester"),
        (PRADEEP, {}, False, "refusal.not_approver"),
        (MEGAN, {"target_id": MEGAN.aad}, False, "refusal.approver_is_target"),
        (MEGAN, {"target_id": ISAIAH.aad, "privileged": True}, False, "refusal.not_approver"),
        (PATTI, {"target_id": ISAIAH.aad, "privileged": True}, True, None),
    ],
)
async def test_approver_checks(
    graph: GraphServices,
    sim_env: dict[str, str],
    who: Any,
    req_kwargs: dict[str, Any],
    allowed: bool,
    reason: str | None,
) -> None:
    decision = await make_policy(graph, sim_env).check_approver(person(who), _req(**req_kwargs))
    assert decision.allowed is allowed and decision.reason_key == reason


async def test_manager_counts_as_approver_only_when_enabled(
    sim: Any, graph: GraphServices, sim_env: dict[str, str]
) -> None:
    sim.tenant.user(LYNNE_ID).manager_id = PRADEEP.aad  # a manager without any approver role
    off = await make_policy(graph, sim_env).check_approver(person(PRADEEP), _req(LYNNE_ID))
    assert not off.allowed
    on = make_policy(graph, sim_env, MANAGER_APPROVAL="true")
    assert (await on.check_approver(person(PRADEEP), _req(LYNNE_ID))).allowed
    assert not (await on.check_approver(person(PRADEEP), _req(DIEGO_ID))).allowed  # not Diego's manager

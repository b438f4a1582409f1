"""Who gets the 1:1 copy of an approval card, and what finding them costs in Graph calls: the approver groups are
listed once (paged transitiveMembers, cached for ROLE_CACHE_SECONDS) and intersected with the people who have
the app, not checked one stored user at a time. Through the real HTTP endpoint, against the Graph simulator.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.bot.conftest import (
    ALEX,
    APPROVER_GROUP,
    ISAIAH,
    MEGAN,
    PATTI,
    PRADEEP,
    PRIVILEGED_GROUP,
    BotHarness,
    Persona,
)
from tests.bot.test_approvals import (
    Bots,
    bots,  # noqa: F401  (fixture)
    eventually,
    register_approvers,
    submit,
)

PEOPLE = 200
TRANSITIVE_MEMBERS = "/transitiveMembers/microsoft.graph.user"


def crowd(bot: BotHarness) -> list[Persona]:
    """PEOPLE users in the tenant; every tenth is an approver through a nested group, and among those one is a
    guest and one is disabled."""
    from graph.simulator.tenant import Group

    people = []
    nested = Group("11111111-1111-1111-1111-0000000000aa", "Approvers (nested)")
    for n in range(PEOPLE):
        aad = f"00000000-0000-0000-0001-{n:012d}"
        upn = f"person{n}@contoso.example"
        data: dict[str, Any] = {"id": aad, "userPrincipalName": upn, "displayName": f"Person {n}"}
        if n == 10:
            data["userType"] = "Guest"
        if n == 20:
            data["accountEnabled"] = False
        bot.sim.tenant.add_user(data)
        if n % 10 == 0:
            nested.members.append(aad)
        people.append(Persona(aad, f"Person {n}", upn))
    bot.sim.tenant.groups[nested.id] = nested
    bot.sim.tenant.groups[APPROVER_GROUP].members.append(nested.id)
    return people


async def install_for(bot: BotHarness, people: list[Persona]) -> None:
    """The app is installed in each person's personal scope: the bot keeps their conversation references."""
    sem = asyncio.Semaphore(8)

    async def one(person: Persona) -> None:
        async with sem:
            reply = await bot.conversation_update(person)
            assert reply.status in (200, 201), reply

    await asyncio.gather(*(one(p) for p in people))


async def dm_recipients(bot: BotHarness, request_id: str, count: int) -> set[str] | None:
    refs = [r for r in await bot.store.card_refs(request_id) if r.role == "approver_dm"]
    if len(refs) < count:
        return None
    return {str(r.conversation_reference["conversation"]["id"]) for r in refs}


def group_listings(bot: BotHarness, since: int) -> list[Any]:
    return [c for c in bot.sim.calls[since:] if c.path.endswith(TRANSITIVE_MEMBERS)]


async def test_finding_approvers_costs_a_few_graph_calls_however_many_people_have_the_app(
    bots: Bots,  # noqa: F811
) -> None:
    instance = await bots.start()
    bot = instance.bot
    await register_approvers(bot)  # Megan (approver), Patti (privileged), Pradeep (neither) said hello
    people = crowd(bot)
    await install_for(bot, people)
    approvers = {p.conversation_id for p in people[::10]} - {
        people[10].conversation_id,  # the guest
        people[20].conversation_id,  # the disabled account
    }
    expected = approvers | {MEGAN.conversation_id, PATTI.conversation_id}
    assert len(expected) == 20

    mark = len(bot.sim.calls)
    first = await submit(bot)
    got = await eventually(lambda: dm_recipients(bot, first.request_id, len(expected)), what="the 1:1 copies")
    assert got == expected  # exactly the approvers: no guest, no disabled account, not the requester
    calls = bot.sim.calls[mark:]
    # one listing per approver group (approver and privileged), not a membership check per stored user
    assert [c.path.split("/groups/")[1].split("/")[0] for c in group_listings(bot, mark)] == [
        APPROVER_GROUP,
        PRIVILEGED_GROUP,
    ]
    member_checks = [c for c in calls if c.path.endswith("/checkMemberGroups")]
    assert len(member_checks) <= 2, [c.path for c in member_checks]  # the requester's own groups, at most
    assert len(calls) < 30, sorted({c.path for c in calls})

    # within ROLE_CACHE_SECONDS the next submission lists no group again
    mark = len(bot.sim.calls)
    second = await submit(bot, target="lynne.robbins@contoso.example", number="+49 170 4443333")
    got = await eventually(
        lambda: dm_recipients(bot, second.request_id, len(expected)), what="the 1:1 copies"
    )
    assert got == expected
    assert group_listings(bot, mark) == []
    assert ALEX.conversation_id not in got and PRADEEP.conversation_id not in got


async def test_a_privileged_request_asks_only_the_privileged_group(bots: Bots) -> None:  # noqa: F811
    instance = await bots.start()
    bot = instance.bot
    await register_approvers(bot)  # Megan (approver), Patti (privileged), Pradeep (neither) said hello
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # Alex may ask for privileged targets
    mark = len(bot.sim.calls)
    sub = await submit(bot, target=ISAIAH.upn, number="+49 170 5550199")
    req = await bot.store.get_request(sub.request_id)
    assert req is not None and req.approver_group == "privileged"
    # Patti is the only privileged approver who has the app (Alex is the requester)
    got = await eventually(lambda: dm_recipients(bot, sub.request_id, 1), what="the 1:1 copy")
    await asyncio.sleep(0.3)  # nobody else gets one after a moment either
    assert got == {PATTI.conversation_id}
    assert await dm_recipients(bot, sub.request_id, 1) == {PATTI.conversation_id}
    assert [c.path.split("/groups/")[1].split("/")[0] for c in group_listings(bot, mark)] == [
        PRIVILEGED_GROUP
    ]

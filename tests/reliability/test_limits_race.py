"""Family 9, abuse limits under races: the per-requester limit and the per-target cool-down are enforced in the
transaction that moves a request to executing (store.start_execution), so confirmations at the same moment, two
approvals, or two instances on one database cannot get past them; and an approver sees a limit at the click.

Through the real HTTP endpoint, SQLite and PostgreSQL (the `database` fixture), one and two app instances.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.persistence.models import RequestState
from tests.bot.conftest import ALEX, MEGAN, PATTI, BotHarness, action_data, graph_writes
from tests.bot.test_approvals import (
    Bots,
    bots,  # noqa: F401  (fixture)
    channel_card,
    click,
    notice,
    register_approvers,
    submit,
    wait_state,
)

TARGETS = [
    ("diego.siciliani@contoso.example", "+49 170 5551001"),
    ("johanna.lorenz@contoso.example", "+43 664 5551002"),
    ("lee.gu@contoso.example", "+49 170 5551003"),
]


async def _draft(bot: BotHarness, upn: str, number: str) -> dict[str, Any]:
    """Review (answered with the confirmation card); returns the Confirm button's data."""
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, {"targetUserText": upn, "number": number, "action": "set"})
    card = review.card
    if action_data(card, "mfa.confirm") is None:
        card = (await bot.card_update(form.activity_id, since=0)).card
    data = action_data(card, "mfa.confirm")
    assert data is not None, review.text
    return {"data": data, "card_id": form.activity_id}


async def _final_states(bot: BotHarness, request_ids: list[str]) -> list[RequestState]:
    states = []
    for rid in request_ids:
        states.append((await _wait_final(bot, rid)).state)
    return states


async def _wait_final(bot: BotHarness, rid: str) -> Any:
    for _ in range(1500):
        req = await bot.store.get_request(rid)
        if req is not None and req.state.is_final:
            return req
        await asyncio.sleep(0.02)
    raise AssertionError(f"request {rid} did not finish")


async def test_drafts_confirmed_at_the_same_moment_cannot_exceed_the_requester_limit(bots: Bots) -> None:  # noqa: F811
    one = await bots.start(APPROVAL_POLICY="never", MAX_CHANGES_PER_REQUESTER_PER_HOUR="1")
    bot = one.bot
    drafts = [await _draft(bot, upn, number) for upn, number in TARGETS]

    answers = await asyncio.gather(
        *(bot.invoke(ALEX, "mfa.confirm", d["data"], reply_to_id=d["card_id"]) for d in drafts)
    )

    assert [a.status for a in answers] == [200] * 3
    rids = [d["data"]["requestId"] for d in drafts]
    states = await _final_states(bot, rids)
    assert sorted(s.value for s in states) == ["cancelled", "cancelled", "completed"]
    assert len(graph_writes(bot.sim)) == 1
    for rid, state in zip(rids, states, strict=True):
        rows = await bot.store.request_audit(rid)
        if state is RequestState.CANCELLED:
            req = await bot.store.get_request(rid)
            assert "limit of 1 changes" in (req.decision_reason or "")
            assert [r.details.get("reason") for r in rows if r.event == "cancelled"] == ["refusal.rate_limit"]
            assert "execution_started" not in [r.event for r in rows]


async def test_two_instances_confirming_at_once_cannot_exceed_the_requester_limit(bots: Bots) -> None:  # noqa: F811
    first = await bots.start(APPROVAL_POLICY="never", MAX_CHANGES_PER_REQUESTER_PER_HOUR="1")
    second = await bots.start(
        store=await bots.database.open(), APPROVAL_POLICY="never", MAX_CHANGES_PER_REQUESTER_PER_HOUR="1"
    )
    drafts = [await _draft(first.bot, upn, number) for upn, number in TARGETS[:2]]

    await asyncio.gather(
        first.bot.invoke(ALEX, "mfa.confirm", drafts[0]["data"], reply_to_id=drafts[0]["card_id"]),
        second.bot.invoke(ALEX, "mfa.confirm", drafts[1]["data"], reply_to_id=drafts[1]["card_id"]),
    )

    states = await _final_states(first.bot, [d["data"]["requestId"] for d in drafts])
    assert sorted(s.value for s in states) == ["cancelled", "completed"]
    assert len(graph_writes(first.bot.sim)) == 1


async def test_two_approved_requests_for_one_user_change_the_number_once_within_the_cooldown(
    bots: Bots,  # noqa: F811
) -> None:
    one = await bots.start(TARGET_COOLDOWN_MINUTES="60")
    bot = one.bot
    await register_approvers(bot)
    first = await submit(bot, number="+49 170 5551111")
    second = await submit(bot, number="+49 170 5552222")
    cards = [await channel_card(bot, s.request_id) for s in (first, second)]
    revs = [(await bot.store.get_request(s.request_id)).revision for s in (first, second)]

    await asyncio.gather(
        click(bot, MEGAN, "mfa.approve", first.request_id, revs[0], card=cards[0]),
        click(bot, PATTI, "mfa.approve", second.request_id, revs[1], card=cards[1]),
    )

    states = await _final_states(bot, [first.request_id, second.request_id])
    assert sorted(s.value for s in states) == ["cancelled", "completed"]
    assert len(graph_writes(bot.sim)) == 1
    cancelled = next(
        r
        for r in [await bot.store.get_request(s.request_id) for s in (first, second)]
        if r.state is RequestState.CANCELLED
    )
    reasons = [
        r.details.get("reason") for r in await bot.store.request_audit(cancelled.id) if r.event == "cancelled"
    ]
    assert reasons in (["refusal.target_cooldown"], ["refusal.target_busy"])


async def test_approver_sees_the_cooldown_at_the_click_and_the_request_keeps_waiting(bots: Bots) -> None:  # noqa: F811
    one = await bots.start(TARGET_COOLDOWN_MINUTES="60")
    bot = one.bot
    await register_approvers(bot)
    first = await submit(bot, number="+49 170 5551111")
    second = await submit(bot, number="+49 170 5552222")
    card = await channel_card(bot, first.request_id)
    rev = (await bot.store.get_request(first.request_id)).revision
    await click(bot, MEGAN, "mfa.approve", first.request_id, rev, card=card)
    await wait_state(bot, first.request_id, RequestState.COMPLETED)

    card2 = await channel_card(bot, second.request_id)
    rev2 = (await bot.store.get_request(second.request_id)).revision
    refused = await click(bot, MEGAN, "mfa.approve", second.request_id, rev2, card=card2)

    assert "Another change is possible after" in notice(refused)
    assert (await bot.store.get_request(second.request_id)).state is RequestState.AWAITING_APPROVAL
    refusals = [r for r in await bot.store.request_audit(second.request_id) if r.event == "approval_refused"]
    assert [r.details["reason"] for r in refusals] == ["refusal.target_cooldown"]
    assert len(graph_writes(bot.sim)) == 1

"""The facts that decide a change are read at the moment of the change, never trusted from the confirmation or the
role cache: at an approver's click and in the step that starts the change (the no-approval path and the sweeper's
recovery runs included). Through the real HTTP endpoint, the Graph simulator and a real database.

- the requester left the helpdesk group → the request is cancelled, every card says why, audited;
- the target became privileged → only a privileged approver may approve (the request keeps waiting, its cards
  say so); a run without such an approval does not start;
- Graph cannot answer the checks → nothing runs, the card says it is tried again.
"""

from __future__ import annotations

from typing import Any

from bot.desk.recovery import APPROVED_GRACE
from bot.persistence.models import RequestState
from bot.views import texts
from graph.simulator.tenant import RoleAssignment
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    HELPDESK_GROUP,
    MEGAN,
    PATTI,
    PRIVILEGED_GROUP,
    BotHarness,
    MakeBot,
    action_data,
    card_text,
    graph_writes,
)
from tests.bot.test_approvals import (
    APPROVERS_CONV,
    Bots,
    bots,  # noqa: F401  (fixture)
    channel_card,
    click,
    notice,
    posted_approval,
    register_approvers,
    submit,
    texts_to,
    wait_card_text,
    wait_state,
)
from tests.bot.test_approvers_channels import register  # noqa: E402
from tests.bot.test_sweeper_recovery import crashed_after_decision, recovering_instances, rounds_pass

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_CHAT = "19:privileged-approvers@thread.v2"


def make_global_admin(sim: Any, user_id: str) -> None:
    sim.tenant.role_assignments.append(RoleAssignment(GLOBAL_ADMIN, "Global Administrator", user_id, "/"))


def leave_helpdesk(sim: Any, user_id: str) -> None:
    sim.tenant.groups[HELPDESK_GROUP].members.remove(user_id)


async def audit_rows(bot: BotHarness, request_id: str) -> list[Any]:
    return await bot.store.request_audit(request_id)


# ---------------------------------------------------------------------------------------------- at the click


async def test_requester_who_left_the_helpdesk_gets_the_request_cancelled_at_the_approvers_click(
    bots: Bots,  # noqa: F811
) -> None:
    one = await bots.start()
    bot = one.bot
    await register_approvers(bot)
    sub = await submit(bot)  # Alex asks; his helpdesk role is cached from the confirmation
    channel = await channel_card(bot, sub.request_id)
    leave_helpdesk(bot.sim, ALEX.aad)

    answer = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)

    reason = texts.t("en", "hold.requester_not_helpdesk", name=ALEX.name)
    assert answer.status == 200
    assert texts.t("en", "decision.title.cancelled") in answer.text and reason in answer.text
    assert action_data(answer.card, "mfa.approve") is None
    req = await bot.store.get_request(sub.request_id)
    assert req.state is RequestState.CANCELLED and req.decision_reason == reason
    cancelled = [r for r in await audit_rows(bot, sub.request_id) if r.event == "cancelled"]
    assert [r.details["reason"] for r in cancelled] == ["hold.requester_not_helpdesk"]
    assert graph_writes(bot.sim) == []
    # every card says why, and the requester is told
    await wait_card_text(bot.connector, channel.activity_id, reason)
    await wait_card_text(bot.connector, sub.form.activity_id, reason)
    assert req.ref is not None  # the requester is told the request's short reference
    await bot.connector.wait_for(lambda _: [t for t in texts_to(bot.connector, ALEX) if req.ref in t])


async def test_target_who_became_privileged_needs_a_privileged_approver_and_the_request_keeps_waiting(
    bots: Bots,  # noqa: F811
) -> None:
    one = await bots.start()
    bot = one.bot
    # Patti (privileged) asks as a helpdesk agent; Alex is a privileged approver too
    bot.sim.tenant.groups[HELPDESK_GROUP].members.append(PATTI.aad)
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    await register_approvers(bot, MEGAN, ALEX)
    sub = await submit(bot, PATTI)
    waiting = await bot.store.get_request(sub.request_id)
    assert waiting.approver_group == "approver" and not waiting.target_privileged
    channel = await channel_card(bot, sub.request_id)
    make_global_admin(bot.sim, DIEGO_ID)

    refused = await click(bot, MEGAN, "mfa.approve", sub.request_id, waiting.revision, card=channel)

    assert refused.status == 200
    assert "only a member of the privileged group may approve it now" in notice(refused)
    req = await bot.store.get_request(sub.request_id)
    assert req.state is RequestState.AWAITING_APPROVAL
    assert req.approver_group == "privileged" and req.target_privileged
    assert "Global Administrator" in ", ".join(req.privilege_reasons)
    events = [r.event for r in await audit_rows(bot, sub.request_id)]
    assert "approval_escalated" in events and "approved" not in events
    refusals = [r for r in await bot.store.request_audit(sub.request_id) if r.event == "approval_refused"]
    assert [r.details["reason"] for r in refusals] == ["approval.now_privileged"]
    assert graph_writes(bot.sim) == []
    await wait_card_text(bot.connector, channel.activity_id, texts.t("en", "approval.escalated"))

    # Megan's next click on the current card is refused too; Alex, a privileged approver, approves
    again = await click(bot, MEGAN, "mfa.approve", sub.request_id, req.revision, card=channel)
    assert "privileged" in notice(again)
    assert (await bot.store.get_request(sub.request_id)).state is RequestState.AWAITING_APPROVAL
    approved = await click(bot, ALEX, "mfa.approve", sub.request_id, req.revision, card=channel)
    assert approved.status == 200 and not notice(approved)
    done = await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    assert done.decided_by.name == ALEX.name
    assert len(graph_writes(bot.sim)) == 1


async def test_an_escalated_request_is_put_before_the_privileged_approvers_in_their_own_conversation(
    bots: Bots,  # noqa: F811
) -> None:
    one = await bots.start()
    bot = one.bot
    bot.sim.tenant.groups[HELPDESK_GROUP].members.append(PATTI.aad)
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    await register_approvers(bot, MEGAN, ALEX)
    # Alex (privileged) takes every request to the privileged approvers' chat; Megan takes the ordinary ones back
    await register(bot, ALEX, PRIVILEGED_CHAT)
    await register(bot, MEGAN, APPROVERS_CONV)
    sub = await submit(bot, PATTI)
    assert posted_approval(bot.connector.records, sub.request_id, PRIVILEGED_CHAT) is None
    channel = await channel_card(bot, sub.request_id)
    make_global_admin(bot.sim, DIEGO_ID)

    refused = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)

    assert "privileged" in notice(refused)
    posted = await bot.connector.wait_for(
        lambda recs: posted_approval(recs, sub.request_id, PRIVILEGED_CHAT), timeout=15
    )
    assert texts.t("en", "approval.escalated") in card_text(posted.card)
    current = await bot.store.get_request(sub.request_id)
    data = {"verb": "mfa.approve", "requestId": sub.request_id, "rev": current.revision}
    answer = await bot.invoke(
        ALEX,
        "mfa.approve",
        data,
        reply_to_id=posted.activity_id,
        conversation_id=PRIVILEGED_CHAT,
        conversation_type="groupChat",
    )
    assert answer.status == 200 and not notice(answer)
    await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    assert len(graph_writes(bot.sim)) == 1


async def test_target_who_became_privileged_when_the_requester_is_not_cancels_the_request_at_the_click(
    bots: Bots,  # noqa: F811
) -> None:
    one = await bots.start()
    bot = one.bot
    await register_approvers(bot)
    sub = await submit(bot)  # Alex is not privileged
    channel = await channel_card(bot, sub.request_id)
    make_global_admin(bot.sim, DIEGO_ID)

    answer = await click(bot, PATTI, "mfa.approve", sub.request_id, sub.rev, card=channel)

    assert texts.t("en", "decision.title.cancelled") in answer.text
    assert "Global Administrator" in answer.text
    assert (await bot.store.get_request(sub.request_id)).state is RequestState.CANCELLED
    assert graph_writes(bot.sim) == []


# ---------------------------------------------------------------------------------------------- at the start


async def test_no_approval_path_reads_the_targets_privilege_again_when_the_change_starts(
    make_bot: MakeBot,
) -> None:
    bot = await make_bot(APPROVAL_POLICY="never", ROLE_CACHE_SECONDS="600")
    form = await bot.open_form(ALEX)
    review = await bot.review(
        ALEX, form, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666"}
    )
    card = review.card
    if action_data(card, "mfa.confirm") is None:  # the look-up card, then the confirmation card in place
        card = (await bot.card_update(form.activity_id, since=0)).card
    assert action_data(card, "mfa.confirm") is not None, card_text(card)
    make_global_admin(bot.sim, DIEGO_ID)  # after the review: the cached privilege says "ordinary"

    seen = len(bot.connector.records)
    await bot.confirm(ALEX, form.activity_id, card or {})

    final = await bot.final_update(form.activity_id, since=seen)
    assert texts.t("en", "decision.title.cancelled") in card_text(final.card)
    assert "Global Administrator" in card_text(final.card)
    rid = action_data(card, "mfa.confirm")["requestId"]
    req = await bot.store.get_request(rid)
    assert req.state is RequestState.CANCELLED
    assert "execution_started" not in await bot.audit_events(rid)
    assert graph_writes(bot.sim) == []


async def test_sweeper_does_not_run_an_approved_request_whose_requester_left_the_helpdesk(
    bots: Bots,  # noqa: F811
) -> None:
    sub, channel_id, _ = await crashed_after_decision(bots)
    leave_helpdesk(bots.sim, ALEX.aad)
    [after] = await recovering_instances(bots)
    after.clock.advance(seconds=APPROVED_GRACE.total_seconds() + 1)

    req = await wait_state(after.bot, sub.request_id, RequestState.CANCELLED)

    assert req.decision_reason == texts.t("en", "hold.requester_not_helpdesk", name=ALEX.name)
    assert "execution_started" not in await after.bot.audit_events(sub.request_id)
    assert graph_writes(after.bot.sim) == []
    await wait_card_text(after.bot.connector, channel_id, req.decision_reason)


async def test_sweeper_does_not_run_an_approval_by_a_plain_approver_for_a_target_who_became_privileged(
    bots: Bots,  # noqa: F811
) -> None:
    bots.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # Alex may ask for privileged targets
    sub, channel_id, _ = await crashed_after_decision(bots)  # Megan (not privileged) approved
    make_global_admin(bots.sim, DIEGO_ID)
    [after] = await recovering_instances(bots)
    after.clock.advance(seconds=APPROVED_GRACE.total_seconds() + 1)

    req = await wait_state(after.bot, sub.request_id, RequestState.CANCELLED)

    assert "privileged approver" in (req.decision_reason or "")
    assert graph_writes(after.bot.sim) == []


async def test_graph_not_answering_the_checks_at_the_start_runs_nothing_and_says_try_again(
    bots: Bots,  # noqa: F811
) -> None:
    sub, channel_id, _ = await crashed_after_decision(bots)
    bots.sim.faults.inject("POST", r"/checkMemberGroups", 503, times=1000)
    [after] = await recovering_instances(bots)
    after.clock.advance(seconds=APPROVED_GRACE.total_seconds() + 1)

    failed = await wait_state(after.bot, sub.request_id, RequestState.FAILED, timeout=30)

    assert failed.outcome["outcome"] == "graph_unavailable"
    events = await after.bot.audit_events(sub.request_id)
    assert "execution_started" not in events and events.count("failed") == 1
    assert graph_writes(after.bot.sim) == []
    title = texts.t("en", "outcome.graph_unavailable.title")
    for activity_id in (channel_id, sub.form.activity_id):
        text = await wait_card_text(after.bot.connector, activity_id, title)
        assert "try again" in text.lower()
    # later rounds do not run it
    bots.sim.faults.clear()
    await rounds_pass(after)
    assert graph_writes(after.bot.sim) == []
    assert (await after.bot.store.get_request(sub.request_id)).state is RequestState.FAILED

"""Approvals across bot instances and restarts: two app instances on one database receive the same click at the
same moment; an instance stops while a request waits and a new one carries on from the database.

Two instances run on PostgreSQL (the deployment with more than one instance; skipped without TEST_DATABASE_URL)
and on one shared SQLite file; the restart tests run on both backends.
"""

from __future__ import annotations

import asyncio

from bot.persistence.models import RequestState
from bot.views import texts
from tests.bot.conftest import ALEX, MEGAN, PATTI, graph_writes
from tests.bot.test_approvals import (
    APPROVERS_CONV,
    Bots,
    Clock,
    bots,  # noqa: F401  (fixture)
    channel_card,
    click,
    decision_events,
    last_card,
    register_approvers,
    submit,
    texts_to,
    wait_card_text,
    wait_state,
)


async def test_two_instances_receiving_the_same_clicks_decide_and_change_once(bots: Bots) -> None:  # noqa: F811
    first = await bots.start()
    second = await bots.start()  # another process on the same database, behind the same connector
    await register_approvers(first.bot)
    sub = await submit(first.bot, notify=True)
    channel = await channel_card(first.bot, sub.request_id)

    def approve(who: object) -> dict:
        data = {"verb": "mfa.approve", "requestId": sub.request_id, "rev": sub.rev}
        value = {"action": {"type": "Action.Execute", "id": "", "verb": "mfa.approve", "data": data}}
        return first.bot.activity(
            who,  # type: ignore[arg-type]
            "invoke",
            conversation_id=APPROVERS_CONV,
            conversation_type="channel",
            name="adaptiveCard/action",
            value=value,
            replyToId=channel.activity_id,
        )

    megan_click, patti_click = approve(MEGAN), approve(PATTI)
    answers = await asyncio.gather(
        *(
            instance.bot.post(activity)
            for activity in (megan_click, patti_click, megan_click, patti_click)
            for instance in (first, second)
        )
    )
    assert [a.status for a in answers] == [200] * 8

    done = await wait_state(first.bot, sub.request_id, RequestState.COMPLETED)
    assert done.state is (await second.bot.store.get_request(sub.request_id)).state
    assert len(graph_writes(first.bot.sim)) == 1
    assert len(first.bot.sim.outbox) == 1
    assert await decision_events(first.bot, sub.request_id) == ["approved"]
    assert (await first.bot.audit_events(sub.request_id)).count("execution_started") == 1
    assert (await first.bot.audit_events(sub.request_id)).count("completed") == 1
    winner = done.decided_by.name
    assert any(winner in a.text and texts.t("en", "refusal.title") not in a.text for a in answers)
    await wait_card_text(first.bot.connector, channel.activity_id, texts.t("en", "outcome.added.title"))


async def test_restart_while_waiting_keeps_the_request_and_it_can_still_be_approved(bots: Bots) -> None:  # noqa: F811
    before = await bots.start()
    await register_approvers(before.bot)
    sub = await submit(before.bot)
    channel = await channel_card(before.bot, sub.request_id)
    await before.stop()

    after = await bots.start(store=await bots.database.open())  # a new process on the same database
    req = await after.bot.store.get_request(sub.request_id)
    assert req.state is RequestState.AWAITING_APPROVAL and req.revision == sub.rev
    answer = await click(after.bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "Megan Bowen" in answer.text
    await wait_state(after.bot, sub.request_id, RequestState.COMPLETED)
    assert len(graph_writes(after.bot.sim)) == 1
    # The cards the first process posted are updated in place by the second (references come from the database).
    for activity_id in (channel.activity_id, sub.form.activity_id):
        await wait_card_text(after.bot.connector, activity_id, texts.t("en", "outcome.added.title"))


async def test_sweeper_resumes_after_a_restart_and_expires_what_became_due(bots: Bots) -> None:  # noqa: F811
    before = await bots.start(SWEEP_INTERVAL_SECONDS="3600")
    await register_approvers(before.bot)
    sub = await submit(before.bot)
    channel = await channel_card(before.bot, sub.request_id)
    await before.stop()
    assert (await before.bot.store.get_request(sub.request_id)).state is RequestState.AWAITING_APPROVAL

    later = Clock()
    later.advance(hours=24, minutes=1)
    after = await bots.start(store=await bots.database.open(), clock=later, SWEEP_INTERVAL_SECONDS="0.05")
    await wait_state(after.bot, sub.request_id, RequestState.EXPIRED)
    await wait_card_text(after.bot.connector, channel.activity_id, texts.t("en", "decision.title.expired"))
    assert last_card(after.bot.connector, sub.form.activity_id) is not None
    await after.bot.connector.wait_for(
        lambda _: [t for t in texts_to(after.bot.connector, ALEX) if "expired" in t]
    )
    assert await decision_events(after.bot, sub.request_id) == ["expired"]
    assert graph_writes(after.bot.sim) == []

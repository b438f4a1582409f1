"""Crash recovery by the sweeper, through the real app (create_app, CloudAdapter, Executor, the Graph simulator, the
fake Bot Connector) on a real database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set).

A crash leaves a request in one of two places, and the database is all a new process has:
- `approved`: the decision was committed, the process died before the change started. The sweeper runs it (the
  APPROVED → EXECUTING move is conditional, so it runs once even when two instances sweep at the same moment).
- `executing`: the process died while the change ran. After the bound the sweeper records it as failed with an
  outcome that says the change may or may not have been applied and what to check before trying again.

The crash is reproduced by writing the state the crashed process would have committed (the same store calls the
approval service and the Executor make) and stopping that process before its follow-up work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app import RUNTIME
from bot.desk.recovery import APPROVED_GRACE, EXECUTING_TIMEOUT
from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.views import texts
from bot.views.markdown import chat_text
from tests.bot.conftest import ALEX, MEGAN, BotHarness, Persona, action_data, card_text, graph_writes
from tests.bot.test_approvals import (
    DIEGO_UPN,
    NEW_NUMBER,
    Bots,
    Clock,
    Instance,
    Submitted,
    bots,  # noqa: F401  (fixture)
    channel_card,
    eventually,
    register_approvers,
    submit,
    texts_to,
    wait_card_text,
    wait_state,
)

FAST = "0.05"  # sweeper interval (seconds) of the instance that recovers


def person(who: Persona) -> Person:
    return Person(aad_object_id=who.aad, name=who.name, teams_id=who.teams_id, upn=who.upn)


async def submit_in(bot: BotHarness, locale: str) -> Submitted:
    """The requester's path up to "sent for approval" from a Teams client in `locale`."""
    form = await bot.open_form(ALEX, locale=locale)
    values = {"targetUserText": DIEGO_UPN, "number": NEW_NUMBER, "action": "set", "notify": "false"}
    review = await bot.review(ALEX, form, values, locale=locale)
    data = action_data(review.card, "mfa.confirm")
    assert review.status == 200 and data is not None, review.text
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {}, locale=locale)
    assert confirm.status == 200, confirm
    return Submitted(data["requestId"], 0, form, confirm)


async def crashed_after_decision(
    factory: Bots, *, notify: bool = False, locale: str | None = None
) -> tuple[Submitted, str, ChangeRequest]:
    """Megan approved; the process committed the decision and died before the change started."""
    crashed = await factory.start(SWEEP_INTERVAL_SECONDS="3600")
    await register_approvers(crashed.bot)
    sub = await submit_in(crashed.bot, locale) if locale else await submit(crashed.bot, notify=notify)
    waiting = await crashed.bot.store.get_request(sub.request_id)
    assert waiting is not None and waiting.state is RequestState.AWAITING_APPROVAL
    sub.rev = waiting.revision
    channel = await channel_card(crashed.bot, sub.request_id)
    approved = await crashed.bot.store.transition(
        sub.request_id,
        sub.rev,
        RequestState.APPROVED,
        actor=person(MEGAN),
        event="approved",
        details={"decision": "approved"},
        decided_by=person(MEGAN),
        decided_at=datetime.now(UTC),
    )
    await crashed.stop()
    return sub, channel.activity_id, approved


async def crashed_while_executing(
    factory: Bots, *, locale: str | None = None
) -> tuple[Submitted, str, ChangeRequest]:
    """Megan approved, the change started, and the process died before it recorded the outcome."""
    sub, channel_id, approved = await crashed_after_decision(factory, locale=locale)
    store = factory.instances[0].bot.store
    running = await store.transition(
        approved.id, approved.revision, RequestState.EXECUTING, actor=person(MEGAN), event="execution_started"
    )
    return sub, channel_id, running


async def recovering_instances(bots: Bots, count: int = 1) -> list[Instance]:  # noqa: F811
    """New processes on the database, sharing one clock at the real time; returns once each has swept a few
    rounds, so what happens after the test moves the clock is the sweeper's doing (not start-up work)."""
    clock = Clock()
    instances = [
        await bots.start(store=await bots.database.open(), clock=clock, SWEEP_INTERVAL_SECONDS=FAST)
        for _ in range(count)
    ]
    for instance in instances:
        await rounds_pass(instance)
    return instances


async def rounds_pass(instance: Instance, count: int = 3) -> None:
    sweeper = instance.server.app[RUNTIME].sweeper
    assert sweeper is not None and sweeper.running
    start = sweeper.rounds

    async def done() -> bool:
        return sweeper.rounds >= start + count

    await eventually(done, what=f"{count} sweeper rounds")


async def events(instance: Instance, request_id: str) -> list[str]:
    return await instance.bot.audit_events(request_id)


# ---------------------------------------------------------------------------------------------- approved


async def test_approved_request_left_by_a_crash_is_run_once_by_the_sweeper_and_everyone_sees_it(
    bots: Bots,  # noqa: F811
) -> None:
    sub, channel_id, approved = await crashed_after_decision(bots)
    [after] = await recovering_instances(bots)

    # Just decided: within the grace period the change may still be starting elsewhere, so it is left alone.
    assert (await after.bot.store.get_request(sub.request_id)).state is RequestState.APPROVED
    assert graph_writes(after.bot.sim) == []

    after.clock.advance(seconds=APPROVED_GRACE.total_seconds() + 1)
    done = await wait_state(after.bot, sub.request_id, RequestState.COMPLETED)
    assert done.outcome is not None and done.outcome["outcome"] == "added"
    assert done.decided_by is not None and done.decided_by.name == MEGAN.name
    assert len(graph_writes(after.bot.sim)) == 1
    trail = await events(after, sub.request_id)
    assert trail.count("execution_started") == 1 and trail.count("completed") == 1
    await eventually(
        lambda: _has_event(after, sub.request_id, "execution_resumed"), what="the resumption audited"
    )
    assert trail.index("approved") < trail.index("execution_started") < trail.index("completed")
    # Every copy of the card shows the outcome; the requester is told (the change ran on Megan's decision).
    for activity_id in (channel_id, sub.form.activity_id):
        await wait_card_text(after.bot.connector, activity_id, texts.t("en", "outcome.added.title"))
    assert done.ref is not None
    await after.bot.connector.wait_for(
        lambda _: [t for t in texts_to(after.bot.connector, ALEX) if done.ref in t]
    )
    # Later rounds do not run it again.
    await rounds_pass(after)
    assert len(graph_writes(after.bot.sim)) == 1
    assert (await events(after, sub.request_id)).count("execution_started") == 1
    assert after.server.app[RUNTIME].sweeper.resumed >= 1  # type: ignore[union-attr]


async def test_two_instances_sweeping_at_once_run_an_approved_request_once(bots: Bots) -> None:  # noqa: F811
    sub, _, _ = await crashed_after_decision(bots, notify=True)
    first, second = await recovering_instances(bots, 2)
    assert (await first.bot.store.get_request(sub.request_id)).state is RequestState.APPROVED
    first.clock.advance(seconds=APPROVED_GRACE.total_seconds() + 1)  # the clock both instances share
    await wait_state(first.bot, sub.request_id, RequestState.COMPLETED)
    await rounds_pass(first)
    await rounds_pass(second)
    assert len(graph_writes(first.bot.sim)) == 1
    assert len(first.bot.sim.outbox) == 1  # the user's e-mail went once
    await eventually(
        lambda: _has_event(first, sub.request_id, "execution_resumed"), what="the resumption audited"
    )
    trail = await events(first, sub.request_id)
    assert trail.count("execution_started") == 1
    assert trail.count("completed") == 1
    assert trail.count("execution_resumed") == 1


async def _has_event(instance: Instance, request_id: str, event: str) -> bool:
    return event in await events(instance, request_id)


# ---------------------------------------------------------------------------------------------- executing


async def test_run_cut_off_by_a_crash_is_recorded_as_interrupted_after_the_bound_and_everyone_is_told(
    bots: Bots,  # noqa: F811
) -> None:
    sub, channel_id, running = await crashed_while_executing(bots)
    [after] = await recovering_instances(bots)

    # A run may legitimately take a while (owner search in a large tenant): below the bound it is left alone.
    after.clock.advance(seconds=EXECUTING_TIMEOUT.total_seconds() - 60)
    await rounds_pass(after)
    assert (await after.bot.store.get_request(sub.request_id)).state is RequestState.EXECUTING

    after.clock.advance(seconds=61)
    failed = await wait_state(after.bot, sub.request_id, RequestState.FAILED)
    assert failed.revision == running.revision + 1
    outcome: dict[str, Any] = failed.outcome or {}
    assert outcome["outcome"] == "interrupted" and outcome["success"] is False
    assert "may or may not have been applied" in outcome["message"]
    assert running.ref is not None  # agents are told to look it up by its short reference
    assert f"status {running.ref}" in outcome["next_step"] and "before trying again" in outcome["next_step"]
    # Nothing was run again: an interrupted change is never repeated blindly.
    assert graph_writes(after.bot.sim) == []

    audit = [e for e in await after.bot.store.request_audit(sub.request_id) if e.event == "failed"]
    assert len(audit) == 1
    assert audit[0].details["outcome"] == "interrupted" and audit[0].details["state"] == "failed"
    assert audit[0].details["new_number"] == running.number

    body = texts.t("en", "execution.interrupted.body")
    next_step = texts.t("en", "execution.interrupted.next", id=running.ref)
    for activity_id in (channel_id, sub.form.activity_id):
        text = await wait_card_text(after.bot.connector, activity_id, body, next_step)
        assert texts.t("en", "decision.title.failed") in text
        assert texts.t("en", "outcome_name.interrupted") in text
        assert MEGAN.name in text  # who approved it
    told = texts.t(
        "en",
        "approval.requester.interrupted",
        target=running.target_display_name,
        upn=running.target_upn,
        id=running.ref,
    )
    # sent as inert chat text (markdown escaped, addresses defanged): what Teams shows is `told` itself
    await after.bot.connector.wait_for(lambda _: chat_text(told) in texts_to(after.bot.connector, ALEX))

    # The status command, given the reference as the agent was told it, shows the same story.
    mark = after.bot.connector.mark()
    await after.bot.message(ALEX, f"status {running.ref}")
    status = await after.bot.connector.wait_for(lambda rs: [r for r in rs if r.card] or None, since=mark)
    status_text = card_text(status[0].card)
    assert texts.t("en", "state.failed") in status_text
    assert texts.t("en", "outcome_name.interrupted") in status_text

    # Later rounds leave the failed request alone and tell nobody again.
    await rounds_pass(after)
    assert [e.event for e in await after.bot.store.request_audit(sub.request_id)].count("failed") == 1
    assert texts_to(after.bot.connector, ALEX).count(chat_text(told)) == 1
    assert after.server.app[RUNTIME].sweeper.interrupted == 1  # type: ignore[union-attr]


async def test_two_instances_record_an_interrupted_run_once(bots: Bots) -> None:  # noqa: F811
    sub, _, _ = await crashed_while_executing(bots)
    first, second = await recovering_instances(bots, 2)
    first.clock.advance(seconds=EXECUTING_TIMEOUT.total_seconds() + 1)
    await wait_state(first.bot, sub.request_id, RequestState.FAILED)
    await rounds_pass(first)
    await rounds_pass(second)
    assert [e.event for e in await first.bot.store.request_audit(sub.request_id)].count("failed") == 1
    sweepers = [i.server.app[RUNTIME].sweeper for i in (first, second)]
    assert sum(s.interrupted for s in sweepers if s is not None) == 1
    assert graph_writes(first.bot.sim) == []


async def test_requester_in_german_hears_about_an_interrupted_run_in_german(bots: Bots) -> None:  # noqa: F811
    sub, _, running = await crashed_while_executing(bots, locale="de-DE")
    assert running.locale.startswith("de")
    [after] = await recovering_instances(bots)
    after.clock.advance(seconds=EXECUTING_TIMEOUT.total_seconds() + 1)
    await wait_state(after.bot, sub.request_id, RequestState.FAILED)
    told = texts.t(
        "de",
        "approval.requester.interrupted",
        target=running.target_display_name,
        upn=running.target_upn,
        id=running.ref,
    )
    # sent as inert chat text (markdown escaped, addresses defanged): what Teams shows is `told` itself
    await after.bot.connector.wait_for(lambda _: chat_text(told) in texts_to(after.bot.connector, ALEX))
    # the requester's own card is German too
    await wait_card_text(
        after.bot.connector,
        sub.form.activity_id,
        texts.t("de", "execution.interrupted.body"),
        texts.t("de", "decision.title.failed"),
    )

"""Crash recovery of caller verification by the sweeper, through the real app on a real database (SQLite, and
PostgreSQL when TEST_DATABASE_URL is set).

A crash can leave a request whose caller was verified (verified_by/verified_at stored, the answer audited) still
awaiting_verification: the process died between the answer and the move on to the approvers or the change
(CallerVerification.go_on). A new process has only the database: its sweeper carries such a request on after
VERIFIED_GRACE, once even when two instances sweep at the same moment, audited as verification_resumed; the
verification's own expiry no longer applies to it.

The crash is reproduced by writing what the crashed process committed (the same store call the answer makes) and
stopping that process before its follow-up work.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app import RUNTIME
from bot.desk.verification import VERIFIED_GRACE
from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.views import texts
from tests.bot.conftest import Persona, graph_writes
from tests.bot.test_approvals import (
    APPROVERS_CONV,
    Clock,
    eventually,
    posted_approval,
    wait_card_text,
    wait_state,
)
from tests.bot.test_verification import (
    LYNNE,
    LYNNE_ID,
    Launcher,
    VBot,
    ask,
    card_to,
    events,
    launcher,  # noqa: F401  (fixture)
    writes_for,
)
from tests.bot.test_verification import (
    answer as answer_card,
)

FAST = "0.05"  # sweeper interval (seconds) of the instances that recover


def person(who: Persona) -> Person:
    return Person(aad_object_id=who.aad, name=who.name, teams_id=who.teams_id, upn=who.upn)


async def crashed_after_yes(launch: Launcher, **overrides: str) -> tuple[str, str, ChangeRequest]:
    """Lynne said "Yes, I asked for this"; the process stored it and died before the request went on."""
    crashed = await launch.start(SWEEP_INTERVAL_SECONDS="3600", **overrides)
    asked = await ask(crashed)
    waiting = await crashed.bot.store.get_request(asked.request_id)
    assert waiting is not None and waiting.state is RequestState.AWAITING_VERIFICATION
    card_to(crashed, LYNNE)  # she was asked
    now = datetime.now(UTC)
    verified = await crashed.bot.store.update_waiting(
        waiting.id,
        waiting.revision,
        RequestState.AWAITING_VERIFICATION,
        actor=person(LYNNE),
        event="caller_verified",
        details={"method": "teams", "verified_by": LYNNE.name, "verified_by_id": LYNNE.aad},
        verified_by=person(LYNNE),
        verified_at=now,
    )
    await crashed.stop()
    return asked.request_id, asked.form.activity_id, verified


async def recovering(launch: Launcher, count: int = 1, **overrides: str) -> list[VBot]:
    """New processes on the database sharing one clock; returns once each has swept a few rounds."""
    clock = Clock()
    instances = [
        await launch.start(clock=clock, SWEEP_INTERVAL_SECONDS=FAST, **overrides) for _ in range(count)
    ]
    for v in instances:
        await rounds_pass(v)
    return instances


async def rounds_pass(v: VBot, count: int = 3) -> None:
    sweeper = v.server.app[RUNTIME].sweeper
    assert sweeper is not None and sweeper.running
    start = sweeper.rounds

    async def done() -> bool:
        return sweeper.rounds >= start + count

    await eventually(done, what=f"{count} sweeper rounds")


def approval_cards(v: VBot, request_id: str) -> int:
    return sum(
        1
        for r in v.connector.records
        if r.kind in ("send", "reply") and posted_approval([r], request_id, APPROVERS_CONV) is not None
    )


async def test_a_verified_request_left_by_a_crash_goes_on_once_and_does_not_expire(
    launcher: Launcher,  # noqa: F811
) -> None:
    # the caller had a minute to answer: the grace period below ends after that minute
    request_id, agent_card, verified = await crashed_after_yes(launcher, VERIFICATION_TIMEOUT_MINUTES="1")
    assert verified.expires_at is not None
    [after] = await recovering(launcher)

    # Just verified: within the grace period the move on may still be happening elsewhere, so it is left alone.
    assert (await after.bot.store.get_request(request_id)).state is RequestState.AWAITING_VERIFICATION
    assert graph_writes(after.bot.sim) == []

    # Past the grace period and past the verification's own expiry: it goes on; it is not expired.
    after.clock.advance(seconds=VERIFIED_GRACE.total_seconds() + 1)
    assert after.clock() > verified.expires_at
    done = await wait_state(after.bot, request_id, RequestState.COMPLETED)
    assert done.outcome is not None and done.outcome["outcome"] == "updated"
    assert done.verified_by is not None and done.verified_by.name == LYNNE.name
    assert len(writes_for(after.bot.sim, LYNNE_ID)) == 1
    trail = await events(after, request_id)
    assert trail.count("caller_verified") == 1 and trail.count("verification_resumed") == 1
    assert trail.count("execution_started") == 1 and "verification_expired" not in trail
    assert (
        trail.index("caller_verified")
        < trail.index("verification_resumed")
        < trail.index("execution_started")
    )
    resumed = [
        e for e in await after.bot.store.request_audit(request_id) if e.event == "verification_resumed"
    ]
    assert resumed[0].actor_aad_id is None and resumed[0].details["method"] == "teams"
    assert resumed[0].details["revision"] == verified.revision + 1
    # The agent's card shows the outcome.
    await wait_card_text(after.connector, agent_card, texts.t("en", "outcome.updated.title"))

    # Later rounds do nothing again; Lynne's old card changes nothing either.
    await rounds_pass(after)
    assert len(writes_for(after.bot.sim, LYNNE_ID)) == 1
    assert (await events(after, request_id)).count("verification_resumed") == 1
    late = await answer_card(after, LYNNE, "mfa.verify.yes", card_to(after, LYNNE))
    assert late.status == 200
    assert len(writes_for(after.bot.sim, LYNNE_ID)) == 1
    assert after.server.app[RUNTIME].sweeper.verified_resumed == 1  # type: ignore[union-attr]


async def test_an_unverified_request_is_not_carried_on_it_expires(launcher: Launcher) -> None:  # noqa: F811
    crashed = await launcher.start(SWEEP_INTERVAL_SECONDS="3600")
    asked = await ask(crashed)
    await crashed.stop()
    [after] = await recovering(launcher)
    after.clock.advance(minutes=int(after.bot.settings.verification_timeout_minutes) + 1)
    await wait_state(after.bot, asked.request_id, RequestState.EXPIRED)
    await rounds_pass(after)
    trail = await events(after, asked.request_id)
    assert "verification_resumed" not in trail and "caller_verified" not in trail
    assert graph_writes(after.bot.sim) == []


async def test_two_instances_sweeping_at_once_send_a_verified_request_to_the_approvers_once(
    launcher: Launcher,  # noqa: F811
) -> None:
    request_id, _, _ = await crashed_after_yes(launcher, APPROVAL_POLICY="always")
    first, second = await recovering(launcher, 2, APPROVAL_POLICY="always")
    assert approval_cards(first, request_id) == 0
    first.clock.advance(seconds=VERIFIED_GRACE.total_seconds() + 1)  # the clock both instances share
    waiting = await wait_state(first.bot, request_id, RequestState.AWAITING_APPROVAL)
    assert waiting.verified_by is not None and waiting.verified_by.name == LYNNE.name
    await rounds_pass(first)
    await rounds_pass(second)

    async def posted() -> bool:
        return approval_cards(first, request_id) >= 1

    await eventually(posted, what="the approval card")
    assert approval_cards(first, request_id) == 1
    trail = await events(first, request_id)
    assert trail.count("verification_resumed") == 1 and trail.count("submitted_for_approval") == 1
    sweepers = [v.server.app[RUNTIME].sweeper for v in (first, second)]
    assert sum(s.verified_resumed for s in sweepers if s is not None) == 1
    assert (await first.bot.store.get_request(request_id)).state is RequestState.AWAITING_APPROVAL
    assert graph_writes(first.bot.sim) == []

"""The store on SQLite and (with TEST_DATABASE_URL) PostgreSQL: requests, transitions, audit, references, faults."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bot.persistence.models import TRANSITIONS, CardRef, ChangeRequest, Person, RequestState
from bot.persistence.refs import new_ref
from bot.persistence.store import (
    MIGRATIONS_DIR,
    REF_ATTEMPTS,
    REQUESTS,
    Base,
    InvalidTransition,
    NoFreeRef,
    NotFound,
    StaleRevision,
    Store,
    StoreUnavailable,
    allowed_from,
    database_url,
)
from tests.bot.db_fixtures import Database, database_fixture, needs_postgres, store_fixture  # noqa: F401 (fixtures)

AGENT = Person(aad_object_id="agent-1", name="Ada Agent", teams_id="29:agent", upn="ada@contoso.test")
APPROVER = Person(
    aad_object_id="approver-1", name="Anton Approver", teams_id="29:approver", upn="anton@contoso.test"
)
OTHER_APPROVER = Person(aad_object_id="approver-2", name="Berta Approver")


def make_request(**overrides: object) -> ChangeRequest:
    values: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "revision": 0,
        "state": RequestState.DRAFT,
        "action": "set",
        "requester": AGENT,
        "target_id": "target-1",
        "target_upn": "tom@contoso.test",
        "target_display_name": "Tom Target",
        "number": "+491701234567",
        "previous_number": "+491709999999",
    }
    values.update(overrides)
    return ChangeRequest(**values)  # type: ignore[arg-type]


def path_to(state: RequestState) -> list[RequestState]:
    """The shortest chain of transitions from draft to `state` (empty for draft)."""
    queue: deque[tuple[RequestState, list[RequestState]]] = deque([(RequestState.DRAFT, [])])
    seen = {RequestState.DRAFT}
    while queue:
        current, path = queue.popleft()
        if current is state:
            return path
        for nxt in sorted(TRANSITIONS[current]):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, [*path, nxt]))
    raise AssertionError(f"{state} unreachable")


async def new_in_state(store: Store, state: RequestState, **overrides: object) -> ChangeRequest:
    """A request moved to `state` the usual way (failed: through executing, as a run that failed)."""
    req = await store.create_request(make_request(**overrides), actor=AGENT)
    steps = path_to(state)
    if state is RequestState.FAILED and RequestState.EXECUTING not in steps:
        steps = [*path_to(RequestState.EXECUTING), RequestState.FAILED]
    for step in steps:
        req = await store.transition(req.id, req.revision, step, actor=AGENT, event=f"to_{step.value}")
    assert req.state is state
    return req


async def raw_count(database: Database, store: Store, sql: str, **params: object) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


# --- create, get, update_draft ------------------------------------------------------------------------------


async def test_created_request_reads_back_with_every_field_as_draft_revision_one(store: Store) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    req = make_request(
        state=RequestState.APPROVED,  # ignored: a new request is always a draft at revision 1
        revision=7,
        target_is_guest=True,
        target_privileged=True,
        privilege_reasons=["Global Administrator", "Exchange Administrator"],
        notify=True,
        language="de",
        ticket="https://tickets.test/INC-1",
        approval_required=True,
        approver_group="privileged",
        expires_at=expires,
        locale="de-DE",
    )
    created = await store.create_request(req, actor=AGENT, details={"reason": "lost phone"})
    assert created.revision == 1
    assert created.state is RequestState.DRAFT

    got = await store.get_request(req.id)
    assert got == created
    assert got is not None
    assert got.privilege_reasons == ["Global Administrator", "Exchange Administrator"]
    assert got.expires_at == expires and got.expires_at.tzinfo is not None
    assert got.created_at is not None and got.created_at.utcoffset() == timedelta(0)
    assert got.requester == AGENT

    audit = await store.request_audit(req.id)
    assert [e.event for e in audit] == ["requested"]
    assert audit[0].actor_aad_id == AGENT.aad_object_id
    assert audit[0].target_id == "target-1" and audit[0].target_upn == "tom@contoso.test"
    assert audit[0].details["old_number"] == "+491709999999"
    assert audit[0].details["new_number"] == "+491701234567"
    assert audit[0].details["reason"] == "lost phone"


async def test_unknown_request_is_none(store: Store) -> None:
    assert await store.get_request("does-not-exist") is None


async def test_update_draft_changes_fields_bumps_revision_and_audits(store: Store) -> None:
    req = await store.create_request(make_request(), actor=AGENT)
    updated = await store.update_draft(
        req.id, 1, actor=AGENT, number="+491705555555", notify=True, language="en"
    )
    assert (updated.revision, updated.number, updated.notify, updated.language) == (
        2,
        "+491705555555",
        True,
        "en",
    )
    assert await store.get_request(req.id) == updated
    events = [e.event for e in await store.request_audit(req.id)]
    assert events == ["requested", "draft_updated"]


async def test_update_draft_refuses_stale_revision_unknown_fields_and_non_drafts(store: Store) -> None:
    req = await store.create_request(make_request(), actor=AGENT)
    await store.update_draft(req.id, 1, actor=AGENT, ticket="T-1")
    with pytest.raises(StaleRevision):
        await store.update_draft(req.id, 1, actor=AGENT, ticket="T-2")
    with pytest.raises(TypeError):
        await store.update_draft(req.id, 2, actor=AGENT, revision=99)
    with pytest.raises(NotFound):
        await store.update_draft("nope", 1, actor=AGENT, ticket="T-3")
    got = await store.get_request(req.id)
    assert got is not None and (got.revision, got.ticket) == (2, "T-1")

    waiting = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    with pytest.raises(InvalidTransition):
        await store.update_draft(waiting.id, waiting.revision, actor=AGENT, number="+491700000000")
    assert await store.get_request(waiting.id) == waiting


# --- transitions ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_state", list(RequestState), ids=lambda s: s.value)
async def test_every_allowed_transition_succeeds_and_every_other_is_refused(
    database: Database, store: Store, from_state: RequestState
) -> None:
    for to_state in RequestState:
        req = await new_in_state(store, from_state)
        audit_before = len(await store.request_audit(req.id))
        if to_state in TRANSITIONS[from_state]:
            moved = await store.transition(req.id, req.revision, to_state, actor=APPROVER, event="moved")
            assert (moved.state, moved.revision) == (to_state, req.revision + 1)
            assert await store.get_request(req.id) == moved
            audit = await store.request_audit(req.id)
            assert len(audit) == audit_before + 1
            assert audit[-1].event == "moved" and audit[-1].details["state"] == to_state.value
            assert audit[-1].actor_aad_id == APPROVER.aad_object_id
        else:
            with pytest.raises(InvalidTransition) as refused:
                await store.transition(req.id, req.revision, to_state, actor=APPROVER, event="moved")
            assert refused.value.from_state is from_state
            assert await store.get_request(req.id) == req
            assert len(await store.request_audit(req.id)) == audit_before


async def test_unknown_target_state_is_an_invalid_transition(store: Store) -> None:
    req = await store.create_request(make_request(), actor=AGENT)
    with pytest.raises(InvalidTransition):
        await store.transition(req.id, 1, "teleported", actor=AGENT, event="x")
    assert await store.get_request(req.id) == req


async def test_stale_revision_is_refused_and_writes_nothing(store: Store) -> None:
    req = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    audit_before = await store.request_audit(req.id)
    with pytest.raises(StaleRevision) as stale:
        await store.transition(
            req.id, req.revision - 1, RequestState.APPROVED, actor=APPROVER, event="approved"
        )
    assert (stale.value.expected, stale.value.actual) == (req.revision - 1, req.revision)
    assert await store.get_request(req.id) == req
    assert await store.request_audit(req.id) == audit_before


async def test_transition_of_unknown_request_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.transition("missing", 1, RequestState.APPROVED, actor=APPROVER, event="approved")


async def test_transition_stores_decision_fields_and_outcome(store: Store) -> None:
    req = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    decided_at = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    approved = await store.transition(
        req.id,
        req.revision,
        RequestState.APPROVED,
        actor=APPROVER,
        event="approved",
        details={"decision": "approved"},
        decided_by=APPROVER,
        decided_at=decided_at,
        decision_reason="ticket checked",
    )
    assert approved.decided_by == APPROVER
    assert approved.decided_at == decided_at
    assert approved.decision_reason == "ticket checked"
    running = await store.transition(
        approved.id, approved.revision, RequestState.EXECUTING, actor=None, event="run"
    )
    outcome = {"outcome": "updated", "graph_request_ids": ["r-1", "r-2"], "number": "+491701234567"}
    done = await store.transition(
        running.id, running.revision, RequestState.COMPLETED, actor=None, event="completed", outcome=outcome
    )
    assert (await store.get_request(req.id)) == done
    assert done.outcome == outcome
    audit = await store.request_audit(req.id)
    assert audit[-1].actor_aad_id is None  # the system acted
    assert [e.details.get("decision") for e in audit if e.event == "approved"] == ["approved"]


async def test_transition_whose_audit_insert_fails_leaves_the_request_unchanged(store: Store) -> None:
    req = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    audit_before = await store.request_audit(req.id)
    with pytest.raises(TypeError):
        # the UPDATE runs first; the audit row cannot be serialized, so the whole transaction rolls back
        await store.transition(
            req.id,
            req.revision,
            RequestState.APPROVED,
            actor=APPROVER,
            event="approved",
            details={"x": object()},
        )
    assert await store.get_request(req.id) == req
    assert await store.request_audit(req.id) == audit_before
    # and the request can still be decided normally
    approved = await store.transition(
        req.id, req.revision, RequestState.APPROVED, actor=APPROVER, event="approved"
    )
    assert approved.revision == req.revision + 1


async def _race(stores: list[Store], req: ChangeRequest, clicks: int) -> list[ChangeRequest | BaseException]:
    async def click(i: int) -> ChangeRequest:
        store = stores[i % len(stores)]
        to_state = RequestState.APPROVED if i % 3 else RequestState.REJECTED
        approver = APPROVER if i % 2 else OTHER_APPROVER
        return await store.transition(
            req.id,
            req.revision,
            to_state,
            actor=approver,
            event="decision",
            details={"click": i},
            decided_by=approver,
        )

    return await asyncio.gather(*(click(i) for i in range(clicks)), return_exceptions=True)


def _assert_exactly_one_winner(results: list[ChangeRequest | BaseException]) -> ChangeRequest:
    winners = [r for r in results if isinstance(r, ChangeRequest)]
    losers = [r for r in results if not isinstance(r, ChangeRequest)]
    assert len(winners) == 1, results
    assert all(isinstance(e, StaleRevision) for e in losers), losers
    return winners[0]


async def test_concurrent_decisions_at_the_same_revision_have_exactly_one_winner(store: Store) -> None:
    req = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    winner = _assert_exactly_one_winner(await _race([store], req, clicks=12))
    assert await store.get_request(req.id) == winner
    decisions = [e for e in await store.request_audit(req.id) if e.event == "decision"]
    assert len(decisions) == 1 and decisions[0].details["state"] == winner.state.value


async def test_two_instances_on_one_database_decide_exactly_once(database: Database, store: Store) -> None:
    second = await database.open()  # a second bot instance: its own engine and pool
    req = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    winner = _assert_exactly_one_winner(await _race([store, second], req, clicks=16))
    assert await second.get_request(req.id) == winner
    decisions = [e for e in await second.request_audit(req.id) if e.event == "decision"]
    assert len(decisions) == 1


# --- queries --------------------------------------------------------------------------------------------------


async def test_due_for_expiry_lists_only_waiting_requests_past_their_deadline(store: Store) -> None:
    now = datetime.now(UTC)
    overdue = await new_in_state(store, RequestState.AWAITING_APPROVAL, expires_at=now - timedelta(minutes=5))
    exactly_now = await new_in_state(store, RequestState.AWAITING_APPROVAL, expires_at=now)
    await new_in_state(store, RequestState.AWAITING_APPROVAL, expires_at=now + timedelta(minutes=5))
    await new_in_state(store, RequestState.DRAFT, expires_at=now - timedelta(hours=1))
    await new_in_state(store, RequestState.APPROVED, expires_at=now - timedelta(hours=1))
    due = await store.due_for_expiry(now)
    assert [r.id for r in due] == [overdue.id, exactly_now.id]
    expired = await store.transition(
        overdue.id, overdue.revision, RequestState.EXPIRED, actor=None, event="expired"
    )
    assert expired.state is RequestState.EXPIRED
    assert [r.id for r in await store.due_for_expiry(now)] == [exactly_now.id]


async def test_changes_by_requester_count_requests_that_reached_executing_since(store: Store) -> None:
    other = Person(aad_object_id="agent-2", name="Other Agent")
    since = datetime.now(UTC) - timedelta(seconds=1)
    for state in (RequestState.EXECUTING, RequestState.COMPLETED, RequestState.FAILED):
        await new_in_state(store, state)
    for state in (
        RequestState.DRAFT,
        RequestState.AWAITING_APPROVAL,
        RequestState.APPROVED,
        RequestState.REJECTED,
    ):
        await new_in_state(store, state)
    await new_in_state(store, RequestState.COMPLETED, requester=other)
    assert await store.count_changes_by_requester(AGENT.aad_object_id, since) == 3
    assert await store.count_changes_by_requester(other.aad_object_id, since) == 1
    assert (
        await store.count_changes_by_requester(AGENT.aad_object_id, datetime.now(UTC) + timedelta(seconds=1))
        == 0
    )
    assert await store.count_changes_by_requester("nobody", since) == 0


async def test_last_change_for_target_is_the_last_completed_change(store: Store) -> None:
    assert await store.last_change_for_target("target-9") is None
    running = await new_in_state(store, RequestState.EXECUTING, target_id="target-9")
    unchanged = await store.transition(
        running.id,
        running.revision,
        RequestState.COMPLETED,
        actor=None,
        event="done",
        outcome={"outcome": "unchanged"},
    )
    assert unchanged.state is RequestState.COMPLETED
    assert await store.last_change_for_target("target-9") is None  # nothing was changed
    before = datetime.now(UTC)
    running = await new_in_state(store, RequestState.EXECUTING, target_id="target-9")
    await store.transition(
        running.id,
        running.revision,
        RequestState.COMPLETED,
        actor=None,
        event="done",
        outcome={"outcome": "updated"},
    )
    last = await store.last_change_for_target("target-9")
    assert last is not None and last.tzinfo is not None
    assert before <= last <= datetime.now(UTC)
    assert await store.last_change_for_target("target-1") is None


async def test_history_is_newest_first_limited_and_per_target(store: Store) -> None:
    req = await new_in_state(store, RequestState.AWAITING_APPROVAL)
    await store.audit(
        "refused",
        actor=OTHER_APPROVER,
        target_id="target-1",
        target_upn="tom@contoso.test",
        details={"reason": "self-approval"},
    )
    await store.audit("history_viewed", actor=AGENT, target_id="target-2")
    history = await store.history("target-1")
    assert [e.event for e in history] == ["refused", "to_awaiting_approval", "requested"]
    assert [e.at for e in history] == sorted((e.at for e in history), reverse=True)
    assert history[0].details == {"reason": "self-approval"} and history[0].request_id is None
    assert [e.event for e in await store.history("target-1", limit=2)] == ["refused", "to_awaiting_approval"]
    assert [e.event for e in await store.request_audit(req.id)] == ["requested", "to_awaiting_approval"]
    assert [e.event for e in await store.history("target-2")] == ["history_viewed"]


async def test_audit_rows_cannot_be_updated_or_deleted_in_the_database(store: Store) -> None:
    await store.audit("refused", actor=AGENT, target_id="target-1")
    for sql in ("UPDATE audit SET event = 'forged'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"):
            async with store.engine.begin() as conn:
                await conn.execute(text(sql))
    assert [e.event for e in await store.history("target-1")] == ["refused"]


async def test_card_refs_are_kept_per_request_in_order(store: Store) -> None:
    req = await store.create_request(make_request(), actor=AGENT)
    other = await store.create_request(make_request(), actor=AGENT)
    ref_a = CardRef("requester", {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba.test/"}, "act-1")
    ref_b = CardRef("approvers", {"conversation": {"id": "19:chan"}}, None)
    await store.add_card_ref(req.id, ref_a)
    await store.add_card_ref(req.id, ref_b)
    assert await store.card_refs(req.id) == [ref_a, ref_b]
    assert await store.card_refs(other.id) == []


async def test_conversation_references_are_saved_replaced_and_read(store: Store) -> None:
    assert await store.conversation_reference("approvers") is None
    await store.save_conversation_reference("approvers", {"conversation": {"id": "19:old"}})
    await store.save_conversation_reference(
        "approvers", {"conversation": {"id": "19:new"}, "locale": "de-DE"}
    )
    await store.save_conversation_reference("user:agent-1", {"conversation": {"id": "a:1"}})
    assert await store.conversation_reference("approvers") == {
        "conversation": {"id": "19:new"},
        "locale": "de-DE",
    }
    assert await store.conversation_reference("user:agent-1") == {"conversation": {"id": "a:1"}}


async def test_conversation_references_by_prefix_are_exact_literal_and_in_key_order(store: Store) -> None:
    assert await store.conversation_references("user:") == {}
    await store.save_conversation_reference("user:b", {"conversation": {"id": "a:b"}, "user": {"id": "29:b"}})
    await store.save_conversation_reference("user:a", {"conversation": {"id": "a:a"}})
    await store.save_conversation_reference("user:a", {"conversation": {"id": "a:a2"}, "locale": "de-DE"})
    await store.save_conversation_reference("approvers", {"conversation": {"id": "19:chan"}})
    await store.save_conversation_reference("USER:shouting", {"conversation": {"id": "a:s"}})
    await store.save_conversation_reference("userx:c", {"conversation": {"id": "a:x"}})
    await store.save_conversation_reference("us%r:d", {"conversation": {"id": "a:pct"}})
    await store.save_conversation_reference("us_r:e", {"conversation": {"id": "a:under"}})

    found = await store.conversation_references("user:")
    assert list(found) == ["user:a", "user:b"]
    assert found["user:a"] == {"conversation": {"id": "a:a2"}, "locale": "de-DE"}
    assert found["user:b"] == {"conversation": {"id": "a:b"}, "user": {"id": "29:b"}}
    # % and _ in the prefix are characters, not wildcards
    assert list(await store.conversation_references("us%r:")) == ["us%r:d"]
    assert list(await store.conversation_references("us_r:")) == ["us_r:e"]
    assert list(await store.conversation_references("approvers")) == ["approvers"]
    assert await store.conversation_references("nobody:") == {}
    # the empty prefix is every reference
    assert len(await store.conversation_references("")) == 7


async def test_stuck_requests_are_those_left_in_a_state_since_before_the_bound(store: Store) -> None:
    approved = await new_in_state(store, RequestState.APPROVED)
    executing = await new_in_state(store, RequestState.EXECUTING)
    await new_in_state(store, RequestState.AWAITING_APPROVAL)
    await new_in_state(store, RequestState.COMPLETED)
    await new_in_state(store, RequestState.FAILED)
    later = datetime.now(UTC) + timedelta(seconds=1)
    earlier = datetime.now(UTC) - timedelta(minutes=10)

    assert [r.id for r in await store.stuck_requests(RequestState.APPROVED, later)] == [approved.id]
    assert [r.id for r in await store.stuck_requests("executing", later)] == [executing.id]
    assert await store.stuck_requests(RequestState.APPROVED, earlier) == []
    assert await store.stuck_requests(RequestState.EXECUTING, earlier) == []
    stuck = (await store.stuck_requests(RequestState.EXECUTING, later))[0]
    assert stuck == await store.get_request(executing.id)

    # once it moves on it is no longer stuck
    await store.transition(approved.id, approved.revision, RequestState.EXECUTING, actor=None, event="go")
    assert await store.stuck_requests(RequestState.APPROVED, later) == []
    assert len(await store.stuck_requests(RequestState.EXECUTING, later)) == 2


async def test_stuck_requests_are_oldest_first_and_bounded(store: Store) -> None:
    ids = [(await new_in_state(store, RequestState.APPROVED)).id for _ in range(4)]
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert [r.id for r in await store.stuck_requests(RequestState.APPROVED, later)] == ids
    assert [r.id for r in await store.stuck_requests(RequestState.APPROVED, later, limit=2)] == ids[:2]
    # the bound falls between the second and the third
    between = (await store.get_request(ids[1])).updated_at  # type: ignore[union-attr]
    assert between is not None
    assert [r.id for r in await store.stuck_requests(RequestState.APPROVED, between)] == ids[:2]
    with pytest.raises(ValueError):
        await store.stuck_requests("sleeping", later)


async def test_stuck_executing_is_measured_from_when_the_run_started(store: Store) -> None:
    running = await new_in_state(store, RequestState.EXECUTING)
    fresh = await new_in_state(store, RequestState.EXECUTING)
    started = datetime.now(UTC) - timedelta(minutes=30)
    # The run started half an hour ago; the row was touched since (updated_at now): executing_at decides.
    async with store.engine.begin() as conn:
        await conn.execute(REQUESTS.update().where(REQUESTS.c.id == running.id).values(executing_at=started))
    bound = datetime.now(UTC) - timedelta(minutes=10)
    assert [r.id for r in await store.stuck_requests(RequestState.EXECUTING, bound)] == [running.id]
    assert fresh.id not in [r.id for r in await store.stuck_requests(RequestState.EXECUTING, bound)]


# --- short references ---------------------------------------------------------------------------------------

REF_SHAPE = re.compile(r"^MFA-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{5}$")


def drawing(*refs: str) -> Callable[[], str]:
    """A reference generator that gives `refs` in order, then random ones."""
    queue = deque(refs)
    return lambda: queue.popleft() if queue else new_ref()


async def test_a_new_request_gets_a_unique_short_reference_found_as_people_type_it(store: Store) -> None:
    created = [await store.create_request(make_request(), actor=AGENT) for _ in range(30)]
    refs = [r.ref for r in created]
    assert all(ref is not None and REF_SHAPE.match(ref) for ref in refs), refs
    assert len(set(refs)) == len(refs)
    first = created[0]
    assert first.ref is not None
    assert await store.get_request(first.id) == first
    body = first.ref[4:]
    for typed in (first.ref, first.ref.lower(), body, body.lower(), f"MFA {body}", f" mfa{body.lower()} "):
        assert await store.get_request_by_ref(typed) == first, typed
    # the audit trail keeps both: the request id in its column, the reference in the details
    (requested,) = await store.request_audit(first.id)
    assert requested.request_id == first.id and requested.details["ref"] == first.ref


async def test_a_reference_that_is_not_stored_or_not_a_reference_finds_nothing(store: Store) -> None:
    await store.create_request(make_request(), actor=AGENT)
    for typed in ("MFA-ZZZZZ", "MFA-UUUUU", "MFA-7K3Q", "MFA-7K3Q9X", "", "x" * 500, uuid.uuid4().hex):
        assert await store.get_request_by_ref(typed) is None, typed


async def test_a_taken_reference_is_drawn_again_across_instances(database: Database) -> None:
    first = await database.open(ref_generator=drawing("MFA-10K0Q"))
    second = await database.open(ref_generator=drawing("MFA-10K0Q", "MFA-10K0Q", "MFA-7K3Q9"))
    one = await first.create_request(make_request(), actor=AGENT)
    two = await second.create_request(
        make_request(),
        actor=AGENT,
        card_ref=CardRef(
            role="requester", conversation_reference={"conversation": {"id": "a:1"}}, activity_id="1"
        ),
    )
    assert (one.ref, two.ref) == ("MFA-10K0Q", "MFA-7K3Q9")
    assert await first.get_request_by_ref("mfa-7k3q9") == two
    assert await first.get_request_by_ref("MFA-10K0Q") == one
    # the attempts that collided left nothing behind: one request row, one audit row, one card reference each
    assert await raw_count(database, first, "SELECT COUNT(*) FROM requests") == 2
    assert [e.event for e in await first.request_audit(two.id)] == ["requested"]
    assert await raw_count(database, first, "SELECT COUNT(*) FROM audit") == 2
    assert len(await first.card_refs(two.id)) == 1


async def test_when_every_draw_is_taken_the_request_is_refused_and_nothing_is_written(
    database: Database,
) -> None:
    store = await database.open(ref_generator=drawing(*["MFA-10K0Q"] * (REF_ATTEMPTS + 1)))
    await store.create_request(make_request(), actor=AGENT)
    lost = make_request()
    with pytest.raises(NoFreeRef):
        await store.create_request(lost, actor=AGENT)
    assert await store.get_request(lost.id) is None
    assert await store.request_audit(lost.id) == []
    # the next draw is random again: the store goes on
    assert (await store.create_request(make_request(), actor=AGENT)).ref != "MFA-10K0Q"


async def test_a_generator_that_gives_no_reference_is_refused(database: Database) -> None:
    store = await database.open(ref_generator=lambda: "MFA-LOL00")  # look-alikes: not a stored form
    with pytest.raises(ValueError, match="not a reference"):
        await store.create_request(make_request(), actor=AGENT)
    assert await raw_count(database, store, "SELECT COUNT(*) FROM requests") == 0


async def test_the_reference_cannot_be_changed_and_the_database_refuses_a_duplicate(store: Store) -> None:
    one = await store.create_request(make_request(), actor=AGENT)
    two = await store.create_request(make_request(), actor=AGENT)
    with pytest.raises(TypeError):
        await store.update_draft(one.id, one.revision, actor=AGENT, ref="MFA-22222")
    with pytest.raises(sa_exc.IntegrityError):
        async with store.engine.begin() as conn:
            await conn.execute(REQUESTS.update().where(REQUESTS.c.id == two.id).values(ref=one.ref))
    assert (await store.get_request(two.id)).ref == two.ref  # type: ignore[union-attr]


# --- migrations ---------------------------------------------------------------------------------------------


async def test_opening_again_keeps_data_and_reopening_concurrently_is_safe(
    database: Database, store: Store
) -> None:
    req = await store.create_request(make_request(), actor=AGENT)
    await store.close()
    reopened = await asyncio.gather(database.open(), database.open(), database.open())
    for instance in reopened:
        assert await instance.get_request(req.id) == req
    version = await raw_count(database, reopened[0], "SELECT COUNT(*) FROM alembic_version")
    assert version == 1


async def test_fresh_database_opened_by_two_instances_at_once_is_migrated_once(database: Database) -> None:
    first, second = await asyncio.gather(database.open(), database.open())
    req = await first.create_request(make_request(), actor=AGENT)
    assert await second.get_request(req.id) == req


async def test_migrated_schema_matches_the_models(store: Store) -> None:
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    assert diff == []


# --- URLs and faults ----------------------------------------------------------------------------------------


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


# the requests table as revision 0002 left it (the store's model has columns added since)
_REQUESTS_0002 = sa.table(
    "requests",
    *(sa.column(c.name, c.type) for c in REQUESTS.columns if c.name != "ref"),
)


async def test_requests_stored_before_references_get_distinct_ones_at_migration(database: Database) -> None:
    url = database_url(database.url, database.data_dir)
    database.data_dir.mkdir(parents=True, exist_ok=True)
    connect_args = {"server_settings": {"search_path": database.schema}} if database.schema else {}
    engine = create_async_engine(url, connect_args=connect_args)
    now = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in range(1205)]  # more than one batch of the migration
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, "0002")
            await conn.execute(
                sa.insert(_REQUESTS_0002),
                [
                    {
                        "id": request_id,
                        "revision": 1,
                        "state": "completed",
                        "action": "set",
                        "requester_aad_id": AGENT.aad_object_id,
                        "requester_name": AGENT.name,
                        "target_id": "target-1",
                        "target_upn": "tom@contoso.test",
                        "target_display_name": "Tom Target",
                        "target_is_guest": False,
                        "target_privileged": False,
                        "privilege_reasons": [],
                        "notify": False,
                        "language": "auto",
                        "approval_required": False,
                        "locale": "en-US",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for request_id in ids
                ],
            )
    finally:
        await engine.dispose()

    store = await database.open()  # migrates to head: every old request gets a reference
    async with store.engine.connect() as conn:
        refs = dict((await conn.execute(sa.select(REQUESTS.c.id, REQUESTS.c.ref))).tuples().all())
    assert sorted(refs) == sorted(ids)
    assert all(ref is not None and REF_SHAPE.match(ref) for ref in refs.values())
    assert len(set(refs.values())) == len(ids)
    old = await store.get_request_by_ref(refs[ids[0]].lower())  # type: ignore[union-attr]
    assert old is not None and old.id == ids[0]
    # and the unique index is in place: a new request never takes an old reference, a duplicate is refused
    new = await store.create_request(make_request(), actor=AGENT)
    assert new.ref not in refs.values()
    with pytest.raises(sa_exc.IntegrityError):
        async with store.engine.begin() as conn:
            await conn.execute(REQUESTS.update().where(REQUESTS.c.id == ids[1]).values(ref=refs[ids[0]]))


def test_database_urls_are_normalised_to_async_drivers(tmp_path: Path) -> None:
    assert (
        database_url(None, tmp_path).render_as_string() == f"sqlite+aiosqlite:///{tmp_path}/mfa-bot.sqlite3"
    )
    assert database_url("postgresql://u@h/db", tmp_path).drivername == "postgresql+asyncpg"
    assert database_url("postgres://u@h/db", tmp_path).drivername == "postgresql+asyncpg"
    assert database_url("postgresql+asyncpg://u@h/db", tmp_path).drivername == "postgresql+asyncpg"
    assert database_url("sqlite:////var/lib/bot/x.db", tmp_path).database == "/var/lib/bot/x.db"
    for bad in ("mysql://u@h/db", "sqlite://", "sqlite:///:memory:", "not a url"):
        with pytest.raises(ValueError, match="DATABASE_URL"):
            database_url(bad, tmp_path)


def test_allowed_from_is_the_inverse_of_transitions() -> None:
    assert allowed_from(RequestState.APPROVED) == {
        RequestState.DRAFT,
        RequestState.AWAITING_VERIFICATION,
        RequestState.AWAITING_APPROVAL,
    }
    assert allowed_from(RequestState.EXECUTING) == {RequestState.APPROVED}
    # approved → cancelled: the start of the run refused it (an abuse limit, or facts re-read then)
    assert allowed_from(RequestState.CANCELLED) == {
        RequestState.DRAFT,
        RequestState.AWAITING_VERIFICATION,
        RequestState.AWAITING_APPROVAL,
        RequestState.APPROVED,
    }
    # a verification that could not be delivered gives the agent the draft back (another method)
    assert allowed_from(RequestState.DRAFT) == {RequestState.DRAFT, RequestState.AWAITING_VERIFICATION}


async def test_unreachable_postgresql_is_store_unavailable(tmp_path: Path) -> None:
    with socket_closed_port() as port:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await Store.open(
                f"postgresql://postgres@127.0.0.1:{port}/test", data_dir=tmp_path, connect_timeout=3
            )
        # Refused connections are not retried into a hang; 30 s only catches a hang, it is no time budget.
        assert time.monotonic() - started < 30


class socket_closed_port:
    """A loopback port nobody listens on."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        return int(sock.getsockname()[1])  # bound but not listening: connections are refused

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


async def test_sqlite_locked_by_another_writer_is_store_unavailable_then_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await Store.open(None, data_dir=data_dir, busy_timeout=0.3)
    try:
        kept = await store.create_request(make_request(), actor=AGENT)
        blocker = sqlite3.connect(data_dir / "mfa-bot.sqlite3", isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            blocker.execute("UPDATE requests SET ticket = 'held' WHERE id = ?", (kept.id,))
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="locked"):
                await store.create_request(make_request(), actor=AGENT)
            with pytest.raises(StoreUnavailable):
                await store.transition(
                    kept.id, 1, RequestState.AWAITING_APPROVAL, actor=AGENT, event="submitted"
                )
            # the 0.3 s busy timeout ends the wait for the lock; 30 s only catches a hang, it is no time budget
            assert time.monotonic() - started < 30
            assert await store.get_request(kept.id) == kept  # readers still read (WAL)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        moved = await store.transition(
            kept.id, 1, RequestState.AWAITING_APPROVAL, actor=AGENT, event="submitted"
        )
        assert moved.revision == 2
        assert [e.event for e in await store.request_audit(kept.id)] == ["requested", "submitted"]
    finally:
        await store.close()


@needs_postgres
@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_postgresql_connections_killed_then_next_call_recovers(
    database: Database, store: Store
) -> None:
    req = await store.create_request(make_request(), actor=AGENT)
    assert await store.ping()
    admin = await database.admin()
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            database.application_name,
        )
        assert killed >= 1
        # the pool pings before use and reconnects: no error reaches the caller
        got = await store.get_request(req.id)
        assert got == req
        moved = await store.transition(
            req.id, 1, RequestState.AWAITING_APPROVAL, actor=AGENT, event="submitted"
        )
        assert moved.revision == 2
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            database.application_name,
        )
        assert killed >= 1
        assert await store.ping()
        assert [e.event for e in await store.request_audit(req.id)] == ["requested", "submitted"]
    finally:
        await admin.close()


async def test_database_errors_do_not_carry_phone_numbers(store: Store) -> None:
    req = await store.create_request(make_request(number="+491701112233"), actor=AGENT)
    with pytest.raises(Exception) as duplicate:  # the same id twice: the database refuses it
        await store.create_request(make_request(id=req.id, number="+491701112233"), actor=AGENT)
    assert "1112233" not in str(duplicate.value)
    assert [e.event for e in await store.request_audit(req.id)] == ["requested"]

"""What the workflow makes of Graph's 409s and of a refused removal of the default method, against the simulator.

* Only 409 phoneNumberNotUnique is the SMS sign-in conflict; any other 409 is a Graph rule, said in Graph's words.
* After phoneNumberNotUnique the phone methods are read until the number shows or CONFLICT_READBACK_SECONDS pass
  (Microsoft documents no delay; the runbook waits 5 s): the waits asked for are checked, not how long it took.
* Deleting the default method: refused while the user has other methods (observed), allowed when it is the only one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph.directory import Directory
from graph.outcome import Outcome, OutcomeKind
from graph.settings import GraphSettings
from graph.workflow import DEFAULT_METHOD_FIRST, PhoneMfaWorkflow, WorkflowSettings
from tests.graph.simulator_helpers import Sleeps
from tests.graph.workflow_helpers import Stack, add_user, make_stack, mobile_of, request, writes

NUMBER = "+49 176 1234567"
STORED = "+49 1761234567"


@pytest.fixture
async def stack(sim: Any, sim_env: dict[str, str]) -> Any:
    async for s in make_stack(sim, sim_env):
        yield s


# ------------------------------------------------------------------------------------------ another 409


async def test_a_409_with_another_code_is_a_graph_rule_in_graphs_words_not_an_sms_conflict(
    stack: Stack,
) -> None:
    user = add_user(stack.sim, mobile="+49 1760000001")
    stack.sim.behaviour.write_conflict_code = "conflictingOperation"
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.BLOCKED_BY_GRAPH_RULE, out.message
    assert out.graph_error_code == "conflictingOperation"
    assert out.graph_message and out.graph_message in out.message
    assert "nothing changed" in out.message
    assert not out.sms_sign_in_conflict and out.holder is None and out.holder_search == "not_run"
    assert stack.workflow_sleeps.delays == []  # no read-back polling for a number that is not the question
    assert [c for c in stack.sim.calls[start:] if "userRegistrationDetails" in c.path] == []
    assert len(writes(stack.sim, start)) == 1  # never sent again
    assert mobile_of(stack.sim, user) == "+49 1760000001"


async def test_the_sms_conflict_code_is_recognised_in_any_letter_case(stack: Stack) -> None:
    holder = add_user(stack.sim, name="Holder", mobile=STORED, mobile_sms="ready")
    user = add_user(stack.sim, name="Target")
    stack.sim.behaviour.update(
        {"conflict_stores_method": False, "write_conflict_code": "PhoneNumberNotUnique"}
    )
    out = await stack.with_settings(conflict_poll_timeout=0.0).run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
    assert out.holder is not None and out.holder.id == holder.id


# ------------------------------------------------------------------------------------------ read-back window


class VisibleAfter:
    """The workflow's sleep and clock: waits are recorded and move a clock of their own (nothing is slept); once
    `seconds` have been waited, the number Graph stored despite the 409 becomes visible to reads."""

    def __init__(self, sim: Any, user: Any, seconds: float | None) -> None:
        self.sleeps = Sleeps(real=False)
        self.sim, self.user, self.seconds = sim, user, seconds

    async def __call__(self, delay: float) -> None:
        await self.sleeps(delay)
        if self.seconds is not None and self.sleeps.clock() >= self.seconds - 1e-9:
            self.sim.tenant.set_phone(self.user.id, "mobile", STORED, "phoneNumberNotUnique")

    def workflow(self, stack: Stack, **changes: Any) -> PhoneMfaWorkflow:
        settings = WorkflowSettings.from_graph_settings(stack.settings, **changes)
        return PhoneMfaWorkflow(
            stack.client, Directory(stack.client), settings, sleep=self, clock=self.sleeps.clock
        )


def _stored_but_hidden(stack: Stack) -> Any:
    add_user(stack.sim, name="Holder", mobile=STORED, mobile_sms="ready")
    user = add_user(stack.sim, name="Target")
    # Graph stores the number despite the 409; reads do not show it until the test says so
    stack.sim.behaviour.update({"conflict_stores_method": True, "visibility_delay_ms": 3_600_000})
    return user


def test_the_default_read_back_window_is_longer_than_the_runbooks_5_seconds(sim_env: dict[str, str]) -> None:
    settings = GraphSettings.from_env(sim_env)
    assert settings.conflict_readback_seconds > 5
    assert (
        WorkflowSettings.from_graph_settings(settings).conflict_poll_timeout
        == settings.conflict_readback_seconds
    )


async def test_a_number_that_shows_after_6_seconds_is_found_by_reads_with_growing_waits(stack: Stack) -> None:
    user = _stored_but_hidden(stack)
    visible = VisibleAfter(stack.sim, user, 6.0)
    out = await visible.workflow(stack).run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.ADDED and out.sms_sign_in_conflict, out.message
    waits = visible.sleeps.delays
    assert waits == pytest.approx([0.1, 0.2, 0.4] + [0.5] * 11)  # 6.2 s: the first read after 6 s
    assert sum(waits[:-1]) < 6.0 <= sum(waits)  # answered at the first read that could show it, no later
    assert out.holder_search == "not_run"


async def test_a_number_that_shows_at_once_is_answered_without_waiting(stack: Stack) -> None:
    add_user(stack.sim, name="Holder", mobile=STORED, mobile_sms="ready")
    user = add_user(stack.sim, name="Target")
    stack.sim.behaviour.update({"conflict_stores_method": True, "visibility_delay_ms": 0})
    visible = VisibleAfter(stack.sim, user, None)
    out = await visible.workflow(stack).run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.ADDED and out.sms_sign_in_conflict
    assert visible.sleeps.delays == []
    # a code with its English sentence, so every surface can say it in its own language
    assert [w.code for w in out.warnings] == ["sms_sign_in_unavailable"]
    assert out.warnings[0].text.startswith("SMS sign-in is not available with this number")
    back = Outcome.from_json(json.loads(json.dumps(out.to_json())))
    assert back.warnings == out.warnings and back.to_json() == out.to_json()


async def test_a_number_that_never_shows_is_looked_for_the_whole_window_and_no_longer(stack: Stack) -> None:
    user = _stored_but_hidden(stack)
    visible = VisibleAfter(stack.sim, user, None)
    out = await visible.workflow(stack).run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
    waits = visible.sleeps.delays
    assert sum(waits) == pytest.approx(stack.settings.conflict_readback_seconds)  # the last read at the end
    assert max(waits) <= 0.5


async def test_the_window_comes_from_conflict_readback_seconds(sim: Any, sim_env: dict[str, str]) -> None:
    async for stack in make_stack(sim, dict(sim_env, CONFLICT_READBACK_SECONDS="2.5")):
        user = _stored_but_hidden(stack)
        visible = VisibleAfter(stack.sim, user, None)
        out = await visible.workflow(stack).run(request("set", user.upn, NUMBER))
        assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
        assert sum(visible.sleeps.delays) == pytest.approx(2.5)


# ------------------------------------------------------------------------------------------ default method


async def test_removing_the_default_method_while_other_methods_exist_is_refused_with_what_to_do(
    stack: Stack,
) -> None:
    user = add_user(stack.sim, mobile=STORED, defaultMethod="mobile", otherMethods=["microsoftAuthenticator"])
    out = await stack.workflow.run(request("remove", user.upn, NUMBER))
    assert out.kind is OutcomeKind.BLOCKED_BY_GRAPH_RULE
    assert out.graph_error_code == "badRequest"
    assert out.graph_message == "Cannot delete default method with other methods configured."
    assert out.next_step is not None and DEFAULT_METHOD_FIRST[1:] in out.next_step
    assert out.next_step_code == "change_default_method_first"
    assert mobile_of(stack.sim, user) == STORED


async def test_removing_the_default_method_that_is_the_users_only_method_is_done(stack: Stack) -> None:
    user = add_user(stack.sim, mobile=STORED, defaultMethod="mobile")
    out = await stack.workflow.run(request("remove", user.upn, NUMBER))
    assert out.kind is OutcomeKind.REMOVED, out.message
    assert mobile_of(stack.sim, user) is None


# ------------------------------------------------------------------------------------------ after the outcome


async def test_a_number_stored_despite_the_sms_conflict_is_answered_without_a_search_and_find_holder_names_it(
    stack: Stack,
) -> None:
    stack.sim.behaviour.update({"conflict_stores_method": True, "visibility_delay_ms": 0})
    holder = add_user(stack.sim, name="Sms Holder", mobile=NUMBER, mobile_sms="ready")
    target = add_user(stack.sim, name="Target")
    out = await stack.workflow.run(request("set", target.upn, NUMBER))
    assert out.kind is OutcomeKind.ADDED and out.sms_sign_in_conflict
    assert out.holder_search == "not_run"  # the caller searches after it has shown the outcome
    assert not any("userRegistrationDetails" in c.path for c in stack.sim.calls)
    result = await stack.workflow.find_holder(NUMBER, exclude_user_id=target.id)
    assert result.status == "found" and result.holder is not None and result.holder.id == holder.id
    assert result.request_ids  # every read of the search can be quoted to support


async def test_sms_sign_in_state_is_read_from_the_method_and_none_when_it_is_gone(stack: Stack) -> None:
    user = add_user(stack.sim, mobile=STORED, mobile_sms="ready")
    out = await stack.workflow.run(request("set", user.upn, "+49 176 7654321"))
    assert out.kind is OutcomeKind.UPDATED and out.sms_sign_in_state is None  # the PATCH is answered 204
    start = len(stack.sim.calls)
    state, request_id = await stack.workflow.sms_sign_in_state(user.id)
    assert state == "ready" and request_id
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in stack.sim.calls[start:]] == [
        ("GET", "3179e48a-750b-4051-897c-87b9720928f7")
    ]
    stack.sim.tenant.set_phone(user.id, "mobile", None)
    assert (await stack.workflow.sms_sign_in_state(user.id))[0] is None

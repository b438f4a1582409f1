"""What the workflow tells after a write Graph failed or refused, and after a token endpoint failure.

A write's error answer is not the truth about the write: the workflow reads the phone methods back and decides
from the state. Real msal and httpx against the simulator over loopback HTTPS; one test scripts Graph's answers
with httpx.MockTransport (the network edge) for a refusal the simulator cannot produce from a valid number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from graph.auth import TokenProvider
from graph.client import GraphClient, create_graph_client
from graph.directory import Directory
from graph.outcome import OutcomeKind
from graph.settings import GraphSettings
from graph.workflow import PhoneMfaWorkflow, WorkflowSettings
from tests.graph.workflow_helpers import FAST_RETRY, Stack, add_user, make_stack, mobile_of, request, writes

NUMBER = "+49 176 1234567"


@pytest.fixture
async def stack(sim: Any, sim_env: dict[str, str]) -> AsyncIterator[Stack]:
    async for s in make_stack(sim, sim_env):
        yield s


def phone_calls(sim: Any, user: Any, since: int) -> list[tuple[str, int | None]]:
    """(method, status) of every call on the user's phone methods since `since`, in order."""
    return [
        (c.method, c.status)
        for c in sim.calls[since:]
        if f"/users/{user.id}/authentication/phoneMethods" in c.path
    ]


# ----------------------------------------------------------------------------- applied but answered with an error


async def test_a_post_applied_but_answered_503_is_added_once_with_a_warning(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 503, times=1, after_apply=True)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.ADDED, out.message
    assert mobile_of(stack.sim, user) == "+49 1761234567"
    assert [m for m, _ in writes(stack.sim, start)] == ["POST"]  # never repeated
    assert phone_calls(stack.sim, user, start)[-2:] == [("POST", 503), ("GET", 200)]  # read back
    failed = next(c for c in stack.sim.calls[start:] if c.method == "POST")
    assert failed.request_id in out.graph_request_ids
    assert any("503" in w.text and "in place" in w.text for w in out.warnings), out.warnings
    assert [(w.code, w.params["status"]) for w in out.warnings] == [("change_in_place_after_error", "503")]


async def test_a_patch_applied_but_answered_503_is_updated(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1769999999")
    stack.sim.faults.inject("PATCH", r"/phoneMethods/", 503, times=1, after_apply=True)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.UPDATED, out.message
    assert out.previous_number == "+491769999999"
    assert [m for m, _ in writes(stack.sim, start)] == ["PATCH"]
    assert out.warnings


async def test_a_delete_applied_but_answered_502_is_removed(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    stack.sim.faults.inject("DELETE", r"/phoneMethods/", 502, times=1, after_apply=True)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, NUMBER))
    assert out.kind is OutcomeKind.REMOVED, out.message
    assert mobile_of(stack.sim, user) is None
    assert [m for m, _ in writes(stack.sim, start)] == ["DELETE"]


async def test_a_400_to_a_post_that_graph_applied_is_added_not_invalid_number(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 400, times=1, after_apply=True)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.ADDED, out.message
    assert [m for m, _ in writes(stack.sim, start)] == ["POST"]
    assert any("400" in w.text for w in out.warnings)


# ----------------------------------------------------------------------------- not applied


async def test_a_write_answered_503_is_read_back_before_it_is_sent_again(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 503, times=2, retry_after=0.05)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.ADDED
    assert phone_calls(stack.sim, user, start) == [
        ("GET", 200),  # preflight
        ("POST", 503),
        ("GET", 200),  # not there: sending again is safe
        ("POST", 503),
        ("GET", 200),
        ("POST", 201),
    ]
    assert out.warnings == []


async def test_a_write_answered_503_every_time_is_sent_a_bounded_number_of_times(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 503, times=50)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.GRAPH_UNAVAILABLE
    assert "nothing changed" in out.message
    assert len(writes(stack.sim, start)) == WorkflowSettings().write_attempts
    assert mobile_of(stack.sim, user) is None


async def test_a_400_that_is_not_about_the_number_is_blocked_with_graphs_request_id(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 400, times=1)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.BLOCKED_BY_GRAPH_RULE, out.message
    refused = next(c for c in stack.sim.calls[start:] if c.method == "POST")
    assert refused.request_id in out.message
    assert "nothing changed" in out.message
    assert len(writes(stack.sim, start)) == 1  # a 400 is never sent again


async def test_a_403_on_a_write_is_read_back_and_names_the_permission(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 403, times=1)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, NUMBER))
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert (
        out.missing_permission
        == "UserAuthMethod-Phone.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)"
    )
    assert phone_calls(stack.sim, user, start)[-2:] == [("POST", 403), ("GET", 200)]


def scripted_graph(
    post_answer: httpx.Response, read_back: list[dict[str, Any]]
) -> tuple[GraphClient, list[str]]:
    """A GraphClient whose network edge answers like Graph: one user, no phones, then `read_back` after the POST."""
    seen: list[str] = []
    user = {
        "id": "0f0e0d0c-0000-4000-8000-000000000001",
        "userPrincipalName": "adele@contoso.example",
        "displayName": "Adele Vance",
        "mail": "adele@contoso.example",
    }
    posted = False

    def handler(req: httpx.Request) -> httpx.Response:
        nonlocal posted
        seen.append(req.method)
        path = req.url.path
        if req.method == "GET" and path.endswith("/authentication/phoneMethods"):
            return httpx.Response(200, json={"value": read_back if posted else []})
        if req.method == "GET" and "/users/" in path:
            return httpx.Response(200, json=user)
        if req.method == "POST" and path.endswith("/authentication/phoneMethods"):
            posted = True
            return post_answer
        return httpx.Response(404, json={"error": {"code": "Request_ResourceNotFound", "message": path}})

    class Tokens:
        async def token(self) -> str:
            return "token"

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GraphClient(http, Tokens(), "https://graph.test/v1.0", retry=FAST_RETRY), seen


def invalid_number_answer() -> httpx.Response:
    return httpx.Response(
        400,
        headers={"request-id": "rid-400"},
        json={"error": {"code": "badRequest", "message": "Invalid phone number format."}},
    )


async def test_graph_refusing_the_number_is_invalid_number_after_reading_back_that_nothing_changed() -> None:
    client, seen = scripted_graph(invalid_number_answer(), read_back=[])
    wf = PhoneMfaWorkflow(client, Directory(client), WorkflowSettings())
    out = await wf.run(request("set", "adele@contoso.example", NUMBER))
    assert out.kind is OutcomeKind.INVALID_NUMBER, out.message
    assert "rid-400" in out.message and "Invalid phone number format." in out.message
    assert seen == ["GET", "GET", "POST", "GET"]  # user, preflight, the write, the read-back


async def test_graph_refusing_the_number_while_the_state_changed_is_not_called_an_invalid_number() -> None:
    other = {
        "id": "3179e48a-750b-4051-897c-87b9720928f7",
        "phoneType": "mobile",
        "phoneNumber": "+49 1715550000",
    }
    client, _ = scripted_graph(invalid_number_answer(), read_back=[other])
    wf = PhoneMfaWorkflow(client, Directory(client), WorkflowSettings())
    out = await wf.run(request("set", "adele@contoso.example", NUMBER))
    assert out.kind is OutcomeKind.BLOCKED_BY_GRAPH_RULE, out.message
    assert "not in place" in out.message


# ----------------------------------------------------------------------------- the token endpoint


async def fresh_stack(sim: Any, env: dict[str, str]) -> tuple[PhoneMfaWorkflow, Any]:
    """A stack with its own msal application: no cached token, no remembered token failure."""
    settings = GraphSettings.from_env(env)
    tokens = await TokenProvider.create(settings)
    client, close = await create_graph_client(settings, retry=FAST_RETRY, tokens=tokens)
    wf = PhoneMfaWorkflow(client, Directory(client), WorkflowSettings.from_graph_settings(settings))
    return wf, close


@pytest.mark.parametrize("fault", [503, "drop"])
async def test_an_unreachable_token_endpoint_is_graph_unavailable_saying_try_again(
    sim: Any, sim_env: dict[str, str], fault: Any
) -> None:
    user = add_user(sim)
    wf, close = await fresh_stack(sim, sim_env)
    try:
        sim.faults.inject("POST", r"/oauth2/v2\.0/token$", fault, times=50)
        start = len(sim.calls)
        out = await wf.run(request("set", user.upn, NUMBER))
    finally:
        sim.faults.clear()
        await close()
    assert out.kind is OutcomeKind.GRAPH_UNAVAILABLE, out.message
    assert "Microsoft sign-in did not answer" in out.message
    assert out.next_step is not None and "try again in a few seconds" in out.next_step.lower()
    assert out.missing_permission is None
    assert sim.calls[start:] == []  # no token, no Graph call
    assert mobile_of(sim, user) is None


async def test_a_wrong_client_secret_is_a_configuration_problem_naming_the_secret(
    sim: Any, sim_env: dict[str, str]
) -> None:
    user = add_user(sim)
    wf, close = await fresh_stack(sim, dict(sim_env, GRAPH_CLIENT_SECRET="not-the-secret"))
    try:
        out = await wf.run(request("set", user.upn, NUMBER))
    finally:
        await close()
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert out.missing_permission is None
    assert "client secret is wrong" in out.message and "AADSTS7000215" in out.message
    assert "not-the-secret" not in out.message
    assert out.next_step is not None and "will not help" in out.next_step


async def test_after_the_token_endpoint_recovers_and_msals_replay_window_passes_the_next_run_succeeds(
    sim: Any, sim_env: dict[str, str]
) -> None:
    user = add_user(sim)
    wf, close = await fresh_stack(sim, sim_env)
    try:
        sim.faults.inject("POST", r"/oauth2/v2\.0/token$", 503, times=1, retry_after=1)
        first = await wf.run(request("set", user.upn, NUMBER))
        assert first.kind is OutcomeKind.GRAPH_UNAVAILABLE
        asked = len(sim.token_requests)
        # The endpoint is fine again (the fault was used up), but msal replays its 503 from memory for the
        # Retry-After: the next run still fails, without asking the endpoint.
        second = await wf.run(request("set", user.upn, NUMBER))
        assert second.kind is OutcomeKind.GRAPH_UNAVAILABLE
        assert len(sim.token_requests) == asked
        # Once the window has passed, the next run goes through.
        deadline = time.monotonic() + 10.0
        outcome = second
        while outcome.kind is OutcomeKind.GRAPH_UNAVAILABLE and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            outcome = await wf.run(request("set", user.upn, NUMBER))
    finally:
        await close()
    assert outcome.kind is OutcomeKind.ADDED, outcome.message
    assert len(sim.token_requests) == asked + 1
    assert mobile_of(sim, user) == "+49 1761234567"

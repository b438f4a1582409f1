"""GraphClient against the simulator over loopback HTTPS: real msal tokens, real httpx, injected faults."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from graph.client import BatchItem, GraphClient, RetryPolicy, create_graph_client
from graph.errors import (
    AuthenticationError,
    GraphUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TransportError,
)
from graph.settings import GraphSettings
from tests.graph.simulator_helpers import Sleeps

MOBILE = "3179e48a-750b-4051-897c-87b9720928f7"


@dataclass
class Env:
    sim: Any
    settings: GraphSettings
    client: GraphClient
    sleeps: Sleeps  # every retry wait the client asked for (and really slept)


@pytest.fixture
async def env(sim: Any, sim_env: dict[str, str]) -> AsyncIterator[Env]:
    settings = GraphSettings.from_env(sim_env)
    sleeps = Sleeps()
    client, close = await create_graph_client(
        settings,
        retry=RetryPolicy(max_attempts=5, base_delay=0.02, max_delay=0.2, deadline=5.0),
        http_timeout=httpx.Timeout(2.0),
        sleep=sleeps,
    )
    try:
        yield Env(sim, settings, client, sleeps)
    finally:
        await close()


def new_user(sim: Any, *, mobile: str | None = None, **extra: Any) -> Any:
    uid = str(uuid.uuid4())
    data: dict[str, Any] = {
        "id": uid,
        "userPrincipalName": f"u{uid[:8]}@{sim.tenant.default_domain}",
        "displayName": f"User {uid[:8]}",
        "mail": f"u{uid[:8]}@{sim.tenant.default_domain}",
        **extra,
    }
    if mobile:
        data["phoneMethods"] = [{"phoneType": "mobile", "phoneNumber": mobile}]
    return sim.tenant.add_user(data)


def calls(sim: Any, method: str, fragment: str, *, in_batch: bool | None = None) -> list[Any]:
    return [
        c
        for c in sim.calls
        if c.method == method and fragment in c.path and (in_batch is None or c.in_batch == in_batch)
    ]


async def test_every_call_carries_its_own_client_request_id_and_keeps_graphs_request_id(env: Env) -> None:
    user = new_user(env.sim)
    first = await env.client.get(f"/users/{user.id}")
    second = await env.client.get(f"/users/{user.id}")
    seen = calls(env.sim, "GET", f"/users/{user.id}")
    assert [c.client_request_id for c in seen] == [first.client_request_id, second.client_request_id]
    assert first.client_request_id != second.client_request_id
    assert [c.request_id for c in seen] == [first.request_id, second.request_id]


async def test_fractional_retry_after_is_honoured(env: Env) -> None:
    env.sim.behaviour.fractional_retry_after = True  # "0.350", as in Graph's own throttling sample
    user = new_user(env.sim)
    env.sim.faults.inject("GET", f"/users/{user.id}$", 429, times=1, retry_after=0.35)
    started = time.monotonic()
    response = await env.client.get(f"/users/{user.id}")
    elapsed = time.monotonic() - started
    assert response.status == 200 and response.json["id"] == user.id
    assert env.sleeps.delays == [0.35]  # waited the fraction, not rounded up to a whole second
    assert elapsed >= 0.35
    assert [c.status for c in calls(env.sim, "GET", f"/users/{user.id}")] == [429, 200]


async def test_503_burst_then_success(env: Env) -> None:
    user = new_user(env.sim)
    env.sim.faults.inject("GET", f"/users/{user.id}$", 503, times=3)
    response = await env.client.get(f"/users/{user.id}")
    assert response.status == 200
    assert [c.status for c in calls(env.sim, "GET", f"/users/{user.id}")] == [503, 503, 503, 200]


async def test_endless_503_stops_at_the_deadline_with_graphs_request_id(
    sim: Any, sim_env: dict[str, str]
) -> None:
    settings = GraphSettings.from_env(sim_env)
    # The deadline runs on a clock that moves only by the waits the client asks for (which are not slept), and
    # the backoff has no jitter: what is checked is the client's own deadline arithmetic, the same on any
    # machine, and no attempt is cut short by a nearly spent deadline on a busy one.
    waits = Sleeps(real=False)
    client, close = await create_graph_client(
        settings,
        retry=RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=8.0, deadline=30.0),
        sleep=waits,
        clock=waits.clock,
        jitter=lambda: 1.0,
    )
    try:
        user = new_user(sim)
        sim.faults.inject("GET", f"/users/{user.id}$", 503, times=1000)
        with pytest.raises(GraphUnavailableError) as info:
            await client.get(f"/users/{user.id}")
    finally:
        await close()
    seen = calls(sim, "GET", f"/users/{user.id}")
    # 1 + 2 + 4 + 8 + 8 = 23 s waited; the next 8 s would pass the 30 s deadline, so it stops there, long
    # before its 100 attempts
    assert waits.delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert [c.status for c in seen] == [503] * 6
    assert "deadline" in info.value.message
    assert info.value.status == 503 and info.value.request_id == seen[-1].request_id


async def test_read_timeout_is_retried_then_succeeds(sim: Any, sim_env: dict[str, str]) -> None:
    settings = GraphSettings.from_env(sim_env)
    client, close = await create_graph_client(
        settings,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, deadline=10.0),
        # the held request ends by the 1 s read timeout; connecting again may take its time on a busy machine
        http_timeout=httpx.Timeout(5.0, read=1.0),
    )
    try:
        user = new_user(sim)
        sim.faults.inject("GET", f"/users/{user.id}$", "timeout", times=1)
        response = await client.get(f"/users/{user.id}")
    finally:
        await close()
    assert response.status == 200
    assert len(calls(sim, "GET", f"/users/{user.id}")) == 2


async def test_dropped_connection_on_get_is_retried(env: Env) -> None:
    user = new_user(env.sim)
    env.sim.faults.inject("GET", f"/users/{user.id}$", "drop", times=2)
    assert (await env.client.get(f"/users/{user.id}")).status == 200
    assert len(calls(env.sim, "GET", f"/users/{user.id}")) == 3


async def test_dropped_connection_on_patch_is_not_repeated(env: Env) -> None:
    user = new_user(env.sim, mobile="+49 1701234567")
    env.sim.faults.inject("PATCH", "/phoneMethods/", "apply_then_drop", times=1)
    with pytest.raises(TransportError) as info:
        await env.client.patch(
            f"/users/{user.id}/authentication/phoneMethods/{MOBILE}",
            json={"phoneNumber": "+49 1709999999", "phoneType": "mobile"},
        )
    assert info.value.write_outcome_unknown is True
    assert len(calls(env.sim, "PATCH", "/phoneMethods/")) == 1
    # The write did happen: only reading back tells, which is what the caller must do.
    state = await env.client.get(f"/users/{user.id}/authentication/phoneMethods")
    assert [m["phoneNumber"] for m in state.json["value"] if m["phoneType"] == "mobile"] == ["+49 1709999999"]


async def test_patch_answered_with_429_is_retried_and_applied_once(env: Env) -> None:
    env.sim.behaviour.fractional_retry_after = True
    user = new_user(env.sim, mobile="+49 1701234567")
    env.sim.faults.inject("PATCH", "/phoneMethods/", 429, times=1, retry_after=0.05)
    response = await env.client.patch(
        f"/users/{user.id}/authentication/phoneMethods/{MOBILE}",
        json={"phoneNumber": "+49 1705555555", "phoneType": "mobile"},
    )
    assert response.status == 204
    assert [c.status for c in calls(env.sim, "PATCH", "/phoneMethods/")] == [429, 204]
    assert env.sim.tenant.users[user.id].phones["mobile"].number == "+49 1705555555"


async def test_post_applied_but_answered_503_is_not_repeated(env: Env) -> None:
    user = new_user(env.sim)
    env.sim.faults.inject("POST", "/phoneMethods$", 503, times=1, after_apply=True)
    with pytest.raises(TransportError) as info:
        await env.client.post(
            f"/users/{user.id}/authentication/phoneMethods",
            json={"phoneNumber": "+49 1705555555", "phoneType": "mobile"},
        )
    assert info.value.write_outcome_unknown is True and info.value.status == 503
    posts = calls(env.sim, "POST", "/phoneMethods")
    assert len(posts) == 1 and info.value.request_id == posts[0].request_id
    # Graph did apply it: a repeat would have been refused (the mobile method exists); reading back tells.
    state = await env.client.get(f"/users/{user.id}/authentication/phoneMethods")
    assert [m["phoneNumber"] for m in state.json["value"] if m["phoneType"] == "mobile"] == ["+49 1705555555"]


async def test_paging_fetches_one_page_at_a_time(env: Env) -> None:
    for _ in range(120):
        new_user(env.sim)
    total = len(env.sim.tenant.users)
    seen_ids: list[str] = []
    fetched_when_yielded: list[int] = []
    async for page in env.client.pages("/users", {"$top": "7", "$select": "id"}):
        fetched_when_yielded.append(len(calls(env.sim, "GET", "/users")))
        seen_ids.extend(u["id"] for u in page)
        assert len(page) <= 7
    pages = len(fetched_when_yielded)
    assert pages >= 120 // 7
    # page k was yielded after exactly k requests: nothing is fetched ahead or held back
    assert fetched_when_yielded == list(range(1, pages + 1))
    assert len(seen_ids) == total and len(set(seen_ids)) == total


async def test_paginate_stops_early_without_fetching_the_rest(env: Env) -> None:
    for _ in range(30):
        new_user(env.sim)
    taken = []
    async for user in env.client.paginate("/users", {"$top": "5"}):
        taken.append(user)
        if len(taken) == 6:
            break
    assert len(calls(env.sim, "GET", "/users")) == 2


async def test_batch_item_429_is_retried_in_a_follow_up_batch(env: Env) -> None:
    env.sim.behaviour.fractional_retry_after = True
    users = [new_user(env.sim, mobile=f"+49 17012345{i:02d}") for i in range(5)]
    env.sim.faults.inject(
        "GET", f"/users/{users[2].id}/authentication/phoneMethods", 429, times=1, retry_after=0.3
    )
    items = [
        BatchItem(str(i), "GET", f"/users/{u.id}/authentication/phoneMethods") for i, u in enumerate(users)
    ]
    started = time.monotonic()
    results = await env.client.batch(items)
    elapsed = time.monotonic() - started
    assert [r.status for r in results] == [200] * 5
    assert [r.body["value"][0]["phoneNumber"] for r in results] == [f"+49 17012345{i:02d}" for i in range(5)]
    assert env.sleeps.delays == [0.3]  # the item's Retry-After, once, before the follow-up batch
    assert elapsed >= 0.3
    batches = calls(env.sim, "POST", "/$batch", in_batch=False)
    assert len(batches) == 2
    retried = calls(env.sim, "GET", f"/users/{users[2].id}/authentication/phoneMethods", in_batch=True)
    assert [c.status for c in retried] == [429, 200]
    assert len(calls(env.sim, "GET", f"/users/{users[0].id}/authentication/phoneMethods", in_batch=True)) == 1


async def test_batch_request_that_depends_on_a_throttled_one_is_sent_again_with_it(env: Env) -> None:
    user = new_user(env.sim)
    methods = f"/users/{user.id}/authentication/phoneMethods"
    env.sim.faults.inject("POST", f"{methods}$", 429, times=1, retry_after=0.05)
    results = await env.client.batch(
        [
            BatchItem(
                "write", "POST", methods, body={"phoneNumber": "+49 1701112222", "phoneType": "mobile"}
            ),
            BatchItem("read", "GET", methods, depends_on=("write",)),
        ]
    )
    # the read got 424 while the write was throttled; both went again, in order
    assert [r.status for r in results] == [201, 200]
    assert [m["phoneNumber"] for m in results[1].body["value"]] == ["+49 1701112222"]
    assert [c.status for c in calls(env.sim, "GET", methods, in_batch=True)] == [424, 200]
    assert len(calls(env.sim, "POST", "/$batch", in_batch=False)) == 2


async def test_batch_item_errors_are_returned_with_their_status(env: Env) -> None:
    user = new_user(env.sim)
    results = await env.client.batch(
        [BatchItem("a", "GET", f"/users/{user.id}"), BatchItem("b", "GET", f"/users/{uuid.uuid4()}")]
    )
    assert [r.status for r in results] == [200, 404]
    assert isinstance(results[1].error(), NotFoundError)
    assert results[1].request_id


async def test_not_found_maps_to_not_found_error_with_request_id(env: Env) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as info:
        await env.client.get(f"/users/{missing}")
    seen = calls(env.sim, "GET", f"/users/{missing}")
    assert len(seen) == 1
    assert info.value.status == 404 and info.value.code == "Request_ResourceNotFound"
    assert info.value.request_id == seen[0].request_id
    assert info.value.client_request_id == seen[0].client_request_id


async def test_missing_permission_maps_to_permission_denied(sim: Any, sim_env: dict[str, str]) -> None:
    settings = GraphSettings.from_env(sim_env)
    app = next(a for a in sim.tenant.applications if a.client_id == settings.client_id)
    app.roles = []
    client, close = await create_graph_client(settings, retry=RetryPolicy(deadline=2))
    try:
        with pytest.raises(PermissionDeniedError) as info:
            await client.get(f"/users/{new_user(sim).id}/authentication/phoneMethods")
    finally:
        await close()
    assert info.value.status == 403 and info.value.request_id


async def test_injected_throttle_with_retry_after_longer_than_the_deadline_is_not_waited(env: Env) -> None:
    user = new_user(env.sim)
    env.sim.faults.inject("GET", f"/users/{user.id}$", 429, times=5, retry_after=30)
    with pytest.raises(ThrottledError) as info:
        await env.client.get(f"/users/{user.id}")
    assert env.sleeps.delays == []  # 30 s is past the 5 s deadline: given up at once, nothing slept
    assert [c.status for c in calls(env.sim, "GET", f"/users/{user.id}")] == [429]
    assert info.value.retry_after == 30 and info.value.request_id


async def test_rejected_token_is_renewed_once_then_reported(sim: Any, sim_env: dict[str, str]) -> None:
    class Garbage:
        def __init__(self) -> None:
            self.calls = 0

        async def token(self) -> str:
            self.calls += 1
            return "not-a-token"

    settings = GraphSettings.from_env(sim_env)
    tokens = Garbage()
    client, close = await create_graph_client(settings, tokens=tokens)
    try:
        with pytest.raises(AuthenticationError) as info:
            await client.get("/organization")
    finally:
        await close()
    assert tokens.calls == 2
    assert info.value.status == 401 and info.value.request_id


async def test_logs_carry_request_ids_but_never_the_token_or_secret(
    sim: Any, sim_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from graph.auth import TokenProvider

    caplog.set_level(logging.DEBUG, logger="graph")
    settings = GraphSettings.from_env(sim_env)
    tokens = await TokenProvider.create(settings)
    token = await tokens.token()
    client, close = await create_graph_client(settings, tokens=tokens, retry=RetryPolicy(base_delay=0.01))
    try:
        user = new_user(sim)
        sim.faults.inject("GET", f"/users/{user.id}$", 503, times=1)
        await client.get(f"/users/{user.id}", params={"$filter": "mobilePhone eq '+49 1701234567'"})
        with pytest.raises(NotFoundError):
            await client.get(f"/users/{uuid.uuid4()}")
    finally:
        await close()
    wrong = await TokenProvider.create(
        GraphSettings.from_env({**sim_env, "GRAPH_CLIENT_SECRET": "Leaky~Secret~123"})
    )
    with pytest.raises(Exception):  # noqa: B017 - TokenError; the point here is what was logged
        await wrong.token()

    records = [r for r in caplog.records if r.name.startswith("graph")]
    dumped = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert token not in dumped
    assert sim_env["GRAPH_CLIENT_SECRET"] not in dumped and "Leaky~Secret~123" not in dumped
    assert "1701234567" not in dumped  # the query (which may hold a number) is never logged
    ids = {c.request_id for c in sim.calls}
    logged_ids = {getattr(r, "request_id", None) for r in records if r.name == "graph.client"} - {None}
    assert logged_ids and logged_ids <= ids

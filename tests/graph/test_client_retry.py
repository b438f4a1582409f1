"""Retry timing and write safety of GraphClient, as pure unit tests.

httpx.MockTransport stands in for the network edge and an injected clock/sleep records the waits, so the
backoff arithmetic is checked exactly and without real waiting. The same paths run against the simulator
over loopback HTTPS in test_client_sim.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graph.client import BatchItem, GraphClient, RetryPolicy
from graph.errors import (
    AuthenticationError,
    GraphUnavailableError,
    NotFoundError,
    ThrottledError,
    TransportError,
)

BASE = "https://graph.test/v1.0"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Tokens:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0

    async def token(self) -> str:
        self.issued += 1
        return f"token-{self.issued}"

    async def invalidate(self) -> None:
        self.invalidated += 1


Handler = Callable[[httpx.Request], httpx.Response]


def make(
    handler: Handler, *, retry: RetryPolicy | None = None, jitter: float = 1.0
) -> tuple[GraphClient, FakeTime, Tokens, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    t = FakeTime()
    tokens = Tokens()
    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    client = GraphClient(
        http, tokens, BASE, retry=retry or RetryPolicy(), sleep=t.sleep, clock=t.clock, jitter=lambda: jitter
    )
    return client, t, tokens, seen


def graph_error(status: int, code: str, rid: str, retry_after: str | None = None) -> httpx.Response:
    headers = {"request-id": rid}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": code}})


def scripted(*responses: httpx.Response | Exception) -> Handler:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


async def test_fractional_retry_after_is_waited_exactly() -> None:
    client, t, _, seen = make(
        scripted(graph_error(429, "TooManyRequests", "r1", "2.128"), httpx.Response(200, json={"ok": 1}))
    )
    response = await client.get("/users/x")
    assert response.json == {"ok": 1}
    assert t.sleeps == [pytest.approx(2.128)]
    assert len(seen) == 2


async def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=3.0, deadline=100)
    client, t, _, _ = make(scripted(graph_error(503, "serviceUnavailable", "r")), retry=policy, jitter=1.0)
    with pytest.raises(GraphUnavailableError):
        await client.get("/x")
    assert t.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]
    client, t, _, _ = make(scripted(graph_error(503, "serviceUnavailable", "r")), retry=policy, jitter=0.0)
    with pytest.raises(GraphUnavailableError):
        await client.get("/x")
    assert t.sleeps == [0.25, 0.5, 1.0, 1.5, 1.5]  # jitter keeps 50-100 % of the step


async def test_503_burst_then_success_returns_the_answer() -> None:
    client, t, _, seen = make(
        scripted(
            graph_error(503, "serviceUnavailable", "a"),
            graph_error(502, "badGateway", "b"),
            graph_error(504, "gatewayTimeout", "c"),
            httpx.Response(200, headers={"request-id": "ok-rid"}, json={"value": []}),
        )
    )
    response = await client.get("/users")
    assert response.status == 200 and response.request_id == "ok-rid"
    assert len(seen) == 4 and len(t.sleeps) == 3


async def test_attempts_are_bounded_and_the_last_request_id_is_kept() -> None:
    counter = iter(range(100))

    def handler(request: httpx.Request) -> httpx.Response:
        return graph_error(503, "serviceUnavailable", f"rid-{next(counter)}")

    client, _, _, seen = make(handler, retry=RetryPolicy(max_attempts=3, deadline=100))
    with pytest.raises(GraphUnavailableError) as info:
        await client.get("/x")
    assert len(seen) == 3
    assert info.value.request_id == "rid-2" and info.value.status == 503


async def test_retry_after_beyond_the_deadline_is_not_waited() -> None:
    client, t, _, seen = make(
        scripted(graph_error(429, "TooManyRequests", "r1", "45")), retry=RetryPolicy(deadline=30)
    )
    with pytest.raises(ThrottledError) as info:
        await client.get("/x")
    assert t.sleeps == [] and len(seen) == 1
    assert info.value.retry_after == 45 and "deadline" in info.value.message


async def test_deadline_bounds_the_total_time() -> None:
    policy = RetryPolicy(max_attempts=50, base_delay=1.0, max_delay=4.0, deadline=10.0)
    client, t, _, _ = make(scripted(graph_error(503, "serviceUnavailable", "r")), retry=policy)
    with pytest.raises(GraphUnavailableError):
        await client.get("/x")
    assert sum(t.sleeps) <= 10.0
    assert t.sleeps[:3] == [1.0, 2.0, 4.0]


async def test_every_request_carries_a_fresh_client_request_id_and_the_token() -> None:
    client, _, _, seen = make(scripted(graph_error(503, "serviceUnavailable", "r"), httpx.Response(204)))
    await client.get("/x")
    ids = [r.headers["client-request-id"] for r in seen]
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)
    assert all(r.headers["Authorization"].startswith("Bearer token-") for r in seen)


async def test_read_connection_errors_are_retried() -> None:
    client, _, _, seen = make(
        scripted(httpx.ConnectError("refused"), httpx.ReadError("reset"), httpx.Response(200, json={}))
    )
    assert (await client.get("/x")).status == 200
    assert len(seen) == 3


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_write_with_dropped_answer_is_not_repeated(method: str) -> None:
    client, t, _, seen = make(scripted(httpx.RemoteProtocolError("Server disconnected"), httpx.Response(204)))
    with pytest.raises(TransportError) as info:
        await client.request(method, "/users/u/authentication/phoneMethods", json={"phoneNumber": "+1 1"})
    assert info.value.write_outcome_unknown is True
    assert len(seen) == 1 and t.sleeps == []


async def test_write_with_read_timeout_is_not_repeated() -> None:
    client, _, _, seen = make(scripted(httpx.ReadTimeout("slow"), httpx.Response(204)))
    with pytest.raises(TransportError) as info:
        await client.patch("/x", json={})
    assert info.value.write_outcome_unknown and info.value.code == "timeout"
    assert len(seen) == 1


async def test_write_that_never_connected_is_retried() -> None:
    client, _, _, seen = make(scripted(httpx.ConnectError("refused"), httpx.Response(201, json={"id": "m"})))
    assert (await client.post("/x", json={})).status == 201
    assert len(seen) == 2


async def test_write_throttled_with_429_is_retried() -> None:
    client, t, _, seen = make(scripted(graph_error(429, "TooManyRequests", "r", "0.5"), httpx.Response(204)))
    assert (await client.patch("/x", json={"a": 1})).status == 204
    assert len(seen) == 2 and t.sleeps == [0.5]
    assert json.loads(seen[1].content) == {"a": 1}


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_write_answered_503_is_unknown_and_not_repeated(method: str) -> None:
    # 503 "service unavailable" does not promise the write was not applied: the caller must read back.
    client, t, _, seen = make(
        scripted(graph_error(503, "serviceNotAvailable", "rid-503", "0.5"), httpx.Response(204))
    )
    with pytest.raises(TransportError) as info:
        await client.request(method, "/users/u/authentication/phoneMethods", json={"phoneNumber": "+1 1"})
    assert info.value.write_outcome_unknown is True
    assert info.value.status == 503 and info.value.request_id == "rid-503"
    assert info.value.retry_after == 0.5  # kept for the caller that decides to send it again
    assert len(seen) == 1 and t.sleeps == []


@pytest.mark.parametrize("status", [502, 504])
async def test_write_through_a_failing_gateway_is_unknown_not_repeated(status: int) -> None:
    client, _, _, seen = make(scripted(graph_error(status, "gw", "rid-gw"), httpx.Response(204)))
    with pytest.raises(TransportError) as info:
        await client.delete("/x")
    assert info.value.write_outcome_unknown and info.value.request_id == "rid-gw"
    assert info.value.status == status
    assert len(seen) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_read_answered_with_a_5xx_is_still_retried(status: int) -> None:
    client, _, _, seen = make(scripted(graph_error(status, "busy", "r"), httpx.Response(200, json={"ok": 1})))
    assert (await client.get("/x")).json == {"ok": 1}
    assert len(seen) == 2


async def test_read_only_post_answered_503_is_retried() -> None:
    client, _, _, seen = make(
        scripted(graph_error(503, "busy", "r"), httpx.Response(200, json={"value": ["g1"]}))
    )
    response = await client.post("/users/u/checkMemberGroups", json={"groupIds": ["g1"]}, idempotent=True)
    assert response.json == {"value": ["g1"]} and len(seen) == 2


async def test_read_only_post_may_be_marked_idempotent() -> None:
    client, _, _, seen = make(scripted(httpx.ReadError("reset"), httpx.Response(200, json={"value": []})))
    await client.post("/users/u/checkMemberGroups", json={"groupIds": []}, idempotent=True)
    assert len(seen) == 2


async def test_401_renews_the_token_once() -> None:
    client, _, tokens, seen = make(
        scripted(graph_error(401, "InvalidAuthenticationToken", "r"), httpx.Response(200, json={}))
    )
    await client.get("/x")
    assert tokens.invalidated == 1
    assert [r.headers["Authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]
    client, _, tokens, seen = make(scripted(graph_error(401, "InvalidAuthenticationToken", "r")))
    with pytest.raises(AuthenticationError):
        await client.get("/x")
    assert len(seen) == 2 and tokens.invalidated == 1


async def test_not_found_is_not_retried() -> None:
    client, t, _, seen = make(scripted(graph_error(404, "Request_ResourceNotFound", "rid-404")))
    with pytest.raises(NotFoundError) as info:
        await client.get("/users/nobody")
    assert len(seen) == 1 and t.sleeps == [] and info.value.request_id == "rid-404"


async def test_next_link_to_another_host_is_refused() -> None:
    client, _, _, seen = make(
        scripted(httpx.Response(200, json={"value": [1], "@odata.nextLink": "https://evil.test/v1.0/users"}))
    )
    with pytest.raises(ValueError, match="refusing"):
        async for _ in client.paginate("/users"):
            pass
    assert len(seen) == 1


async def test_pages_follow_next_link_without_repeating_params() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "0"))
        body: dict[str, Any] = {"value": [page * 10 + i for i in range(3)]}
        if page < 2:
            body["@odata.nextLink"] = f"{BASE}/users?page={page + 1}&$filter=x"
        return httpx.Response(200, json=body)

    client, _, _, seen = make(handler)
    items = [i async for i in client.paginate("/users", {"$filter": "x"})]
    assert items == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    assert [str(r.url.params) for r in seen][1:] == ["page=1&%24filter=x", "page=2&%24filter=x"]


async def test_batch_rejects_more_than_twenty_and_duplicate_ids() -> None:
    client, _, _, seen = make(scripted(httpx.Response(200, json={"responses": []})))
    with pytest.raises(ValueError):
        await client.batch([BatchItem(str(i), "GET", f"/users/{i}") for i in range(21)])
    with pytest.raises(ValueError):
        await client.batch([BatchItem("1", "GET", "/a"), BatchItem("1", "GET", "/b")])
    assert seen == [] and await client.batch([]) == []


async def test_batch_retries_only_throttled_items_after_the_longest_retry_after() -> None:
    rounds: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["requests"]
        rounds.append([r["id"] for r in sent])
        responses = []
        for r in sent:
            if len(rounds) == 1 and r["id"] in ("2", "3"):
                wait = "1.5" if r["id"] == "2" else "3.25"
                responses.append(
                    {"id": r["id"], "status": 429, "headers": {"Retry-After": wait}, "body": {"error": {}}}
                )
            elif r["id"] == "4":
                responses.append({"id": "4", "status": 424, "headers": {}, "body": None})
            else:
                responses.append({"id": r["id"], "status": 200, "headers": {}, "body": {"value": [r["id"]]}})
        return httpx.Response(
            200, headers={"request-id": f"batch-{len(rounds)}"}, json={"responses": responses[::-1]}
        )

    client, t, _, _ = make(handler)
    items = [BatchItem(str(i), "GET", f"/users/{i}/authentication/phoneMethods") for i in range(1, 5)]
    results = await client.batch(items)
    assert rounds == [["1", "2", "3", "4"], ["2", "3"]]
    assert t.sleeps == [pytest.approx(3.25)]
    assert [r.id for r in results] == ["1", "2", "3", "4"]  # request order, whatever the answer order
    assert [r.status for r in results] == [200, 200, 200, 424]
    assert results[1].body == {"value": ["2"]}


async def test_batch_item_still_throttled_at_the_deadline_is_returned_as_429() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["requests"]
        return httpx.Response(
            200,
            json={
                "responses": [{"id": r["id"], "status": 429, "headers": {"retry-after": "20"}} for r in sent]
            },
        )

    client, t, _, _ = make(handler, retry=RetryPolicy(deadline=30))
    results = await client.batch([BatchItem("a", "GET", "/x")])
    assert t.sleeps == [20]
    assert results[0].status == 429 and isinstance(results[0].error(), ThrottledError)


async def test_batch_of_gets_survives_a_dropped_connection_but_a_batch_with_writes_does_not() -> None:
    ok = httpx.Response(200, json={"responses": [{"id": "1", "status": 204, "headers": {}}]})
    client, _, _, seen = make(scripted(httpx.ReadError("reset"), ok))
    assert (await client.batch([BatchItem("1", "GET", "/x")]))[0].status == 204
    assert len(seen) == 2
    client, _, _, seen = make(scripted(httpx.ReadError("reset"), ok))
    with pytest.raises(TransportError) as info:
        await client.batch([BatchItem("1", "DELETE", "/x")])
    assert info.value.write_outcome_unknown and len(seen) == 1


async def test_batch_item_with_body_gets_a_content_type() -> None:
    client, _, _, seen = make(scripted(httpx.Response(200, json={"responses": [{"id": "1", "status": 201}]})))
    await client.batch([BatchItem("1", "POST", "users/u/authentication/phoneMethods", body={"a": 1})])
    sent = json.loads(seen[0].content)["requests"][0]
    assert sent["url"] == "/users/u/authentication/phoneMethods"
    assert sent["headers"] == {"Content-Type": "application/json"}

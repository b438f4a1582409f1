"""The Graph client: one shared httpx.AsyncClient, retries, paging, $batch and error mapping.

Retry rules (graph-behaviour.md §5, §6):
- 429 answers are retried for every method: "throttled" means Graph did not process the request. Retry-After is
  honoured (fractional seconds and HTTP-dates too); without it, exponential backoff with jitter.
- 502/503/504 answers and connection errors/timeouts are retried for reads only. Graph documents 503 as
  "service unavailable", which does not promise that a write was not applied (a POST that Graph carried out can
  still be answered 503; repeating it is then refused with a 400 because the method exists). So a write
  (POST/PATCH/PUT/DELETE) that got a 502/503/504, or lost its connection after sending, is never repeated here:
  `TransportError(status=..., write_outcome_unknown=True)` tells the caller to read the state back and decide
  (graph/workflow.py does, and re-sends the write itself only when the state shows it was not applied).
- A write whose connection failed before anything was sent (connect error, pool timeout) is retried.
- A 401 refreshes the token once and tries again.
- Attempts are bounded (`RetryPolicy.max_attempts`) and so is the total time (`RetryPolicy.deadline`).

Logs carry the method, the path (never the query, which may hold a phone number or a mail address), the
status, Graph's request-id and our client-request-id; never a token.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from graph.errors import (
    GraphError,
    GraphUnavailableError,
    TransportError,
    error_from_response,
    header,
    parse_retry_after,
)
from graph.settings import GraphSettings

log = logging.getLogger("graph.client")

MAX_BATCH = 20
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_RETRY_ANY_METHOD = frozenset({429})  # throttled: Graph did not process the request
_RETRY_READS_ONLY = frozenset({502, 503, 504})  # a write may have been applied all the same
# httpx errors raised before a single byte of the request left this process.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TokenSource(Protocol):
    async def token(self) -> str: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 8.0
    deadline: float = 30.0

    def backoff(self, retry_number: int, jitter: float) -> float:
        """Delay before retry `retry_number` (1-based): exponential, capped, with 50-100 % jitter."""
        raw = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return raw * (0.5 + 0.5 * jitter)


@dataclass(frozen=True)
class GraphResponse:
    status: int
    headers: httpx.Headers
    json: Any | None
    request_id: str | None
    client_request_id: str | None = None


@dataclass(frozen=True)
class BatchItem:
    id: str
    method: str
    url: str
    body: Any | None = None
    headers: Mapping[str, str] | None = None
    # ids of requests in the same batch this one runs after; Graph answers it 424 when one of them failed
    # (https://learn.microsoft.com/graph/json-batching, "Sequencing requests with the dependsOn property")
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchResult:
    id: str
    status: int
    headers: Mapping[str, str]
    body: Any | None
    request_id: str | None = None  # the item's request-id if Graph gave one, else the $batch request's
    method: str | None = None  # the item's own method and url, so its error names the endpoint that refused
    url: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> GraphError:
        """The item's failure as a typed error (only meaningful when not ok)."""
        err = error_from_response(self.status, self.body, self.headers, method=self.method, url=self.url)
        if err.request_id is None:
            err.request_id = self.request_id
        return err

    def request_error(self) -> GraphError:
        """The error `GraphClient.request` raises for the same answer to the same request sent on its own: a
        502/503/504 to a write (or no answer for it at all) is a TransportError whose outcome is unknown, since
        Graph may have applied it; any other failure is `error()`."""
        err = self.error()
        method = (self.method or "").upper()
        if method in _WRITE_METHODS and (self.status in _RETRY_READS_ONLY or self.status == 0):
            said = f"Graph answered {self.status}" if self.status else "Graph's $batch answer left it out"
            return TransportError(
                f"{method} {self.url}: {said} ({err.message}); the write may or may not have been applied",
                status=self.status or None,
                code=err.code,
                request_id=err.request_id,
                retry_after=err.retry_after,
                method=method,
                url=self.url,
                write_outcome_unknown=True,
            )
        return err


@dataclass
class _Attempts:
    """Book-keeping for one logical request (one or more HTTP attempts)."""

    started: float
    deadline_at: float
    attempt: int = 0
    retries: int = 0
    refreshed_token: bool = False
    request_ids: list[str] = field(default_factory=list)


class GraphClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenSource,
        base_url: str,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self._tokens = tokens
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}".lower()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    # ------------------------------------------------------------------ requests

    def url_for(self, path_or_url: str) -> str:
        """Absolute URL for a path relative to the base URL, or a full URL on the same origin (nextLink)."""
        if "://" in path_or_url:
            parts = urlsplit(path_or_url)
            if f"{parts.scheme}://{parts.netloc}".lower() != self._origin:
                # Never send our bearer token to another host, whatever a response says.
                raise ValueError(f"refusing to call {parts.scheme}://{parts.netloc}: not the Graph base URL")
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> GraphResponse:
        """Send one logical request with retries. Raises a GraphError subclass for >= 400.

        `idempotent` overrides the method's default (reads are, writes are not); set it for a POST that only
        reads, e.g. checkMemberGroups or a $batch of GETs, so a dropped connection may be retried.
        """
        method = method.upper()
        url = self.url_for(path_or_url)
        safe = (method not in _WRITE_METHODS) if idempotent is None else idempotent
        now = self._clock()
        state = _Attempts(started=now, deadline_at=now + self.retry.deadline)
        path = urlsplit(url).path

        while True:
            state.attempt += 1
            client_request_id = str(uuid.uuid4())
            token = await self._tokens.token()
            send_headers = {
                "Authorization": f"Bearer {token}",
                "client-request-id": client_request_id,
                "return-client-request-id": "true",
                "Accept": "application/json",
            }
            if headers:
                send_headers.update(headers)
            try:
                response = await self._http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=send_headers,
                    timeout=self._timeout(state),
                )
            except httpx.TransportError as exc:
                sent = not isinstance(exc, _NOT_SENT)
                failure = TransportError(
                    f"{method} {path}: {_describe(exc)}",
                    code="timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error",
                    client_request_id=client_request_id,
                    method=method,
                    url=path,
                    write_outcome_unknown=sent and not safe,
                )
                log.warning(
                    "graph %s %s failed without an answer: %s (client-request-id %s)",
                    method,
                    path,
                    type(exc).__name__,
                    client_request_id,
                    extra={
                        "method": method,
                        "path": path,
                        "error": type(exc).__name__,
                        "client_request_id": client_request_id,
                        "attempt": state.attempt,
                        "write_outcome_unknown": failure.write_outcome_unknown,
                    },
                )
                if failure.write_outcome_unknown:
                    raise failure from None
                await self._wait_or_raise(state, None, failure)
                continue

            content = response.content
            request_id = response.headers.get("request-id")
            if request_id:
                state.request_ids.append(request_id)
            log.debug(
                "graph %s %s -> %s (request-id %s, client-request-id %s)",
                method,
                path,
                response.status_code,
                request_id,
                client_request_id,
                extra={
                    "method": method,
                    "path": path,
                    "status": response.status_code,
                    "request_id": request_id,
                    "client_request_id": client_request_id,
                    "attempt": state.attempt,
                },
            )
            status = response.status_code
            if status < 400:
                return GraphResponse(
                    status=status,
                    headers=response.headers,
                    json=_json_or_none(response),
                    request_id=request_id,
                    client_request_id=client_request_id,
                )

            error = error_from_response(
                status,
                content,
                response.headers,
                method=method,
                url=path,
                client_request_id=client_request_id,
            )
            if status == 401 and not state.refreshed_token:
                state.refreshed_token = True
                invalidate = getattr(self._tokens, "invalidate", None)
                if invalidate is not None:
                    await invalidate()
                log.info("graph 401, renewing the token once", extra={"request_id": request_id})
                continue
            if status in _RETRY_ANY_METHOD or (status in _RETRY_READS_ONLY and safe):
                await self._wait_or_raise(state, error.retry_after, error)
                continue
            if status in _RETRY_READS_ONLY and not safe:
                # 502/503/504 on a write: Graph may or may not have applied it; the caller reads back.
                _log_failure(
                    method,
                    path,
                    status,
                    error,
                    client_request_id,
                    ": the write may or may not have been applied",
                )
                raise TransportError(
                    f"{method} {path}: Graph answered {status} ({error.message}); the write may or may not "
                    "have been applied",
                    status=status,
                    code=error.code,
                    request_id=error.request_id,
                    client_request_id=client_request_id,
                    retry_after=error.retry_after,
                    method=method,
                    url=path,
                    write_outcome_unknown=True,
                )
            _log_failure(method, path, status, error, client_request_id)
            raise error

    async def _wait_or_raise(self, state: _Attempts, retry_after: float | None, error: GraphError) -> None:
        """Sleep before the next attempt, or raise `error` when attempts or time have run out."""
        if state.attempt >= self.retry.max_attempts:
            raise _final(error, f"after {state.attempt} attempts")
        state.retries += 1
        delay = retry_after if retry_after is not None else self.retry.backoff(state.retries, self._jitter())
        if self._clock() + delay > state.deadline_at:
            raise _final(error, f"waiting {delay:.3g} s would pass the {self.retry.deadline:g} s deadline")
        log.info(
            "graph retry in %.3f s after %s %s (request-id %s)",
            delay,
            error.status or "no answer",
            error.code,
            error.request_id,
            extra={
                "status": error.status,
                "code": error.code,
                "request_id": error.request_id,
                "delay_s": round(delay, 3),
                "attempt": state.attempt,
            },
        )
        await self._sleep(delay)

    def _timeout(self, state: _Attempts) -> httpx.Timeout | None:
        """The client's timeouts, shortened so one attempt cannot outlive the overall deadline."""
        remaining = state.deadline_at - self._clock()
        base = self._http.timeout
        if remaining <= 0:
            remaining = 0.001

        def cap(value: float | None) -> float:
            return remaining if value is None else min(value, remaining)

        return httpx.Timeout(
            connect=cap(base.connect), read=cap(base.read), write=cap(base.write), pool=cap(base.pool)
        )

    async def get(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> GraphResponse:
        return await self.request("GET", path_or_url, params=params, **kw)

    async def post(self, path_or_url: str, *, json: Any | None = None, **kw: Any) -> GraphResponse:
        return await self.request("POST", path_or_url, json=json, **kw)

    async def patch(self, path_or_url: str, *, json: Any | None = None, **kw: Any) -> GraphResponse:
        return await self.request("PATCH", path_or_url, json=json, **kw)

    async def delete(self, path_or_url: str, **kw: Any) -> GraphResponse:
        return await self.request("DELETE", path_or_url, **kw)

    # ------------------------------------------------------------------ paging

    async def pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[list[Any]]:
        """Yield one page (`value` list) at a time, following @odata.nextLink; only one page is held."""
        response = await self.request("GET", path, params=params, headers=headers)
        while True:
            body = response.json if isinstance(response.json, dict) else {}
            next_link = body.get("@odata.nextLink")
            value = body.get("value")
            page = value if isinstance(value, list) else []
            del body
            response = None  # type: ignore[assignment]  # let the page's response go before the next one
            yield page
            del page
            if not next_link:
                return
            # The nextLink carries the whole query (skiptoken, filter, select); do not add params again.
            response = await self.request("GET", str(next_link), headers=headers)

    async def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Any]:
        async for page in self.pages(path, params, headers=headers):
            for item in page:
                yield item

    # ------------------------------------------------------------------ $batch

    async def batch(self, requests: list[BatchItem]) -> list[BatchResult]:
        """Send up to 20 requests in one JSON $batch; retry the items Graph throttled (429).

        Items throttled inside the batch are sent again in a follow-up batch after the longest per-item
        Retry-After, while the attempts and the deadline allow, together with the items answered 424 because
        they depend on one of them; every other status (including any other 424) is returned as it is. Results
        come back in the order of `requests`.
        """
        if len(requests) > MAX_BATCH:
            raise ValueError(f"a $batch holds at most {MAX_BATCH} requests, got {len(requests)}")
        if not requests:
            return []
        ids = [item.id for item in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("$batch request ids must be unique")
        if any(dep not in ids or dep == item.id for item in requests for dep in item.depends_on):
            raise ValueError("$batch dependsOn names another request of the same batch")
        idempotent = all(item.method.upper() == "GET" for item in requests)
        now = self._clock()
        state = _Attempts(started=now, deadline_at=now + self.retry.deadline)
        results: dict[str, BatchResult] = {}
        pending = list(requests)

        while pending:
            state.attempt += 1
            sent = {item.id for item in pending}  # a dependency answered before is not named again
            body = {"requests": [_batch_entry(item, sent) for item in pending]}
            response = await self.request("POST", "/$batch", json=body, idempotent=idempotent)
            payload = response.json if isinstance(response.json, dict) else {}
            answers = payload.get("responses")
            if not isinstance(answers, list):
                raise GraphUnavailableError(
                    "$batch answer without a responses list",
                    status=response.status,
                    code="invalidBatchResponse",
                    request_id=response.request_id,
                )
            by_id = {str(a.get("id")): a for a in answers if isinstance(a, dict)}
            throttled: list[BatchItem] = []
            longest: float | None = None
            for item in pending:
                answer = by_id.get(item.id)
                if answer is None:
                    results[item.id] = BatchResult(
                        item.id, 0, {}, None, request_id=response.request_id, method=item.method, url=item.url
                    )  # Graph left it out: report it, do not guess
                    continue
                raw_headers = answer.get("headers")
                item_headers: dict[str, str] = raw_headers if isinstance(raw_headers, dict) else {}
                item_body = answer.get("body")
                result = BatchResult(
                    id=item.id,
                    status=int(answer.get("status") or 0),
                    headers=item_headers,
                    body=item_body,
                    request_id=_item_request_id(item_headers, item_body) or response.request_id,
                    method=item.method.upper(),
                    url=item.url,
                )
                results[item.id] = result
                if result.status == 429:
                    throttled.append(item)
                    wait = parse_retry_after(header(item_headers, "Retry-After"))
                    if wait is not None:
                        longest = wait if longest is None else max(longest, wait)
            retried = {item.id for item in throttled}
            pending = [
                item
                for item in pending
                if item.id in retried
                or (results[item.id].status == 424 and any(dep in retried for dep in item.depends_on))
            ]
            if not throttled:
                break
            if state.attempt >= self.retry.max_attempts:
                break
            state.retries += 1
            delay = longest if longest is not None else self.retry.backoff(state.retries, self._jitter())
            if self._clock() + delay > state.deadline_at:
                log.info(
                    "batch items still throttled at the deadline",
                    extra={"count": len(pending), "delay_s": round(delay, 3)},
                )
                break
            log.info(
                "batch items throttled, retrying",
                extra={"count": len(pending), "delay_s": round(delay, 3), "request_id": response.request_id},
            )
            await self._sleep(delay)

        return [results[item.id] for item in requests]


def _final(error: GraphError, why: str) -> GraphError:
    """The error raised when retrying stops (a 5xx is a GraphUnavailableError, a 429 a ThrottledError)."""
    error.message = f"{error.message} ({why})"
    error.args = (error.message,)
    return error


def _batch_entry(item: BatchItem, sent: set[str]) -> dict[str, Any]:
    url = item.url
    if "://" in url:
        raise ValueError("$batch item urls are relative to the Graph version, e.g. /users/{id}")
    entry: dict[str, Any] = {"id": item.id, "method": item.method.upper(), "url": "/" + url.lstrip("/")}
    item_headers = dict(item.headers or {})
    if item.body is not None:
        entry["body"] = item.body
        if not any(k.lower() == "content-type" for k in item_headers):
            item_headers["Content-Type"] = "application/json"
    if item_headers:
        entry["headers"] = item_headers
    depends_on = [dep for dep in item.depends_on if dep in sent]
    if depends_on:
        entry["dependsOn"] = depends_on
    return entry


def _item_request_id(headers: Mapping[str, Any], body: Any) -> str | None:
    found = header(headers, "request-id")
    if found:
        return found
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            inner = error.get("innerError") or error.get("innererror")
            if isinstance(inner, dict) and inner.get("request-id"):
                return str(inner["request-id"])
    return None


def _json_or_none(response: httpx.Response) -> Any | None:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {' '.join(text.split())[:200]}"


# ---------------------------------------------------------------------- factory

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)


def make_http_client(
    settings: GraphSettings, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT
) -> httpx.AsyncClient:
    """The one shared httpx client: trusts `settings.ca_file` when set (a private CA), else the default store."""
    verify: ssl.SSLContext | bool = True
    if settings.ca_file:
        verify = ssl.create_default_context(cafile=settings.ca_file)
    return httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "mfa-phone-bot/0.1"},
    )


async def create_graph_client(
    settings: GraphSettings,
    *,
    http_timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    tokens: TokenSource | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    clock: Callable[[], float] | None = None,
    jitter: Callable[[], float] | None = None,
) -> tuple[GraphClient, Callable[[], Awaitable[None]]]:
    """Build the token provider and the shared HTTP client the one way. Returns the client and its closer.

    sleep, clock and jitter replace asyncio.sleep, time.monotonic and random.random for the retry waits and the
    deadline (tests record the waits asked for instead of timing them)."""
    from graph.auth import TokenProvider

    if tokens is None:
        timeout_s = http_timeout if isinstance(http_timeout, int | float) else (http_timeout.read or 30.0)
        tokens = await TokenProvider.create(settings, http_timeout=float(timeout_s))
    http = make_http_client(settings, timeout=http_timeout)
    client = GraphClient(
        http,
        tokens,
        settings.base_url,
        retry=retry,
        sleep=sleep or asyncio.sleep,
        clock=clock or time.monotonic,
        jitter=jitter or random.random,
    )

    async def close() -> None:
        await http.aclose()

    return client, close


@asynccontextmanager
async def graph_client(
    settings: GraphSettings,
    *,
    http_timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[GraphClient]:
    client, close = await create_graph_client(settings, http_timeout=http_timeout, retry=retry)
    try:
        yield client
    finally:
        await close()


def _log_failure(
    method: str, path: str, status: int, error: GraphError, client_request_id: str, note: str = ""
) -> None:
    """One log line for a Graph error answer: method, path, status and both request ids, never the query."""
    extra: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "code": error.code,
        "request_id": error.request_id,
        "client_request_id": client_request_id,
    }
    if note:
        extra["write_outcome_unknown"] = True
    log.info(
        "graph %s %s -> %s %s%s (request-id %s)",
        method,
        path,
        status,
        error.code,
        note,
        error.request_id,
        extra=extra,
    )

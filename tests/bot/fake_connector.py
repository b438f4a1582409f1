"""A Bot Connector on loopback: records what the bot sends (new activities, replies, in-place updates) and
answers with ids, the way the Teams/Bot Framework connector and the Agents Playground (`/_connector`) do.

The bot's real ConnectorClient talks to it over HTTP, so the whole adapter path (serialization included) runs.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web


@dataclass
class Recorded:
    # "send" (POST .../activities), "reply" (POST .../activities/{id}), "update" (PUT), "create", "refused" (a send
    # answered with an error, see FakeConnector.fail_sends_to)
    kind: str
    conversation_id: str
    activity_id: str | None  # the id the connector gave (send/reply) or the id updated (update)
    reply_to_id: str | None
    body: dict[str, Any]
    authorization: str | None
    at: float = field(default_factory=time.monotonic)

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a.get("content") or {}
            for a in self.body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    @property
    def card(self) -> dict[str, Any] | None:
        cards = self.cards
        return cards[0] if cards else None

    @property
    def text(self) -> str:
        return self.body.get("text") or ""


class FakeConnector:
    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self._ids = itertools.count(1000)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.fail_updates_with: int | None = None  # e.g. 404 to simulate a deleted message
        # conversation id -> status: new activities (sends and replies) there are refused (e.g. 403 when the person removed the app)
        self.fail_sends_to: dict[str, int] = {}
        # Awaited before an update is answered: lets a test act at a known point of the bot's work.
        self.on_update: Callable[[Recorded], Awaitable[None]] | None = None

    # --- server -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        for prefix in ("", "/_connector"):
            app.router.add_post(prefix + "/v3/conversations", self._create)
            app.router.add_post(prefix + "/v3/conversations/{conv}/activities", self._send)
            app.router.add_post(prefix + "/v3/conversations/{conv}/activities/{aid}", self._reply)
            app.router.add_put(prefix + "/v3/conversations/{conv}/activities/{aid}", self._update)
            app.router.add_delete(prefix + "/v3/conversations/{conv}/activities/{aid}", self._delete)
            app.router.add_get(prefix + "/v3/conversations/{conv}/members/{member}", self._member)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # noqa: SLF001  (aiohttp exposes the bound port only here)
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def playground_service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_connector"

    def _record(self, rec: Recorded) -> None:
        self.records.append(rec)
        self._changed.set()

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        conv = f"a:created-{next(self._ids)}"
        self._record(Recorded("create", conv, None, None, body, request.headers.get("Authorization")))
        return web.json_response({"id": conv, "activityId": str(next(self._ids))})

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        conv = unquote(request.match_info["conv"])
        if conv in self.fail_sends_to:
            self._record(Recorded("refused", conv, None, None, body, request.headers.get("Authorization")))
            return web.json_response({"error": {"code": "Forbidden"}}, status=self.fail_sends_to[conv])
        aid = str(next(self._ids))
        self._record(Recorded("send", conv, aid, None, body, request.headers.get("Authorization")))
        return web.json_response({"id": aid})

    async def _reply(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        conv = unquote(request.match_info["conv"])
        if conv in self.fail_sends_to:
            self._record(Recorded("refused", conv, None, None, body, request.headers.get("Authorization")))
            return web.json_response({"error": {"code": "Forbidden"}}, status=self.fail_sends_to[conv])
        aid = str(next(self._ids))
        reply_to = unquote(request.match_info["aid"])
        self._record(Recorded("reply", conv, aid, reply_to, body, request.headers.get("Authorization")))
        return web.json_response({"id": aid})

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        conv = unquote(request.match_info["conv"])
        aid = unquote(request.match_info["aid"])
        if self.fail_updates_with:
            return web.json_response({"error": {"code": "NotFound"}}, status=self.fail_updates_with)
        rec = Recorded("update", conv, aid, None, body, request.headers.get("Authorization"))
        self._record(rec)
        if self.on_update is not None:
            await self.on_update(rec)
        return web.json_response({"id": aid})

    async def _delete(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _member(self, request: web.Request) -> web.Response:
        member = unquote(request.match_info["member"])
        return web.json_response({"id": member, "name": member})

    # --- reading what the bot did -----------------------------------------------------------------------------
    def messages(self, conversation_id: str | None = None) -> list[Recorded]:
        """New activities (send or reply) in order, optionally for one conversation."""
        return [
            r
            for r in self.records
            if r.kind in ("send", "reply")
            and (conversation_id is None or r.conversation_id == conversation_id)
        ]

    def card_conversations(self, predicate: Callable[[dict[str, Any]], bool] | None = None) -> list[str]:
        """The conversation each new card (send or reply) went to, in order; with `predicate`, only the cards it
        accepts. Lets a test say where a card landed, and that it landed nowhere else."""
        return [
            r.conversation_id
            for r in self.records
            if r.kind in ("send", "reply") and r.card and (predicate is None or predicate(r.card))
        ]

    def updates(self, activity_id: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.records
            if r.kind == "update" and (activity_id is None or r.activity_id == activity_id)
        ]

    def since(self, mark: int) -> list[Recorded]:
        return self.records[mark:]

    def mark(self) -> int:
        return len(self.records)

    async def wait_for(
        self, predicate: Callable[[list[Recorded]], Any], *, timeout: float = 10.0, since: int = 0
    ) -> Any:
        """Wait until predicate(records since `since`) is truthy; returns its value. Bounded; no fixed sleeps."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.records[since:])
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"the connector did not see the expected activity within {timeout}s; saw: "
                    + "; ".join(f"{r.kind} {r.conversation_id} {r.activity_id}" for r in self.records[since:])
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                pass

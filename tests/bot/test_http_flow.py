"""Through the real HTTP endpoint: an agent goes from "set phone" to a finished change and sees each outcome."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import aiohttp

from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.persistence.store import new_request_id
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    LYNNE_ID,
    BotHarness,
    Database,
    MakeBot,
    action_data,
    card_text,
    graph_writes,
    input_ids,
)


async def test_health_is_alive_and_ready_with_database_and_graph_token(bot: BotHarness) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(bot.server.make_url("/healthz")) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "alive"
        async with http.get(bot.server.make_url("/readyz")) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            assert body["checks"] == {"database": "ok", "graph_token": "ok"}


async def test_readyz_names_the_graph_token_when_the_token_endpoint_refuses(bot: BotHarness) -> None:
    app = bot.sim.tenant.app("5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f")
    app.client_secret = "rotated-elsewhere"
    runtime_graph = bot.server.app[__import__("app").RUNTIME].graph
    await runtime_graph.tokens.invalidate()
    async with aiohttp.ClientSession() as http:
        async with http.get(bot.server.make_url("/readyz")) as resp:
            body = await resp.json()
    assert resp.status == 503
    assert body["failed"] == ["graph_token"]
    assert body["checks"]["database"] == "ok"


async def test_set_phone_opens_the_request_form(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX, "set phone")
    assert {
        "targetUserId",
        "targetUserText",
        "number",
        "action",
        "notify",
        "language",
        "ticket",
    } <= input_ids(form.card)
    assert action_data(form.card, "mfa.review") is not None
    assert form.conversation_id == ALEX.conversation_id


async def test_agent_sets_a_new_number_and_sees_it_done(bot: BotHarness) -> None:
    review, confirm, final = await bot.run_change(
        ALEX,
        {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "action": "set"},
    )
    # the agent's own confirmation card: the number they typed, in full, as Graph will store it
    assert "Diego" in review.text and "+49 1705556666" in review.text
    assert "***6666" not in review.text
    text = card_text(final.card)
    assert "***6666" in text and "5556666" not in text.replace(" ", "")  # the outcome masks it again
    writes = graph_writes(bot.sim)
    assert len(writes) == 1 and writes[0].method == "POST" and DIEGO_ID in writes[0].path
    data = action_data(review.card, "mfa.confirm")
    assert data is not None
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.COMPLETED
    assert req.outcome and req.outcome["outcome"] == "added"
    events = await bot.audit_events(req.id)
    assert events[0] == "requested" and "confirmed" in events and events[-1] == "completed"
    _ = LYNNE_ID


async def test_graceful_shutdown_lets_a_running_change_finish(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    review = await bot.review(
        ALEX, form, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666"}
    )
    bot.sim.behaviour.update({"latency_ms": 300})
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirm.status == 200
    data = action_data(review.card, "mfa.confirm")
    assert data is not None
    await bot.server.close()  # SIGTERM path: stop taking work, wait for running changes, then close clients
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.COMPLETED
    assert req.outcome and req.outcome["outcome"] == "added"
    assert len(graph_writes(bot.sim)) == 1


async def test_playground_style_connector_path_receives_the_answer(bot: BotHarness) -> None:
    mark = bot.connector.mark()
    reply = await bot.message(ALEX, "set phone", serviceUrl=bot.connector.playground_service_url)
    assert reply.status in (200, 201)
    rec = await bot.connector.wait_for(lambda rs: next((r for r in rs if r.card), None), since=mark)
    assert "targetUserText" in input_ids(rec.card)


async def test_after_a_restart_an_approved_request_nobody_started_is_run_once(
    make_bot: MakeBot, database: Database
) -> None:
    store = await database.open()
    req = await store.create_request(
        ChangeRequest(
            id=new_request_id(),
            revision=1,
            state=RequestState.DRAFT,
            action="set",
            requester=Person(ALEX.aad, ALEX.name),
            target_id=DIEGO_ID,
            target_upn="diego.siciliani@contoso.example",
            target_display_name="Diego Siciliani",
            number="+491705556666",
        ),
        actor=Person(ALEX.aad, ALEX.name),
    )
    req = await store.transition(
        req.id, 1, RequestState.APPROVED, actor=Person(ALEX.aad, ALEX.name), event="confirmed"
    )
    later = datetime.now(UTC) + timedelta(hours=1)
    bot = await make_bot(store=store, clock=lambda: later)  # the restarted bot finds it at start-up
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        current = await store.get_request(req.id)
        if current is not None and current.state.is_final:
            break
        await asyncio.sleep(0.05)
    assert current is not None and current.state is RequestState.COMPLETED
    assert current.outcome and current.outcome["outcome"] == "added"
    assert len(graph_writes(bot.sim)) == 1

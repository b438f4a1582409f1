"""Fixtures for the reliability families: the real bot (create_app over HTTP, CloudAdapter, store) with the Graph
simulator behind it and the fake Bot Connector in front of it, plus knobs the bot tests do not need: a Graph stack
with short timeouts (fault tests), inbound authentication with our own keys (see test_inbound_auth.py), and the
figures each family reports to docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.desk.graph_services import GraphServices
from bot.settings import BotSettings
from graph.client import RetryPolicy
from tests.bot.conftest import (  # noqa: F401  (fixtures re-exported for this folder)
    BotHarness,
    BotLauncher,
    connector,
)
from tests.bot.db_fixtures import Database, database  # noqa: F401
from tests.bot.fake_connector import FakeConnector

ROOT = Path(__file__).resolve().parents[2]
FIGURES_DIR = Path(os.environ.get("RELIABILITY_FIGURES_DIR", ROOT / "test-artifacts" / "reliability"))

# Short enough that a held connection or a storm of 503s turns into an outcome within seconds, long enough
# for the simulator on a busy 2-core machine.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.1, deadline=6.0)
FAST_TIMEOUT = httpx.Timeout(connect=2.0, read=2.0, write=2.0, pool=2.0)


async def fast_graph(settings: BotSettings, *, retry: RetryPolicy = FAST_RETRY) -> GraphServices:
    """The same Graph stack GraphServices.create builds, with short timeouts and a short retry deadline."""
    from graph.auth import TokenProvider
    from graph.client import create_graph_client
    from graph.directory import Directory
    from graph.notify import Notifier
    from graph.workflow import PhoneMfaWorkflow, WorkflowSettings

    gs = settings.graph
    assert gs is not None
    tokens = await TokenProvider.create(gs, http_timeout=2.0)
    client, close = await create_graph_client(gs, tokens=tokens, http_timeout=FAST_TIMEOUT, retry=retry)
    directory = Directory(client, app_id=gs.client_id)
    notifier = Notifier.from_settings(gs, client) if gs.mail_sender else None
    workflow = PhoneMfaWorkflow(
        client, directory, WorkflowSettings.from_graph_settings(gs), notifier=notifier
    )
    return GraphServices(client=client, directory=directory, workflow=workflow, tokens=tokens, _close=close)


MakeRBot = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def make_rbot(
    sim: Any,
    sim_env: dict[str, str],
    connector: FakeConnector,  # noqa: F811
    database: Database,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[MakeRBot]:
    """make_rbot(fast=False, store=None, **env): one bot instance on the test's database."""
    launcher = BotLauncher(sim, sim_env, connector, database, tmp_path)
    graphs: list[GraphServices] = []

    async def start(*, fast: bool = False, store: Any | None = None, **overrides: str) -> BotHarness:
        settings = launcher.settings(**overrides)
        graph = None
        if fast:
            graph = await fast_graph(settings)
            graphs.append(graph)
        return await launcher.serve(settings, store=store, graph=graph)

    try:
        yield start
    finally:
        await launcher.close()
        for graph in graphs:
            await graph.close()


@pytest.fixture
async def rbot(make_rbot: MakeRBot) -> BotHarness:
    return await make_rbot()


def record_figures(family: str, figures: dict[str, Any]) -> None:
    """Keep a family's figures of the last run (test-artifacts/reliability/<family>.json, not committed)."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{family}.json").write_text(
        json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n"
    )
    print(f"\n[{family}] " + json.dumps(figures, sort_keys=True, default=str))


async def audit_rows(store: Any, after_id: int = 0) -> list[dict[str, Any]]:
    """Audit rows with id > after_id, oldest first, read straight from the table the store writes."""
    from sqlalchemy import select

    from bot.persistence.store import AUDIT

    async with store._read() as conn:  # noqa: SLF001  (a test reads the table it checks)
        rows = (
            await conn.execute(select(AUDIT).where(AUDIT.c.id > after_id).order_by(AUDIT.c.id))
        ).mappings()
        return [dict(r) for r in rows]


async def last_audit_id(store: Any) -> int:
    from sqlalchemy import func, select

    from bot.persistence.store import AUDIT

    async with store._read() as conn:  # noqa: SLF001
        return int(await conn.scalar(select(func.max(AUDIT.c.id))) or 0)


async def wait_final(store: Any, request_id: str, timeout: float = 20.0) -> Any:
    """Poll (bounded) until the request reaches a final state; returns it."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        req = await store.get_request(request_id)
        if req is not None and req.state.is_final:
            return req
        if time.monotonic() > deadline:
            raise AssertionError(
                f"request {request_id} did not finish within {timeout}s (state {req and req.state})"
            )
        await asyncio.sleep(0.02)

"""Family 7, load: concurrent helpdesk agents run whole requests (review → confirm → the final card) through the
bot's HTTP endpoint and the fake Bot Connector, against the Graph simulator with realistic latency.

    python -m tests.reliability.load                         # 50 agents for 60 s, Graph latency 60 ms
    python -m tests.reliability.load --agents 20 --seconds 10 --latency-ms 100 [--database-url URL]

Prints card-action answer times (p50, p99, max), errors, completed requests and memory (RSS at the start, after
warm-up and at the end). Exit code 1 when p99 ≥ 300 ms, any answer took > 3 s, there was an error, or memory grew
by more than --max-growth-mb after warm-up. tests/reliability/test_load.py runs a short version in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [
    "00000000-0000-0000-0000-0000000000c1",  # Lynne
    "00000000-0000-0000-0000-0000000000c2",  # Diego
    "00000000-0000-0000-0000-0000000000c4",  # Johanna
    "00000000-0000-0000-0000-0000000000c6",  # Lee
    "00000000-0000-0000-0000-0000000000c3",  # Nestor
]


@dataclass
class LoadResult:
    agents: int
    seconds: float
    latency_ms: int
    answers_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        if not self.answers_ms:
            return 0.0
        ordered = sorted(self.answers_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def growth_mb(self) -> float:
        return self.rss_mb.get("end", 0.0) - self.rss_mb.get("warm", 0.0)

    def figures(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "seconds": self.seconds,
            "graph_latency_ms": self.latency_ms,
            "card_actions": len(self.answers_ms),
            "answer_p50_ms": round(self.percentile(50), 1),
            "answer_p99_ms": round(self.percentile(99), 1),
            "answer_max_ms": round(max(self.answers_ms, default=0.0), 1),
            "requests_completed": self.completed,
            "outcomes": self.outcomes,
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "rss_mb": self.rss_mb,
            "rss_growth_after_warmup_mb": round(self.growth_mb, 1),
        }

    def failures(self, max_growth_mb: float) -> list[str]:
        out = []
        if self.percentile(99) >= 300:
            out.append(f"p99 {self.percentile(99):.0f} ms ≥ 300 ms")
        if max(self.answers_ms, default=0.0) > 3000:
            out.append("an answer took more than 3 s")
        if self.errors:
            out.append(f"{len(self.errors)} errors")
        if self.growth_mb > max_growth_mb:
            out.append(f"memory grew {self.growth_mb:.1f} MB after warm-up")
        if not self.completed:
            out.append("no request completed")
        return out


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 1024 / 1024


async def run_load(
    *,
    agents: int = 50,
    seconds: float = 60.0,
    latency_ms: int = 60,
    database_url: str | None = None,
    data_dir: Path | None = None,
    cert_dir: Path | None = None,
    sim: Any | None = None,
) -> LoadResult:
    """Start simulator (unless given), fake connector, store and bot in this event loop; run the agents."""
    from aiohttp.test_utils import TestServer

    from app import create_app
    from bot.settings import BotSettings
    from bot.store import Store
    from graph.simulator import SimulatorThread, Tenant
    from graph.simulator.certs import ensure_certs
    from tests.bot.conftest import ALEX, BotHarness, action_data, bot_environ
    from tests.bot.fake_connector import FakeConnector

    tmp = tempfile.TemporaryDirectory(prefix="mfa-load-")
    base = Path(tmp.name)
    own_sim = sim is None
    if sim is None:
        certs = cert_dir or base / "certs"
        ensure_certs(certs)
        # Graph is another service: the simulator runs in its own thread and event loop, not in the bot's.
        sim = SimulatorThread(Tenant.load(ROOT / "tests" / "fixtures" / "tenant_test.json"), cert_dir=certs)
        sim.start()
    sim.behaviour.update({"latency_ms": latency_ms})
    app_cfg = sim.tenant.app("5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f")
    sim_env = {
        "GRAPH_TENANT_ID": sim.tenant.tenant_id,
        "GRAPH_CLIENT_ID": app_cfg.client_id,
        "GRAPH_CLIENT_SECRET": app_cfg.client_secret,
        "GRAPH_AUTHORITY_HOST": sim.authority_host,
        "GRAPH_BASE_URL": sim.base_url,
        "SSL_CERT_FILE": sim.ca_file,
    }
    env = bot_environ(
        sim_env,
        str(data_dir or base / "data"),
        MAX_CHANGES_PER_REQUESTER_PER_HOUR="0",
        TARGET_COOLDOWN_MINUTES="0",
        ROLE_CACHE_SECONDS="300",
    )
    settings = BotSettings.from_env(env)
    connector = FakeConnector()
    await connector.start()
    schema = None
    if database_url:
        # a schema of its own, dropped afterwards: a load run leaves nothing in the database
        import asyncpg

        schema = f"load_{random.randrange(16**10):010x}"
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.close()
    store = await Store.open(database_url, data_dir=Path(env["DATA_DIR"]), schema=schema)
    server = TestServer(create_app(settings, store=store), host="127.0.0.1")
    await server.start_server()
    harness = BotHarness(server, connector, settings, store, sim)
    result = LoadResult(agents=agents, seconds=seconds, latency_ms=latency_ms)
    card_ids = itertools.count(1)
    result.rss_mb["start"] = round(_rss_mb(), 1)
    warm_at = time.monotonic() + min(10.0, seconds / 3)
    stop_at = time.monotonic() + seconds
    rng = random.Random(7)
    pending: list[str] = []

    async def timed(verb: str, data: dict[str, Any], card_id: str) -> Any:
        started = time.monotonic()
        reply = await harness.invoke(ALEX, verb, data, reply_to_id=card_id)
        result.answers_ms.append((time.monotonic() - started) * 1000)
        if reply.status != 200 or reply.card is None:
            result.errors.append(f"{verb}: HTTP {reply.status} {str(reply.body)[:120]}")
            return None
        return reply

    async def agent(n: int) -> None:
        while time.monotonic() < stop_at:
            card_id = f"load-{next(card_ids)}"
            target = TARGETS[rng.randrange(len(TARGETS))]
            number = f"+49 170 {rng.randrange(1_000_000, 9_999_999)}"
            review = await timed(
                "mfa.review",
                {"verb": "mfa.review", "targetUserText": target, "number": number, "action": "set"},
                card_id,
            )
            data = action_data(review.card, "mfa.confirm") if review else None
            if review is not None and data is None:
                result.errors.append(f"review without a confirm button: {review.text[:120]}")
            if data is None:
                continue
            if await timed("mfa.confirm", data, card_id) is not None:
                pending.append(data["requestId"])

    async def sample_memory() -> None:
        while time.monotonic() < warm_at:
            await asyncio.sleep(0.2)
        result.rss_mb["warm"] = round(_rss_mb(), 1)

    try:
        sampler = asyncio.create_task(sample_memory())
        await asyncio.gather(*(agent(n) for n in range(agents)))
        await sampler
        # let the background work finish (bounded), then read the outcomes
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [await store.get_request(rid) for rid in pending]
            if all(r is not None and r.state.is_final for r in states):
                break
            await asyncio.sleep(0.2)
        for rid in pending:
            req = await store.get_request(rid)
            if req is None or not req.state.is_final:
                result.errors.append(f"request {rid} did not finish")
                continue
            result.completed += 1
            kind = (req.outcome or {}).get("outcome", "?")
            result.outcomes[kind] = result.outcomes.get(kind, 0) + 1
        result.rss_mb["end"] = round(_rss_mb(), 1)
    finally:
        await harness.close()
        await server.close()
        await store.close()
        if schema and database_url:
            import asyncpg

            conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
        await connector.stop()
        if own_sim:
            sim.stop()
        tmp.cleanup()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=int, default=60)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL; default: SQLite in a temp folder"
    )
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(
        run_load(
            agents=args.agents,
            seconds=args.seconds,
            latency_ms=args.latency_ms,
            database_url=args.database_url,
        )
    )
    print(json.dumps(result.figures(), indent=2))
    failures = result.failures(args.max_growth_mb)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

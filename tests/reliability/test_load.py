"""Family 7, load, short version for the suite (the full run: `make load` / `python -m tests.reliability.load`).

50 agents run whole requests for a few seconds through the endpoint, against the simulator (own thread, 60 ms
Graph latency). The criteria are the issue's: p99 card-action answer < 300 ms, none > 3 s, no errors, memory flat.
"""

from __future__ import annotations

import pytest

from tests.bot.db_fixtures import TEST_DATABASE_URL
from tests.reliability.conftest import record_figures
from tests.reliability.load import run_load

AGENTS = 50
SECONDS = 5.0


@pytest.mark.xfail(
    strict=True,
    reason="measured: with 50 agents the review answer waits for 5-6 Graph reads (p50 ~2 s, p99 5-7 s), and on "
    "SQLite concurrent writes hit 'database is locked' (errors, requests left in executing); see RELIABILITY.md",
)
async def test_fifty_agents_get_answers_within_the_budget_without_errors(tmp_path, sim_cert_dir) -> None:
    result = await run_load(
        agents=AGENTS, seconds=SECONDS, latency_ms=60, data_dir=tmp_path / "data", cert_dir=sim_cert_dir
    )
    record_figures("load_suite", result.figures())
    assert result.completed > 0
    assert result.failures(max_growth_mb=50.0) == []


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set")
@pytest.mark.postgres
async def test_fifty_agents_on_postgresql_lose_no_request(tmp_path, sim_cert_dir) -> None:
    result = await run_load(
        agents=AGENTS,
        seconds=SECONDS,
        latency_ms=60,
        data_dir=tmp_path / "data",
        cert_dir=sim_cert_dir,
        database_url=TEST_DATABASE_URL,
    )
    record_figures("load_suite_postgresql", result.figures())
    assert result.completed > 0
    assert result.errors == []
    assert max(result.answers_ms) < 30_000

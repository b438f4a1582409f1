"""Family 7, load, short version for the suite (the full run: `make load` / `python -m tests.reliability.load`).

50 agents run whole requests (review → confirm → the outcome on the card) for a few seconds through the endpoint,
against the simulator with 60 ms Graph latency; the simulator, the connector and the agents run in a process of
their own. The suite checks what holds on any machine, however busy: no errors, every confirmed request finished
exactly once (one start and one result in its audit trail, the outcome on the agent's card), memory flat. The
answer times are recorded (test-artifacts/reliability) but not asserted: the answer-time budget (p99 < 300 ms,
none > 3 s) is judged by `make load` on a quiet machine, which prints the figures as its last line.
"""

from __future__ import annotations

import pytest

from tests.bot.db_fixtures import TEST_DATABASE_URL
from tests.reliability.conftest import record_figures
from tests.reliability.load import LoadResult, run_load

AGENTS = 50
SECONDS = 9.0


def _assert_correct(result: LoadResult) -> None:
    assert result.completed > 0
    assert result.final_cards == result.completed, "every confirmed request showed its outcome on the card"
    assert result.errors == []
    assert result.correctness_failures(max_growth_mb=50.0) == []


async def test_fifty_agents_finish_every_request_exactly_once_without_errors(tmp_path, sim_cert_dir) -> None:
    result = await run_load(
        agents=AGENTS, seconds=SECONDS, latency_ms=60, data_dir=tmp_path / "data", cert_dir=sim_cert_dir
    )
    record_figures("load_suite", result.figures())
    _assert_correct(result)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set")
@pytest.mark.postgres
async def test_fifty_agents_on_postgresql_finish_every_request_exactly_once_without_errors(
    tmp_path, sim_cert_dir
) -> None:
    result = await run_load(
        agents=AGENTS,
        seconds=SECONDS,
        latency_ms=60,
        data_dir=tmp_path / "data",
        cert_dir=sim_cert_dir,
        database_url=TEST_DATABASE_URL,
    )
    record_figures("load_suite_postgresql", result.figures())
    _assert_correct(result)

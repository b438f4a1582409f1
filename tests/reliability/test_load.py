"""Family 7, load, short version for the suite (the full run: `make load` / `python -m tests.reliability.load`).

50 agents run whole requests (review → confirm → the outcome on the card) for a few seconds through the endpoint,
against the simulator with 60 ms Graph latency; the simulator, the connector and the agents run in a process of
their own. The criteria are the answer-time budget's: p99 card-action answer < 300 ms over every card action of the run, none
> 3 s, no errors, every confirmed request finished, memory flat.
"""

from __future__ import annotations

import pytest

from tests.bot.db_fixtures import TEST_DATABASE_URL
from tests.reliability.conftest import record_figures
from tests.reliability.load import LoadResult, run_load

AGENTS = 50
SECONDS = 9.0


def _assert_within_budget(result: LoadResult) -> None:
    assert result.completed > 0
    assert result.final_cards == result.completed, "every confirmed request showed its outcome on the card"
    assert result.errors == []
    assert result.failures(max_growth_mb=50.0) == []


async def test_fifty_agents_get_answers_within_the_budget_without_errors(tmp_path, sim_cert_dir) -> None:
    result = await run_load(
        agents=AGENTS, seconds=SECONDS, latency_ms=60, data_dir=tmp_path / "data", cert_dir=sim_cert_dir
    )
    record_figures("load_suite", result.figures())
    _assert_within_budget(result)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set")
@pytest.mark.postgres
async def test_fifty_agents_on_postgresql_get_answers_within_the_budget_without_errors(
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
    _assert_within_budget(result)

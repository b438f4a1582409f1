"""A run whose result meets a database that cannot take it right now (SQLite locked by another writer) records the
result once the database is back: the request never stays in "executing" and the card shows the outcome."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest

from bot.persistence.models import RequestState
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    MakeBot,
    _is_progress,
    action_data,
    card_text,
    graph_writes,
)
from tests.bot.db_fixtures import Database
from tests.bot.fake_connector import Recorded

RESULT_REFUSED = "recording the outcome of"  # bot.execution's warning when the database refused the result


class _ReleaseWhenRefused(logging.Handler):
    """Calls `release` at the first warning that the database refused the result: the lock is held exactly until
    the result has met it, however long the run takes on a busy machine."""

    def __init__(self, release: Any) -> None:
        super().__init__(logging.WARNING)
        self._release = release
        self.refused: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(RESULT_REFUSED) and "trying again" in message:
            self.refused.append(message)
            if len(self.refused) == 1:
                self._release()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_result_the_locked_database_refused_is_recorded_once_it_is_free(
    make_bot: MakeBot, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    store = await database.open(busy_timeout=0.3)
    bot = await make_bot(store=store)
    locker = sqlite3.connect(database.sqlite_path, timeout=0.1, isolation_level=None)
    locked: list[bool] = []

    def release() -> None:
        if locker.in_transaction:
            locker.execute("ROLLBACK")

    async def lock_when_the_run_starts(rec: Recorded) -> None:
        # the progress card comes after execution_started was written and before the workflow's result
        if not locked and rec.card and _is_progress(rec.card):
            locker.execute("BEGIN EXCLUSIVE")
            locked.append(True)

    refused = _ReleaseWhenRefused(release)
    execution_log = logging.getLogger("bot.desk.execution")
    execution_log.addHandler(refused)
    bot.connector.on_update = lock_when_the_run_starts
    caplog.set_level(logging.WARNING, logger="bot.desk.execution")
    try:
        review, confirm, final = await bot.run_change(
            ALEX, {"targetUserText": DIEGO_ID, "number": "+49 170 5557777", "action": "set"}
        )
    finally:
        bot.connector.on_update = None
        execution_log.removeHandler(refused)
        release()
        locker.close()
    assert locked, "the database was locked while the change ran"
    assert refused.refused, "the first attempt to record the result met the lock"
    assert confirm.status == 200
    request_id = _request_id(review.card or {})
    req = await bot.store.get_request(request_id)
    assert req is not None and req.state is RequestState.COMPLETED
    assert req.outcome and req.outcome["outcome"] in ("added", "updated")
    events = await bot.audit_events(request_id)
    assert events.count("execution_started") == 1 and events.count("completed") == 1
    assert "failed" not in events
    assert len(graph_writes(bot.sim)) == 1
    assert "Diego" in card_text(final.card)


def _request_id(card: dict[str, Any]) -> str:
    data = action_data(card, "mfa.confirm")
    assert data is not None
    return str(data["requestId"])

"""Family 6, database faults: SQLite locked by another writer; PostgreSQL restarted during a run. The bot answers
with a clear card (never a 500), recovers on its own, and loses nothing that it confirmed."""

from __future__ import annotations

import asyncio
import glob
import os
import sqlite3
import subprocess
import time

import asyncpg
import pytest

from tests.bot.conftest import ALEX, action_data, graph_writes
from tests.bot.db_fixtures import TEST_DATABASE_URL, Database
from tests.reliability.conftest import MakeRBot, record_figures, wait_final

REVIEW = {
    "verb": "mfa.review",
    "targetUserText": "diego.siciliani@contoso.example",
    "number": "+49 170 5556666",
}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_locked_sqlite_database_gets_a_clear_answer_and_the_bot_recovers(
    make_rbot: MakeRBot, database: Database
) -> None:
    store = await database.open(busy_timeout=0.3)
    bot = await make_rbot(store=store)
    first = await bot.invoke(ALEX, "mfa.review", REVIEW)
    data = action_data(first.card, "mfa.confirm")
    assert data
    locker = sqlite3.connect(database.sqlite_path, timeout=0.1, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        locked = await bot.invoke(ALEX, "mfa.confirm", data)
        assert locked.status == 200 and locked.card is not None and locked.text.strip()
        assert action_data(locked.card, "mfa.confirm") is None or "again" in locked.text.lower()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert graph_writes(bot.sim) == []
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state.value == "draft" and req.revision == data["rev"]
    again = await bot.invoke(ALEX, "mfa.confirm", data)
    assert again.status == 200
    done = await wait_final(bot.store, data["requestId"])
    assert done.outcome and done.outcome["outcome"] == "added"
    assert len(graph_writes(bot.sim)) == 1
    events = [e.event for e in await bot.store.request_audit(done.id)]
    assert events.count("confirmed") == 1 and events.count("completed") == 1
    record_figures("database_sqlite_locked", {"locked_answer": "clear card", "recovered": True, "writes": 1})


def _restart_postgresql() -> None:
    cluster = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def _wait_postgresql_up(timeout: float = 60.0) -> None:
    assert TEST_DATABASE_URL
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(
                TEST_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
            )
            await conn.close()
            return
        except Exception:
            if time.monotonic() > deadline:
                cluster = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))[-1]
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"],
                    capture_output=True,
                    timeout=60,
                )
                raise
            await asyncio.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set")
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_postgresql_restarted_during_a_run_loses_nothing(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(MAX_CHANGES_PER_REQUESTER_PER_HOUR="0", TARGET_COOLDOWN_MINUTES="0")
    first = await bot.invoke(ALEX, "mfa.review", REVIEW)
    data = action_data(first.card, "mfa.confirm")
    assert data
    answers = []
    try:
        await asyncio.to_thread(_restart_postgresql)
        # right after the restart the pool's connections are dead: the bot must answer clearly, then recover
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = await bot.invoke(ALEX, "mfa.confirm", data)
            answers.append(reply.status)
            assert reply.status == 200 and reply.card is not None, reply
            req = await bot.store.get_request(data["requestId"])
            if req is not None and req.state.value != "draft":
                break
            await asyncio.sleep(0.2)
    finally:
        await _wait_postgresql_up()
    done = await wait_final(bot.store, data["requestId"])
    assert done.outcome and done.outcome["outcome"] == "added"
    assert len(graph_writes(bot.sim)) == 1
    events = [e.event for e in await bot.store.request_audit(done.id)]
    assert events[0] == "requested" and events.count("confirmed") == 1 and events.count("completed") == 1
    record_figures("database_postgresql_restart", {"confirm_attempts": len(answers), "statuses": answers})

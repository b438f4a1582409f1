"""The audit trail is hash-chained: `python -m bot.persistence.audit verify` finds a deleted, edited or reordered row (even
after the database owner dropped the append-only triggers) and names it; concurrent writers keep one chain.

Each case writes rows through the store, tampers with the table as the database owner (the bot's own database
user), then runs the command as an operator would, in its own process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bot.persistence.audit_chain import GENESIS, row_hash
from bot.persistence.models import Person, RequestState
from bot.persistence.store import AUDIT, MIGRATIONS_DIR, Store
from tests.bot.db_fixtures import Database, database_fixture, store_fixture  # noqa: F401 (fixtures)
from tests.bot.test_store import AGENT, make_request

ROOT = Path(__file__).resolve().parents[2]
ROWS = 8


@dataclass
class Verified:
    code: int
    report: dict[str, Any] | None
    stdout: str
    stderr: str

    @property
    def broken(self) -> dict[str, Any]:
        assert self.report is not None and self.report["broken"] is not None, (self.stdout, self.stderr)
        return self.report["broken"]


async def verify(
    database: Database,
    *args: str,
    json_output: bool = True,
    env: dict[str, str] | None = None,
    on_test_database: bool = True,
) -> Verified:
    """`python -m bot.persistence.audit verify` on the test's database (SQLite: through DATA_DIR, as the bot finds it), as its
    own process."""
    argv = ["verify", *args]
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    environ["DATA_DIR"] = str(database.data_dir)
    if database.url is not None and on_test_database:
        argv += ["--database-url", database.url, "--schema", str(database.schema)]
    if json_output:
        argv.append("--json")
    environ.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.persistence.audit",
        *argv,
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    stdout, stderr = out.decode(), err.decode()
    report = json.loads(stdout) if json_output and stdout.strip() else None
    assert process.returncode is not None
    return Verified(process.returncode, report, stdout, stderr)


async def write_rows(store: Store, count: int = ROWS) -> None:
    """Rows through every way the store writes them: a plain audit, a new request, a transition."""
    req = await store.create_request(make_request(), actor=AGENT)  # row 1
    await store.transition(req.id, req.revision, RequestState.CANCELLED, actor=AGENT, event="cancelled")  # 2
    for n in range(3, count + 1):
        await store.audit("refused", actor=AGENT, target_id=f"target-{n}", details={"n": n, "reason": "test"})


async def as_owner(store: Store, *statements: Any) -> None:
    """Drop the append-only triggers (the bot's database user owns the table) and run `statements` (SQL text or
    SQLAlchemy statements)."""
    drop = (
        [
            "DROP TRIGGER IF EXISTS audit_no_update_delete ON audit",
            "DROP TRIGGER IF EXISTS audit_no_truncate ON audit",
        ]
        if store.dialect == "postgresql"
        else ["DROP TRIGGER IF EXISTS audit_no_update", "DROP TRIGGER IF EXISTS audit_no_delete"]
    )
    async with store.engine.begin() as conn:
        for statement in [*drop, *statements]:
            await conn.execute(text(statement) if isinstance(statement, str) else statement)


async def audit_rows(store: Store) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        result = await conn.execute(text("SELECT id, prev_hash, hash FROM audit ORDER BY id"))
        return [dict(r) for r in result.mappings()]


# ---------------------------------------------------------------------------------------------------------------


async def test_an_untouched_trail_verifies_intact_and_names_its_newest_row(
    database: Database, store: Store
) -> None:
    await write_rows(store)
    rows = await audit_rows(store)
    assert [r["id"] for r in rows] == list(range(1, ROWS + 1))
    assert rows[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))

    result = await verify(database)
    assert result.code == 0, (result.stdout, result.stderr)
    assert result.report == {
        "intact": True,
        "rows": ROWS,
        "first_id": 1,
        "head": {"id": ROWS, "hash": rows[-1]["hash"]},
        "broken": None,
    }
    text_result = await verify(database, json_output=False)
    assert text_result.code == 0
    assert f"intact: {ROWS} rows" in text_result.stdout and rows[-1]["hash"] in text_result.stdout


async def test_an_empty_trail_is_intact(database: Database, store: Store) -> None:
    result = await verify(database)
    assert result.code == 0 and result.report is not None
    assert result.report["rows"] == 0 and result.report["broken"] is None


async def test_a_deleted_row_is_found_and_named(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(store, "DELETE FROM audit WHERE id = 4")
    result = await verify(database)
    assert result.code == 1
    assert result.broken["row_id"] == 4 and result.broken["problem"] == "missing"
    assert "row 4 is missing" in result.broken["detail"]


async def test_deleted_first_rows_are_found(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(store, "DELETE FROM audit WHERE id IN (1, 2)")
    result = await verify(database)
    assert result.code == 1
    assert result.broken["problem"] == "missing" and result.broken["row_id"] == 2
    assert "row 3" in result.broken["detail"]


async def test_an_edited_row_is_found_and_named(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(
        store, """UPDATE audit SET details = '{"n": 5, "reason": "nothing to see"}' WHERE id = 5"""
    )
    result = await verify(database)
    assert result.code == 1
    assert result.broken == {
        "row_id": 5,
        "problem": "content_edited",
        "detail": "row 5's content does not match its hash: it was edited",
    }


async def test_an_edited_actor_is_found(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(store, "UPDATE audit SET actor_name = 'Someone Else', actor_aad_id = 'x' WHERE id = 2")
    result = await verify(database)
    assert result.code == 1
    assert (result.broken["row_id"], result.broken["problem"]) == (2, "content_edited")


async def test_an_edited_hash_is_found_and_named(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(store, f"UPDATE audit SET hash = '{'f' * 64}' WHERE id = 6")
    result = await verify(database)
    assert result.code == 1
    assert (result.broken["row_id"], result.broken["problem"]) == (6, "hash_edited")


async def test_two_rows_with_swapped_ids_are_found_as_reordered(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(
        store,
        "UPDATE audit SET id = -3 WHERE id = 3",
        "UPDATE audit SET id = 3 WHERE id = 6",
        "UPDATE audit SET id = 6 WHERE id = -3",
    )
    result = await verify(database)
    assert result.code == 1
    assert (result.broken["row_id"], result.broken["problem"]) == (3, "reordered")
    assert "written as row 6" in result.broken["detail"]


async def test_two_rows_with_swapped_times_are_found_as_reordered(database: Database, store: Store) -> None:
    await write_rows(store)
    async with store.engine.connect() as conn:
        at = {r.id: r.at for r in await conn.execute(select(AUDIT.c.id, AUDIT.c.at))}
    await as_owner(
        store,
        update(AUDIT).where(AUDIT.c.id == 2).values(at=at[7]),
        update(AUDIT).where(AUDIT.c.id == 7).values(at=at[2]),
    )
    result = await verify(database)
    assert result.code == 1
    assert (result.broken["row_id"], result.broken["problem"]) == (2, "reordered")
    assert "time of row 7" in result.broken["detail"]


async def test_a_row_edited_and_rehashed_is_found_by_the_row_after_it(
    database: Database, store: Store
) -> None:
    await write_rows(store)
    async with store.engine.connect() as conn:
        row = dict((await conn.execute(select(AUDIT).where(AUDIT.c.id == 4))).mappings().one())
    details = {"n": 4, "reason": "rewritten"}
    forged = row_hash({**row, "details": details}, row["prev_hash"])  # anyone can compute SHA-256
    await as_owner(store, update(AUDIT).where(AUDIT.c.id == 4).values(details=details, hash=forged))
    result = await verify(database)
    assert result.code == 1
    assert (result.broken["row_id"], result.broken["problem"]) == (4, "rewritten")
    assert "row 5 was chained to a different row 4" in result.broken["detail"]


async def test_a_row_inserted_around_the_store_is_found(database: Database, store: Store) -> None:
    await write_rows(store)
    await as_owner(
        store,
        "INSERT INTO audit (id, at, event, details) VALUES (9, CURRENT_TIMESTAMP, 'completed', '{}')",
    )
    result = await verify(database)
    assert result.code == 1
    assert (result.broken["row_id"], result.broken["problem"]) == (9, "not_chained")


async def test_bad_usage_or_settings_exit_2_and_say_why(
    database: Database, store: Store, tmp_path: Path
) -> None:
    unknown = await verify(database, "--what", json_output=False, on_test_database=False)
    assert unknown.code == 2 and "--what" in unknown.stderr
    bad_url = await verify(
        database, "--database-url", "mysql://db/x", json_output=False, on_test_database=False
    )
    assert bad_url.code == 2 and "DATABASE_URL" in bad_url.stderr
    nothing = await verify(
        database, json_output=False, env={"DATA_DIR": str(tmp_path / "empty")}, on_test_database=False
    )
    assert nothing.code == 2 and "no database file" in nothing.stderr
    assert not (tmp_path / "empty").exists()  # the command never creates a database


# --- concurrent writers keep one chain --------------------------------------------------------------------------


async def test_concurrent_audits_and_transitions_leave_one_intact_chain(
    database: Database, store: Store
) -> None:
    second = await database.open()  # another instance on the same database
    requests = [await store.create_request(make_request(), actor=AGENT) for _ in range(10)]

    async def decide(i: int) -> None:
        req = requests[i]
        instance = store if i % 2 else second
        await instance.transition(
            req.id, req.revision, RequestState.CANCELLED, actor=AGENT, event="cancelled"
        )

    async def refuse(i: int) -> None:
        instance = store if i % 2 else second
        await instance.audit(
            "refused", actor=Person(aad_object_id=f"a-{i}", name=f"Agent {i}"), details={"i": i}
        )

    await asyncio.gather(*(decide(i) for i in range(10)), *(refuse(i) for i in range(40)))

    rows = await audit_rows(store)
    assert len(rows) == 10 + 10 + 40
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    result = await verify(database)
    assert result.code == 0, result.report
    assert result.report is not None and result.report["rows"] == len(rows)


# --- a database that already has rows is chained when it is migrated ------------------------------------------


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_rows_written_before_the_chain_are_chained_at_migration(database: Database) -> None:
    from bot.persistence.store import database_url

    url = database_url(database.url, database.data_dir)
    database.data_dir.mkdir(parents=True, exist_ok=True)
    connect_args = {"server_settings": {"search_path": database.schema}} if database.schema else {}
    engine = create_async_engine(url, connect_args=connect_args)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, "0001")
            for n in range(1, 4):
                await conn.execute(
                    insert(AUDIT).values(
                        at=datetime(2026, 1, n, 10, 0, 0, 123456, tzinfo=UTC),
                        event="requested",
                        target_id=f"t-{n}",
                        details={"n": n},
                    )
                )
    finally:
        await engine.dispose()

    store = await database.open()  # migrates to head: the three old rows are chained
    rows = await audit_rows(store)
    assert [r["prev_hash"] for r in rows][:1] == [GENESIS] and all(r["hash"] for r in rows)
    await store.audit("refused", actor=AGENT, details={"after": "migration"})
    result = await verify(database)
    assert result.code == 0, result.report
    assert result.report is not None and result.report["rows"] == 4

    # and the triggers are back after the migration
    with pytest.raises(Exception, match="append-only"):
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE audit SET event = 'x' WHERE id = 1"))

"""Database fixtures shared by the bot's tests: `from tests.bot.db_fixtures import database_fixture, store_fixture`
(or `pytest_plugins = ["tests.bot.db_fixtures"]` in the root conftest) gives tests the `database` and `store` fixtures.

`database` is parametrized over SQLite (a fresh data folder under tmp_path, the embedded default) and PostgreSQL
(when TEST_DATABASE_URL is set: a fresh schema per test, selected through search_path, dropped afterwards), so every
test that uses it runs on both. `store` is a Store opened (migrated) on it; `database.open()` opens more instances
on the same database (a second bot instance).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.persistence.store import Store

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")

needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=[pytest.mark.postgres, needs_postgres]),
]


def _plain_dsn(url: str) -> str:
    """asyncpg wants postgresql://…; the store accepts the SQLAlchemy spelling too."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass
class Database:
    backend: str  # "sqlite" | "postgresql"
    url: str | None  # None: the embedded SQLite file under data_dir
    data_dir: Path
    schema: str | None = None
    application_name: str = field(default_factory=lambda: f"mfa-test-{uuid.uuid4().hex[:12]}")
    _opened: list[Store] = field(default_factory=list)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "mfa-bot.sqlite3"

    async def open(self, **options: Any) -> Store:
        """Open another Store instance on this database (closed at the end of the test)."""
        options.setdefault("application_name", self.application_name)
        store = await Store.open(self.url, data_dir=self.data_dir, schema=self.schema, **options)
        self._opened.append(store)
        return store

    async def admin(self) -> asyncpg.Connection:
        """A plain PostgreSQL connection (outside the store) with search_path set to the test schema."""
        assert self.url is not None and self.schema is not None
        return await asyncpg.connect(_plain_dsn(self.url), server_settings={"search_path": self.schema})

    async def close_all(self) -> None:
        for store in self._opened:
            await store.close()
        self._opened.clear()


@pytest.fixture(name="database", params=BACKENDS)
async def database_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database("sqlite", None, tmp_path / "data")
        try:
            yield db
        finally:
            await db.close_all()
        return

    assert TEST_DATABASE_URL
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(_plain_dsn(TEST_DATABASE_URL))
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    db = Database("postgresql", TEST_DATABASE_URL, tmp_path / "data", schema)
    try:
        yield db
    finally:
        await db.close_all()
        conn = await asyncpg.connect(_plain_dsn(TEST_DATABASE_URL))
        try:
            await conn.execute("SET lock_timeout = '10s'")
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(name="store")
async def store_fixture(database: Database) -> AsyncIterator[Store]:
    yield await database.open()


# The fixtures under their pytest names too, for `from tests.bot.db_fixtures import database, store`.
database = database_fixture
store = store_fixture

"""The command that checks the audit trail's hash chain (bot/persistence/audit_chain.py).

Every audit row carries `prev_hash`, the hash of the row before it (GENESIS for the first row), and `hash`, the
SHA-256 (hex) of the canonical JSON of its own fields (id, at, event, request id, actor, target, details) and
`prev_hash`. The store writes each row with id = newest id + 1 under a lock (bot/persistence/store.py `_append_audit`), so the
chain is one line in id order. Changing, deleting or reordering a row, even by someone who dropped the database's
append-only triggers, breaks it at that row:

    python -m bot.persistence.audit verify [--database-url URL] [--schema NAME] [--json]

reads DATABASE_URL and DATA_DIR as the bot does (the option overrides DATABASE_URL), walks the chain in id order
and reports the first broken link: the row and what is wrong with it (content edited, hash edited, rows missing,
rows reordered, a row not written by the bot). Exit codes: 0 intact, 1 broken, 2 usage, settings or a database
that cannot be read. Nothing is written.

What the chain cannot show: rows removed from the end (the newest ones), or the chain rewritten from some row on
with every later hash recomputed (anyone who can write the table can compute SHA-256). Both show when the newest
row's id and hash, printed by every run, are compared with a copy kept outside the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.persistence.audit_chain import GENESIS, HASHED_FIELDS, row_hash
from bot.persistence.store import _SCHEMA_RE, AUDIT, database_url

EXIT_INTACT = 0
EXIT_BROKEN = 1
EXIT_USAGE = 2

_BATCH = 1000
_WINDOW = 50  # rows either side searched when telling a reorder from an edit


# ---------------------------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class Break:
    row_id: int
    problem: str  # content_edited | hash_edited | rewritten | missing | reordered | not_chained
    detail: str


@dataclass(frozen=True)
class Report:
    rows: int  # rows checked (up to and including the break)
    first_id: int | None
    head_id: int | None  # the newest row that was checked and found in order
    head_hash: str | None
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "first_id": self.first_id,
            "head": {"id": self.head_id, "hash": self.head_hash} if self.head_id is not None else None,
            "broken": asdict(self.broken) if self.broken else None,
        }

    def text(self) -> str:
        if self.broken is None:
            if not self.rows:
                return "audit trail intact: no rows yet"
            return (
                f"audit trail intact: {self.rows} rows (ids {self.first_id}-{self.head_id}); "
                f"newest row {self.head_id}, hash {self.head_hash}"
            )
        b = self.broken
        return f"audit trail BROKEN at row {b.row_id} ({b.problem}): {b.detail}"


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in HASHED_FIELDS}


async def verify(conn: Any) -> Report:
    """Walk the chain in id order on an open AsyncConnection; stop at the first broken link."""
    from sqlalchemy import select

    rows = 0
    first_id: int | None = None
    prev: Mapping[str, Any] | None = None
    after = None
    while True:
        statement = select(AUDIT).order_by(AUDIT.c.id).limit(_BATCH)
        if after is not None:
            statement = statement.where(AUDIT.c.id > after)
        batch = (await conn.execute(statement)).mappings().all()
        if not batch:
            break
        for row in batch:
            rows += 1
            if first_id is None:
                first_id = row["id"]
            broken = await _check(conn, row, prev)
            if broken is not None:
                return Report(
                    rows, first_id, prev["id"] if prev else None, prev["hash"] if prev else None, broken
                )
            prev = row
        after = batch[-1]["id"]
    return Report(rows, first_id, prev["id"] if prev else None, prev["hash"] if prev else None, None)


async def _check(conn: Any, row: Mapping[str, Any], prev: Mapping[str, Any] | None) -> Break | None:
    rid = row["id"]
    if not row["hash"] or not row["prev_hash"]:
        return Break(rid, "not_chained", f"row {rid} has no hash: it was not written by the bot")
    if row_hash(_fields(row), row["prev_hash"]) != row["hash"]:
        return await _explain_mismatch(conn, row)
    expected = prev["hash"] if prev is not None else GENESIS
    if row["prev_hash"] == expected:
        return None
    if prev is None:
        return Break(
            rid - 1,
            "missing",
            f"row {rid} is the first row but was chained to another row: the rows before it were deleted",
        )
    if rid > prev["id"] + 1:
        first, last = prev["id"] + 1, rid - 1
        which = f"row {first} is" if first == last else f"rows {first}-{last} are"
        return Break(first, "missing", f"{which} missing (deleted): row {rid} was chained to row {last}")
    return Break(
        prev["id"],
        "rewritten",
        f"row {rid} was chained to a different row {prev['id']}: row {prev['id']} was changed and its hash "
        "recomputed, or rows were deleted and the later ones renumbered",
    )


async def _explain_mismatch(conn: Any, row: Mapping[str, Any]) -> Break:
    """The row's content does not give its hash: tell a move (ids or times swapped) from an edit."""
    from sqlalchemy import select

    rid = row["id"]
    nearby = (
        (
            await conn.execute(
                select(AUDIT)
                .where(AUDIT.c.id >= rid - _WINDOW, AUDIT.c.id <= rid + _WINDOW, AUDIT.c.id != rid)
                .order_by(AUDIT.c.id)
            )
        )
        .mappings()
        .all()
    )
    fields = _fields(row)
    for other in nearby:
        if row_hash({**fields, "id": other["id"]}, row["prev_hash"]) == row["hash"]:
            return Break(
                rid,
                "reordered",
                f"row {rid} holds the entry written as row {other['id']}: the two rows' ids were swapped",
            )
    for other in nearby:
        if (
            other["at"] != row["at"]
            and row_hash({**fields, "at": other["at"]}, row["prev_hash"]) == row["hash"]
        ):
            return Break(
                rid,
                "reordered",
                f"row {rid} carries the time of row {other['id']}: the two rows' times were swapped",
            )
    following = next((o for o in nearby if o["id"] > rid), None)
    if following is not None and following["prev_hash"] == row_hash(fields, row["prev_hash"]):
        return Break(
            rid,
            "hash_edited",
            f"row {rid}'s stored hash was changed (its content is what row {following['id']} was chained to)",
        )
    return Break(rid, "content_edited", f"row {rid}'s content does not match its hash: it was edited")


# ---------------------------------------------------------------------------------------------------------------
# Command line


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.persistence.audit",
        description="Check the audit trail's hash chain (read only).",
        epilog="Exit codes: 0 intact; 1 broken (the first broken row is named); 2 usage, settings, or the "
        "database cannot be read.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="walk the chain and report the first broken link")
    check.add_argument(
        "--database-url",
        help="the bot's database (default: DATABASE_URL, else the SQLite file under DATA_DIR, as the bot uses)",
    )
    check.add_argument("--schema", help="PostgreSQL: the schema that holds the tables (default: search_path)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _target(url_value: str | None, data_dir: Path, schema: str | None) -> tuple[Any, dict[str, Any]]:
    """The database URL and connect arguments, checked before connecting (never creates a SQLite file)."""
    url = database_url(url_value, data_dir)
    if url.get_backend_name() == "sqlite":
        if schema:
            raise UsageError("--schema is for PostgreSQL")
        path = Path(url.database or "")
        if not path.is_file():
            raise UsageError(f"no database file at {path}")
        return url, {}
    connect_args: dict[str, Any] = {"timeout": 10}
    if schema:
        if not _SCHEMA_RE.match(schema):
            raise UsageError(f"invalid schema name {schema[:80]!r}")
        connect_args["server_settings"] = {"search_path": schema}
    return url, connect_args


async def _run(url: Any, connect_args: dict[str, Any]) -> Report:
    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, connect_args=connect_args, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: (
                    {c["name"] for c in inspect(sync).get_columns("audit")}
                    if inspect(sync).has_table("audit")
                    else set()
                )
            )
            if not columns:
                raise UsageError("the database has no audit table")
            if "hash" not in columns:
                raise UsageError("the audit table has no hash chain yet: start the bot once to migrate it")
            return await verify(conn)
    finally:
        await engine.dispose()


def main(argv: Sequence[str], environ: Mapping[str, str], out: TextIO | None = None) -> int:
    from bot.settings import SettingsError, database_settings

    out = out or sys.stdout
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, message already on stderr)
        return int(exit_.code or 0)
    env = dict(environ)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    try:
        url_value, data_dir = database_settings(env)
        url, connect_args = _target(url_value, data_dir, args.schema)
        report = asyncio.run(_run(url, connect_args))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001  (database unreachable, refused, ...: say so in one line)
        print(f"cannot verify: the database could not be read ({type(error).__name__})", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_json()), file=out)
    else:
        print(report.text(), file=out)
    return EXIT_INTACT if report.intact else EXIT_BROKEN


if __name__ == "__main__":
    import os

    sys.exit(main(sys.argv[1:], os.environ))

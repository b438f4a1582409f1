"""Persistence: change requests with a revision, the append-only audit trail, card and conversation references,
and the bot's conversation/dialog state, on SQLite (embedded default) or PostgreSQL (more than one instance).

Every state change is one conditional UPDATE on (id, revision, allowed from-states) with its audit row in the same
transaction, so two approvers, a retried invoke or two bot instances cannot both move a request. Transient database
failures (connection lost, "database is locked") surface as `StoreUnavailable`, which the bot turns into a clear
answer; the pool pings PostgreSQL connections before use, so the store recovers after a database restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.persistence.models import TRANSITIONS, CardRef, ChangeRequest, Person, RequestState
from bot.persistence.refs import new_ref, parse_ref
from graph.outcome import OutcomeKind

log = logging.getLogger(__name__)

SQLITE_FILE_NAME = "mfa-bot.sqlite3"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# ---------------------------------------------------------------------------------------------------------------
# Errors


class StoreError(Exception):
    """Base class of the store's own errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is busy right now (connection lost, locked). Try again later."""


class NotFound(StoreError, LookupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"request {request_id} does not exist")
        self.request_id = request_id


class StaleRevision(StoreError):
    """Someone else changed the request since the caller read it (the conditional update matched no row)."""

    def __init__(self, request_id: str, expected: int, actual: int) -> None:
        super().__init__(f"request {request_id} is at revision {actual}, not {expected}")
        self.request_id = request_id
        self.expected = expected
        self.actual = actual


class NoFreeRef(StoreError):
    """Every short reference drawn for a new request was taken (never in practice: see create_request)."""


class InvalidTransition(StoreError):
    def __init__(self, request_id: str, from_state: str | None, to_state: str) -> None:
        super().__init__(f"request {request_id}: {from_state} → {to_state} is not allowed")
        self.request_id = request_id
        self.from_state = RequestState(from_state) if from_state else None
        self.to_state = to_state


# ---------------------------------------------------------------------------------------------------------------
# Column types


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; TIMESTAMPTZ on PostgreSQL, naive UTC text on SQLite (sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    """A stored timestamp as aware UTC (SQLite gives it back naive, already in UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


_json_dumps = functools.partial(json.dumps, default=_json_default, ensure_ascii=False)

# ---------------------------------------------------------------------------------------------------------------
# Tables (bot/persistence/migrations/versions builds exactly these; a test compares them)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RequestRow(Base):
    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    requester_aad_id: Mapped[str] = mapped_column(String(64))
    requester_name: Mapped[str] = mapped_column(Text)
    requester_teams_id: Mapped[str | None] = mapped_column(Text)
    requester_upn: Mapped[str | None] = mapped_column(Text)
    target_id: Mapped[str] = mapped_column(String(64))
    target_upn: Mapped[str] = mapped_column(Text)
    target_display_name: Mapped[str] = mapped_column(Text)
    target_is_guest: Mapped[bool] = mapped_column(Boolean)
    target_privileged: Mapped[bool] = mapped_column(Boolean)
    privilege_reasons: Mapped[list[str]] = mapped_column(JSON)
    number: Mapped[str | None] = mapped_column(String(64))
    previous_number: Mapped[str | None] = mapped_column(String(64))
    notify: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str] = mapped_column(String(8))
    ticket: Mapped[str | None] = mapped_column(Text)
    approval_required: Mapped[bool] = mapped_column(Boolean)
    approver_group: Mapped[str | None] = mapped_column(String(16))
    decided_by_aad_id: Mapped[str | None] = mapped_column(String(64))
    decided_by_name: Mapped[str | None] = mapped_column(Text)
    decided_by_teams_id: Mapped[str | None] = mapped_column(Text)
    decided_by_upn: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome_kind: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    executing_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime
    )  # when it reached executing (rate limit)
    completed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime
    )  # when it reached completed (cool-down)
    # the short reference ("MFA-7K3Q9", bot/persistence/refs.py), unique. NULL is never written: create_request
    # always sets it and migration 0003 filled the older rows (the column stays nullable because SQLite cannot
    # make a column NOT NULL without rebuilding the table, and card_refs cascade from it)
    ref: Mapped[str | None] = mapped_column(String(16))
    verification: Mapped[str | None] = mapped_column(String(16))
    verifier_aad_id: Mapped[str | None] = mapped_column(String(64))
    verifier_name: Mapped[str | None] = mapped_column(Text)
    verifier_teams_id: Mapped[str | None] = mapped_column(Text)
    verifier_upn: Mapped[str | None] = mapped_column(Text)
    verified_by_aad_id: Mapped[str | None] = mapped_column(String(64))
    verified_by_name: Mapped[str | None] = mapped_column(Text)
    verified_by_teams_id: Mapped[str | None] = mapped_column(Text)
    verified_by_upn: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_requests_target_id", "target_id", "completed_at"),
        Index("ix_requests_requester", "requester_aad_id", "executing_at"),
        Index("ix_requests_state_expires_at", "state", "expires_at"),
        Index("ix_requests_ref", "ref", unique=True),
    )


class AuditRow(Base):
    """Append-only: the store has no update or delete for it, and a trigger refuses both in the database.
    Tamper-evident: each row is hash-chained to the one before it; `python -m bot.persistence.audit verify` checks the chain."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    actor_aad_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(Text)
    target_id: Mapped[str | None] = mapped_column(String(64))
    target_upn: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the hash chain (bot/persistence/audit.py): the previous row's hash (GENESIS for the first) and this row's own
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_target_id_at", "target_id", "at"),
        Index("ix_audit_request_id", "request_id"),
    )


class CardRefRow(Base):
    __tablename__ = "card_refs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), ForeignKey("requests.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    conversation_reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    activity_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_card_refs_request_id", "request_id"),)


class VerificationRow(Base):
    """The secret side of a request's caller verification: the one-time code (only its salted HMAC-SHA256), the
    wrong attempts, how it was sent, and where the card of the person asked went (updated in place)."""

    __tablename__ = "verifications"

    request_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    code_salt: Mapped[str | None] = mapped_column(String(64))
    code_hash: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer)
    sent_via: Mapped[str | None] = mapped_column(String(16))
    card_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TargetLockRow(Base):
    """A user whose phone methods the bot will not change until locked_until: they said "No, I did not ask"."""

    __tablename__ = "target_locks"

    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationRefRow(Base):
    __tablename__ = "conversation_refs"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BotStateRow(Base):
    """botbuilder Storage items as plain JSON (bot/teams/state_storage.py). JSON (not JSONB) on PostgreSQL: key order kept."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    document: Mapped[Any] = mapped_column(JSON)
    etag: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


REQUESTS = cast(Table, RequestRow.__table__)
AUDIT = cast(Table, AuditRow.__table__)
CARD_REFS = cast(Table, CardRefRow.__table__)
CONVERSATION_REFS = cast(Table, ConversationRefRow.__table__)
VERIFICATIONS = cast(Table, VerificationRow.__table__)
TARGET_LOCKS = cast(Table, TargetLockRow.__table__)
BOT_STATE = cast(Table, BotStateRow.__table__)

# ---------------------------------------------------------------------------------------------------------------
# Plain data returned by the store


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    event: str
    request_id: str | None
    actor_aad_id: str | None
    actor_name: str | None
    target_id: str | None
    target_upn: str | None
    details: dict[str, Any]
    request_ref: str | None = None  # the short reference of request_id (history only; None elsewhere)


_WAITING_STATES = frozenset({RequestState.AWAITING_APPROVAL, RequestState.AWAITING_VERIFICATION})

# Fields of ChangeRequest that update_draft/transition may set (id, ref, revision, state and times are the store's).
_SETTABLE = frozenset(
    f.name
    for f in dataclasses.fields(ChangeRequest)
    if f.name not in {"id", "ref", "revision", "state", "created_at", "updated_at"}
)

_PERSON_COLUMNS = ("aad_id", "name", "teams_id", "upn")


def _person_values(prefix: str, person: Person | None) -> dict[str, Any]:
    if person is None:
        return {f"{prefix}_{c}": None for c in _PERSON_COLUMNS}
    return {
        f"{prefix}_aad_id": person.aad_object_id,
        f"{prefix}_name": person.name,
        f"{prefix}_teams_id": person.teams_id,
        f"{prefix}_upn": person.upn,
    }


def _field_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """ChangeRequest field values → column values."""
    unknown = set(fields) - _SETTABLE
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a request")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "requester":
            if value is None:
                raise TypeError("requester cannot be removed")
            values.update(_person_values("requester", value))
        elif name in ("decided_by", "verifier", "verified_by"):
            values.update(_person_values(name, value))
        elif name == "privilege_reasons":
            values[name] = list(value or [])
        elif name == "outcome":
            values["outcome"] = value
            kind = value.get("outcome") if isinstance(value, Mapping) else None
            values["outcome_kind"] = str(kind) if kind is not None else None
        else:
            values[name] = value
    return values


def _row_person(m: Mapping[str, Any], prefix: str) -> Person:
    """The Person stored in the `prefix`_* columns (the inverse of _person_values)."""
    return Person(
        aad_object_id=m[f"{prefix}_aad_id"],
        name=m[f"{prefix}_name"] or "",
        teams_id=m[f"{prefix}_teams_id"],
        upn=m[f"{prefix}_upn"],
    )


def _row_to_request(row: Any) -> ChangeRequest:
    m = row._mapping
    decided_by = _row_person(m, "decided_by") if m["decided_by_aad_id"] is not None else None
    return ChangeRequest(
        id=m["id"],
        revision=m["revision"],
        state=RequestState(m["state"]),
        action=m["action"],
        requester=_row_person(m, "requester"),  # requester_name is NOT NULL: `or ""` never applies
        target_id=m["target_id"],
        target_upn=m["target_upn"],
        target_display_name=m["target_display_name"],
        target_is_guest=bool(m["target_is_guest"]),
        target_privileged=bool(m["target_privileged"]),
        privilege_reasons=list(m["privilege_reasons"] or []),
        number=m["number"],
        previous_number=m["previous_number"],
        notify=bool(m["notify"]),
        language=m["language"],
        ticket=m["ticket"],
        approval_required=bool(m["approval_required"]),
        approver_group=m["approver_group"],
        decided_by=decided_by,
        decided_at=m["decided_at"],
        decision_reason=m["decision_reason"],
        outcome=m["outcome"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        expires_at=m["expires_at"],
        locale=m["locale"],
        ref=m["ref"],
        verification=m["verification"],
        verifier=_row_person(m, "verifier") if m["verifier_aad_id"] is not None else None,
        verified_by=_row_person(m, "verified_by") if m["verified_by_aad_id"] is not None else None,
        verified_at=m["verified_at"],
    )


def _row_to_audit(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=m["id"],
        at=m["at"],
        event=m["event"],
        request_id=m["request_id"],
        actor_aad_id=m["actor_aad_id"],
        actor_name=m["actor_name"],
        target_id=m["target_id"],
        target_upn=m["target_upn"],
        details=dict(m["details"] or {}),
        request_ref=m.get("request_ref"),
    )


def allowed_from(to_state: RequestState) -> frozenset[RequestState]:
    """The states from which `to_state` may be reached (the inverse of TRANSITIONS)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if to_state in targets)


# ---------------------------------------------------------------------------------------------------------------
# URLs and engines

_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def database_url(value: str | None, data_dir: Path) -> URL:
    """DATABASE_URL (or None for the embedded SQLite file under data_dir) → the async driver URL.

    Accepted: postgresql://, postgres://, postgresql+asyncpg://, sqlite:///path, sqlite+aiosqlite:///path.
    Raises ValueError with a one-line reason otherwise.
    """
    if not value:
        return URL.create("sqlite+aiosqlite", database=str(Path(data_dir) / SQLITE_FILE_NAME))
    try:
        url = make_url(value)
    except sa_exc.ArgumentError as error:
        raise ValueError("DATABASE_URL is not a database URL (postgresql://… or sqlite:///path)") from error
    if url.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg")
    if url.drivername in ("sqlite", "sqlite+aiosqlite"):
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise ValueError("DATABASE_URL: sqlite needs a file path (sqlite:///path/to/file.sqlite3)")
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(
        f"DATABASE_URL: unsupported database {url.drivername!r} (use postgresql:// or sqlite:///path)"
    )


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        orig = error.orig
        # asyncpg: admin shutdown, cannot connect now, too many connections, connection failures (class 08, 57P)
        sqlstate = getattr(orig, "sqlstate", None) or getattr(
            getattr(orig, "__cause__", None), "sqlstate", None
        )
        if isinstance(sqlstate, str) and (sqlstate.startswith(("08", "57P", "53")) or sqlstate == "40001"):
            return True
        return False
    return isinstance(
        error,
        sa_exc.TimeoutError | sa_exc.DisconnectionError | OSError | ConnectionError | TimeoutError,
    )


@asynccontextmanager
async def _unavailable_on_transient() -> AsyncIterator[None]:
    try:
        yield
    except StoreError:
        raise
    except sa_exc.StatementError as error:
        if _is_transient(error):
            raise _unavailable(error) from error
        if not isinstance(error, sa_exc.DBAPIError) and isinstance(error.orig, TypeError | ValueError):
            # a value the database cannot take (e.g. audit details that are not JSON): the caller's mistake
            raise error.orig from error
        raise
    except Exception as error:
        if _is_transient(error):
            raise _unavailable(error) from error
        raise


def _unavailable(error: BaseException) -> StoreUnavailable:
    """Log a transient database failure (its type only; details at DEBUG) and the error to raise for it."""
    log.warning("database unavailable: %s", type(error).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
    return StoreUnavailable(f"the database is not available right now ({_short_reason(error)})")


def _short_reason(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:200]


# ---------------------------------------------------------------------------------------------------------------
# The store


class Store:
    """Open with `await Store.open(...)`; one per process; safe to share between tasks."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        schema: str | None,
        busy_timeout: float = 5.0,
        ref_generator: Callable[[], str] = new_ref,
    ) -> None:
        self._engine = engine
        self._schema = schema
        self._new_ref = ref_generator
        self._busy_timeout = busy_timeout
        # SQLite has one writer at a time. Writers of this process queue here (in order, without polling)
        # instead of meeting in SQLite's busy handler, whose sleeps grow under contention and end in "database
        # is locked"; busy_timeout then only covers writers of other processes. PostgreSQL needs no lock.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @classmethod
    async def open(
        cls,
        database_url_value: str | None,
        *,
        data_dir: Path,
        schema: str | None = None,
        busy_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        pool_size: int = 5,
        application_name: str = "mfa-phone-bot",
        ref_generator: Callable[[], str] = new_ref,
    ) -> Store:
        """Connect, migrate to head (Alembic, under a lock) and return the store.

        schema: PostgreSQL only, the schema that holds the tables (search_path); default: the server's default.
        busy_timeout: SQLite, seconds a statement waits for another writer before StoreUnavailable.
        ref_generator: draws a new request's short reference (bot.persistence.refs.new_ref; tests pass their own).
        """
        url = database_url(database_url_value, data_dir)
        # aiosqlite logs every statement with its parameters (full phone numbers) at DEBUG: keep it above that,
        # so LOG_LEVEL=DEBUG never writes a number to the logs.
        if logging.getLogger("aiosqlite").getEffectiveLevel() < logging.INFO:
            logging.getLogger("aiosqlite").setLevel(logging.INFO)
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        engine = _create_engine(
            url,
            schema=schema,
            busy_timeout=busy_timeout,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            application_name=application_name,
        )
        store = cls(engine, schema=schema, busy_timeout=busy_timeout, ref_generator=ref_generator)
        try:
            async with _unavailable_on_transient():
                if url.get_backend_name() == "sqlite" and url.database:
                    await asyncio.to_thread(_sqlite_use_wal, url.database, busy_timeout)
                await store._migrate()
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def _migrate(self) -> None:
        async with self._engine.connect() as conn:
            if self.dialect == "sqlite":
                # One writer at a time: a second instance opening the same file waits here, then finds head.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(
                    select(
                        func.pg_advisory_xact_lock(
                            func.hashtext("mfa-phone-bot migrations " + (self._schema or ""))
                        )
                    )
                )
            await conn.run_sync(_upgrade_to_head)
            await conn.commit()

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(select(1))
            return True
        except Exception as error:  # noqa: BLE001 - readiness answers yes or no
            log.warning("database ping failed: %s", _short_reason(error))
            return False

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_turn(), _unavailable_on_transient(), self._engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """SQLite: wait (at most busy_timeout) for this process's write lock and hold it; PostgreSQL: nothing."""
        if self._write_lock is None:
            yield
            return
        try:
            async with asyncio.timeout(self._busy_timeout):
                await self._write_lock.acquire()
        except TimeoutError:
            log.warning("database unavailable: no write turn within %.1fs", self._busy_timeout)
            raise StoreUnavailable("the database is not available right now (busy)") from None
        try:
            yield
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with _unavailable_on_transient(), self._engine.connect() as conn:
            yield conn

    # -- requests -------------------------------------------------------------------------------------------

    async def create_request(
        self,
        req: ChangeRequest,
        *,
        actor: Person,
        details: dict[str, Any] | None = None,
        card_ref: CardRef | None = None,
    ) -> ChangeRequest:
        """Store a new draft (revision 1) with its "requested" audit row and, when given, the reference of the
        card that shows it, in one transaction.

        The draft gets a new short reference (`ref`, drawn by the store's ref_generator; a `ref` set on `req` is
        not used). The unique index decides: when the reference is taken, by this or another instance, the whole
        transaction is rolled back and a new one drawn, at most REF_ATTEMPTS times (NoFreeRef after that: with n
        requests stored, all draws collide with probability (n / 32^5)^REF_ATTEMPTS)."""
        now = _now()
        stored = dataclasses.replace(
            req,
            revision=1,
            state=RequestState.DRAFT,
            created_at=req.created_at or now,
            updated_at=now,
        )
        values = {
            f.name: getattr(stored, f.name) for f in dataclasses.fields(ChangeRequest) if f.name in _SETTABLE
        }
        row = {
            "id": stored.id,
            "revision": 1,
            "state": RequestState.DRAFT.value,
            "created_at": stored.created_at,
            "updated_at": now,
            **_field_values(values),
        }
        audit_details = {
            "action": stored.action,
            "old_number": stored.previous_number,
            "new_number": stored.number,
            "ticket": stored.ticket,
            "state": RequestState.DRAFT.value,
            "revision": 1,
            **(details or {}),
        }
        for _ in range(REF_ATTEMPTS):
            ref = self._new_ref()
            if parse_ref(ref) != ref:
                raise ValueError(f"the reference generator gave {ref!r}, which is not a reference")
            try:
                async with self._tx() as conn:
                    await conn.execute(insert(REQUESTS).values(**row, ref=ref))
                    # the audit trail keeps both: the request id (its column) and the reference people saw
                    await _append_audit(
                        conn,
                        "requested",
                        actor,
                        stored.id,
                        stored.target_id,
                        stored.target_upn,
                        {**audit_details, "ref": ref},
                        now,
                    )
                    if card_ref is not None:
                        await conn.execute(
                            insert(CARD_REFS).values(**_card_ref_values(stored.id, card_ref, now))
                        )
            except sa_exc.IntegrityError:
                if not await self._ref_taken(ref):
                    raise
                log.info("request reference %s is taken; drawing another", ref)
                continue
            return dataclasses.replace(stored, ref=ref)
        raise NoFreeRef(f"no free request reference after {REF_ATTEMPTS} attempts")

    async def _ref_taken(self, ref: str) -> bool:
        async with self._read() as conn:
            return await conn.scalar(select(REQUESTS.c.id).where(REQUESTS.c.ref == ref)) is not None

    async def get_request(self, request_id: str) -> ChangeRequest | None:
        async with self._read() as conn:
            row = (await conn.execute(select(REQUESTS).where(REQUESTS.c.id == request_id))).first()
        return _row_to_request(row) if row is not None else None

    async def get_request_by_ref(self, text: str) -> ChangeRequest | None:
        """The request whose short reference `text` names, as people type it ("MFA-7K3Q9", "mfa 7k3q9", "7K3Q9";
        bot.persistence.refs.parse_ref); None when there is none or `text` is no reference."""
        ref = parse_ref(text)
        if ref is None:
            return None
        async with self._read() as conn:
            row = (await conn.execute(select(REQUESTS).where(REQUESTS.c.ref == ref))).first()
        return _row_to_request(row) if row is not None else None

    async def update_draft(
        self, request_id: str, expected_revision: int, *, actor: Person | None, **fields: Any
    ) -> ChangeRequest:
        """Change fields of a draft (the agent edited the request): rev+1, audited as "draft_updated"."""
        values = _field_values(fields)
        return await self._conditional_update(
            request_id,
            expected_revision,
            RequestState.DRAFT,
            frozenset({RequestState.DRAFT}),
            values,
            actor=actor,
            event="draft_updated",
            details={"fields": sorted(fields)},
        )

    async def transition(
        self,
        request_id: str,
        expected_revision: int,
        to_state: RequestState | str,
        *,
        actor: Person | None,
        event: str,
        details: dict[str, Any] | None = None,
        **fields: Any,
    ) -> ChangeRequest:
        """Move the request to `to_state` if it is still at `expected_revision` and the move is allowed.

        Raises NotFound, StaleRevision (someone else moved it first) or InvalidTransition; nothing is written then.
        """
        try:
            target = RequestState(to_state)
        except ValueError:
            raise InvalidTransition(request_id, None, str(to_state)) from None
        sources = allowed_from(target)
        if not sources:
            raise InvalidTransition(request_id, None, target.value)
        values = _field_values(fields)
        return await self._conditional_update(
            request_id,
            expected_revision,
            target,
            sources,
            values,
            actor=actor,
            event=event,
            details=details or {},
        )

    async def _conditional_update(
        self,
        request_id: str,
        expected_revision: int,
        to_state: RequestState,
        sources: frozenset[RequestState],
        values: dict[str, Any],
        *,
        actor: Person | None,
        event: str,
        details: dict[str, Any],
    ) -> ChangeRequest:
        now = _now()
        values = dict(values)
        if to_state is RequestState.EXECUTING:
            values["executing_at"] = now
        elif to_state is RequestState.COMPLETED:
            values["completed_at"] = now
        statement = (
            update(REQUESTS)
            .where(
                REQUESTS.c.id == request_id,
                REQUESTS.c.revision == expected_revision,
                REQUESTS.c.state.in_(sorted(s.value for s in sources)),
            )
            .values(state=to_state.value, revision=REQUESTS.c.revision + 1, updated_at=now, **values)
            .returning(*REQUESTS.c)
        )
        async with self._tx() as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                await _explain_no_match(conn, request_id, expected_revision, to_state)
            stored = _row_to_request(row)
            audit_details = {"state": to_state.value, "revision": stored.revision, **details}
            await _append_audit(
                conn, event, actor, request_id, stored.target_id, stored.target_upn, audit_details, now
            )
        return stored

    async def update_waiting(
        self,
        request_id: str,
        expected_revision: int,
        state: RequestState,
        *,
        actor: Person | None,
        event: str,
        details: dict[str, Any] | None = None,
        **fields: Any,
    ) -> ChangeRequest:
        """Change fields of a request that waits (for approval, or for the caller's verification) and keeps
        waiting in `state` (rev+1, audited as `event`): the target turned out privileged at an approval click and
        now needs a privileged approver; the caller was verified and the request goes on from there."""
        if state not in _WAITING_STATES:
            raise ValueError(f"update_waiting is for a waiting request, not {state.value}")
        return await self._conditional_update(
            request_id,
            expected_revision,
            state,
            frozenset({state}),
            _field_values(fields),
            actor=actor,
            event=event,
            details=details or {},
        )

    async def start_execution(
        self,
        request_id: str,
        expected_revision: int,
        *,
        actor: Person | None,
        max_per_hour: int,
        cooldown_minutes: float,
        refusal_text: Callable[[LimitHit], str],
    ) -> tuple[ChangeRequest, LimitHit | None]:
        """APPROVED → EXECUTING, with the abuse limits checked in the same transaction, so that neither concurrent
        confirmations nor two instances can exceed them: at most `max_per_hour` runs started by the requester in
        the last hour, and no run for a target while another one runs for it or within `cooldown_minutes` of its
        last change (0 switches either off). Over a limit the request moves to CANCELLED instead (audited
        "cancelled" with the limit; decision_reason = refusal_text(hit)) and the LimitHit is returned with it.

        PostgreSQL: one transaction-scoped advisory lock serialises every start (changes are rare; the lock is
        held for three statements). SQLite: the conditional UPDATE comes first, so the transaction holds the
        database's single write lock before it counts. Raises NotFound, StaleRevision or InvalidTransition.
        """
        now = _now()
        move = (
            update(REQUESTS)
            .where(
                REQUESTS.c.id == request_id,
                REQUESTS.c.revision == expected_revision,
                REQUESTS.c.state == RequestState.APPROVED.value,
            )
            .values(
                state=RequestState.EXECUTING.value,
                revision=REQUESTS.c.revision + 1,
                updated_at=now,
                executing_at=now,
            )
            .returning(*REQUESTS.c)
        )
        async with self._tx() as conn:
            if self.dialect == "postgresql":
                await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(_LIMITS_LOCK))))
            row = (await conn.execute(move)).first()
            if row is None:
                await _explain_no_match(conn, request_id, expected_revision, RequestState.EXECUTING)
            stored = _row_to_request(row)
            hit = await _limit_hit(conn, stored, now, max_per_hour, cooldown_minutes)
            event = "execution_started"
            details: dict[str, Any] = {"state": RequestState.EXECUTING.value, "revision": stored.revision}
            if hit is not None:
                reason = refusal_text(hit)
                row = (
                    await conn.execute(
                        update(REQUESTS)
                        .where(REQUESTS.c.id == request_id)
                        .values(
                            state=RequestState.CANCELLED.value,
                            executing_at=None,
                            decided_at=now,
                            decision_reason=reason,
                        )
                        .returning(*REQUESTS.c)
                    )
                ).first()
                stored = _row_to_request(row)
                event = "cancelled"
                details = {
                    "state": RequestState.CANCELLED.value,
                    "revision": stored.revision,
                    "decision": RequestState.CANCELLED.value,
                    "reason": hit.key,
                    **{k: str(v)[:200] for k, v in hit.params.items()},
                }
            await _append_audit(
                conn, event, actor, request_id, stored.target_id, stored.target_upn, details, now
            )
        return stored, hit

    async def due_for_expiry(
        self, now: datetime, state: RequestState = RequestState.AWAITING_APPROVAL
    ) -> list[ChangeRequest]:
        """Requests in `state` (waiting for approval, or for the caller's verification) whose time is up.

        A request whose caller was already verified is never due: it waits only for the move on to approval or
        the change, which crash recovery makes if the process died before it (stuck_requests verified=True).
        """
        wanted = RequestState(state)
        conditions = [REQUESTS.c.state == wanted.value, REQUESTS.c.expires_at <= now]
        if wanted is RequestState.AWAITING_VERIFICATION:
            conditions.append(REQUESTS.c.verified_at.is_(None))
        return await self._select_requests(
            select(REQUESTS).where(*conditions).order_by(REQUESTS.c.expires_at, REQUESTS.c.id)
        )

    async def stuck_requests(
        self, state: RequestState | str, older_than: datetime, *, limit: int = 100, verified: bool = False
    ) -> list[ChangeRequest]:
        """Requests still in `state` whose last move happened at or before `older_than`, oldest first.

        The moment is executing_at for executing (when the run started) and updated_at for any other state (the
        last transition, e.g. the decision for approved, the caller's verification). Crash recovery reads this:
        an approved request nobody started, a run that never finished, and with `verified` a request whose caller
        was verified but that never went on to approval or the change.
        """
        wanted = RequestState(state)
        since = (
            func.coalesce(REQUESTS.c.executing_at, REQUESTS.c.updated_at)
            if wanted is RequestState.EXECUTING
            else REQUESTS.c.updated_at
        )
        return await self._select_requests(
            select(REQUESTS)
            .where(
                REQUESTS.c.state == wanted.value,
                since <= older_than,
                *([REQUESTS.c.verified_at.is_not(None)] if verified else []),
            )
            .order_by(since, REQUESTS.c.id)
            .limit(max(1, int(limit)))
        )

    async def _select_requests(self, statement: Select[Any]) -> list[ChangeRequest]:
        async with self._read() as conn:
            return [_row_to_request(r) for r in await conn.execute(statement)]

    async def count_changes_by_requester(self, aad_object_id: str, since: datetime) -> int:
        """Requests of this requester that reached executing at or after `since` (the per-requester limit)."""
        async with self._read() as conn:
            value = await conn.scalar(
                select(func.count())
                .select_from(REQUESTS)
                .where(REQUESTS.c.requester_aad_id == aad_object_id, REQUESTS.c.executing_at >= since)
            )
        return int(value or 0)

    async def last_change_for_target(self, target_id: str) -> datetime | None:
        """When the target's number was last changed (completed with an added/updated/removed outcome)."""
        changed = sorted(k.value for k in OutcomeKind if k.changed)
        async with self._read() as conn:
            value = await conn.scalar(
                select(func.max(REQUESTS.c.completed_at)).where(
                    REQUESTS.c.target_id == target_id,
                    REQUESTS.c.state == RequestState.COMPLETED.value,
                    REQUESTS.c.outcome_kind.in_(changed),
                )
            )
        if value is None:
            return None
        # func.max loses the column type on SQLite: convert as the column would.
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return _as_utc(value)

    # -- audit ----------------------------------------------------------------------------------------------

    async def audit(
        self,
        event: str,
        *,
        actor: Person | None,
        request_id: str | None = None,
        target_id: str | None = None,
        target_upn: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self._tx() as conn:
            await _append_audit(conn, event, actor, request_id, target_id, target_upn, details or {}, _now())

    async def history(self, target_id: str, limit: int = 20) -> list[AuditEntry]:
        """The target's audit rows, newest first, each with the short reference of its request (request_ref)."""
        return await self._select_audit(
            select(AUDIT, REQUESTS.c.ref.label("request_ref"))
            .select_from(AUDIT.outerjoin(REQUESTS, REQUESTS.c.id == AUDIT.c.request_id))
            .where(AUDIT.c.target_id == target_id)
            .order_by(AUDIT.c.at.desc(), AUDIT.c.id.desc())
            .limit(max(1, int(limit)))
        )

    async def request_audit(self, request_id: str) -> list[AuditEntry]:
        return await self._select_audit(
            select(AUDIT).where(AUDIT.c.request_id == request_id).order_by(AUDIT.c.at, AUDIT.c.id)
        )

    async def _select_audit(self, statement: Select[Any]) -> list[AuditEntry]:
        async with self._read() as conn:
            return [_row_to_audit(r) for r in await conn.execute(statement)]

    # -- card and conversation references -------------------------------------------------------------------

    async def add_card_ref(self, request_id: str, ref: CardRef) -> None:
        async with self._tx() as conn:
            await conn.execute(insert(CARD_REFS).values(**_card_ref_values(request_id, ref, _now())))

    async def card_refs(self, request_id: str) -> list[CardRef]:
        async with self._read() as conn:
            rows = await conn.execute(
                select(CARD_REFS).where(CARD_REFS.c.request_id == request_id).order_by(CARD_REFS.c.id)
            )
            return [
                CardRef(
                    role=r.role,
                    conversation_reference=dict(r.conversation_reference),
                    activity_id=r.activity_id,
                )
                for r in rows
            ]

    async def save_conversation_reference(self, key: str, ref: dict[str, Any]) -> None:
        async with self._tx() as conn:
            await conn.execute(
                _upsert(
                    self.dialect,
                    CONVERSATION_REFS,
                    ["key"],
                    {"key": key, "reference": dict(ref), "updated_at": _now()},
                )
            )

    async def conversation_reference(self, key: str) -> dict[str, Any] | None:
        async with self._read() as conn:
            value = await conn.scalar(
                select(CONVERSATION_REFS.c.reference).where(CONVERSATION_REFS.c.key == key)
            )
        return dict(value) if value is not None else None

    async def conversation_references(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every stored conversation reference whose key starts with `prefix` (taken literally: % and _ are not
        wildcards), by key in key order; e.g. prefix "user:" gives everyone who has talked to the bot."""
        async with self._read() as conn:
            rows = await conn.execute(
                select(CONVERSATION_REFS.c.key, CONVERSATION_REFS.c.reference)
                .where(CONVERSATION_REFS.c.key.startswith(prefix, autoescape=True))
                .order_by(CONVERSATION_REFS.c.key)
            )
            # LIKE ignores case on SQLite: keep the prefix exact on both databases.
            return {row.key: dict(row.reference) for row in rows if row.key.startswith(prefix)}

    # -- caller verification ------------------------------------------------------------------------------

    async def save_verification(
        self,
        request_id: str,
        *,
        code_salt: str | None = None,
        code_hash: str | None = None,
        sent_via: str | None = None,
        card_ref: CardRef | None = None,
    ) -> None:
        """The verification of a request (a new one-time code resets the attempts); one row per request."""
        values = {
            "request_id": request_id,
            "code_salt": code_salt,
            "code_hash": code_hash,
            "attempts": 0,
            "sent_via": sent_via,
            "card_ref": _card_ref_json(card_ref),
            "created_at": _now(),
        }
        async with self._tx() as conn:
            await conn.execute(_upsert(self.dialect, VERIFICATIONS, ["request_id"], values))

    async def verification(self, request_id: str) -> VerificationRecord | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(VERIFICATIONS).where(VERIFICATIONS.c.request_id == request_id))
            ).first()
        if row is None:
            return None
        m = row._mapping
        ref = m["card_ref"]
        return VerificationRecord(
            request_id=m["request_id"],
            code_salt=m["code_salt"],
            code_hash=m["code_hash"],
            attempts=int(m["attempts"]),
            sent_via=m["sent_via"],
            card_ref=CardRef(
                role=ref["role"],
                conversation_reference=dict(ref["conversation_reference"]),
                activity_id=ref.get("activity_id"),
            )
            if isinstance(ref, dict)
            else None,
        )

    async def count_wrong_code(self, request_id: str) -> int:
        """One more wrong code for the request; returns the wrong attempts so far (one statement: two agents
        typing at once both count)."""
        async with self._tx() as conn:
            value = await conn.scalar(
                update(VERIFICATIONS)
                .where(VERIFICATIONS.c.request_id == request_id)
                .values(attempts=VERIFICATIONS.c.attempts + 1)
                .returning(VERIFICATIONS.c.attempts)
            )
        return int(value or 0)

    async def lock_target(
        self,
        target_id: str,
        until: datetime,
        *,
        request_id: str | None,
        actor: Person | None,
        target_upn: str | None,
        details: dict[str, Any],
    ) -> None:
        """Keep the bot away from `target_id`'s phone methods until `until` (audited "target_locked")."""
        now = _now()
        values = {"target_id": target_id, "locked_until": until, "request_id": request_id, "created_at": now}
        async with self._tx() as conn:
            await conn.execute(_upsert(self.dialect, TARGET_LOCKS, ["target_id"], values))
            await _append_audit(
                conn,
                "target_locked",
                actor,
                request_id,
                target_id,
                target_upn,
                {"locked_until": until.isoformat(), **details},
                now,
            )

    async def target_lock(self, target_id: str, now: datetime) -> datetime | None:
        """Until when the bot may not change `target_id`'s phone methods, or None when it may."""
        async with self._read() as conn:
            value = await conn.scalar(
                select(TARGET_LOCKS.c.locked_until).where(TARGET_LOCKS.c.target_id == target_id)
            )
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        until = _as_utc(value)
        return until if until > now else None

    async def lift_target_lock(
        self, target_id: str, *, actor: Person, target_upn: str | None, details: dict[str, Any]
    ) -> bool:
        """Lift the lock early (audited "target_unlocked"); False when there was none."""
        now = _now()
        async with self._tx() as conn:
            gone = await conn.execute(
                delete(TARGET_LOCKS)
                .where(TARGET_LOCKS.c.target_id == target_id)
                .returning(TARGET_LOCKS.c.locked_until)
            )
            until = gone.scalar()
            if until is None:
                return False
            if isinstance(until, str):
                until = datetime.fromisoformat(until)
            await _append_audit(
                conn,
                "target_unlocked",
                actor,
                None,
                target_id,
                target_upn,
                {"locked_until": _as_utc(until).isoformat(), **details},
                now,
            )
        return True

    # -- botbuilder storage ---------------------------------------------------------------------------------

    # internal helpers shared with bot.teams.state_storage
    def _transaction(self) -> Any:
        return self._tx()

    def _reader(self) -> Any:
        return self._read()


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _card_ref_values(request_id: str, ref: CardRef, at: datetime) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "role": ref.role,
        "conversation_reference": dict(ref.conversation_reference),
        "activity_id": ref.activity_id,
        "created_at": at,
    }


# draws of a new request's short reference before create_request gives up (see there)
REF_ATTEMPTS = 10

_LIMITS_LOCK = "mfa-phone-bot execution limits"


@dataclass(frozen=True)
class VerificationRecord:
    request_id: str
    code_salt: str | None
    code_hash: str | None
    attempts: int
    sent_via: str | None
    card_ref: CardRef | None


def _card_ref_json(ref: CardRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "role": ref.role,
        "conversation_reference": dict(ref.conversation_reference),
        "activity_id": ref.activity_id,
    }


@dataclass(frozen=True)
class LimitHit:
    """An abuse limit that stopped a run at its start: the bot/views/texts.py key and its parameters."""

    key: str
    params: dict[str, Any]


async def _limit_hit(
    conn: AsyncConnection, req: ChangeRequest, now: datetime, max_per_hour: int, cooldown_minutes: float
) -> LimitHit | None:
    """The limits over the other requests, as committed now (the caller holds the lock)."""
    if max_per_hour > 0:
        count = int(
            await conn.scalar(
                select(func.count())
                .select_from(REQUESTS)
                .where(
                    REQUESTS.c.requester_aad_id == req.requester.aad_object_id,
                    REQUESTS.c.id != req.id,
                    REQUESTS.c.executing_at >= now - timedelta(hours=1),
                )
            )
            or 0
        )
        if count >= max_per_hour:
            return LimitHit("refusal.rate_limit", {"limit": max_per_hour, "count": count})
    if cooldown_minutes > 0:
        running = await conn.scalar(
            select(func.count())
            .select_from(REQUESTS)
            .where(
                REQUESTS.c.target_id == req.target_id,
                REQUESTS.c.id != req.id,
                REQUESTS.c.state == RequestState.EXECUTING.value,
            )
        )
        if running:
            return LimitHit("refusal.target_busy", {})
        changed = sorted(k.value for k in OutcomeKind if k.changed)
        last = await conn.scalar(
            select(func.max(REQUESTS.c.completed_at)).where(
                REQUESTS.c.target_id == req.target_id,
                REQUESTS.c.state == RequestState.COMPLETED.value,
                REQUESTS.c.outcome_kind.in_(changed),
            )
        )
        if isinstance(last, str):
            last = datetime.fromisoformat(last)
        last = _as_utc(last) if last is not None else None
        if last is not None:
            until = last + timedelta(minutes=cooldown_minutes)
            if now < until:
                minutes = (
                    int(cooldown_minutes) if cooldown_minutes == int(cooldown_minutes) else cooldown_minutes
                )
                return LimitHit(
                    "refusal.target_cooldown",
                    {
                        "time": last.strftime("%H:%M UTC"),
                        "until": until.strftime("%H:%M UTC"),
                        "minutes": minutes,
                    },
                )
    return None


_AUDIT_LOCK = "mfa-phone-bot audit chain "


async def _append_audit(
    conn: AsyncConnection,
    event: str,
    actor: Person | None,
    request_id: str | None,
    target_id: str | None,
    target_upn: str | None,
    details: dict[str, Any],
    at: datetime,
) -> None:
    """The one place an audit row is written, inside the transaction of the change it records: chained to the
    newest row (bot/persistence/audit.py: id = newest id + 1, prev_hash = its hash, hash over both and the content).

    The chain stays linear because reading the newest row and inserting are serialised until commit: PostgreSQL
    by a transaction-scoped advisory lock per schema (every instance), SQLite by the database's single writer
    (this process's write turn, and the transaction's first write before the read, so a writer of another
    process waits for it instead of reading a stale newest row)."""
    from bot.persistence.audit_chain import GENESIS, row_hash

    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(literal(_AUDIT_LOCK) + func.current_schema())))
        )
    else:
        # a write that changes nothing: takes the write lock now (waiting for busy_timeout), before the read
        await conn.execute(delete(AUDIT).where(AUDIT.c.id.is_(None)))
    newest = (
        await conn.execute(select(AUDIT.c.id, AUDIT.c.hash).order_by(AUDIT.c.id.desc()).limit(1))
    ).first()
    row: dict[str, Any] = {
        "id": newest.id + 1 if newest is not None else 1,
        "at": _as_utc(at),
        "event": event,
        "request_id": request_id,
        "actor_aad_id": actor.aad_object_id if actor else None,
        "actor_name": actor.name if actor else None,
        "target_id": target_id,
        "target_upn": target_upn,
        # as it will read back (the column stores this JSON text)
        "details": json.loads(_json_dumps(details)),
    }
    prev_hash = (newest.hash if newest is not None else None) or GENESIS
    await conn.execute(insert(AUDIT).values(**row, prev_hash=prev_hash, hash=row_hash(row, prev_hash)))


async def _explain_no_match(
    conn: AsyncConnection, request_id: str, expected_revision: int, to_state: RequestState
) -> None:
    current = (
        await conn.execute(select(REQUESTS.c.revision, REQUESTS.c.state).where(REQUESTS.c.id == request_id))
    ).first()
    if current is None:
        raise NotFound(request_id)
    if current.revision != expected_revision:
        raise StaleRevision(request_id, expected_revision, current.revision)
    raise InvalidTransition(request_id, current.state, to_state.value)


def _dialect_insert(dialect: str, table: Table, values: dict[str, Any]) -> Any:
    """INSERT with the dialect's ON CONFLICT support (PostgreSQL or SQLite)."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(**values)


def _upsert(dialect: str, table: Table, keys: Iterable[str], values: dict[str, Any]) -> Any:
    keys = list(keys)
    ins = _dialect_insert(dialect, table, values)
    return ins.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={k: ins.excluded[k] for k in values if k not in keys},
    )


def _insert_if_absent(dialect: str, table: Table, keys: Iterable[str], values: dict[str, Any]) -> Any:
    ins = _dialect_insert(dialect, table, values)
    return ins.on_conflict_do_nothing(index_elements=[table.c[k] for k in keys])


def _sqlite_use_wal(path: str, busy_timeout: float) -> None:
    """Put the SQLite file in WAL mode (it stays so). Switching needs the file to itself: SQLite answers "database
    is locked" at once, without waiting, while another instance is migrating or writing the same new file, so
    retry with a short pause for at most the busy timeout. Runs in a worker thread, never on the event loop."""
    deadline = time.monotonic() + max(busy_timeout, 0.5)
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=busy_timeout)) as conn:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _create_engine(
    url: URL,
    *,
    schema: str | None,
    busy_timeout: float,
    connect_timeout: float,
    pool_size: int,
    application_name: str,
) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            json_serializer=_json_dumps,
            hide_parameters=True,  # errors never carry phone numbers into logs
            connect_args={"timeout": busy_timeout},
            pool_size=pool_size,
        )
        busy_ms = max(0, int(busy_timeout * 1000))

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                # WAL is a property of the file, set once by Store.open (_sqlite_use_wal).
                cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

        return engine

    server_settings = {"application_name": application_name}
    if schema:
        server_settings["search_path"] = schema
    return create_async_engine(
        url,
        json_serializer=_json_dumps,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        connect_args={"server_settings": server_settings, "timeout": connect_timeout},
    )


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def new_request_id() -> str:
    return uuid.uuid4().hex


__all__ = [
    "AuditEntry",
    "InvalidTransition",
    "LimitHit",
    "NoFreeRef",
    "NotFound",
    "StaleRevision",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "allowed_from",
    "database_url",
    "new_request_id",
    "REF_ATTEMPTS",
]

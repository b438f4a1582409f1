"""botbuilder `Storage` on the store's database, so conversation and dialog state survive a restart and are shared
by every bot instance.

Semantics follow botbuilder's MemoryStorage (and its Blob/Cosmos storages, which serialize with jsonpickle too):
- `read(keys)` returns `{key: item}` for the keys that exist; each item carries the stored `e_tag` (dict key
  "e_tag" or attribute `e_tag`). Missing keys are left out; no keys → `{}`.
- `write(changes)`: an item whose e_tag is missing (None) or "*" overwrites; an item with any other e_tag is written
  only if the stored e_tag is the same (or the key does not exist yet), else `ETagConflict` (a KeyError, as
  MemoryStorage raises) and nothing of that call is written; an empty e_tag "" is refused. Every write gives the
  item a new e_tag; it is also set on the written dict/object so a second save in the same turn is not a conflict
  with itself.
- `delete(keys)`: missing keys are ignored.

Documents are jsonpickle-flattened and restored only if every type they name comes from an allowed module
(botbuilder, the bot's own packages, datetime...), so a tampered row cannot instantiate arbitrary classes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botbuilder.core import Storage
from jsonpickle.pickler import Pickler
from jsonpickle.unpickler import Unpickler
from sqlalchemy import delete, select, update

from bot.store import BOT_STATE, _insert_if_absent, _upsert

if TYPE_CHECKING:
    from bot.store import Store

DEFAULT_ALLOWED_MODULES: tuple[str, ...] = (
    "botbuilder.",
    "botframework.",
    "bot.",
    "dialogs.",
    "graph.",
    "datetime.",
    "decimal.",
    "uuid.",
    "collections.",
    "builtins.",
    "copyreg.",
    "enum.",
)

_TYPE_TAGS = ("py/object", "py/type", "py/function", "py/mod")
_FORBIDDEN_TAGS = ("py/repr",)


class ETagConflict(KeyError):
    """The item changed in storage since it was read (another turn or another instance wrote it)."""

    def __init__(self, key: str, expected: str, current: str | None) -> None:
        super().__init__(f"Etag conflict for {key!r}: written with {expected!r}, stored {current!r}")
        self.key = key
        self.expected = expected
        self.current = current


class UnsafeStateDocument(ValueError):
    """A stored state document names a type outside the allowed modules; it is not restored."""


def _etag_of(item: Any) -> str | None:
    if isinstance(item, Mapping):
        value = item.get("e_tag")
    else:
        value = getattr(item, "e_tag", None)
    return None if value is None else str(value)


def _set_etag(item: Any, etag: str) -> None:
    if isinstance(item, dict):
        item["e_tag"] = etag
    elif hasattr(item, "__dict__"):
        try:
            item.e_tag = etag
        except AttributeError:  # slots or read-only: the caller keeps the old e_tag
            pass


def _flatten(item: Any) -> Any:
    # flatten → JSON text → back: tuples become lists exactly as they will come back from the database.
    document = json.loads(json.dumps(Pickler().flatten(item)))
    if isinstance(document, dict):
        document.pop("e_tag", None)
    return document


def _check_safe(document: Any, allowed: tuple[str, ...], key: str) -> None:
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for tag, value in node.items():
                if tag in _FORBIDDEN_TAGS:
                    raise UnsafeStateDocument(f"bot state {key!r}: {tag} is not allowed")
                if tag in _TYPE_TAGS:
                    name = str(value).replace("/", ".")
                    if not any(name.startswith(prefix) for prefix in allowed):
                        raise UnsafeStateDocument(f"bot state {key!r}: type {value!r} is not allowed")
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


class DatabaseStorage(Storage):
    def __init__(self, store: Store, *, allowed_modules: Iterable[str] = DEFAULT_ALLOWED_MODULES) -> None:
        super().__init__()
        self._store = store
        self._allowed = tuple(allowed_modules)

    async def read(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        wanted = list(dict.fromkeys(keys))
        async with self._store._reader() as conn:
            rows = (
                await conn.execute(
                    select(BOT_STATE.c.key, BOT_STATE.c.document, BOT_STATE.c.etag).where(
                        BOT_STATE.c.key.in_(wanted)
                    )
                )
            ).all()
        items: dict[str, Any] = {}
        for key, document, etag in rows:
            _check_safe(document, self._allowed, key)
            if isinstance(document, dict):
                document = dict(document)
                document["e_tag"] = etag
            items[key] = Unpickler(safe=True).restore(document)
        return items

    async def write(self, changes: dict[str, Any]) -> None:
        if changes is None:
            raise ValueError("Changes are required when writing")
        if not changes:
            return
        dialect = self._store.dialect
        written: list[tuple[Any, str]] = []
        now = datetime.now(UTC)
        async with self._store._transaction() as conn:
            for key, item in changes.items():
                expected = _etag_of(item)
                if expected == "":
                    raise ValueError("storage.write(): etag missing")
                document = _flatten(item)
                new_etag = uuid.uuid4().hex
                values = {"key": key, "document": document, "etag": new_etag, "updated_at": now}
                if expected is None or expected == "*":
                    await conn.execute(_upsert(dialect, BOT_STATE, ["key"], values))
                else:
                    result = await conn.execute(
                        update(BOT_STATE)
                        .where(BOT_STATE.c.key == key, BOT_STATE.c.etag == expected)
                        .values(document=document, etag=new_etag, updated_at=now)
                    )
                    if result.rowcount == 0:
                        inserted = await conn.execute(_insert_if_absent(dialect, BOT_STATE, ["key"], values))
                        if inserted.rowcount == 0:
                            current = await conn.scalar(
                                select(BOT_STATE.c.etag).where(BOT_STATE.c.key == key)
                            )
                            raise ETagConflict(key, expected, current)
                written.append((item, new_etag))
        for item, etag in written:
            _set_etag(item, etag)

    async def delete(self, keys: list[str]) -> None:
        if keys is None:
            raise ValueError("keys are required when deleting")
        keys = list(keys)
        if not keys:
            return
        async with self._store._transaction() as conn:
            await conn.execute(delete(BOT_STATE).where(BOT_STATE.c.key.in_(keys)))

"""botbuilder `Storage` on the store's database, so conversation and dialog state survive a restart and are shared
by every bot instance.

Semantics follow botbuilder's MemoryStorage:
- `read(keys)` returns `{key: item}` for the keys that exist; each item carries the stored `e_tag` (dict key
  "e_tag" or attribute `e_tag`). Missing keys are left out; no keys → `{}`. A stored document that is not in the
  format below (a tampered row, or one written with jsonpickle by an older version) is logged as a warning and
  left out, as if missing: the next save of that state replaces it.
- `write(changes)`: an item whose e_tag is missing (None) or "*" overwrites; an item with any other e_tag is written
  only if the stored e_tag is the same (or the key does not exist yet), else `ETagConflict` (a KeyError, as
  MemoryStorage raises) and nothing of that call is written; an empty e_tag "" is refused. Every write gives the
  item a new e_tag; it is also set on the written dict/object so a second save in the same turn is not a conflict
  with itself.
- `delete(keys)`: missing keys are ignored.

Documents are plain JSON. botbuilder's own Blob and Cosmos storages use jsonpickle, which rebuilds whatever class
and callable a document names; here nothing in a stored document names code. The few objects botbuilder-dialogs
keeps in state (DialogState, DialogInstance, PromptOptions, Choice, ListStyle, the schema's Activity and its
parts, StoreItem, datetime) are written as `{"$type": "<one of those>", ...}` and rebuilt by the functions below,
chosen from a fixed table; any other value is refused when written (TypeError), any other `$type`, or a
jsonpickle `py/...` tag, makes the document unreadable.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from botbuilder.core import Storage, StoreItem
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import PromptOptions
from botbuilder.schema import (
    Activity,
    Attachment,
    CardAction,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    Entity,
    SuggestedActions,
)
from msrest.serialization import Model
from sqlalchemy import Text, cast, delete, select, update

from bot.persistence.store import BOT_STATE, _insert_if_absent, _upsert

if TYPE_CHECKING:
    from bot.persistence.store import Store

log = logging.getLogger(__name__)

TYPE_KEY = "$type"
_MAX_DEPTH = 64  # state documents are shallow; a deeper one is refused rather than recursed into

# The schema models that may appear in dialog state (a prompt's Activity and what it holds), by their class name.
# msrest (de)serializes them from their declared attribute map only: plain data, no code named by the document.
_MODELS: dict[str, type[Model]] = {
    cls.__name__: cls
    for cls in (
        Activity,
        Attachment,
        CardAction,
        ChannelAccount,
        ConversationAccount,
        ConversationReference,
        Entity,
        SuggestedActions,
    )
}


class ETagConflict(KeyError):
    """The item changed in storage since it was read (another turn or another instance wrote it)."""

    def __init__(self, key: str, expected: str, current: str | None) -> None:
        super().__init__(f"Etag conflict for {key!r}: written with {expected!r}, stored {current!r}")
        self.key = key
        self.expected = expected
        self.current = current


class UnsafeStateDocument(ValueError):
    """A stored state document is not in the plain format this storage writes; it is not restored."""


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


# ---------------------------------------------------------------------------------------------------------------
# The document format: JSON values as they are, the known objects as {"$type": name, ...}


def encode(value: Any, _depth: int = 0) -> Any:
    """A state value as plain JSON. Raises TypeError for a value of any type not listed in the module docstring."""
    if _depth > _MAX_DEPTH:
        raise TypeError("bot state is nested too deeply to store")
    depth = _depth + 1
    if value is None or isinstance(value, bool | int | float | str) and not isinstance(value, ListStyle):
        return value
    if isinstance(value, list | tuple):
        return [encode(v, depth) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("bot state: dictionary keys must be strings")
        if TYPE_KEY in value or any(k.startswith("py/") for k in value):
            # a key that would read as a tag: keep it as data
            return {TYPE_KEY: "dict", "items": [[k, encode(v, depth)] for k, v in value.items()]}
        return {k: encode(v, depth) for k, v in value.items()}
    kind = type(value)
    if kind is datetime:
        return {TYPE_KEY: "datetime", "iso": value.isoformat()}
    if kind is date:
        return {TYPE_KEY: "date", "iso": value.isoformat()}
    if kind is DialogState:
        return {TYPE_KEY: "DialogState", "dialog_stack": encode(value.dialog_stack, depth)}
    if kind is DialogInstance:
        return {TYPE_KEY: "DialogInstance", "id": value.id, "state": encode(value.state, depth)}
    if kind is PromptOptions:
        return {
            TYPE_KEY: "PromptOptions",
            **{name: encode(getattr(value, name), depth) for name in _PROMPT_OPTIONS},
        }
    if kind is Choice:
        return {
            TYPE_KEY: "Choice",
            "value": value.value,
            "action": encode(value.action, depth),
            "synonyms": encode(value.synonyms, depth),
        }
    if kind is ListStyle:
        return {TYPE_KEY: "ListStyle", "name": value.name}
    if kind is StoreItem:
        fields = {k: v for k, v in vars(value).items() if k != "e_tag"}
        return {TYPE_KEY: "StoreItem", "fields": encode(fields, depth)}
    if _MODELS.get(kind.__name__) is kind:
        return {TYPE_KEY: kind.__name__, "value": value.serialize(keep_readonly=True)}
    raise TypeError(f"bot state cannot store a {kind.__module__}.{kind.__qualname__}")


_PROMPT_OPTIONS = ("prompt", "retry_prompt", "choices", "style", "validations", "number_of_attempts")


def decode(document: Any, _depth: int = 0) -> Any:
    """The state value of a stored document. Raises UnsafeStateDocument for anything `encode` does not write."""
    if _depth > _MAX_DEPTH:
        raise UnsafeStateDocument("nested too deeply")
    depth = _depth + 1
    if document is None or isinstance(document, bool | int | float | str):
        return document
    if isinstance(document, list):
        return [decode(v, depth) for v in document]
    if not isinstance(document, dict):
        raise UnsafeStateDocument(f"a {type(document).__name__} value")
    for key in document:
        if not isinstance(key, str) or key.startswith("py/"):
            raise UnsafeStateDocument(f"the key {str(key)[:40]!r}")
    if TYPE_KEY not in document:
        return {k: decode(v, depth) for k, v in document.items()}
    name = document[TYPE_KEY]
    rebuild = _REBUILD.get(name) if isinstance(name, str) else None
    if rebuild is None:
        raise UnsafeStateDocument(f"the type {str(name)[:80]!r}")
    try:
        return rebuild(document, depth)
    except UnsafeStateDocument:
        raise
    except Exception as error:  # noqa: BLE001  (a malformed known object: the document is unreadable)
        raise UnsafeStateDocument(f"a malformed {name} ({type(error).__name__})") from None


def _decoded_dict(value: Any, depth: int) -> dict[str, Any]:
    decoded = decode(value, depth)
    if not isinstance(decoded, dict):
        raise UnsafeStateDocument("a dictionary was expected")
    return decoded


def _decoded_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise UnsafeStateDocument("text was expected")
    return value


def _rebuild_dict(d: dict[str, Any], depth: int) -> dict[str, Any]:
    items = d["items"]
    if not isinstance(items, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in items
    ):
        raise UnsafeStateDocument("malformed dictionary items")
    return {key: decode(value, depth) for key, value in items}


def _rebuild_dialog_state(d: dict[str, Any], depth: int) -> DialogState:
    stack = decode(d["dialog_stack"], depth)
    if not isinstance(stack, list) or not all(isinstance(i, DialogInstance) for i in stack):
        raise UnsafeStateDocument("a dialog stack holds something other than dialog instances")
    return DialogState(stack)


def _rebuild_dialog_instance(d: dict[str, Any], depth: int) -> DialogInstance:
    return DialogInstance(id=_decoded_str(d["id"]), state=_decoded_dict(d["state"], depth))


def _rebuild_prompt_options(d: dict[str, Any], depth: int) -> PromptOptions:
    return PromptOptions(**{name: decode(d.get(name), depth) for name in _PROMPT_OPTIONS})


def _rebuild_choice(d: dict[str, Any], depth: int) -> Choice:
    return Choice(
        value=_decoded_str(d.get("value")),
        action=decode(d.get("action"), depth),
        synonyms=decode(d.get("synonyms"), depth),
    )


def _rebuild_list_style(d: dict[str, Any], _depth: int) -> ListStyle:
    name = d["name"]
    if not isinstance(name, str) or name not in ListStyle.__members__:
        raise UnsafeStateDocument("an unknown list style")
    return ListStyle[name]


def _rebuild_store_item(d: dict[str, Any], depth: int) -> StoreItem:
    fields = _decoded_dict(d["fields"], depth)
    fields.pop("e_tag", None)
    return StoreItem(**fields)


def _rebuild_model(name: str) -> Callable[[dict[str, Any], int], Any]:
    cls = _MODELS[name]

    def rebuild(d: dict[str, Any], _depth: int) -> Any:
        value = d["value"]
        if not isinstance(value, dict):
            raise UnsafeStateDocument(f"a malformed {name}")
        return cls.deserialize(value)

    return rebuild


_REBUILD: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "dict": _rebuild_dict,
    "datetime": lambda d, _: datetime.fromisoformat(d["iso"]),
    "date": lambda d, _: date.fromisoformat(d["iso"]),
    "DialogState": _rebuild_dialog_state,
    "DialogInstance": _rebuild_dialog_instance,
    "PromptOptions": _rebuild_prompt_options,
    "Choice": _rebuild_choice,
    "ListStyle": _rebuild_list_style,
    "StoreItem": _rebuild_store_item,
    **{name: _rebuild_model(name) for name in _MODELS},
}


def _parse(text: str | None) -> Any:
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        raise UnsafeStateDocument("not JSON") from None
    except RecursionError:
        raise UnsafeStateDocument("nested too deeply") from None


def _document_of(item: Any) -> Any:
    if isinstance(item, dict):  # the row's etag column is the one truth
        item = {k: v for k, v in item.items() if k != "e_tag"}
    return encode(item)


class DatabaseStorage(Storage):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def read(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        wanted = list(dict.fromkeys(keys))
        async with self._store._reader() as conn:
            rows = (
                await conn.execute(
                    # the text as stored, parsed here: a row that is not JSON is unreadable, not an error
                    select(BOT_STATE.c.key, cast(BOT_STATE.c.document, Text), BOT_STATE.c.etag).where(
                        BOT_STATE.c.key.in_(wanted)
                    )
                )
            ).all()
        items: dict[str, Any] = {}
        for key, text, etag in rows:
            try:
                item = decode(_parse(text))
            except UnsafeStateDocument as error:
                log.warning(
                    "bot state %r is not in the stored format (%s): treated as missing; the next save replaces it",
                    key[:200],
                    error,
                )
                continue
            if isinstance(item, dict):
                item["e_tag"] = etag
            elif isinstance(item, StoreItem):
                item.e_tag = etag
            items[key] = item
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
                document = _document_of(item)
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

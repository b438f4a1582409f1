"""The botbuilder Storage on the bot's database: eTag concurrency, serialization, and dialogs that survive a restart."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import ConversationState, MessageFactory, StoreItem, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.dialogs import (
    DialogSet,
    DialogState,
    DialogTurnStatus,
    TextPrompt,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.dialogs.prompts import PromptOptions
from sqlalchemy import text

from bot.persistence.store import Store
from bot.teams.state_storage import DatabaseStorage, ETagConflict
from tests.bot.conftest import ALEX, input_ids
from tests.bot.db_fixtures import Database, database_fixture, store_fixture  # noqa: F401 (fixtures)


async def test_reading_nothing_or_missing_keys_returns_an_empty_dict(store: Store) -> None:
    storage = DatabaseStorage(store)
    assert await storage.read([]) == {}
    assert await storage.read(["missing"]) == {}


async def test_written_items_read_back_with_a_new_etag_per_write(store: Store) -> None:
    storage = DatabaseStorage(store)
    await storage.write({"a": {"count": 1, "nested": {"list": [1, 2]}}, "b": {"text": "grüße"}})
    first = await storage.read(["a", "b", "c"])
    assert set(first) == {"a", "b"}
    assert first["a"]["count"] == 1 and first["a"]["nested"] == {"list": [1, 2]}
    assert first["b"]["text"] == "grüße"
    etag = first["a"]["e_tag"]
    assert etag
    first["a"]["count"] = 2
    await storage.write({"a": first["a"]})
    second = await storage.read(["a"])
    assert second["a"]["count"] == 2
    assert second["a"]["e_tag"] not in (None, etag)


async def test_write_with_a_stale_etag_fails_and_changes_nothing(store: Store) -> None:
    storage = DatabaseStorage(store)
    await storage.write({"k": {"v": 1}})
    mine = (await storage.read(["k"]))["k"]
    theirs = (await storage.read(["k"]))["k"]
    theirs["v"] = 2
    await storage.write({"k": theirs})
    mine["v"] = 3
    with pytest.raises(KeyError) as conflict:
        await storage.write({"k": mine, "other": {"v": 9}})
    assert isinstance(conflict.value, ETagConflict)
    after = await storage.read(["k", "other"])
    assert after["k"]["v"] == 2
    assert "other" not in after  # the whole write was refused


async def test_star_or_missing_etag_overwrites_and_empty_etag_is_refused(store: Store) -> None:
    storage = DatabaseStorage(store)
    await storage.write({"k": {"v": 1}})
    await storage.write({"k": {"v": 2, "e_tag": "*"}})
    assert (await storage.read(["k"]))["k"]["v"] == 2
    await storage.write({"k": {"v": 3}})
    assert (await storage.read(["k"]))["k"]["v"] == 3
    with pytest.raises(ValueError, match="etag"):
        await storage.write({"k": {"v": 4, "e_tag": ""}})
    assert (await storage.read(["k"]))["k"]["v"] == 3
    # an e_tag for a key that does not exist yet creates it (MemoryStorage does the same)
    await storage.write({"new": {"v": 1, "e_tag": "from-elsewhere"}})
    assert (await storage.read(["new"]))["new"]["v"] == 1


async def test_saving_the_same_item_twice_in_a_turn_is_not_a_conflict_with_itself(store: Store) -> None:
    storage = DatabaseStorage(store)
    await storage.write({"k": {"v": 1}})
    item = (await storage.read(["k"]))["k"]
    item["v"] = 2
    await storage.write({"k": item})
    item["v"] = 3
    await storage.write({"k": item})  # the first write gave `item` the new e_tag
    assert (await storage.read(["k"]))["k"]["v"] == 3


async def test_store_items_keep_their_type_and_etag(store: Store) -> None:
    storage = DatabaseStorage(store)
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    await storage.write({"item": StoreItem(counter=1, when=when, tags=["x"])})
    got = (await storage.read(["item"]))["item"]
    assert isinstance(got, StoreItem)
    assert (got.counter, got.when, got.tags) == (1, when, ["x"])
    assert got.e_tag
    got.counter = 2
    await storage.write({"item": got})
    stale = StoreItem(counter=5, e_tag="0")
    with pytest.raises(ETagConflict):
        await storage.write({"item": stale})
    assert (await storage.read(["item"]))["item"].counter == 2


async def test_delete_removes_items_and_ignores_missing_keys(store: Store) -> None:
    storage = DatabaseStorage(store)
    await storage.write({"a": {"v": 1}, "b": {"v": 2}})
    await storage.delete(["a", "missing"])
    assert set(await storage.read(["a", "b"])) == {"b"}


async def test_concurrent_writes_with_the_same_etag_from_two_instances_have_one_winner(
    database: Database, store: Store
) -> None:
    second = await database.open()
    await DatabaseStorage(store).write({"conv": {"turn": 0}})
    base = (await DatabaseStorage(store).read(["conv"]))["conv"]

    async def save(instance: Store, turn: int) -> None:
        item = dict(base, turn=turn)
        await DatabaseStorage(instance).write({"conv": item})

    results = await asyncio.gather(
        *(save(store if i % 2 else second, i) for i in range(1, 9)), return_exceptions=True
    )
    winners = [i + 1 for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    assert all(isinstance(r, ETagConflict) for r in results if r is not None)
    assert (await DatabaseStorage(second).read(["conv"]))["conv"]["turn"] == winners[0]


# --- hostile rows: nothing in a stored document runs code ------------------------------------------------------


def _hostile_documents(sentinel: Path) -> dict[str, Any]:
    """Rows an attacker with write access to bot_state might plant; each one would create `sentinel` (or import
    and call something) if the storage rebuilt objects from names in the data, as jsonpickle does."""
    touch = f"open({str(sentinel)!r}, 'w').close()"
    eval_reduce = {"py/reduce": [{"py/function": "builtins.eval"}, {"py/tuple": [touch]}]}
    return {
        "reduce_eval_top_level": eval_reduce,
        "reduce_eval_in_a_dict": {"seen": True, "open_request": eval_reduce},
        "reduce_eval_in_a_list": {"DialogState": {"stack": [1, {"x": [eval_reduce]}]}},
        "reduce_os_system": {
            "x": {"py/reduce": [{"py/function": "os.system"}, {"py/tuple": [f"touch {sentinel}"]}]}
        },
        "object_popen_initargs": {
            "x": {"py/object": "subprocess.Popen", "py/initargs": {"py/tuple": [["touch", str(sentinel)]]}}
        },
        "object_allowed_module_with_reduce_state": {
            "DialogState": {
                "py/object": "botbuilder.dialogs.dialog_state.DialogState",
                "_dialog_stack": [eval_reduce],
            }
        },
        "newobj": {"x": {"py/newobj": [{"py/type": "subprocess.Popen"}, ["touch", str(sentinel)]]}},
        "function_tag": {"x": {"py/function": "os.system"}},
        "type_tag": {"x": [{"py/type": "subprocess.Popen"}]},
        "repr_tag": {"x": {"py/repr": f"builtins/eval({touch!r})"}},
        "mod_tag": {"x": {"py/mod": "os"}},
        "state_tag": {"x": {"py/object": "bot.models.Person", "py/state": eval_reduce}},
        "unknown_own_type": {"x": {"$type": "os.system", "value": f"touch {sentinel}"}},
        "own_type_holding_a_tag": {
            "x": {"$type": "DialogInstance", "id": "main", "state": {"v": eval_reduce}}
        },
    }


HOSTILE_CASES = list(_hostile_documents(Path("/x")))


@pytest.mark.parametrize("case", HOSTILE_CASES)
async def test_a_hostile_state_row_runs_nothing_and_reads_as_missing_with_a_warning(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    sentinel = tmp_path / "pwned"
    document = _hostile_documents(sentinel)[case]
    storage = DatabaseStorage(store)
    await storage.write({"victim": {"v": 1}, "neighbour": {"v": 2}})
    async with store.engine.begin() as conn:
        await conn.execute(
            text("UPDATE bot_state SET document = :doc WHERE key = 'victim'"), {"doc": json.dumps(document)}
        )

    with caplog.at_level(logging.WARNING, logger="bot.teams.state_storage"):
        got = await storage.read(["victim", "neighbour"])

    assert not sentinel.exists()
    assert set(got) == {"neighbour"} and got["neighbour"]["v"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'victim'" in w and "treated as missing" in w for w in warnings), warnings
    # the next save of that state replaces the row, and it reads back normally
    await storage.write({"victim": {"v": 3}})
    assert (await storage.read(["victim"]))["victim"]["v"] == 3
    assert not sentinel.exists()


async def test_a_row_that_is_not_json_reads_as_missing(database: Database, store: Store) -> None:
    if database.backend != "sqlite":
        pytest.skip("PostgreSQL's json column refuses text that is not JSON")
    storage = DatabaseStorage(store)
    await storage.write({"k": {"v": 1}})
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE bot_state SET document = 'not json {' WHERE key = 'k'"))
    assert await storage.read(["k"]) == {}
    await storage.write({"k": {"v": 2}})
    assert (await storage.read(["k"]))["k"]["v"] == 2


async def test_a_value_the_storage_cannot_store_plainly_is_refused_on_write(store: Store) -> None:
    storage = DatabaseStorage(store)
    with pytest.raises(TypeError, match="Path"):
        await storage.write({"k": {"where": Path("/tmp")}})
    assert await storage.read(["k"]) == {}


async def test_keys_that_look_like_tags_are_kept_as_data(store: Store) -> None:
    storage = DatabaseStorage(store)
    value = {"$type": "DialogState", "py/reduce": [1, 2], "nested": {"py/object": "x"}}
    await storage.write({"k": {"v": value}})
    got = (await storage.read(["k"]))["k"]
    assert got["v"] == value


async def test_hostile_state_rows_do_not_run_and_the_conversation_goes_on_through_the_endpoint(
    make_bot: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot()
    first = await bot.open_form(ALEX, "set phone")
    assert first.card is not None
    sentinel = tmp_path / "pwned"
    hostile = _hostile_documents(sentinel)
    conversation_key = f"msteams/conversations/{ALEX.conversation_id}"
    user_key = f"msteams/users/{ALEX.teams_id}"
    async with bot.store.engine.begin() as conn:
        keys = set((await conn.execute(text("SELECT key FROM bot_state"))).scalars())
        assert {conversation_key, user_key} <= keys
        for key, case in (
            (conversation_key, "object_allowed_module_with_reduce_state"),
            (user_key, "reduce_eval_in_a_dict"),
        ):
            await conn.execute(
                text("UPDATE bot_state SET document = :doc WHERE key = :key"),
                {"doc": json.dumps(hostile[case]), "key": key},
            )

    with caplog.at_level(logging.WARNING, logger="bot.teams.state_storage"):
        again = await bot.open_form(ALEX, "set phone")
        cancel = await bot.message(ALEX, "cancel")

    assert again.card is not None and "targetUserText" in input_ids(again.card)
    assert cancel.status in (200, 201)
    assert not sentinel.exists()
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.teams.state_storage" and r.levelno == logging.WARNING
    ]
    assert any("msteams/conversations/" in w for w in warned), warned
    assert any("msteams/users/" in w for w in warned), warned
    # both rows were replaced by plain documents that read back
    items = await DatabaseStorage(bot.store).read([conversation_key, user_key])
    assert set(items) == {conversation_key, user_key}
    assert isinstance(items[conversation_key]["DialogState"], DialogState)


# --- a real dialog survives a restart -------------------------------------------------------------------------


def _dialog_bot(storage: Any) -> tuple[ConversationState, Any]:
    conversation_state = ConversationState(storage)
    dialogs = DialogSet(conversation_state.create_property("DialogState"))
    dialogs.add(TextPrompt("text"))

    async def ask_number(step: WaterfallStepContext) -> Any:
        step.values["started"] = datetime(2030, 1, 1, tzinfo=UTC).isoformat()
        return await step.prompt("text", PromptOptions(prompt=MessageFactory.text("Which number?")))

    async def ask_confirm(step: WaterfallStepContext) -> Any:
        step.values["number"] = step.result
        return await step.prompt("text", PromptOptions(prompt=MessageFactory.text(f"Set {step.result}?")))

    async def finish(step: WaterfallStepContext) -> Any:
        await step.context.send_activity(f"done: {step.values['number']} ({step.result})")
        return await step.end_dialog()

    dialogs.add(WaterfallDialog("set-phone", [ask_number, ask_confirm, finish]))

    async def logic(turn: TurnContext) -> None:
        dc = await dialogs.create_context(turn)
        result = await dc.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dc.begin_dialog("set-phone")
        await conversation_state.save_changes(turn)

    return conversation_state, logic


async def test_a_dialog_continues_after_the_store_is_closed_and_reopened(
    database: Database, store: Store
) -> None:
    _, logic = _dialog_bot(DatabaseStorage(store))
    adapter = TestAdapter(logic)
    await adapter.test("set phone", "Which number?")
    await store.close()

    restarted = await database.open()  # a restart, or another instance taking the next message
    _, logic = _dialog_bot(DatabaseStorage(restarted))
    adapter = TestAdapter(logic)
    await adapter.test("+49 170 1234567", "Set +49 170 1234567?")

    third = await database.open()
    _, logic = _dialog_bot(DatabaseStorage(third))
    adapter = TestAdapter(logic)
    await adapter.test("yes", "done: +49 170 1234567 (yes)")

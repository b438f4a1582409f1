"""The chat dialog with botbuilder-testing (DialogTestClient) over the real service, the Graph simulator and the
store's botbuilder Storage; plus the command parser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import AutoSaveStateMiddleware, ConversationState, Middleware, TurnContext, UserState
from botbuilder.testing import DialogTestClient

from bot.desk.approvals import ApprovalService
from bot.desk.context import Caller, Desk
from bot.desk.execution import Executor
from bot.desk.graph_services import GraphServices
from bot.desk.policy import Policy
from bot.persistence.models import Person
from bot.persistence.store import Store
from bot.settings import BotSettings
from bot.teams.state_storage import DatabaseStorage
from bot.views import texts
from dialogs.commands import Command, parse_command
from dialogs.main_dialog import CALLER_KEY, MainDialog
from dialogs.request_flow import RequestFlow
from tests.bot.conftest import ALEX, PRADEEP, TENANT_ID, Persona, bot_environ, card_text, input_ids

# ------------------------------------------------------------------------------------------------ parser


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("help", Command("help")),
        ("  HELP ", Command("help")),
        ("set phone", Command("set")),
        ("Set Phone", Command("set")),
        ("update mobile", Command("set")),
        ("remove phone", Command("remove")),
        ("history lynne.robbins@contoso.example", Command("history", "lynne.robbins@contoso.example")),
        ("status 8c81fe998ba546c8aa8cacbafd141ea1", Command("status", "8c81fe998ba546c8aa8cacbafd141ea1")),
        ("cancel", Command("cancel")),
        ("<at>MFA phone bot</at> register approvals", Command("register_approvals")),
        ("hello", Command("unknown", "hello")),
        ("", Command("unknown")),
        (None, Command("unknown")),
    ],
)
def test_commands_are_parsed(text: str | None, command: Command) -> None:
    assert parse_command(text) == command


def test_a_huge_message_is_cut_before_parsing() -> None:
    command = parse_command("x" * 1_000_000)
    assert command.name == "unknown" and len(command.argument) <= 80


# ------------------------------------------------------------------------------------------------ dialog


class _CallerMiddleware(Middleware):
    """Stands in for the handler: puts the caller (who, tenant, locale) into the turn."""

    def __init__(self, who: Persona, *, tenant: str | None = TENANT_ID, personal: bool = True) -> None:
        self.who = who
        self.tenant = tenant
        self.personal = personal

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[Any]]) -> None:
        reference = TurnContext.get_conversation_reference(context.activity).serialize()
        context.turn_state[CALLER_KEY] = Caller(
            person=Person(aad_object_id=self.who.aad, name=self.who.name),
            tenant_id=self.tenant,
            locale=context.activity.locale,
            conversation_reference=reference,
            personal=self.personal,
        )
        await logic()


class _Env:
    def __init__(self, desk: Desk, data_dir: Path) -> None:
        self.desk = desk
        self.data_dir = data_dir
        self.stores: list[Store] = []

    async def client(self, who: Persona, **caller: Any) -> DialogTestClient:
        store = await Store.open(None, data_dir=self.data_dir)  # a fresh instance on the same database
        self.stores.append(store)
        storage = DatabaseStorage(store)
        conversation_state, user_state = ConversationState(storage), UserState(storage)
        dialog = MainDialog(
            self.desk,
            RequestFlow(self.desk),
            user_state.create_property("open_request"),
            user_state.create_property("seen"),
        )
        return DialogTestClient(
            "msteams",
            dialog,
            conversation_state=conversation_state,
            middlewares=[AutoSaveStateMiddleware().add(user_state), _CallerMiddleware(who, **caller)],
        )


@pytest.fixture
async def env(sim: Any, sim_env: dict[str, str], tmp_path: Path) -> AsyncIterator[_Env]:
    settings = BotSettings.from_env(bot_environ(sim_env, str(tmp_path)))
    assert settings.graph is not None
    graph = await GraphServices.create(settings.graph)
    store = await Store.open(None, data_dir=tmp_path)
    policy = Policy(graph.directory, settings)
    executor = Executor(store=store, workflow=graph.workflow, updater=None, settings=settings, policy=policy)
    approvals = ApprovalService(
        store=store, policy=policy, executor=executor, updater=None, settings=settings
    )
    desk = Desk(
        store=store,
        graph=graph,
        policy=policy,
        executor=executor,
        updater=None,
        settings=settings,
        approvals=approvals,
    )
    e = _Env(desk, tmp_path)
    try:
        yield e
    finally:
        for s in e.stores:
            await s.close()
        await store.close()
        await graph.close()


def _card(activity: Any) -> dict[str, Any]:
    assert activity is not None and activity.attachments, activity
    return activity.attachments[0].content


async def test_set_phone_answers_with_the_request_form(env: _Env) -> None:
    client = await env.client(ALEX)
    reply = await client.send_activity("set phone")
    assert {"targetUserId", "targetUserText", "number"} <= input_ids(_card(reply))


async def test_help_answers_with_help_then_the_form(env: _Env) -> None:
    client = await env.client(ALEX)
    first = await client.send_activity("help")
    assert texts.t("en", "help.title") in card_text(_card(first))
    assert "targetUserText" in input_ids(_card(client.get_next_reply()))


async def test_remove_phone_preselects_remove(env: _Env) -> None:
    client = await env.client(ALEX)
    card = _card(await client.send_activity("remove phone"))
    from tests.bot.conftest import walk

    assert next(el for el in walk(card) if el.get("id") == "action")["value"] == "remove"


async def test_no_helpdesk_role_gets_the_refusal_not_the_form(env: _Env) -> None:
    client = await env.client(PRADEEP)
    card = _card(await client.send_activity("set phone"))
    assert texts.t("en", "refusal.not_helpdesk").split("{")[0][:30] in card_text(card)
    assert "targetUserText" not in input_ids(card)


async def test_unknown_text_after_the_first_message_says_so_even_on_another_instance(env: _Env) -> None:
    first = await env.client(ALEX)
    assert "targetUserText" in input_ids(_card(await first.send_activity("hello")))
    second = await env.client(ALEX)  # another Store instance on the same database: the state is there
    reply = await second.send_activity("what?")
    assert reply.text == texts.t("en", "refusal.unknown_command", text="what?")
    assert "targetUserText" in input_ids(_card(second.get_next_reply()))


async def test_cancel_without_an_open_request(env: _Env) -> None:
    client = await env.client(ALEX)
    reply = await client.send_activity("cancel")
    assert reply.text == texts.t("en", "cancel.nothing")


async def test_outside_the_personal_chat_only_help_and_registration(env: _Env) -> None:
    client = await env.client(ALEX, personal=False)
    card = _card(await client.send_activity("set phone"))
    assert texts.t("en", "refusal.not_in_personal_chat") in card_text(card)


async def test_status_of_an_unknown_request_is_not_found(env: _Env) -> None:
    client = await env.client(ALEX)
    card = _card(await client.send_activity("status 0123456789abcdef"))
    assert texts.t("en", "refusal.not_found") in card_text(card)

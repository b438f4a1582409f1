"""Microsoft sign-in or Graph failing while the bot reads the directory (review, history, status, an approval
click): the person keeps their card, with clear words on top (sign-in/Graph did not answer, try again in a few
seconds; or the configuration problem an administrator must fix), and nothing is changed. Never "something went
wrong". Faults are injected into the Graph simulator (token endpoint and /users); the bot runs behind its real
HTTP endpoint with a Graph stack of short retry deadlines.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from app import create_app
from bot.desk.graph_services import GraphServices
from bot.persistence.models import RequestState
from bot.settings import BotSettings
from bot.views import texts
from graph.client import RetryPolicy
from tests.bot.conftest import (
    ALEX,
    MEGAN,
    PATTI,
    BotHarness,
    action_data,
    bot_environ,
    card_text,
    graph_writes,
    input_ids,
    walk,
)
from tests.bot.db_fixtures import Database
from tests.bot.fake_connector import FakeConnector

TOKEN = r"/oauth2/v2\.0/token$"
USERS = r"/users/[^/]+$"  # a user looked up by UPN, mail or id
MEMBER_GROUPS = r"/checkMemberGroups$"
DIEGO = {
    "targetUserText": "diego.siciliani@contoso.example",
    "number": "+49 170 5556666",
    "action": "set",
    "notify": "true",
    "language": "de",
    "ticket": "INC-4711",
}
UNAVAILABLE = "Microsoft sign-in/Graph did not answer"
INTERNAL = texts.t("en", "refusal.internal_error")


class Bot(BotHarness):
    graph: GraphServices

    async def lose_token(self) -> None:
        """The cached access token is gone (expired): the next Graph call asks the token endpoint."""
        await self.graph.tokens.invalidate()


MakeFastBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def make_fast_bot(
    sim: Any, sim_env: dict[str, str], connector: FakeConnector, database: Database, tmp_path: Any
) -> AsyncIterator[MakeFastBot]:
    bots: list[tuple[Bot, TestServer, GraphServices]] = []

    async def start(**overrides: str) -> Bot:
        from graph.auth import TokenProvider
        from graph.client import create_graph_client
        from graph.directory import Directory
        from graph.workflow import PhoneMfaWorkflow, WorkflowSettings

        env = bot_environ(sim_env, str(tmp_path / f"data-{uuid.uuid4().hex[:6]}"), **overrides)
        settings = BotSettings.from_env(env)
        gs = settings.graph
        assert gs is not None
        tokens = await TokenProvider.create(gs, http_timeout=2.0)
        client, close = await create_graph_client(
            gs,
            tokens=tokens,
            http_timeout=httpx.Timeout(2.0),
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, deadline=4.0),
        )
        directory = Directory(client, app_id=gs.client_id)
        workflow = PhoneMfaWorkflow(
            client, directory, WorkflowSettings.from_graph_settings(gs), notifier=None
        )
        graph = GraphServices(
            client=client, directory=directory, workflow=workflow, tokens=tokens, _close=close
        )
        store = await database.open()
        server = TestServer(create_app(settings, store=store, graph=graph), host="127.0.0.1")
        await server.start_server()
        harness = Bot(server, connector, settings, store, sim)
        harness.graph = graph
        bots.append((harness, server, graph))
        return harness

    try:
        yield start
    finally:
        for harness, server, graph in bots:
            await harness.close()
            await server.close()
            await graph.close()


def top_error(card: dict[str, Any] | None) -> tuple[int, str]:
    """(position, text) of the first attention-coloured TextBlock of the card's body."""
    for i, el in enumerate((card or {}).get("body") or []):
        if el.get("type") == "TextBlock" and el.get("color") == "Attention":
            return i, card_text({"body": [el]})
    return -1, ""


def first_input(card: dict[str, Any] | None) -> int:
    body = (card or {}).get("body") or []
    return next(i for i, el in enumerate(body) if str(el.get("type", "")).startswith("Input."))


def values(card: dict[str, Any] | None) -> dict[str, Any]:
    return {
        el["id"]: el.get("value") for el in walk(card or {}) if str(el.get("type", "")).startswith("Input.")
    }


async def assert_nothing_changed(bot: BotHarness) -> None:
    assert graph_writes(bot.sim) == []
    assert [r for r in await bot.all_audit() if r["event"] in ("requested", "confirmed")] == []


def assert_form_kept_with_error_on_top(reply: Any, *needles: str) -> str:
    assert reply.status == 200 and reply.card is not None
    assert "targetUserText" in input_ids(reply.card) and action_data(reply.card, "mfa.review") is not None
    kept = values(reply.card)
    for field in ("targetUserText", "number", "action", "notify", "language", "ticket"):
        assert kept[field] == DIEGO[field], field
    position, error = top_error(reply.card)
    assert 0 <= position < first_input(reply.card), "the error is above the fields"
    for needle in needles:
        assert needle in error, (needle, error)
    assert INTERNAL not in reply.text and texts.t("en", "form.has_errors") not in reply.text
    return error


async def test_review_while_the_token_endpoint_fails_keeps_the_form_and_says_try_again(
    make_fast_bot: MakeFastBot,
) -> None:
    bot = await make_fast_bot()
    form = await bot.open_form(ALEX)
    await bot.lose_token()
    bot.sim.faults.inject("POST", TOKEN, 503, times=50)
    reply = await bot.review(ALEX, form, DIEGO)
    error = assert_form_kept_with_error_on_top(reply, UNAVAILABLE, "nothing was changed", "a few seconds")
    assert "permission" not in error
    # msal replays the failure from memory for a few seconds: a second try right away gets the same clear answer
    again = await bot.review(ALEX, form, DIEGO)
    assert_form_kept_with_error_on_top(again, UNAVAILABLE)
    await assert_nothing_changed(bot)


async def test_review_while_graph_users_is_down_keeps_the_form_and_says_try_again(
    make_fast_bot: MakeFastBot,
) -> None:
    bot = await make_fast_bot()
    form = await bot.open_form(ALEX)
    bot.sim.faults.inject("GET", USERS, 503, times=100)
    reply = await bot.review(ALEX, form, DIEGO)
    assert_form_kept_with_error_on_top(reply, UNAVAILABLE, "nothing was changed")
    # once Graph answers again, the same card goes on to the confirmation
    bot.sim.faults.clear()
    data = {**(action_data(reply.card, "mfa.review") or {}), **DIEGO}
    ok = await bot.review_and_wait(ALEX, data, reply_to_id=form.activity_id)
    assert action_data(ok.card, "mfa.confirm") is not None, ok.text
    assert graph_writes(bot.sim) == []


async def test_review_with_graph_in_german_says_it_in_german(make_fast_bot: MakeFastBot) -> None:
    bot = await make_fast_bot()
    form = await bot.open_form(ALEX, locale="de-DE")
    bot.sim.faults.inject("GET", USERS, 503, times=100)
    reply = await bot.review(ALEX, form, DIEGO, locale="de-DE")
    assert_form_kept_with_error_on_top(reply, "Microsoft-Anmeldung/Graph hat nicht geantwortet")


async def test_review_when_entra_refuses_the_bots_credentials_says_what_to_fix(
    make_fast_bot: MakeFastBot, sim_env: dict[str, str]
) -> None:
    bot = await make_fast_bot()
    form = await bot.open_form(ALEX)
    bot.sim.tenant.app(sim_env["GRAPH_CLIENT_ID"]).client_secret = "rotated-" + uuid.uuid4().hex
    await bot.lose_token()
    reply = await bot.review(ALEX, form, DIEGO)
    error = assert_form_kept_with_error_on_top(reply, "Microsoft Entra refused to give the bot a token")
    assert "AADSTS7000215" in error and "Trying again will not help" in error
    assert UNAVAILABLE not in error
    assert sim_env["GRAPH_CLIENT_SECRET"] not in reply.text
    await assert_nothing_changed(bot)


async def test_review_when_graph_refuses_the_permission_names_it(make_fast_bot: MakeFastBot) -> None:
    bot = await make_fast_bot()
    form = await bot.open_form(ALEX)
    bot.sim.faults.inject("GET", USERS, 403, times=5)
    reply = await bot.review(ALEX, form, DIEGO)
    assert_form_kept_with_error_on_top(reply, "lacks the permission User.Read.All")
    await assert_nothing_changed(bot)


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        (r"/roleManagement/directory/roleAssignments$", "RoleManagement.Read.Directory"),
        (r"/transitiveMemberOf$", "GroupMember.Read.All"),
    ],
)
async def test_review_when_graph_refuses_a_privilege_read_names_that_calls_permission(
    make_fast_bot: MakeFastBot, path: str, permission: str
) -> None:
    bot = await make_fast_bot()
    form = await bot.open_form(ALEX)
    bot.sim.faults.inject("GET", path, 403, times=5)
    reply = await bot.review(ALEX, form, DIEGO)
    error = assert_form_kept_with_error_on_top(reply, f"lacks the permission {permission}")
    assert "permission User.Read.All" not in error
    await assert_nothing_changed(bot)


async def test_opening_the_form_when_graph_refuses_the_group_check_names_group_member_read_all(
    make_fast_bot: MakeFastBot,
) -> None:
    bot = await make_fast_bot()
    bot.sim.faults.inject("POST", MEMBER_GROUPS, 403, times=100)  # the helpdesk role cannot be read
    mark = bot.connector.mark()
    reply = await bot.message(ALEX, "set phone")
    assert reply.status in (200, 201)
    sent = await bot.connector.wait_for(lambda rs: [r for r in rs if r.card or r.text] or None, since=mark)
    said = "\n".join(card_text(r.card) + r.text for r in sent)
    assert "lacks the permission GroupMember.Read.All" in said and INTERNAL not in said
    assert "permission User.Read.All" not in said


async def test_opening_the_form_while_graph_is_down_says_so_instead_of_something_went_wrong(
    make_fast_bot: MakeFastBot,
) -> None:
    bot = await make_fast_bot()
    bot.sim.faults.inject("POST", MEMBER_GROUPS, 503, times=100)  # the helpdesk role cannot be read
    mark = bot.connector.mark()
    reply = await bot.message(ALEX, "set phone")
    assert reply.status in (200, 201)
    sent = await bot.connector.wait_for(lambda rs: [r for r in rs if r.card or r.text] or None, since=mark)
    said = "\n".join(card_text(r.card) + r.text for r in sent)
    assert UNAVAILABLE in said and INTERNAL not in said


async def test_history_and_status_while_graph_is_down_say_try_again(make_fast_bot: MakeFastBot) -> None:
    bot = await make_fast_bot()
    review, _, _ = await bot.run_change(ALEX, {k: DIEGO[k] for k in ("targetUserText", "number", "action")})
    request_id = (action_data(review.card, "mfa.confirm") or {})["requestId"]
    # history looks the user up in Graph
    bot.sim.faults.inject("GET", USERS, 503, times=100)
    mark = bot.connector.mark()
    await bot.message(ALEX, "history diego.siciliani@contoso.example")
    sent = await bot.connector.wait_for(lambda rs: [r for r in rs if r.card] or None, since=mark)
    assert UNAVAILABLE in card_text(sent[0].card) and INTERNAL not in card_text(sent[0].card)
    # status by an approver reads their groups from Graph (Megan has not talked to the bot yet)
    bot.sim.faults.inject("POST", MEMBER_GROUPS, 503, times=100)
    mark = bot.connector.mark()
    await bot.message(MEGAN, f"status {request_id}")
    sent = await bot.connector.wait_for(lambda rs: [r for r in rs if r.card] or None, since=mark)
    assert UNAVAILABLE in card_text(sent[0].card) and INTERNAL not in card_text(sent[0].card)
    history_views = [r for r in await bot.all_audit() if r["event"] == "history_viewed"]
    assert history_views == []


async def test_approval_click_while_graph_is_down_keeps_the_card_with_its_buttons(
    make_fast_bot: MakeFastBot,
) -> None:
    channel_id = "19:approvers@thread.tacv2"
    bot = await make_fast_bot(APPROVAL_POLICY="always", APPROVER_CONVERSATION_ID=channel_id)
    reply = await bot.conversation_update(MEGAN, conversation_id=channel_id, conversation_type="channel")
    assert reply.status in (200, 201)
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, {k: DIEGO[k] for k in ("targetUserText", "number", "action")})
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirm.status == 200
    data = action_data(review.card, "mfa.confirm") or {}
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.AWAITING_APPROVAL
    # Patti's groups are not cached yet: Graph must answer for her click to be checked
    bot.sim.faults.inject("POST", MEMBER_GROUPS, 503, times=100)
    click = {"verb": "mfa.approve", "requestId": req.id, "rev": req.revision}
    answer = await bot.invoke(
        PATTI, "mfa.approve", click, conversation_id=channel_id, conversation_type="channel"
    )
    assert answer.status == 200
    position, error = top_error(answer.card)
    assert position == 0 and UNAVAILABLE in error and INTERNAL not in answer.text
    assert "Diego Siciliani" in answer.text
    assert (action_data(answer.card, "mfa.approve") or {}).get("rev") == req.revision
    after = await bot.store.get_request(req.id)
    assert after is not None and after.state is RequestState.AWAITING_APPROVAL and after.decided_by is None
    assert graph_writes(bot.sim) == []
    # Graph is back: the same button decides
    bot.sim.faults.clear()
    ok = await bot.invoke(
        PATTI, "mfa.approve", click, conversation_id=channel_id, conversation_type="channel"
    )
    assert "Approved by Patti Fernandez" in ok.text and top_error(ok.card) == (-1, "")

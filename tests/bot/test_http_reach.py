"""Reaching a person in Teams 1:1 (bot/teams/reach.py) in the running bot: the reacher the bot is built with, the
real adapter and connector client talking to the fake connector, Graph answered by the simulator.

A person who wrote to the bot gets the card in their own 1:1 conversation and Graph is not asked; a person who
never did is reached by installing the app for them (the simulator records the install) and the card lands in the
chat Graph names; every way that fails is a Delivery with the reason, and no card goes anywhere.
"""

from __future__ import annotations

from typing import Any

import pytest

from app import RUNTIME
from bot.desk.verification import Delivery, Recipient
from bot.views import texts
from graph.simulator.tenant import one_on_one_chat_id
from tests.bot.conftest import (
    ALEX,
    BOT_ID,
    LYNNE,
    TENANT_ID,
    BotHarness,
    MakeBot,
    action_data,
    card_text,
    graph_writes,
)

CARD_TITLE = "Did you ask the service desk to change your phone number?"
CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": CARD_TITLE}],
}
TO_LYNNE = Recipient(LYNNE.aad, LYNNE.name, LYNNE.upn)


def reacher(bot: BotHarness) -> Any:
    return bot.server.app[RUNTIME].bot.desk.reacher


def is_ours(card: dict[str, Any]) -> bool:
    return CARD_TITLE in card_text(card)


def teams_calls(bot: BotHarness) -> list[Any]:
    return [c for c in bot.sim.calls if "/teamwork/" in c.path or c.path.endswith("/appCatalogs/teamsApps")]


def installs(bot: BotHarness) -> list[Any]:
    return [c for c in bot.sim.calls if c.method == "POST" and c.path.endswith("/teamwork/installedApps")]


def graph_chat_id(bot: BotHarness, user_id: str) -> str:
    """The chat id Graph answered for the user (GET .../installedApps/{id}/chat), as the simulator recorded it."""
    (call,) = [
        c for c in bot.sim.calls if c.method == "GET" and c.path.endswith("/chat") and user_id in c.path
    ]
    assert call.status == 200
    (installation,) = bot.sim.tenant.installations_of(user_id)
    return installation.chat_id


async def agent_wrote(bot: BotHarness) -> None:
    """The helpdesk agent has talked to the bot (the conversation every request starts in)."""
    reply = await bot.message(ALEX, "help")
    assert reply.status in (200, 201)


async def test_a_person_who_wrote_to_the_bot_gets_the_card_in_their_chat_and_graph_is_not_asked(
    bot: BotHarness,
) -> None:
    reply = await bot.message(LYNNE, "hello")
    assert reply.status in (200, 201)
    mark = bot.connector.mark()
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert delivery.delivered, delivery
    (sent,) = [r for r in bot.connector.since(mark) if r.kind in ("send", "reply")]
    assert sent.conversation_id == LYNNE.conversation_id and is_ours(sent.card or {})
    assert bot.connector.card_conversations(is_ours) == [LYNNE.conversation_id]
    assert delivery.card_ref is not None and delivery.card_ref.role == "verifier"
    assert delivery.card_ref.activity_id == sent.activity_id
    assert delivery.card_ref.conversation_reference["conversation"]["id"] == LYNNE.conversation_id
    assert teams_calls(bot) == []


async def test_a_person_who_never_wrote_is_reached_by_installing_the_app_in_the_chat_graph_names(
    bot: BotHarness,
) -> None:
    await agent_wrote(bot)
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert delivery.delivered, delivery
    (install,) = installs(bot)
    assert install.path.endswith(f"/users/{LYNNE.aad}/teamwork/installedApps") and install.status == 201
    chat_id = graph_chat_id(bot, LYNNE.aad)
    assert chat_id == one_on_one_chat_id(LYNNE.aad, bot.sim.tenant.teams_apps[0].bot_id)
    # the card went to that chat, and nowhere else (not the agent's conversation)
    assert bot.connector.card_conversations(is_ours) == [chat_id]
    (sent,) = [r for r in bot.connector.messages(chat_id)]
    assert delivery.card_ref is not None and delivery.card_ref.activity_id == sent.activity_id
    # the new conversation is kept for the next time, modelled on the tenant's stored one (service URL, bot)
    stored = await bot.store.conversation_reference(f"user:{LYNNE.aad}")
    assert stored is not None and stored["conversation"]["id"] == chat_id
    # botbuilder's key for ConversationAccount.tenant_id
    assert stored["conversation"]["tenantID"] == TENANT_ID
    assert stored["serviceUrl"] == bot.connector.service_url
    assert stored["bot"]["id"] == BOT_ID
    assert stored["user"]["aadObjectId"] == LYNNE.aad

    # the next card uses it: no second install, no second catalog read
    before = len(teams_calls(bot))
    again = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert again.delivered and len(teams_calls(bot)) == before
    assert bot.connector.card_conversations(is_ours) == [chat_id, chat_id]


async def test_an_app_installed_before_answers_409_and_the_card_still_lands_in_the_chat(
    bot: BotHarness,
) -> None:
    await agent_wrote(bot)
    app = bot.sim.tenant.teams_apps[0]
    installed = bot.sim.tenant.install_teams_app(LYNNE.aad, app)
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert delivery.delivered, delivery
    (install,) = installs(bot)
    assert install.status == 409
    assert len(bot.sim.tenant.installations_of(LYNNE.aad)) == 1
    assert bot.connector.card_conversations(is_ours) == [installed.chat_id]


async def test_a_stored_conversation_that_no_longer_takes_messages_is_replaced_by_the_installed_chat(
    bot: BotHarness,
) -> None:
    await bot.message(LYNNE, "hello")
    bot.connector.fail_sends_to[LYNNE.conversation_id] = 403  # she removed the app
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert delivery.delivered, delivery
    chat_id = graph_chat_id(bot, LYNNE.aad)
    assert bot.connector.card_conversations(is_ours) == [chat_id]
    stored = await bot.store.conversation_reference(f"user:{LYNNE.aad}")
    assert stored is not None and stored["conversation"]["id"] == chat_id


@pytest.mark.parametrize(
    ("switch", "reason"),
    [
        ({"teams_app_in_catalog": False}, "app_not_in_catalog"),
        ({"teams_app_blocked": True}, "blocked_by_policy"),
    ],
)
async def test_an_app_graph_cannot_install_is_a_reason_and_no_card(
    bot: BotHarness, switch: dict[str, bool], reason: str
) -> None:
    await agent_wrote(bot)
    bot.sim.behaviour.update(switch)
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert delivery == Delivery(False, reason=reason, detail=delivery.detail)
    assert delivery.card_ref is None and delivery.detail
    assert bot.connector.card_conversations(is_ours) == []
    assert bot.sim.tenant.installations_of(LYNNE.aad) == []
    assert await bot.store.conversation_reference(f"user:{LYNNE.aad}") is None


async def test_a_missing_installation_permission_is_a_reason_naming_it(make_bot: MakeBot, sim: Any) -> None:
    app = sim.tenant.applications[0]  # before the bot starts: its Graph token carries the roles granted then
    app.roles = [r for r in app.roles if not r.startswith("TeamsAppInstallation.")]
    bot = await make_bot()
    await agent_wrote(bot)
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert not delivery.delivered and delivery.reason == "permission_missing"
    assert "TeamsAppInstallation.ReadWriteSelfForUser.All" in delivery.detail
    (install,) = installs(bot)
    assert install.status == 403
    assert bot.connector.card_conversations(is_ours) == []


async def test_without_teams_app_id_only_stored_conversations_reach_people(make_bot: MakeBot) -> None:
    bot = await make_bot(TEAMS_APP_ID="")
    await agent_wrote(bot)
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert not delivery.delivered and delivery.reason == "not_configured"
    assert teams_calls(bot) == [] and bot.connector.card_conversations(is_ours) == []

    await bot.message(LYNNE, "hello")
    delivered = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert delivered.delivered
    assert bot.connector.card_conversations(is_ours) == [LYNNE.conversation_id]


async def test_a_chat_the_connector_refuses_is_send_failed(bot: BotHarness) -> None:
    await agent_wrote(bot)
    chat_id = one_on_one_chat_id(LYNNE.aad, bot.sim.tenant.teams_apps[0].bot_id)
    bot.connector.fail_sends_to[chat_id] = 404
    delivery = await reacher(bot).send_card(TO_LYNNE, CARD)
    assert not delivery.delivered and delivery.reason == "send_failed"
    assert bot.connector.card_conversations(is_ours) == []
    assert await bot.store.conversation_reference(f"user:{LYNNE.aad}") is None


# ------------------------------------------------------------------------------------------------ the whole request


NEW_NUMBER = "+49 170 7654321"


async def confirm_with_teams(bot: BotHarness) -> tuple[Any, Any]:
    """Alex asks to change Lynne's number, verified by confirmation in Teams: (the request card, Confirm's answer)."""
    form = await bot.open_form(ALEX)
    review = await bot.review(
        ALEX,
        form,
        {"targetUserText": LYNNE.upn, "number": NEW_NUMBER, "action": "set", "verification": "teams"},
    )
    assert review.status == 200 and action_data(review.card, "mfa.confirm"), review.text
    confirmed = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirmed.status == 200
    return form, confirmed


def asks_lynne(card: dict[str, Any]) -> bool:
    return texts.t("en", "verify.ask.title") in card_text(card)


async def test_lynne_who_never_wrote_gets_the_card_in_the_installed_chat_and_her_yes_makes_the_change(
    make_bot: MakeBot,
) -> None:
    bot = await make_bot(VERIFICATION_POLICY="")
    form, confirmed = await confirm_with_teams(bot)
    assert "Waiting for Lynne Robbins to confirm in Teams" in confirmed.text
    (install,) = installs(bot)
    assert install.status == 201
    chat_id = graph_chat_id(bot, LYNNE.aad)
    # her card went to her own 1:1 chat (the one Graph named), and nowhere else
    assert bot.connector.card_conversations(asks_lynne) == [chat_id]
    (ask,) = [r for r in bot.connector.messages(chat_id) if r.card and asks_lynne(r.card)]
    assert NEW_NUMBER not in card_text(ask.card) and "***4321" in card_text(ask.card)
    assert bot.sim.tenant.user(LYNNE.aad).phones["mobile"].number == "+49 1701234567"

    yes = action_data(ask.card, "mfa.verify.yes")
    assert yes is not None
    mark = bot.connector.mark()
    answer = await bot.invoke(
        LYNNE, "mfa.verify.yes", yes, reply_to_id=ask.activity_id, conversation_id=chat_id
    )
    assert answer.status == 200 and "You confirmed this request" in answer.text
    assert form.activity_id is not None
    final = await bot.final_update(form.activity_id, since=mark)
    assert "Done: mobile number updated" in card_text(final.card), card_text(final.card)
    assert bot.sim.tenant.user(LYNNE.aad).phones["mobile"].number == "+49 1707654321"


async def test_lynne_who_wrote_before_gets_the_card_in_her_chat_without_graph_and_her_no_stops_it(
    make_bot: MakeBot,
) -> None:
    bot = await make_bot(VERIFICATION_POLICY="")
    await bot.message(LYNNE, "hello")
    form, confirmed = await confirm_with_teams(bot)
    assert "Waiting for Lynne Robbins to confirm in Teams" in confirmed.text
    assert teams_calls(bot) == []
    assert bot.connector.card_conversations(asks_lynne) == [LYNNE.conversation_id]
    (ask,) = [r for r in bot.connector.messages(LYNNE.conversation_id) if r.card and asks_lynne(r.card)]

    no = action_data(ask.card, "mfa.verify.no")
    assert no is not None
    mark = bot.connector.mark()
    answer = await bot.invoke(LYNNE, "mfa.verify.no", no, reply_to_id=ask.activity_id)
    assert answer.status == 200 and "The request was stopped" in answer.text
    assert form.activity_id is not None
    final = await bot.final_update(form.activity_id, since=mark)
    assert "Lynne Robbins said they did not ask for this change" in card_text(final.card), card_text(
        final.card
    )
    assert bot.sim.tenant.user(LYNNE.aad).phones["mobile"].number == "+49 1701234567"
    assert graph_writes(bot.sim) == []


@pytest.mark.parametrize(
    ("switch", "why"),
    [
        ({"teams_app_in_catalog": False}, "verify.undelivered.app_not_in_catalog"),
        ({"teams_app_blocked": True}, "verify.undelivered.blocked_by_policy"),
    ],
)
async def test_when_lynne_cannot_be_reached_the_agents_card_says_why_and_nothing_is_asked(
    make_bot: MakeBot, switch: dict[str, bool], why: str
) -> None:
    bot = await make_bot(VERIFICATION_POLICY="")
    bot.sim.behaviour.update(switch)
    _form, confirmed = await confirm_with_teams(bot)
    assert "Lynne Robbins could not be reached in Teams" in confirmed.text, confirmed.text
    assert texts.t("en", why) in confirmed.text
    assert bot.connector.card_conversations(asks_lynne) == []
    assert graph_writes(bot.sim) == []

"""Through the real endpoint: what the agent sees when a Review cannot go ahead as typed.

- A remove of a number the user does not have: the confirmation card says so, with Edit and Cancel and no
  Confirm; a forged Confirm on that draft is refused and Graph is not written.
- A refused form (privileged target, own account, cool-down, rate limit): the card names the user, Edit brings
  the form back with the values as typed, Cancel ends it.

Each Review is sent both ways the bot answers it: at once (no card to update: the answer is the final card) and
after the answer (the clicked card is updated in place).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.persistence.models import RequestState
from bot.views import texts
from graph.simulator.tenant import Phone
from tests.bot.conftest import (
    ALEX,
    ISAIAH,
    LYNNE_ID,
    BotHarness,
    MakeBot,
    Reply,
    action_data,
    card_text,
    graph_writes,
    walk,
)

LYNNE_UPN = "lynne.robbins@contoso.example"  # mobile +49 1701234567
DIEGO_UPN = "diego.siciliani@contoso.example"  # no mobile


def en(key: str) -> str:
    """The fixed part of an English text (up to its first placeholder)."""
    return texts.TEXTS["en"][key].split("{")[0].strip()


def buttons(card: dict[str, Any] | None) -> list[str]:
    return [el["verb"] for el in walk(card or {}) if el.get("type") == "Action.Execute"]


def shown_values(card: dict[str, Any] | None) -> dict[str, Any]:
    """The request form's inputs and their values."""
    return {
        el["id"]: el.get("value")
        for el in walk(card or {})
        if str(el.get("type", "")).startswith("Input.") and "id" in el
    }


async def review(bot: BotHarness, values: dict[str, Any], *, in_place: bool) -> tuple[Reply, str | None]:
    """Review `values` on a fresh request form; in place (the card is updated after the answer) or at once.
    Returns what the agent ends up seeing and the id of the card to click on next."""
    form = await bot.open_form(ALEX, "remove phone" if values.get("action") == "remove" else "set phone")
    data = {**(action_data(form.card, "mfa.review") or {"verb": "mfa.review"}), **values}
    reply_to = form.activity_id if in_place else None
    reply = await bot.review_and_wait(ALEX, data, reply_to_id=reply_to)
    assert reply.status == 200, reply
    if in_place:
        assert reply.answer is not None, "the Review was answered first and the card updated after"
    return reply, reply_to


WAYS = pytest.mark.parametrize("in_place", [False, True], ids=["answered-at-once", "updated-in-place"])


@WAYS
async def test_remove_of_a_number_the_user_does_not_have_says_so_and_offers_no_confirm(
    bot: BotHarness, in_place: bool
) -> None:
    values = {"targetUserText": LYNNE_UPN, "number": "+49 170 1111111", "action": "remove"}
    reply, card_id = await review(bot, values, in_place=in_place)
    text = card_text(reply.card)
    assert (
        "+49 1701111111 does not match the current mobile number of Lynne Robbins (+49 170 ***4567)" in text
    )
    assert buttons(reply.card) == ["mfa.edit", "mfa.cancel"]
    # Edit: the form again, with the number as typed
    edit = await bot.invoke(ALEX, "mfa.edit", action_data(reply.card, "mfa.edit"), reply_to_id=card_id)
    shown = shown_values(edit.card)
    assert shown["targetUserText"] == LYNNE_UPN and shown["number"] == "+491701111111"
    assert shown["action"] == "remove"
    assert graph_writes(bot.sim) == []


async def test_a_forged_confirm_of_that_remove_is_refused_and_graph_is_not_written(bot: BotHarness) -> None:
    values = {"targetUserText": LYNNE_UPN, "number": "+49 170 1111111", "action": "remove"}
    reply, card_id = await review(bot, values, in_place=True)
    edit = action_data(reply.card, "mfa.edit")
    assert edit is not None and action_data(reply.card, "mfa.confirm") is None
    forged = {"verb": "mfa.confirm", "requestId": edit["requestId"], "rev": edit["rev"]}
    answer = await bot.invoke(ALEX, "mfa.confirm", forged, reply_to_id=card_id)
    assert answer.status == 200
    text = card_text(answer.card)
    assert "Not possible for Lynne Robbins (lynne.robbins@contoso.example)" in text
    assert "does not match the current mobile number" in text
    assert buttons(answer.card) == ["mfa.edit", "mfa.cancel"]
    req = await bot.store.get_request(edit["requestId"])
    assert req is not None and req.state is RequestState.DRAFT
    assert (await bot.refusals())[-1]["details"]["reason"] == "refusal.remove_mismatch"
    assert graph_writes(bot.sim) == []
    assert bot.sim.tenant.user(LYNNE_ID).phones["mobile"].number == "+49 1701234567"
    # Cancel ends it
    cancel = await bot.invoke(ALEX, "mfa.cancel", action_data(answer.card, "mfa.cancel"), reply_to_id=card_id)
    assert texts.t("en", "decision.title.cancelled") in card_text(cancel.card)
    req = await bot.store.get_request(edit["requestId"])
    assert req is not None and req.state is RequestState.CANCELLED


@WAYS
async def test_remove_of_a_number_for_a_user_without_a_mobile_says_there_is_none(
    bot: BotHarness, in_place: bool
) -> None:
    values = {"targetUserText": DIEGO_UPN, "number": "+49 170 5556666", "action": "remove"}
    reply, _ = await review(bot, values, in_place=in_place)
    assert "Diego Siciliani has no mobile number, so +49 1705556666 cannot be removed" in card_text(
        reply.card
    )
    assert buttons(reply.card) == ["mfa.edit", "mfa.cancel"]
    assert graph_writes(bot.sim) == []


async def test_a_stored_trunk_zero_is_the_same_number_and_the_remove_is_offered(bot: BotHarness) -> None:
    lynne = bot.sim.tenant.user(LYNNE_ID)
    bot.sim.tenant.commit_phones(lynne, {"mobile": Phone("mobile", "+49 01701234567", "ready")})
    values = {"targetUserText": LYNNE_UPN, "number": "+49 170 1234567", "action": "remove"}
    reply, _ = await review(bot, values, in_place=True)
    assert buttons(reply.card) == ["mfa.confirm", "mfa.edit", "mfa.cancel"], card_text(reply.card)
    assert "does not match" not in card_text(reply.card)


async def test_remove_without_a_number_is_the_current_mobile_and_is_offered(bot: BotHarness) -> None:
    reply, _ = await review(bot, {"targetUserText": LYNNE_UPN, "action": "remove"}, in_place=True)
    assert buttons(reply.card) == ["mfa.confirm", "mfa.edit", "mfa.cancel"], card_text(reply.card)


@WAYS
async def test_a_refused_privileged_target_names_the_user_and_edit_keeps_the_values(
    bot: BotHarness, in_place: bool
) -> None:
    values = {"targetUserText": ISAIAH.upn, "number": "+49 170 5550199", "action": "set", "ticket": "INC-7"}
    reply, card_id = await review(bot, values, in_place=in_place)
    text = card_text(reply.card)
    assert "Not possible for Isaiah Langer (isaiah.langer@contoso.example)" in text
    assert en("refusal.target_privileged") in text and "Global Administrator" in text
    assert buttons(reply.card) == ["mfa.edit", "mfa.cancel"]
    edit = await bot.invoke(ALEX, "mfa.edit", action_data(reply.card, "mfa.edit"), reply_to_id=card_id)
    shown = shown_values(edit.card)
    assert shown["targetUserText"] == ISAIAH.upn
    assert shown["number"] == "+49 170 5550199" and shown["ticket"] == "INC-7"
    # Cancel ends it: nothing was asked for, nothing is open
    cancel = await bot.invoke(ALEX, "mfa.cancel", action_data(reply.card, "mfa.cancel"), reply_to_id=card_id)
    assert texts.t("en", "cancel.done") in card_text(cancel.card)
    assert graph_writes(bot.sim) == []


async def test_own_account_refusal_names_the_user_with_edit(bot: BotHarness) -> None:
    values = {"targetUserText": ALEX.upn, "number": "+49 170 5556666", "action": "set"}
    reply, _ = await review(bot, values, in_place=True)
    text = card_text(reply.card)
    assert "Not possible for Alex Wilber (alex.wilber@contoso.example)" in text
    assert en("refusal.own_account") in text
    assert buttons(reply.card) == ["mfa.edit", "mfa.cancel"]


@WAYS
async def test_cool_down_refusal_names_the_user_and_edit_keeps_the_values(
    make_bot: MakeBot, in_place: bool
) -> None:
    bot = await make_bot(TARGET_COOLDOWN_MINUTES="60")
    await bot.run_change(ALEX, {"targetUserText": LYNNE_UPN, "number": "+49 170 7654321"})
    values = {"targetUserText": LYNNE_UPN, "number": "+49 170 1234567", "action": "set", "ticket": "INC-8"}
    reply, card_id = await review(bot, values, in_place=in_place)
    text = card_text(reply.card)
    assert "Not possible for Lynne Robbins (lynne.robbins@contoso.example)" in text
    assert en("refusal.target_cooldown") in text
    assert buttons(reply.card) == ["mfa.edit", "mfa.cancel"]
    edit = await bot.invoke(ALEX, "mfa.edit", action_data(reply.card, "mfa.edit"), reply_to_id=card_id)
    assert shown_values(edit.card)["ticket"] == "INC-8"
    assert (await bot.refusals())[-1]["details"]["reason"] == "refusal.target_cooldown"
    assert len(graph_writes(bot.sim)) == 1  # the first change only


async def test_rate_limit_at_confirm_names_the_user_and_offers_edit_of_the_draft(make_bot: MakeBot) -> None:
    bot = await make_bot(MAX_CHANGES_PER_REQUESTER_PER_HOUR="1")
    second, card_id = await review(
        bot, {"targetUserText": LYNNE_UPN, "number": "+49 170 7654321"}, in_place=True
    )
    await bot.run_change(
        ALEX, {"targetUserText": DIEGO_UPN, "number": "+49 170 5556666"}
    )  # the one this hour
    answer = await bot.confirm(ALEX, card_id, second.card or {})
    text = card_text(answer.card)
    assert "Not possible for Lynne Robbins (lynne.robbins@contoso.example)" in text
    assert en("refusal.rate_limit") in text
    assert buttons(answer.card) == ["mfa.edit", "mfa.cancel"]
    edit = await bot.invoke(ALEX, "mfa.edit", action_data(answer.card, "mfa.edit"), reply_to_id=card_id)
    assert shown_values(edit.card)["number"] == "+491707654321"
    assert bot.sim.tenant.user(LYNNE_ID).phones["mobile"].number == "+49 1701234567"

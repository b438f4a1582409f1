"""Review answers at once and looks the user up after its answer: the clicked card says who is being looked up,
then becomes the confirmation card (or the form with the error beside the field, or the refusal) in place."""

from __future__ import annotations

from bot.views import texts
from tests.bot.conftest import (
    ALEX,
    PRADEEP,
    BotHarness,
    action_data,
    card_text,
    graph_writes,
    input_ids,
    is_lookup,
    walk,
)

DIEGO_UPN = "diego.siciliani@contoso.example"
VALUES = {"targetUserText": DIEGO_UPN, "number": "+49 170 5556666", "action": "set", "ticket": "INC-9"}
SLOW_GRAPH_MS = 1500  # every Graph request takes this long: an answer before any Graph answer waited for none


def en(key: str) -> str:
    return texts.TEXTS["en"][key].split("{")[0].strip()


def field_error(card: dict | None, field: str) -> str:
    """The text of the error shown beside `field` (the request card's `<field>Error` block)."""
    return next((el.get("text", "") for el in walk(card or {}) if el.get("id") == f"{field}Error"), "")


async def test_review_answers_before_graph_and_the_card_becomes_the_confirmation(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)  # the requester's roles are known now (cached)
    bot.sim.behaviour.latency_ms = SLOW_GRAPH_MS
    data = {**(action_data(form.card, "mfa.review") or {}), **VALUES}
    mark = bot.connector.mark()
    calls = len(bot.sim.calls)
    answer = await bot.invoke(ALEX, "mfa.review", data, reply_to_id=form.activity_id)
    # What had happened when the answer came: no Graph request answered yet (an answer that had waited for one
    # would come after it) and no update of the card yet (it changes after the answer, never before it).
    graph_answered_first = [c.path for c in bot.sim.calls[calls:]]
    updated_first = [r for r in bot.connector.since(mark) if r.kind == "update"]
    assert answer.status == 200 and is_lookup(answer.card), answer.text
    assert graph_answered_first == []
    assert updated_first == []
    assert f"Looking up {DIEGO_UPN}" in answer.text
    assert form.activity_id is not None
    # the look-up makes a few rounds of 1.5 s Graph calls (about 6 s); 30 s only ends the wait for a card that
    # never changes
    update = await bot.card_update(form.activity_id, since=mark, timeout=30)
    assert bot.sim.calls[calls:], "the user was looked up in Graph after the answer"
    confirm = action_data(update.card, "mfa.confirm")
    assert confirm is not None, card_text(update.card)
    assert "Diego Siciliani" in card_text(update.card)
    req = await bot.store.get_request(confirm["requestId"])
    assert req is not None and req.number == "+491705556666" and req.ticket == "INC-9"
    assert graph_writes(bot.sim) == []


async def test_edit_on_the_lookup_card_brings_the_form_back_with_the_values(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    data = {**(action_data(form.card, "mfa.review") or {}), **VALUES}
    review = await bot.review_and_wait(ALEX, data, reply_to_id=form.activity_id)
    assert review.answer is not None
    edit = action_data(review.answer.card, "mfa.edit")
    assert edit is not None
    again = await bot.invoke(ALEX, "mfa.edit", edit, reply_to_id=form.activity_id)
    assert again.status == 200 and "targetUserText" in input_ids(again.card)
    shown = {el["id"]: el.get("value") for el in _inputs(again.card)}
    assert shown["targetUserText"] == DIEGO_UPN
    assert shown["number"] == "+49 170 5556666"
    assert shown["ticket"] == "INC-9"


def _inputs(card: dict | None) -> list[dict]:
    return [el for el in walk(card or {}) if str(el.get("type", "")).startswith("Input.") and "id" in el]


async def test_bad_input_is_answered_at_once_with_the_errors_and_asks_graph_nothing(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    calls = len(bot.sim.calls)
    data = {**(action_data(form.card, "mfa.review") or {}), **VALUES, "number": "call me maybe"}
    reply = await bot.review_and_wait(ALEX, data, reply_to_id=form.activity_id)
    assert reply.answer is None and not is_lookup(reply.card)  # the answer itself is the form
    assert field_error(reply.card, "number")
    shown = {el["id"]: el.get("value") for el in _inputs(reply.card)}
    assert shown["targetUserText"] == DIEGO_UPN and shown["number"] == "call me maybe"
    assert len(bot.sim.calls) == calls  # no Graph request for it


async def test_user_not_found_after_the_answer_is_shown_beside_the_field(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    values = {**VALUES, "targetUserText": "nobody@contoso.example"}
    data = {**(action_data(form.card, "mfa.review") or {}), **values}
    reply = await bot.review_and_wait(ALEX, data, reply_to_id=form.activity_id)
    assert reply.answer is not None and is_lookup(reply.answer.card)
    assert en("error.target.not_found") in field_error(reply.card, "targetUserText")
    assert "nobody@contoso.example" in field_error(reply.card, "targetUserText")
    shown = {el["id"]: el.get("value") for el in _inputs(reply.card)}
    assert shown["number"] == "+49 170 5556666" and shown["ticket"] == "INC-9"
    assert action_data(reply.card, "mfa.confirm") is None


async def test_requester_without_the_role_is_refused_on_the_card_and_audited(bot: BotHarness) -> None:
    # nobody asked for Pradeep's roles yet: the check runs after the answer, the refusal replaces the card
    data = {"verb": "mfa.review", **VALUES}
    reply = await bot.review_and_wait(PRADEEP, data, reply_to_id="card-of-pradeep")
    assert en("refusal.not_helpdesk") in reply.text
    assert action_data(reply.card, "mfa.confirm") is None
    refusal = (await bot.refusals())[-1]
    assert refusal["actor_aad_id"] == PRADEEP.aad and refusal["details"]["reason"] == "refusal.not_helpdesk"
    assert refusal["details"]["verb"] == "mfa.review"
    assert graph_writes(bot.sim) == []
    # now the roles are cached: the refusal is the answer itself
    again = await bot.review_and_wait(PRADEEP, data, reply_to_id="card-of-pradeep")
    assert again.answer is None and en("refusal.not_helpdesk") in again.text

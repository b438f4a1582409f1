"""Demo mode says it is a simulation in chat: every card the bot sends, answers with or updates carries the banner,
and its plain text replies say it too. Through the real endpoint with the fake connector recording what the bot
sends."""

from __future__ import annotations

from typing import Any

from bot.views import texts
from tests.bot.conftest import ALEX, BotHarness, MakeBot, action_data, card_text, is_lookup, walk

DIEGO = {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "action": "set"}


def banners(card: dict[str, Any] | None, lang: str = "en") -> int:
    """How many times the simulation banner's words are on the card."""
    return card_text(card).count(texts.t(lang, "demo.banner"))


def banner_on_top(card: dict[str, Any] | None, lang: str = "en") -> bool:
    body = (card or {}).get("body") or []
    return bool(body) and texts.t(lang, "demo.banner") in card_text({"body": body[:1]})


async def _texts_after(bot: BotHarness, mark: int) -> list[str]:
    return await bot.connector.wait_for(lambda rs: [r.text for r in rs if r.text], since=mark)


async def test_demo_mode_puts_the_banner_on_every_card_sent_answered_and_updated(make_bot: MakeBot) -> None:
    bot = await make_bot(DEMO_MODE="true")
    mark = bot.connector.mark()
    form = await bot.open_form(ALEX)  # sent in the turn (the dialog)
    assert banner_on_top(form.card) and banners(form.card) == 1
    review = await bot.review(ALEX, form, DIEGO)  # the invoke answer, then the card updated in place
    assert review.answer is not None
    assert banner_on_top(review.answer.card) and banners(review.answer.card) == 1
    assert banner_on_top(review.card) and banners(review.card) == 1
    assert action_data(review.card, "mfa.confirm") is not None  # still the confirmation card
    confirmed_at = bot.connector.mark()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert banner_on_top(confirm.card) and banners(confirm.card) == 1
    assert form.activity_id is not None
    final = await bot.final_update(form.activity_id, since=confirmed_at)  # updated in place, after the answer
    assert texts.t("en", "outcome.added.title") in card_text(final.card)
    assert banner_on_top(final.card) and banners(final.card) == 1
    # every card the connector saw in this conversation, progress included
    seen = [r.card for r in bot.connector.records[mark:] if r.card]
    assert len(seen) >= 3 and all(banners(card) == 1 for card in seen)


async def test_demo_mode_banner_speaks_the_users_language(make_bot: MakeBot) -> None:
    bot = await make_bot(DEMO_MODE="true")
    form = await bot.open_form(ALEX, locale="de-DE")
    assert banner_on_top(form.card, "de") and banners(form.card, "en") == 0


async def test_demo_mode_text_replies_say_it_is_a_simulation(make_bot: MakeBot) -> None:
    bot = await make_bot(DEMO_MODE="true")
    mark = bot.connector.mark()
    await bot.message(ALEX, "cancel")
    said = await _texts_after(bot, mark)
    assert said == [texts.t("en", "demo.text", text=texts.t("en", "cancel.nothing"))]
    assert said[0].startswith("[Simulation]")


async def test_demo_mode_banner_on_a_card_updated_through_the_submit_fallback(make_bot: MakeBot) -> None:
    bot = await make_bot(DEMO_MODE="true")
    form = await bot.open_form(ALEX)
    mark = bot.connector.mark()
    data = {**(action_data(form.card, "mfa.review") or {}), **DIEGO}
    reply = await bot.message(ALEX, None, value=data, replyToId=form.activity_id)
    assert reply.status in (200, 201)
    updated = await bot.connector.wait_for(
        lambda rs: next((r for r in rs if r.kind == "update" and r.card and not is_lookup(r.card)), None),
        since=mark,
    )
    assert action_data(updated.card, "mfa.confirm") is not None
    assert banner_on_top(updated.card) and banners(updated.card) == 1
    # the look-up card the submit was answered with carried the banner too
    lookups = [r.card for r in bot.connector.records[mark:] if r.kind == "update" and is_lookup(r.card)]
    assert lookups and all(banner_on_top(card) and banners(card) == 1 for card in lookups)


async def test_without_demo_mode_no_card_or_text_mentions_a_simulation(bot: BotHarness) -> None:
    mark = bot.connector.mark()
    review, confirm, final = await bot.run_change(ALEX, DIEGO)
    await bot.message(ALEX, "cancel")
    await _texts_after(bot, mark)
    for card in [review.card, confirm.card, *(r.card for r in bot.connector.records[mark:])]:
        assert not any(el.get("id") == "demoBanner" for el in walk(card or {}))
        assert banners(card) == 0
    assert not any(r.text.startswith("[Simulation]") for r in bot.connector.records[mark:])

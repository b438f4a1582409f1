"""The confirmation card warns about Graph's rules before Confirm: removing the mobile number of a user who also
has an alternate mobile number is refused by Graph (graph.workflow.ALTERNATE_FIRST). Through the endpoint, with
the user's phone methods arranged in the Graph simulator."""

from __future__ import annotations

from typing import Any

from bot.views import texts
from graph.workflow import ALTERNATE_FIRST
from tests.bot.conftest import ALEX, DIEGO_ID, BotHarness, action_data, card_text, graph_writes, walk

DIEGO_UPN = "diego.siciliani@contoso.example"
MOBILE = "+49 170 5556666"
ALTERNATE = "+49 151 22334455"


def warnings_on(card: dict[str, Any] | None) -> list[str]:
    return [
        card_text({"body": [el]})
        for el in walk(card or {})
        if el.get("type") == "TextBlock" and el.get("color") == "Warning"
    ]


def before_confirm(card: dict[str, Any] | None, needle: str) -> bool:
    """`needle` is on the card above the Confirm button."""
    body = (card or {}).get("body") or []
    for i, el in enumerate(body):
        if action_data({"body": [el]}, "mfa.confirm") is not None:
            return needle in card_text({"body": body[:i]})
    return False


async def review_remove(bot: BotHarness, *, locale: str = "en-US", action: str = "remove") -> Any:
    form = await bot.open_form(ALEX, "remove phone", locale=locale)
    values = {"targetUserText": DIEGO_UPN, "action": action, "number": MOBILE if action == "set" else ""}
    return await bot.review(ALEX, form, values, locale=locale)


async def test_remove_with_an_alternate_mobile_warns_that_graph_will_refuse(bot: BotHarness) -> None:
    bot.sim.tenant.set_phone(DIEGO_ID, "mobile", MOBILE)
    bot.sim.tenant.set_phone(DIEGO_ID, "alternateMobile", ALTERNATE)
    reply = await review_remove(bot)
    assert action_data(reply.card, "mfa.confirm") is not None, reply.text
    warning = next((w for w in warnings_on(reply.card) if "Graph will refuse" in w), "")
    assert ALTERNATE_FIRST in warning  # the workflow's own rule, word for word
    assert "+49 151 ***4455" in warning and "22334455" not in warning.replace(" ", "")
    assert texts.t("en", "warnings.title") in reply.text
    assert before_confirm(reply.card, ALTERNATE_FIRST)
    assert graph_writes(bot.sim) == []


async def test_remove_with_an_alternate_mobile_warns_in_german(bot: BotHarness) -> None:
    bot.sim.tenant.set_phone(DIEGO_ID, "mobile", MOBILE)
    bot.sim.tenant.set_phone(DIEGO_ID, "alternateMobile", ALTERNATE)
    reply = await review_remove(bot, locale="de-DE")
    expected = texts.t("de", "warning.remove_alternate_first", alternate="+49 151 ***4455")
    assert expected in warnings_on(reply.card)
    assert before_confirm(reply.card, "Graph wird das Entfernen ablehnen")


async def test_the_warning_matches_what_graph_does_on_confirm(bot: BotHarness) -> None:
    bot.sim.tenant.set_phone(DIEGO_ID, "mobile", MOBILE)
    bot.sim.tenant.set_phone(DIEGO_ID, "alternateMobile", ALTERNATE)
    form = await bot.open_form(ALEX, "remove phone")
    reply = await bot.review(ALEX, form, {"targetUserText": DIEGO_UPN, "action": "remove", "number": ""})
    assert any(ALTERNATE_FIRST in w for w in warnings_on(reply.card))
    mark = bot.connector.mark()
    await bot.confirm(ALEX, form.activity_id, reply.card or {})
    assert form.activity_id is not None
    final = await bot.final_update(form.activity_id, since=mark)
    assert texts.t("en", "outcome.blocked_by_graph_rule.title") in card_text(final.card)
    assert bot.sim.tenant.user(DIEGO_ID).phones.get("mobile") is not None  # still there, as warned


async def test_no_alternate_warning_without_an_alternate_or_when_setting_a_number(bot: BotHarness) -> None:
    bot.sim.tenant.set_phone(DIEGO_ID, "mobile", MOBILE)
    bot.sim.tenant.set_phone(DIEGO_ID, "alternateMobile", None)
    plain = await review_remove(bot)
    assert action_data(plain.card, "mfa.confirm") is not None
    assert not any("Graph will refuse" in w for w in warnings_on(plain.card))
    bot.sim.tenant.set_phone(DIEGO_ID, "alternateMobile", ALTERNATE)
    setting = await review_remove(bot, action="set")
    assert action_data(setting.card, "mfa.confirm") is not None
    assert not any("Graph will refuse" in w for w in warnings_on(setting.card))

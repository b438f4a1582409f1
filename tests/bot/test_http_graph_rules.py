"""Graph rules that block a change reach the agent's card in Graph's own words, through the real endpoint and the
simulator: a 409 that is not the SMS sign-in conflict, and removing the default method (refused while the user
has other methods, done when it is the only one)."""

from __future__ import annotations

from bot.views import texts
from tests.bot.conftest import ALEX, LEE_ID, LYNNE_ID, BotHarness, action_data, card_text, graph_writes

LEE = "lee.gu@contoso.example"  # mobile +49 170 4445555 is the default method, and the only one
LYNNE = "lynne.robbins@contoso.example"


async def _outcome(bot: BotHarness, review_card: dict) -> dict:
    data = action_data(review_card, "mfa.confirm")
    assert data
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.outcome is not None
    return dict(req.outcome)


async def test_a_409_that_is_not_the_sms_conflict_shows_graphs_rule_not_a_holder(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"write_conflict_code": "conflictingOperation"})
    review, _, final = await bot.run_change(ALEX, {"targetUserText": LYNNE, "number": "+49 170 7654321"})
    outcome = await _outcome(bot, review.card or {})
    assert outcome["outcome"] == "blocked_by_graph_rule"
    text = card_text(final.card)
    assert texts.t("en", "outcome.blocked_by_graph_rule.title") in text
    assert "conflictingOperation" in text and "conflicts with the current state" in text
    assert texts.t("en", "outcome.conflict_unresolved.title") not in text
    assert bot.sim.tenant.user(LYNNE_ID).phones["mobile"].number == "+49 1701234567"


async def test_removing_the_default_method_with_other_methods_says_change_the_default_first(
    bot: BotHarness,
) -> None:
    bot.sim.tenant.user(LEE_ID).other_methods = ("microsoftAuthenticator",)
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": LEE, "number": "+49 170 4445555", "action": "remove"}
    )
    outcome = await _outcome(bot, review.card or {})
    assert outcome["outcome"] == "blocked_by_graph_rule"
    text = card_text(final.card)
    assert texts.t("en", "outcome.blocked_by_graph_rule.title") in text
    assert "Cannot delete default method with other methods configured." in text
    assert "default sign-in method" in text and "My Sign-Ins" in text
    assert bot.sim.tenant.user(LEE_ID).phones.get("mobile") is not None


async def test_removing_the_default_method_that_is_the_only_one_is_done(bot: BotHarness) -> None:
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": LEE, "number": "+49 170 4445555", "action": "remove"}
    )
    outcome = await _outcome(bot, review.card or {})
    assert outcome["outcome"] == "removed"
    assert [c.method for c in graph_writes(bot.sim)] == ["DELETE"]
    assert bot.sim.tenant.user(LEE_ID).phones.get("mobile") is None
    assert texts.t("en", "outcome.removed.title") in card_text(final.card)

"""What the outcome card learns after it is posted, through the real endpoint and the simulator: who holds a number
Graph stored for MFA but refused for SMS sign-in, the SMS sign-in state of an updated number; and the Details
toggle that keeps Graph's request ids and the audit trail out of the agent's way."""

from __future__ import annotations

import re
from typing import Any

from bot.views import cards, texts
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    GRADY_ID,
    LYNNE_ID,
    BotHarness,
    action_data,
    card_text,
    walk,
)
from tests.bot.fake_connector import Recorded

DIEGO = "diego.siciliani@contoso.example"
HELD = "+49 170 4445556"  # given to Lynne for SMS sign-in by the tests that need a holder the profile search misses


def _element(card: dict[str, Any] | None, element_id: str) -> dict[str, Any] | None:
    return next((n for n in walk(card or {}) if n.get("id") == element_id), None)


def _outcome_cards(bot: BotHarness, activity_id: str, mark: int) -> list[dict[str, Any]]:
    """Every outcome card (not progress) the card at activity_id was updated with after `mark`, in order."""
    titles = {texts.t(lang, "progress.title") for lang in texts.LANGUAGES}
    return [
        r.card
        for r in bot.connector.since(mark)
        if r.kind == "update"
        and r.activity_id == activity_id
        and r.card
        and not any(n.get("text") in titles for n in walk(r.card))
    ]


async def _change(bot: BotHarness, values: dict[str, Any]) -> tuple[str, str, int]:
    """Review and Confirm; the request id, the card's activity id and the mark before Confirm."""
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, values)
    data = action_data(review.card, "mfa.confirm")
    assert review.status == 200 and data, review.text
    mark = bot.connector.mark()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirm.status == 200
    assert form.activity_id is not None
    return str(data["requestId"]), form.activity_id, mark


async def _until(bot: BotHarness, activity_id: str, mark: int, element_id: str, text: str) -> dict[str, Any]:
    """The first outcome card whose element `element_id` says `text`."""

    def done(_: list[Recorded]) -> dict[str, Any] | None:
        return next(
            (c for c in _outcome_cards(bot, activity_id, mark) if text in card_text(_element(c, element_id))),
            None,
        )

    card: dict[str, Any] = await bot.connector.wait_for(done, since=mark, timeout=30)
    return card


def _holder_text(card: dict[str, Any] | None) -> str:
    return card_text(_element(card, cards.HOLDER_ID))


async def test_sms_conflict_card_says_it_once_at_once_then_names_the_holder(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": True})
    request_id, activity_id, mark = await _change(bot, {"targetUserText": DIEGO, "number": "+49 170 9876543"})
    grady = bot.sim.tenant.user(GRADY_ID)
    named = texts.t("en", "outcome.sms_conflict.holder", name=grady.display_name, upn=grady.upn)
    last = await _until(bot, activity_id, mark, cards.HOLDER_ID, named)
    first = _outcome_cards(bot, activity_id, mark)[0]
    # the outcome came at once, the holder still being looked for
    assert _holder_text(first) == texts.t("en", "progress.search_profile")
    once = texts.t("en", "outcome.sms_conflict.once", new=cards.masked("+49 170 9876543"))
    for card in (first, last):
        text = card_text(card)
        assert text.count(once) == 1, text
        assert texts.EN["outcome.holder.title"] not in text
        assert "another user holds it" not in text  # the workflow's warning would say it a second time
        assert texts.t("en", "outcome.next", text=texts.EN["outcome.sms_conflict.next"]) in text
    req = await bot.store.get_request(request_id)
    assert req is not None and req.outcome is not None and req.outcome["sms_sign_in_conflict"] is True
    audit = [e for e in await bot.store.request_audit(request_id) if e.event == "holder_search"]
    assert len(audit) == 1
    assert audit[0].details["holder_search"] == "found" and audit[0].details["holder_id"] == GRADY_ID
    # the audit entry comes after the result was recorded
    events = [e.event for e in await bot.store.request_audit(request_id)]
    assert events.index("completed") < events.index("holder_search")


async def test_sms_conflict_with_nobody_found_says_no_other_account(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": True})
    bot.sim.tenant.set_phone(LYNNE_ID, "mobile", HELD, "ready")
    released: list[bool] = []

    async def release_once_the_outcome_is_shown(rec: Recorded) -> None:
        # Lynne gives the number up between the change and the search: nobody holds it any more
        if not released and _element(rec.card, cards.HOLDER_ID) is not None:
            bot.sim.tenant.set_phone(LYNNE_ID, "mobile", "+49 170 1234567", "ready")
            released.append(True)

    bot.connector.on_update = release_once_the_outcome_is_shown
    request_id, activity_id, mark = await _change(bot, {"targetUserText": DIEGO, "number": HELD})
    no_holder = texts.EN["outcome.sms_conflict.no_holder"]
    card = await _until(bot, activity_id, mark, cards.HOLDER_ID, no_holder)
    assert texts.EN["outcome.sms_conflict.holder"].split("{")[0] not in card_text(card)
    audit = [e for e in await bot.store.request_audit(request_id) if e.event == "holder_search"]
    assert [e.details["holder_search"] for e in audit] == ["not_found"]
    assert bot.sim.tenant.user(DIEGO_ID).phones["mobile"].number.replace(" ", "") == HELD.replace(" ", "")


async def test_sms_conflict_whose_search_fails_says_it_could_not_be_searched(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": True})
    bot.sim.tenant.set_phone(LYNNE_ID, "mobile", HELD, "ready")
    # the profile fields and the disabled accounts do not name Lynne; the registration report does not answer
    bot.sim.faults.inject("GET", r"/reports/authenticationMethods/userRegistrationDetails", 503, 200, 0.01)
    request_id, activity_id, mark = await _change(bot, {"targetUserText": DIEGO, "number": HELD})
    card = await _until(
        bot, activity_id, mark, cards.HOLDER_ID, texts.EN["outcome.sms_conflict.not_searched"]
    )
    assert "Lynne" not in _holder_text(card)
    audit = [e for e in await bot.store.request_audit(request_id) if e.event == "holder_search"]
    assert [e.details["holder_search"] for e in audit] == ["failed"]
    assert audit[0].details["error"]


async def test_update_card_shows_the_sms_sign_in_state_read_after_it(bot: BotHarness) -> None:
    calls = len(bot.sim.calls)
    _, activity_id, mark = await _change(
        bot, {"targetUserText": "lynne.robbins@contoso.example", "number": "+49 170 7654321"}
    )
    ready = texts.t("en", "outcome.sms_state", state=texts.t("en", "sms.ready"))
    card = await _until(bot, activity_id, mark, cards.SMS_STATE_ID, ready)
    first = _outcome_cards(bot, activity_id, mark)[0]
    assert card_text(_element(first, cards.SMS_STATE_ID)) == texts.t("en", "outcome.sms_state.reading")
    assert texts.t("en", "outcome.updated.title") in card_text(card)
    # Graph answers the update 204 without a body: the state comes from a read of the method after it
    made = [c for c in bot.sim.calls[calls:] if LYNNE_ID in c.path]
    patch = next(i for i, c in enumerate(made) if c.method == "PATCH")
    reads = [c for c in made[patch + 1 :] if c.method == "GET" and re.search(r"/phoneMethods/[^/]+$", c.path)]
    assert reads, [(c.method, c.path) for c in made]


async def test_update_card_says_when_the_sms_sign_in_state_could_not_be_read(bot: BotHarness) -> None:
    bot.sim.faults.inject("GET", r"/authentication/phoneMethods/[^/]+$", 503, 200, 0.01)
    _, activity_id, mark = await _change(
        bot, {"targetUserText": "lynne.robbins@contoso.example", "number": "+49 170 7654321"}
    )
    await _until(bot, activity_id, mark, cards.SMS_STATE_ID, texts.EN["outcome.sms_state.unread"])


async def test_removal_card_says_sms_sign_in_went_with_the_number(bot: BotHarness) -> None:
    _, activity_id, mark = await _change(
        bot,
        {"targetUserText": "lynne.robbins@contoso.example", "number": "+49 170 1234567", "action": "remove"},
    )
    card = await _until(bot, activity_id, mark, cards.SMS_STATE_ID, texts.EN["outcome.sms_state.removed"])
    assert texts.t("en", "outcome.removed.title") in card_text(card)


async def test_details_toggle_hides_the_graph_request_ids_and_shows_the_audit_trail(bot: BotHarness) -> None:
    request_id, activity_id, mark = await _change(bot, {"targetUserText": DIEGO, "number": "+49 170 5556666"})
    card = await bot.final_update(activity_id, since=mark)
    req = await bot.store.get_request(request_id)
    assert req is not None and req.outcome is not None and req.outcome["outcome"] == "added"
    ids = req.outcome["graph_request_ids"]
    details = _element(card.card, cards.DETAILS_ID)
    assert details is not None and details["type"] == "Container" and details["isVisible"] is False
    assert ids and all(i in card_text(details) for i in ids[-5:])
    shown = [n for n in (card.card or {})["body"] if n is not details]
    assert not any(i in card_text({"body": shown}) for i in ids)
    (toggle,) = [n for n in walk(card.card) if n.get("type") == "Action.ToggleVisibility"]
    assert toggle["title"] == texts.t("en", "button.details")
    assert toggle["targetElements"] == [cards.DETAILS_ID]
    (audit,) = [n for n in walk(details) if n.get("type") == "Action.Submit"]
    assert audit["title"] == texts.t("en", "button.audit_trail")
    message_back = audit["data"]["msteams"]
    # the short reference people read (MFA-XXXXX); `status` accepts it
    assert req.ref and req.ref.startswith("MFA-")
    assert message_back["type"] == "messageBack" and message_back["text"] == f"status {req.ref}"
    assert message_back["displayText"] == texts.t("en", "details.audit.display", id=req.ref)
    # Teams sends the button's text as the user's message: the bot answers it with the audit trail
    mark = bot.connector.mark()
    reply = await bot.message(ALEX, message_back["text"], value={})
    assert reply.status in (200, 201)
    status = await bot.connector.wait_for(
        lambda rs: next((r.card for r in rs if r.kind in ("send", "reply") and r.card), None), since=mark
    )
    text = card_text(status)
    assert texts.t("en", "status.title", id=req.ref) in text
    assert texts.t("en", "event.completed") in text

"""Chat commands, German texts, Action.Submit fallback, edit/cancel and the approvers' channel, via the endpoint."""

from __future__ import annotations

import re

from bot.persistence.models import RequestState
from bot.views import texts
from tests.bot.conftest import (
    ALEX,
    APPROVER_GROUP,
    DIEGO_ID,
    MEGAN,
    PATTI,
    PRADEEP,
    BotHarness,
    MakeBot,
    action_data,
    card_text,
    graph_writes,
    input_ids,
    is_lookup,
)
from tests.bot.fake_connector import Recorded

DIEGO = {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "action": "set"}


async def _cards_after(bot: BotHarness, mark: int, count: int = 1) -> list[dict]:
    recs = await bot.connector.wait_for(
        lambda rs: [r for r in rs if r.card] if len([r for r in rs if r.card]) >= count else None, since=mark
    )
    return [r.card for r in recs]


async def _texts_after(bot: BotHarness, mark: int) -> list[str]:
    recs = await bot.connector.wait_for(lambda rs: [r.text for r in rs if r.text], since=mark)
    return recs


async def test_help_shows_the_commands_and_the_form(bot: BotHarness) -> None:
    mark = bot.connector.mark()
    await bot.message(ALEX, "help")
    cards = await _cards_after(bot, mark, 2)
    assert texts.t("en", "help.title") in card_text(cards[0])
    assert "targetUserText" in input_ids(cards[1])


async def test_an_unknown_command_is_echoed_as_inert_text(bot: BotHarness) -> None:
    await bot.open_form(ALEX, "hello")  # the first message opens the form; later unknown ones are answered
    mark = bot.connector.mark()
    await bot.message(ALEX, "**urgent** <b>x</b> [help](https://evil.example) www.evil.com")
    text = " ".join(await _texts_after(bot, mark))
    assert "did not understand" in text
    for token in ("[", "](", "**", "<"):  # each escaped: no link, emphasis or HTML tag can form
        assert not re.search(r"(?<!\\)" + re.escape(token), text), (token, text)
    shown = re.sub(r"\\(.)", r"\1", text)  # what a markdown renderer shows
    assert "**urgent** <b>x</b> [help](https[:]//evil[.]example) www[.]evil[.]com" in shown


async def test_any_first_message_opens_the_form_and_remove_phone_preselects_remove(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX, "hello there")
    assert "targetUserText" in input_ids(form.card)
    form = await bot.open_form(ALEX, "remove phone")
    choice = next(el for el in _walk(form.card) if el.get("id") == "action")
    assert choice.get("value") == "remove"


def _walk(card):  # type: ignore[no-untyped-def]
    from tests.bot.conftest import walk

    return list(walk(card))


async def test_german_locale_gets_german_cards(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX, "set phone", locale="de-DE")
    assert texts.t("de", "form.title") in card_text(form.card)
    review = await bot.review(ALEX, form, {**DIEGO, "number": "kein Telefon"}, locale="de-DE")
    assert texts.t("de", "form.has_errors") in review.text
    review = await bot.review(ALEX, form, DIEGO, locale="de-DE")
    assert texts.t("de", "confirm.title") in review.text
    mark = bot.connector.mark()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {}, locale="de-DE")
    assert texts.t("de", "progress.title") in confirm.text
    final = await bot.final_update(form.activity_id or "", since=mark)
    assert texts.t("de", "outcome.added.title") in card_text(final.card)


async def test_action_submit_fallback_updates_the_card_in_place(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    mark = bot.connector.mark()
    await bot.message(ALEX, None, value={"verb": "mfa.review", **DIEGO}, replyToId=form.activity_id)

    # the card shows the look-up at once, then the confirmation card in its place
    def looked_up(records: list[Recorded]) -> list[Recorded] | None:
        mine = [r for r in records if r.kind == "update" and r.activity_id == form.activity_id]
        return mine if mine and not is_lookup(mine[-1].card) else None

    updates = await bot.connector.wait_for(looked_up, since=mark)
    assert is_lookup(updates[0].card) and "diego.siciliani@contoso.example" in card_text(updates[0].card)
    data = action_data(updates[-1].card, "mfa.confirm")
    assert data is not None
    mark = bot.connector.mark()
    await bot.message(ALEX, None, value=data, replyToId=form.activity_id)
    final = await bot.final_update(form.activity_id or "", since=mark)
    assert texts.t("en", "outcome.added.title") in card_text(final.card)
    assert len(graph_writes(bot.sim)) == 1


async def test_edit_keeps_the_values_and_a_second_review_updates_the_same_draft(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, {**DIEGO, "ticket": "INC-7"})
    data = action_data(review.card, "mfa.edit")
    assert data
    edit = await bot.invoke(ALEX, "mfa.edit", data, reply_to_id=form.activity_id)
    assert '"INC-7"' in str(edit.body).replace("'", '"')
    again = {**(action_data(edit.card, "mfa.review") or {}), **DIEGO, "number": "+49 170 5557777"}
    review2 = await bot.review_and_wait(ALEX, again, reply_to_id=form.activity_id)
    data2 = action_data(review2.card, "mfa.confirm")
    assert data2 and data2["requestId"] == data["requestId"] and data2["rev"] > data["rev"]
    old = await bot.invoke(ALEX, "mfa.confirm", {**data, "verb": "mfa.confirm"})
    assert texts.TEXTS["en"]["refusal.stale"].split("{")[0] in old.text
    assert graph_writes(bot.sim) == []


async def test_cancel_button_and_cancel_command(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, DIEGO)
    data = action_data(review.card, "mfa.cancel")
    assert data
    reply = await bot.invoke(ALEX, "mfa.cancel", data, reply_to_id=form.activity_id)
    assert reply.status == 200
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.CANCELLED
    confirm = await bot.invoke(ALEX, "mfa.confirm", {**data, "verb": "mfa.confirm", "rev": req.revision})
    assert texts.TEXTS["en"]["refusal.already_decided"].split("{")[0] in confirm.text
    # the command cancels the open draft
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, DIEGO)
    data = action_data(review.card, "mfa.confirm")
    mark = bot.connector.mark()
    await bot.message(ALEX, "cancel")
    said = await _texts_after(bot, mark)
    assert texts.t("en", "cancel.done") in said
    req = await bot.store.get_request(data["requestId"])  # type: ignore[index]
    assert req is not None and req.state is RequestState.CANCELLED
    mark = bot.connector.mark()
    await bot.message(ALEX, "cancel")
    assert texts.t("en", "cancel.nothing") in await _texts_after(bot, mark)
    assert graph_writes(bot.sim) == []


async def test_history_and_status_show_the_audit_trail(bot: BotHarness) -> None:
    review, _, _ = await bot.run_change(ALEX, DIEGO)
    request_id = (action_data(review.card, "mfa.confirm") or {})["requestId"]
    mark = bot.connector.mark()
    await bot.message(ALEX, "history diego.siciliani@contoso.example")
    cards = await _cards_after(bot, mark)
    text = card_text(cards[0])
    assert "Diego Siciliani" in text and "***6666" in text and "5556666" not in text.replace(" ", "")
    mark = bot.connector.mark()
    await bot.message(ALEX, f"status {request_id}")
    cards = await _cards_after(bot, mark)
    stored = await bot.store.get_request(request_id)
    assert stored is not None and stored.ref is not None
    assert texts.t("en", "status.title", id=stored.ref) in card_text(cards[0])
    # an approver may look at it; someone without a role may not
    mark = bot.connector.mark()
    await bot.message(PRADEEP, f"status {request_id}")
    cards = await _cards_after(bot, mark)
    assert texts.TEXTS["en"]["refusal.not_found"] in card_text(cards[0])
    mark = bot.connector.mark()
    await bot.message(PRADEEP, "history diego.siciliani@contoso.example")
    cards = await _cards_after(bot, mark)
    assert texts.TEXTS["en"]["refusal.not_helpdesk"].split("{")[0] in card_text(cards[0])
    events = [e.event for e in await bot.store.history(DIEGO_ID)]
    assert "history_viewed" in events


async def test_conversation_reference_is_kept_for_every_1to1_message(bot: BotHarness) -> None:
    await bot.message(MEGAN, "help")
    ref = await bot.store.conversation_reference(f"user:{MEGAN.aad}")
    assert ref is not None and ref["conversation"]["id"] == MEGAN.conversation_id


async def test_approvers_register_their_channel_by_command(bot: BotHarness) -> None:
    channel = "19:approvers@thread.tacv2"
    mark = bot.connector.mark()
    await bot.message(
        PRADEEP,
        "<at>MFA phone bot</at> register approvals",
        conversation_id=channel,
        conversation_type="channel",
    )
    await _texts_after(bot, mark)
    assert await bot.store.conversation_reference("approvers") is None
    mark = bot.connector.mark()
    await bot.message(
        MEGAN,
        "<at>MFA phone bot</at> register approvals",
        conversation_id=channel,
        conversation_type="channel",
    )
    await _texts_after(bot, mark)
    ref = await bot.store.conversation_reference("approvers")
    assert ref is not None and ref["conversation"]["id"] == channel
    _ = APPROVER_GROUP


async def test_installation_in_the_configured_conversation_registers_it(make_bot: MakeBot) -> None:
    chat = "19:approver-chat@thread.v2"
    bot = await make_bot(APPROVER_CONVERSATION_ID=chat)
    reply = await bot.conversation_update(
        PATTI, conversation_id="19:elsewhere@thread.v2", conversation_type="groupChat"
    )
    assert reply.status in (200, 201)
    assert await bot.store.conversation_reference("approvers") is None
    await bot.conversation_update(PATTI, conversation_id=chat, conversation_type="groupChat")
    ref = await bot.store.conversation_reference("approvers")
    assert ref is not None and ref["conversation"]["id"] == chat


async def test_channel_messages_other_than_registration_are_pointed_to_the_personal_chat(
    bot: BotHarness,
) -> None:
    mark = bot.connector.mark()
    await bot.message(
        ALEX, "set phone", conversation_id="19:general@thread.tacv2", conversation_type="channel"
    )
    cards = await _cards_after(bot, mark)
    assert texts.t("en", "refusal.not_in_personal_chat") in card_text(cards[0])


async def test_policy_privileged_sends_privileged_targets_for_approval(make_bot: MakeBot) -> None:
    bot = await make_bot(APPROVAL_POLICY="always")
    channel = "19:approvers@thread.tacv2"
    await bot.message(MEGAN, "register approvals", conversation_id=channel, conversation_type="channel")
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, DIEGO)
    group = texts.t("en", "approval.group.approver")
    assert texts.t("en", "rule.approval_always", group=group) in review.text
    mark = bot.connector.mark()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert texts.t("en", "awaiting.title") in confirm.text
    posted = await bot.connector.wait_for(
        lambda rs: next((r for r in rs if r.conversation_id == channel and r.card), None), since=mark
    )
    assert action_data(posted.card, "mfa.approve") is not None
    req = await bot.store.get_request((action_data(review.card, "mfa.confirm") or {})["requestId"])
    assert req is not None and req.state is RequestState.AWAITING_APPROVAL
    assert graph_writes(bot.sim) == []

"""Short request references through the endpoint: every card names the request by its reference (MFA-7K3Q9),
`status` takes it as people type it, and someone else's reference is as unknown as one that does not exist."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from bot.persistence.refs import new_ref
from bot.views import texts
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    MEGAN,
    PRADEEP,
    BotHarness,
    MakeBot,
    action_data,
    card_text,
)
from tests.bot.db_fixtures import Database
from tests.bot.test_approvals import (
    Bots,
    bots,  # noqa: F401  (fixture)
    channel_card,
    click,
    register_approvers,
    submit,
    texts_to,
    wait_card_text,
)

DIEGO = {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "action": "set"}
REF = re.compile(r"MFA-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{5}")


def drawing(*refs: str) -> Callable[[], str]:
    """A reference generator for the store: `refs` in order, then random ones."""
    queue = deque(refs)
    return lambda: queue.popleft() if queue else new_ref()


def the_ref(card: dict | None) -> str:
    """The one reference a card shows."""
    found = set(REF.findall(card_text(card)))
    assert len(found) == 1, card_text(card)
    return found.pop()


async def status_card(bot: BotHarness, who: object, typed: str) -> str:
    mark = bot.connector.mark()
    await bot.message(who, f"status {typed}")  # type: ignore[arg-type]
    card = await bot.connector.wait_for(lambda rs: next((r.card for r in rs if r.card), None), since=mark)
    return card_text(card)


async def test_the_agents_cards_show_the_short_reference_and_keep_the_id_in_their_data(
    bot: BotHarness,
) -> None:
    review, confirm, final = await bot.run_change(ALEX, DIEGO)
    data = action_data(review.card, "mfa.confirm")
    assert data is not None
    request_id = data["requestId"]
    ref = the_ref(review.card)  # the confirmation card
    assert the_ref(confirm.card) == ref  # the progress card
    assert the_ref(final.card) == ref  # the outcome card
    for card in (review.card, confirm.card, final.card):
        assert request_id not in card_text(card)
    stored = await bot.store.get_request(request_id)
    assert stored is not None and stored.ref == ref
    # the audit trail keeps both
    requested = [e for e in await bot.store.request_audit(request_id) if e.event == "requested"]
    assert requested[0].request_id == request_id and requested[0].details["ref"] == ref
    # history rows name the request; status answers with the reference
    mark = bot.connector.mark()
    await bot.message(ALEX, "history diego.siciliani@contoso.example")
    history = await bot.connector.wait_for(lambda rs: next((r.card for r in rs if r.card), None), since=mark)
    assert ref in card_text(history) and request_id not in card_text(history)
    shown = await status_card(bot, ALEX, request_id)  # the full id still works
    assert texts.t("en", "status.title", id=ref) in shown and request_id not in shown


async def test_status_takes_the_reference_as_people_type_it(make_bot: MakeBot, database: Database) -> None:
    bot = await make_bot(store=await database.open(ref_generator=drawing("MFA-10K0Q")))
    review, _, _ = await bot.run_change(ALEX, DIEGO)
    assert the_ref(review.card) == "MFA-10K0Q"
    title = texts.t("en", "status.title", id="MFA-10K0Q")
    for typed in ("MFA-10K0Q", "mfa-10k0q", "10K0Q", "10k0q", "MFA 10K0Q", "mfa 10k0q", "mfa-lOkoq", "iokoq"):
        assert title in await status_card(bot, ALEX, typed), typed
    # a German agent is told the same in German
    mark = bot.connector.mark()
    await bot.message(ALEX, "status mfa-10k0q", locale="de-DE")
    card = await bot.connector.wait_for(lambda rs: next((r.card for r in rs if r.card), None), since=mark)
    assert texts.t("de", "status.title", id="MFA-10K0Q") in card_text(card)


async def test_an_unknown_or_malformed_reference_is_not_found(bot: BotHarness) -> None:
    await bot.run_change(ALEX, DIEGO)
    not_found = texts.t("en", "refusal.not_found")
    for typed in ("MFA-ZZZZZ", "MFA-7K3U9", "MFA-7K3Q", "MFA 7K3Q9 please", "MFA-<b>x</b>"):
        shown = await status_card(bot, ALEX, typed)
        assert not_found in shown and "Traceback" not in shown, typed


async def test_someone_elses_reference_is_not_found_and_audited(bot: BotHarness) -> None:
    review, _, _ = await bot.run_change(ALEX, DIEGO)
    request_id = (action_data(review.card, "mfa.confirm") or {})["requestId"]
    ref = the_ref(review.card)
    unknown = await status_card(bot, PRADEEP, "MFA-ZZZZZ")
    others = await status_card(bot, PRADEEP, ref.lower())
    assert texts.t("en", "refusal.not_found") in others
    assert others == unknown  # nothing tells an existing request from one that does not exist
    assert ref not in others and "Diego" not in others
    refused = [r for r in await bot.refusals() if r["actor_aad_id"] == PRADEEP.aad]
    mine = [r for r in refused if r["request_id"] == request_id]
    assert len(mine) == 1
    assert mine[0]["details"]["reason"] == "refusal.not_found" and mine[0]["details"]["verb"] == "status"
    assert mine[0]["target_id"] == DIEGO_ID


async def test_a_taken_reference_is_drawn_again_for_the_next_request(
    make_bot: MakeBot, database: Database
) -> None:
    bot = await make_bot(
        TARGET_COOLDOWN_MINUTES="0",
        store=await database.open(ref_generator=drawing("MFA-10K0Q", "MFA-10K0Q", "MFA-7K3Q9")),
    )
    first, _, _ = await bot.run_change(ALEX, DIEGO)
    form = await bot.open_form(ALEX)
    second = await bot.review(ALEX, form, {**DIEGO, "number": "+49 170 5557777"})
    assert (the_ref(first.card), the_ref(second.card)) == ("MFA-10K0Q", "MFA-7K3Q9")
    second_id = (action_data(second.card, "mfa.confirm") or {})["requestId"]
    shown = await status_card(bot, ALEX, "7k3q9")
    assert texts.t("en", "status.title", id="MFA-7K3Q9") in shown
    stored = await bot.store.get_request_by_ref("MFA-7K3Q9")
    assert stored is not None and stored.id == second_id


async def test_approval_cards_and_the_requesters_messages_name_the_reference(bots: Bots) -> None:  # noqa: F811
    one = await bots.start()
    await register_approvers(one.bot)
    sub = await submit(one.bot)
    req = await one.bot.store.get_request(sub.request_id)
    assert req is not None and req.ref is not None
    ref = req.ref
    assert the_ref(sub.confirm.card) == ref  # the awaiting card
    channel = await channel_card(one.bot, sub.request_id)
    assert the_ref(channel.card) == ref and sub.request_id not in card_text(channel.card)
    await click(one.bot, MEGAN, "mfa.reject", sub.request_id, sub.rev, card=channel, reason="wrong number")
    decided = await wait_card_text(
        one.bot.connector, channel.activity_id or "", texts.t("en", "decision.title.rejected")
    )
    assert ref in decided and sub.request_id not in decided
    told = " ".join(texts_to(one.bot.connector, ALEX))
    assert sub.request_id not in told

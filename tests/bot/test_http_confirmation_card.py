"""The agent's confirmation card, through the real HTTP endpoint, as the agent sees it:

- the new number the agent typed is shown in full, in the form Graph will store it ("+49 1707654321"), so a typo
  in the middle digits can be caught before Confirm; the numbers the agent did not type (current mobile,
  alternate mobile) stay masked, and every other card (approval, waiting, outcome, status, history) and every
  text message masks the new number too;
- "Rules that apply" has one line per rule with its reason, for every approval policy and kind of target;
- the card looks the same when it comes back after a Graph failure on Confirm, and Edit does not reveal a number
  the agent did not type.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.persistence.models import RequestState
from bot.views import texts
from tests.bot.conftest import (
    ADELE_ID,
    ALEX,
    DIEGO_ID,
    ISAIAH,
    LYNNE_ID,
    MEGAN,
    NESTOR_ID,
    PATTI,
    PRIVILEGED_GROUP,
    BotHarness,
    MakeBot,
    action_data,
    card_text,
    graph_writes,
    walk,
)
from tests.bot.test_approvals import (
    APPROVERS_CONV,
    channel_card,
    click,
    dm_card,
    register_approvers,
    wait_card_text,
    wait_state,
)
from tests.bot.test_http_graph_unavailable import UNAVAILABLE, MakeFastBot, make_fast_bot  # noqa: F401

DIEGO_UPN = "diego.siciliani@contoso.example"
LYNNE_UPN = "lynne.robbins@contoso.example"
TIER0_GROUP = "11111111-1111-1111-1111-000000000004"  # role-assignable: its members are privileged
RULE_KEYS = (
    "rule.privileged_requester",
    "rule.approval_privileged",
    "rule.approval_always",
    "rule.no_approval",
)
APPROVAL_RULES = {"rule.approval_privileged", "rule.approval_always", "rule.no_approval"}


def fact(card: dict[str, Any] | None, lang: str, key: str) -> str:
    """The value of the fact titled texts key `key`, as shown (markdown escapes undone)."""

    def shown(value: Any) -> str:
        return card_text({"body": [{"type": "TextBlock", "text": value}]})

    title = texts.t(lang, key)
    for el in walk(card or {}):
        for f in el.get("facts") or []:
            if shown(f.get("title")) == title:
                return shown(f.get("value"))
    raise AssertionError(f"no fact {title!r} on the card")


def rule_lines(card: dict[str, Any] | None, lang: str) -> list[str]:
    """The lines under "Rules that apply", as the agent reads them (without the bullet)."""
    body = (card or {}).get("body") or []
    title = texts.t(lang, "rules.title")
    start = next(i for i, el in enumerate(body) if card_text({"body": [el]}) == title)
    lines: list[str] = []
    for el in body[start + 1 :]:
        text = card_text({"body": [el]}) if el.get("type") == "TextBlock" else ""
        if not text.startswith("• "):
            break
        lines.append(text[2:])
    return lines


def rule_of(lang: str, line: str) -> str:
    """The one rule (texts key) a line says; a line that says none or several fails."""
    found = []
    for key in RULE_KEYS:
        template = (texts.EN if lang == "en" else texts.DE)[key]
        pattern = ".+".join(re.escape(part) for part in re.split(r"\{\w+\}", template))
        if re.fullmatch(pattern, line):
            found.append(key)
    assert len(found) == 1, (line, found)
    return found[0]


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# ---------------------------------------------------------------------------------------------- the typed number


async def test_the_typed_number_is_shown_in_full_as_graph_stores_it_and_the_current_one_masked(
    bot: BotHarness,
) -> None:
    form = await bot.open_form(ALEX)
    # typed the national way with a typo-prone middle; PHONE_DEFAULT_REGION is DE
    review = await bot.review(ALEX, form, {"targetUserText": LYNNE_UPN, "number": "0170 765-4321"})
    assert action_data(review.card, "mfa.confirm") is not None, review.text
    change = fact(review.card, "en", "fact.change")
    assert change == texts.t("en", "change.update", old="+49 170 ***4567", new="+49 1707654321")
    assert fact(review.card, "en", "fact.mobile") == "+49 170 ***4567"
    assert "1234567" not in digits(review.text)  # Lynne's current number: not typed, never in full
    mark = bot.connector.mark()
    await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert form.activity_id is not None
    final = await bot.final_update(form.activity_id, since=mark)
    # what the card showed is exactly what Graph stored
    assert bot.sim.tenant.user(LYNNE_ID).phones["mobile"].number == "+49 1707654321"
    assert [c.method for c in graph_writes(bot.sim)] == ["PATCH"]
    outcome = card_text(final.card)
    assert "+49 170 ***4321" in outcome and "7654321" not in digits(outcome)


async def test_in_german_the_typed_number_is_in_full_and_the_alternate_mobile_masked(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX, locale="de-DE")
    review = await bot.review(
        ALEX, form, {"targetUserText": NESTOR_ID, "number": "+49 (0)170 5550123"}, locale="de-DE"
    )
    assert action_data(review.card, "mfa.confirm") is not None, review.text
    change = fact(review.card, "de", "fact.change")
    assert change == texts.t("de", "change.update", old="+49 170 ***3333", new="+49 1705550123")
    assert fact(review.card, "de", "fact.alternate") == "+49 170 ***4444"
    assert "2223333" not in digits(review.text) and "2224444" not in digits(review.text)


async def test_a_remove_shows_the_current_number_masked_and_edit_does_not_reveal_it(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX, "remove phone")
    review = await bot.review(ALEX, form, {"targetUserText": LYNNE_UPN, "action": "remove", "number": ""})
    assert fact(review.card, "en", "fact.change") == texts.t("en", "change.remove", old="+49 170 ***4567")
    assert "1234567" not in digits(review.text)
    # Edit brings the form back with the values as the agent gave them: no number, not Lynne's in full
    edit = await bot.invoke(
        ALEX, "mfa.edit", action_data(review.card, "mfa.edit"), reply_to_id=form.activity_id
    )
    fields = {el["id"]: el.get("value") for el in walk(edit.card or {}) if "id" in el and "value" in el}
    assert fields["targetUserText"] == LYNNE_UPN and fields["action"] == "remove"
    assert fields["number"] == ""
    assert "1234567" not in digits(edit.text) and "1234567" not in digits(" ".join(map(str, fields.values())))


async def test_edit_and_review_again_show_the_typed_number_in_full_again(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    first = await bot.review(ALEX, form, {"targetUserText": DIEGO_UPN, "number": "+49 170 5556666"})
    edit = await bot.invoke(
        ALEX, "mfa.edit", action_data(first.card, "mfa.edit"), reply_to_id=form.activity_id
    )
    fields = {el["id"]: el.get("value") for el in walk(edit.card or {}) if "id" in el and "value" in el}
    assert digits(fields["number"]) == "491705556666"  # the agent's own number, in its field
    again = {**(action_data(edit.card, "mfa.review") or {}), **fields, "number": "+49 170 5556667"}
    second = await bot.review_and_wait(ALEX, again, reply_to_id=form.activity_id)
    assert fact(second.card, "en", "fact.change") == texts.t(
        "en", "change.set", old="—", new="+49 1705556667"
    )


async def test_a_graph_failure_on_confirm_brings_back_the_same_card(make_fast_bot: MakeFastBot) -> None:  # noqa: F811
    # privileges are read at Confirm without a cache, so a Graph failure there brings the card back
    bot = await make_fast_bot(ROLE_CACHE_SECONDS="0", APPROVAL_POLICY="privileged")
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, {"targetUserText": ISAIAH.upn, "number": "+49 170 5550199"})
    assert action_data(review.card, "mfa.confirm") is not None, review.text
    bot.sim.faults.inject("GET", r"/roleManagement/directory/roleAssignments$", 503, times=100)
    again = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert again.status == 200 and UNAVAILABLE in card_text({"body": (again.card or {})["body"][:1]})
    assert texts.t("en", "confirm.title") in again.text
    assert fact(again.card, "en", "fact.change") == fact(review.card, "en", "fact.change")
    assert "+49 1705550199" in fact(again.card, "en", "fact.change")
    assert rule_lines(again.card, "en") == rule_lines(review.card, "en")
    assert len(rule_lines(again.card, "en")) == 2
    assert action_data(again.card, "mfa.confirm") is not None
    assert graph_writes(bot.sim) == []


async def test_every_card_but_the_agents_confirmation_masks_the_new_number(make_bot: MakeBot) -> None:
    bot = await make_bot(
        APPROVAL_POLICY="always", APPROVER_CONVERSATION_ID=APPROVERS_CONV, TARGET_COOLDOWN_MINUTES="0"
    )
    await register_approvers(bot, MEGAN, PATTI)
    start = bot.connector.mark()
    form = await bot.open_form(ALEX)
    review = await bot.review(ALEX, form, {"targetUserText": DIEGO_UPN, "number": "0170 5556666"})
    assert "+49 1705556666" in fact(review.card, "en", "fact.change")
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    request_id = (action_data(review.card, "mfa.confirm") or {})["requestId"]
    # the requester's waiting card
    assert texts.t("en", "awaiting.title") in confirm.text and "***6666" in confirm.text
    # the approvers' cards: channel and 1:1, and a refresh
    channel = await channel_card(bot, request_id)
    megan_dm = await dm_card(bot, request_id, MEGAN)
    for card in (channel.card, megan_dm.card):
        assert "***6666" in card_text(card) and "5556666" not in digits(card_text(card))
    req = await bot.store.get_request(request_id)
    assert req is not None
    refreshed = await click(bot, MEGAN, "mfa.refresh", request_id, req.revision, card=channel)
    assert "***6666" in refreshed.text and "5556666" not in digits(refreshed.text)
    approved = await click(bot, MEGAN, "mfa.approve", request_id, req.revision, card=channel)
    assert "5556666" not in digits(approved.text)
    await wait_state(bot, request_id, RequestState.COMPLETED)
    await wait_card_text(bot.connector, form.activity_id or "", texts.t("en", "outcome.added.title"))
    assert bot.sim.tenant.user(DIEGO_ID).phones["mobile"].number == "+49 1705556666"
    # status and history
    mark = bot.connector.mark()
    status = await bot.message(ALEX, f"status {request_id}")
    history = await bot.message(ALEX, f"history {DIEGO_UPN}")
    assert status.status in (200, 201) and history.status in (200, 201)
    answered = await bot.connector.wait_for(
        lambda recs: (lambda mine: mine if len(mine) >= 2 else None)(
            [r for r in recs if r.conversation_id == ALEX.conversation_id and r.cards and r.kind != "update"]
        ),
        since=mark,
    )
    final = await bot.store.get_request(request_id)
    assert final is not None and final.ref
    assert any(final.ref in card_text(card) for r in answered for card in r.cards)  # the status card
    answers = [confirm, refreshed, approved]
    # every card and message sent anywhere, and every invoke answer: the full number only on the confirmation
    shown_in_full = []
    for rec in bot.connector.records[start:]:
        for card in rec.cards:
            flat = re.sub(r"[\s\-()./\\]", "", json.dumps(card, ensure_ascii=False))
            if "5556666" in digits(card_text(card)) or "1705556666" in flat:
                shown_in_full.append((rec.conversation_id, card_text(card).splitlines()[0]))
        assert "5556666" not in digits(str(rec.body.get("text") or ""))
    for answer in answers:
        assert "5556666" not in digits(answer.text)
    assert shown_in_full == [(ALEX.conversation_id, texts.t("en", "confirm.title"))]


# ---------------------------------------------------------------------------------------------- the rules


TARGETS = {
    # name: (target as typed, privileged, guest)
    "member": (DIEGO_UPN, False, False),
    "privileged": (ISAIAH.upn, True, False),
    "guest": (ADELE_ID, False, True),
    "privileged_guest": (ADELE_ID, True, True),
}


def expected_rules(policy: str, privileged: bool) -> list[str]:
    rules = ["rule.privileged_requester"] if privileged else []
    if policy == "never" or (policy == "privileged" and not privileged):
        return [*rules, "rule.no_approval"]
    return [*rules, "rule.approval_privileged" if privileged else "rule.approval_always"]


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("policy", ["never", "privileged", "always"])
async def test_rules_that_apply_say_each_rule_once_with_its_reason(
    make_bot: MakeBot, policy: str, target: str, lang: str
) -> None:
    ref, privileged, guest = TARGETS[target]
    bot = await make_bot(APPROVAL_POLICY=policy)
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # may change privileged users
    if target == "privileged_guest":
        bot.sim.tenant.groups[TIER0_GROUP].members.append(ADELE_ID)
    locale = "de-DE" if lang == "de" else "en-US"
    form = await bot.open_form(ALEX, locale=locale)
    review = await bot.review(ALEX, form, {"targetUserText": ref, "number": "+49 170 5550177"}, locale=locale)
    assert action_data(review.card, "mfa.confirm") is not None, review.text
    account = fact(review.card, lang, "fact.account")
    assert account == texts.t(lang, "fact.account.guest" if guest else "fact.account.member")

    lines = rule_lines(review.card, lang)
    said = [rule_of(lang, line) for line in lines]
    assert len(set(said)) == len(said), lines  # no rule said twice
    assert sum(key in APPROVAL_RULES for key in said) == 1, lines  # one line on approval, whatever the policy
    assert said == expected_rules(policy, privileged), lines
    # each line carries its reason
    req = await bot.store.get_request((action_data(review.card, "mfa.confirm") or {})["requestId"])
    assert req is not None and req.target_privileged is privileged
    roles = ", ".join(req.privilege_reasons)
    if privileged:
        assert roles and roles in lines[0]
        assert ISAIAH.upn != ref or "Global Administrator" in roles
    for key, line in zip(said, lines, strict=True):
        if key == "rule.approval_privileged":
            assert texts.t(lang, "approval.group.privileged") in line and roles in line
        if key == "rule.approval_always":
            assert texts.t(lang, "approval.group.approver") in line

"""Each refusal holds through the real endpoint: a clear answer in plain words, an audit row, nothing changed."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import texts
from bot.models import RequestState
from tests.bot.conftest import (
    ALEX,
    ISAIAH,
    MEGAN,
    MIRIAM_ID,
    OTHER_TENANT_ID,
    PRADEEP,
    PRIVILEGED_GROUP,
    BotHarness,
    action_data,
    card_text,
    graph_writes,
)

DIEGO = {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "action": "set"}


def en(key: str) -> str:
    """The fixed part of an English text (up to its first placeholder)."""
    return texts.TEXTS["en"][key].split("{")[0].strip()


async def _draft(bot: BotHarness, who=ALEX, values=DIEGO):  # type: ignore[no-untyped-def]
    form = await bot.open_form(who)
    review = await bot.review(who, form, values)
    data = action_data(review.card, "mfa.confirm")
    assert data, review.text
    return form, review, data


async def test_no_helpdesk_role_gets_a_refusal_instead_of_the_form(bot: BotHarness) -> None:
    mark = bot.connector.mark()
    reply = await bot.message(PRADEEP, "set phone")
    assert reply.status in (200, 201)
    sent = await bot.connector.wait_for(lambda recs: [r for r in recs if r.card], since=mark)
    assert en("refusal.not_helpdesk") in card_text(sent[0].card)
    assert "targetUserText" not in json.dumps(sent[0].card)
    refusals = await bot.refusals()
    assert refusals and refusals[-1]["actor_aad_id"] == PRADEEP.aad
    assert refusals[-1]["details"]["reason"] == "refusal.not_helpdesk"


async def test_no_helpdesk_role_cannot_use_a_forged_review_or_confirm(bot: BotHarness) -> None:
    _, _, data = await _draft(bot)
    review = await bot.invoke(PRADEEP, "mfa.review", {"verb": "mfa.review", **DIEGO})
    assert review.status == 200 and en("refusal.not_helpdesk") in review.text
    confirm = await bot.invoke(PRADEEP, "mfa.confirm", data)
    assert confirm.status == 200 and en("refusal.not_helpdesk") in confirm.text
    assert graph_writes(bot.sim) == []
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.DRAFT


async def test_privileged_target_is_refused_without_the_privileged_group(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, {"targetUserText": ISAIAH.upn, "number": "+49 170 5550199"})
    assert en("refusal.target_privileged") in reply.text
    assert "Global Administrator" in reply.text
    assert action_data(reply.card, "mfa.confirm") is None
    refusal = (await bot.refusals())[-1]
    assert refusal["target_id"] == ISAIAH.aad and refusal["details"]["reason"] == "refusal.target_privileged"
    assert graph_writes(bot.sim) == []


async def test_member_of_a_role_assignable_group_is_privileged_too(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, {"targetUserText": MIRIAM_ID, "number": "+49 170 5550199"})
    assert en("refusal.target_privileged") in reply.text


async def test_privileged_group_member_may_change_a_privileged_target_and_sees_the_rule(
    bot: BotHarness,
) -> None:
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    review, _, final = await bot.run_change(ALEX, {"targetUserText": ISAIAH.upn, "number": "+49 170 5550199"})
    assert "Global Administrator" in review.text  # the rule that applies is on the confirmation card
    assert [c.method for c in graph_writes(bot.sim)] == ["PATCH"]


async def test_nobody_changes_their_own_mfa(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, {"targetUserText": ALEX.upn, "number": "+49 170 5556666"})
    assert en("refusal.own_account") in reply.text
    assert (await bot.refusals())[-1]["details"]["reason"] == "refusal.own_account"


async def test_activity_from_another_tenant_is_refused(bot: BotHarness) -> None:
    mark = bot.connector.mark()
    await bot.message(ALEX, "set phone", tenant=OTHER_TENANT_ID)
    sent = await bot.connector.wait_for(lambda recs: [r for r in recs if r.card], since=mark)
    assert en("refusal.other_tenant") in card_text(sent[0].card)
    invoke = await bot.invoke(ALEX, "mfa.review", {"verb": "mfa.review", **DIEGO}, tenant=OTHER_TENANT_ID)
    assert en("refusal.other_tenant") in invoke.text
    assert all(r["details"]["reason"] == "refusal.other_tenant" for r in await bot.refusals())
    assert await bot.store.conversation_reference(f"user:{ALEX.aad}") is None  # nothing kept from it
    assert graph_writes(bot.sim) == []


async def test_confirm_of_a_request_that_does_not_exist(bot: BotHarness) -> None:
    reply = await bot.invoke(ALEX, "mfa.confirm", {"verb": "mfa.confirm", "requestId": "f" * 32, "rev": 1})
    assert reply.status == 200 and en("refusal.not_found") in reply.text
    assert (await bot.refusals())[-1]["request_id"] == "f" * 32


async def test_confirm_of_someone_elses_request_changes_nothing(bot: BotHarness) -> None:
    _, _, data = await _draft(bot, ALEX)
    reply = await bot.invoke(MEGAN, "mfa.confirm", data)
    assert en("refusal.not_found") in reply.text
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.DRAFT
    refusal = (await bot.refusals())[-1]
    assert refusal["actor_aad_id"] == MEGAN.aad and refusal["request_id"] == data["requestId"]
    assert graph_writes(bot.sim) == []


@pytest.mark.parametrize("rev", [0, 2, 99])
async def test_stale_revision_is_refused(bot: BotHarness, rev: int) -> None:
    _, _, data = await _draft(bot)
    reply = await bot.invoke(ALEX, "mfa.confirm", {**data, "rev": rev})
    assert en("refusal.stale") in reply.text
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.DRAFT
    assert graph_writes(bot.sim) == []


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"verb": "mfa.confirm"},
        {"requestId": None, "rev": 1},
        {"requestId": 12345, "rev": 1},
        {"requestId": ["a"], "rev": 1},
        {"requestId": "../../etc/passwd", "rev": 1},
        {"requestId": "abc", "rev": "one"},
        {"requestId": "abc", "rev": {"$gt": 0}},
        {"requestId": "abc", "rev": True},
        "just a string",
        ["a", "list"],
        None,
    ],
)
async def test_forged_confirm_payloads_get_a_clear_answer(bot: BotHarness, data: object) -> None:
    reply = await bot.invoke(ALEX, "mfa.confirm", data)
    assert reply.status == 200
    assert reply.card is not None
    assert en("refusal.title") in reply.text
    assert graph_writes(bot.sim) == []


@pytest.mark.parametrize("verb", ["mfa.explode", "", None, 42, {"x": 1}, "mfa.confirm " * 100])
async def test_unknown_verbs_are_refused(bot: BotHarness, verb: object) -> None:
    reply = await bot.invoke(ALEX, verb, {"requestId": "abc", "rev": 1})
    assert reply.status == 200 and en("refusal.unknown_action") in reply.text


async def test_100kb_strings_come_back_as_field_errors(bot: BotHarness) -> None:
    huge = "9" * 100_000
    form = await bot.open_form(ALEX)
    reply = await bot.review(
        ALEX,
        form,
        {"targetUserText": "x" * 100_000, "number": huge, "ticket": "t" * 100_000, "action": "set"},
    )
    assert reply.status == 200
    assert "targetUserText" in json.dumps(reply.card)  # the form again, with errors
    assert len(json.dumps(reply.body)) < 60_000  # the huge values are not echoed back
    assert texts.t("en", "form.has_errors") in reply.text
    assert graph_writes(bot.sim) == []


async def test_wrong_types_in_form_fields_come_back_as_field_errors(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(
        ALEX, form, {"targetUserText": ["x"], "number": 4917055, "action": "explode", "notify": {"a": 1}}
    )
    assert reply.status == 200 and texts.t("en", "form.has_errors") in reply.text
    assert await bot.store.history("00000000-0000-0000-0000-0000000000c2") == []


async def test_bad_number_keeps_the_values_and_says_why_beside_the_field(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, {**DIEGO, "number": "call me maybe", "ticket": "INC-42"})
    card = json.dumps(reply.card)
    assert '"value": "INC-42"' in card and '"value": "diego.siciliani@contoso.example"' in card
    assert texts.t("en", "form.has_errors") in reply.text
    assert action_data(reply.card, "mfa.confirm") is None


async def test_unknown_user_is_said_beside_the_field(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, {**DIEGO, "targetUserText": "nobody@contoso.example"})
    assert "nobody@contoso.example" in reply.text
    assert en("error.target.not_found") in reply.text


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"this is not json", "application/json", 400),
        (b'{"type": "message", "text": ', "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'{"text": "no type"}', "application/json", 400),
        (
            b'{"type": "message", "from": 5, "serviceUrl": "http://x", "conversation": {"id": "c"}}',
            "application/json",
            400,
        ),
        (b'{"type": "message"}', "text/plain", 415),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),
        (b'{"type": "message", "text": "' + b"a" * (11 * 1024 * 1024) + b'"}', "application/json", 413),
    ],
    ids=["not-json", "truncated", "array", "no-type", "wrong-type", "content-type", "deeply-nested", "10MB"],
)
async def test_bad_bodies_get_a_clear_4xx_json(
    bot: BotHarness, raw: bytes, content_type: str, status: int
) -> None:
    reply = await bot.post(None, raw=raw, content_type=content_type)
    assert reply.status == status
    assert isinstance(reply.body, dict) and reply.body["error"]["message"]
    assert graph_writes(bot.sim) == []


async def test_a_retried_or_double_confirm_runs_the_change_once(bot: BotHarness) -> None:
    form, review, data = await _draft(bot)
    mark = bot.connector.mark()
    first, second = await asyncio.gather(
        bot.invoke(ALEX, "mfa.confirm", data, reply_to_id=form.activity_id),
        bot.invoke(ALEX, "mfa.confirm", data, reply_to_id=form.activity_id),
    )
    assert first.status == 200 and second.status == 200
    await bot.final_update(form.activity_id or "", since=mark)
    again = await bot.invoke(ALEX, "mfa.confirm", data, reply_to_id=form.activity_id)  # Teams retrying later
    assert again.status == 200 and again.card is not None
    assert len(graph_writes(bot.sim)) == 1
    events = await bot.audit_events(data["requestId"])
    assert events.count("confirmed") == 1 and events.count("completed") == 1


HENRIETTA_ID = "00000000-0000-0000-0000-0000000000c8"  # eligible (PIM) for Global Administrator, not active


async def test_eligible_global_admin_is_refused_without_the_privileged_group(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(
        ALEX, form, {"targetUserText": "henrietta.mueller@contoso.example", "number": "+49 170 5550199"}
    )
    assert en("refusal.target_privileged") in reply.text
    assert "Global Administrator (eligible)" in reply.text
    assert action_data(reply.card, "mfa.confirm") is None
    refusal = (await bot.refusals())[-1]
    assert (
        refusal["target_id"] == HENRIETTA_ID and refusal["details"]["reason"] == "refusal.target_privileged"
    )
    assert graph_writes(bot.sim) == []

"""Each refusal holds through the real endpoint: a clear answer in plain words, an audit row, nothing changed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from bot.persistence.models import RequestState
from bot.views import texts
from tests.bot.conftest import (
    ADELE_ID,
    ALEX,
    APPROVER_GROUP,
    HELPDESK_GROUP,
    ISAIAH,
    MEGAN,
    MIRIAM_ID,
    OTHER_TENANT_ID,
    PRADEEP,
    PRIVILEGED_GROUP,
    BotHarness,
    MakeBot,
    Persona,
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


IRVIN = {"targetUserText": "irvin.sayers@contoso.example", "number": "+49 170 5550199", "action": "set"}
# eligible (PIM for Groups) member of Tier-0 Admins, not active
IRVIN_ID = "00000000-0000-0000-0000-0000000000ca"
JONI = {"targetUserText": "joni.sherman@contoso.example", "number": "+49 170 5550199", "action": "set"}
JONI_ID = "00000000-0000-0000-0000-0000000000c9"  # owner of the bot's own Graph application


@pytest.mark.parametrize(
    ("values", "target_id", "reason"),
    [
        (IRVIN, IRVIN_ID, "Tier-0 Admins (eligible member)"),
        (JONI, JONI_ID, "owner of this bot's application"),
    ],
    ids=["eligible-for-a-role-assignable-group", "owner-of-the-bots-application"],
)
async def test_target_who_can_become_privileged_is_refused_without_the_privileged_group(
    bot: BotHarness, values: dict[str, str], target_id: str, reason: str
) -> None:
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, values)
    assert en("refusal.target_privileged") in reply.text and reason in reply.text
    assert action_data(reply.card, "mfa.confirm") is None
    refusal = (await bot.refusals())[-1]
    assert refusal["target_id"] == target_id and refusal["details"]["reason"] == "refusal.target_privileged"
    assert graph_writes(bot.sim) == []


@pytest.mark.parametrize(("values", "reason"), [(IRVIN, "Tier-0 Admins (eligible member)"), (JONI, "owner")])
async def test_target_who_can_become_privileged_is_shown_as_privileged_to_the_privileged_group(
    make_bot: MakeBot, values: dict[str, str], reason: str
) -> None:
    bot = await make_bot(APPROVAL_POLICY="privileged")
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # Alex may ask for privileged targets
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, values)
    data = action_data(reply.card, "mfa.confirm")
    assert data is not None, reply.text
    assert reason in reply.text  # the rule that applies: a privileged approver must decide
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.target_privileged and req.approver_group == "privileged"
    assert any(reason in r for r in req.privilege_reasons)


# a guest (B2B) account
ADELE = Persona(ADELE_ID, "Adele Vance", "adele_partner.example#EXT#@contoso.example")


async def test_guest_in_the_helpdesk_group_cannot_ask_for_a_change(bot: BotHarness) -> None:
    bot.sim.tenant.groups[HELPDESK_GROUP].members.append(ADELE.aad)
    mark = bot.connector.mark()
    reply = await bot.message(ADELE, "set phone")
    assert reply.status in (200, 201)
    sent = await bot.connector.wait_for(lambda recs: [r for r in recs if r.card], since=mark)
    assert en("refusal.guest") in card_text(sent[0].card)
    assert "targetUserText" not in json.dumps(sent[0].card)
    # a forged review does not get further
    review = await bot.invoke(ADELE, "mfa.review", {"verb": "mfa.review", **DIEGO})
    assert review.status == 200 and en("refusal.guest") in review.text
    assert action_data(review.card, "mfa.confirm") is None
    refusals = await bot.refusals()
    assert [r["details"]["reason"] for r in refusals] == ["refusal.guest", "refusal.guest"]
    assert all(r["actor_aad_id"] == ADELE.aad for r in refusals)
    assert graph_writes(bot.sim) == []


async def test_guest_in_the_approver_group_cannot_approve(make_bot: MakeBot) -> None:
    channel = "19:approvers@thread.tacv2"
    bot = await make_bot(APPROVAL_POLICY="always", APPROVER_CONVERSATION_ID=channel)
    bot.sim.tenant.groups[APPROVER_GROUP].members.append(ADELE.aad)
    reply = await bot.conversation_update(MEGAN, conversation_id=channel, conversation_type="channel")
    assert reply.status in (200, 201)
    form, review, data = await _draft(bot)
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirm.status == 200
    req = await bot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.AWAITING_APPROVAL
    click = {"verb": "mfa.approve", "requestId": req.id, "rev": req.revision}
    answer = await bot.invoke(
        ADELE, "mfa.approve", click, conversation_id=channel, conversation_type="channel"
    )
    assert answer.status == 200 and en("refusal.guest_approver") in answer.text
    after = await bot.store.get_request(req.id)
    assert after is not None and after.state is RequestState.AWAITING_APPROVAL and after.decided_by is None
    refused = [e for e in await bot.store.request_audit(req.id) if e.actor_aad_id == ADELE.aad]
    assert [e.event for e in refused] == ["approval_refused"]
    assert refused[0].details["reason"] == "refusal.guest_approver"
    assert graph_writes(bot.sim) == []


async def test_without_the_permission_to_read_the_bots_owners_every_target_is_privileged(
    sim: Any, make_bot: MakeBot
) -> None:
    app = sim.tenant.app(sim.tenant.applications[0].client_id)
    app.roles = [r for r in app.roles if r != "Application.Read.All"]
    bot = await make_bot()
    # readiness names the missing permission; the bot still serves
    async with aiohttp.ClientSession() as http, http.get(bot.server.make_url("/readyz")) as resp:
        body = await resp.json()
    assert resp.status == 200, body
    assert "missing permission Application.Read.All" in body["warnings"]["bot_owners"]
    # an ordinary target is treated as privileged, with the reason
    form = await bot.open_form(ALEX)
    reply = await bot.review(ALEX, form, DIEGO)
    assert en("refusal.target_privileged") in reply.text
    assert "the owners of this bot's application could not be read" in reply.text
    assert action_data(reply.card, "mfa.confirm") is None
    assert graph_writes(bot.sim) == []

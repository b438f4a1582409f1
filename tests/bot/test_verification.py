"""Caller verification through the real HTTP endpoint: the agent says how the caller was verified, the target (or
their manager) answers a card in Teams, or the agent types the one-time code the caller reads back; a "No" locks
the user and alerts the approvers. The bot runs with create_app behind /api/messages, the Graph simulator behind
it, the fake Bot Connector in front of it, and a test Reacher (tests/bot/fake_reacher.py) that posts the card to
the person's 1:1 conversation on that connector.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from app import RUNTIME, create_app
from bot.persistence.models import RequestState
from bot.settings import BotSettings, SettingsError, VerificationPolicy
from bot.views import texts
from tests.bot.conftest import (
    ALEX,
    HELPDESK_GROUP,
    ISAIAH,
    LYNNE_ID,
    MEGAN,
    PATTI,
    PRADEEP,
    PRIVILEGED_GROUP,
    BotHarness,
    Persona,
    Reply,
    action_data,
    bot_environ,
    card_text,
    graph_writes,
    input_ids,
)
from tests.bot.db_fixtures import Database
from tests.bot.fake_connector import FakeConnector, Recorded
from tests.bot.fake_reacher import FakeReacher
from tests.bot.test_approvals import (
    APPROVERS_CONV,
    Clock,
    channel_card,
    click,
    eventually,
    register_approvers,
    wait_card_text,
    wait_state,
)

LYNNE = Persona(LYNNE_ID, "Lynne Robbins", "lynne.robbins@contoso.example")
NEW_NUMBER = "+49 170 5557777"
NEW_E164 = "+491705557777"
DEFAULT_POLICY = "ordinary=teams,code,manager;privileged=teams,manager+approval"
WITH_IN_PERSON = "ordinary=teams,code,manager,in_person;privileged=teams,manager+approval"
SIX_DIGITS = re.compile(r"\b(\d{6})\b")


# ---------------------------------------------------------------------------------------------- harness


@dataclass
class VBot:
    bot: BotHarness
    server: TestServer
    clock: Clock
    reacher: FakeReacher | None
    stopped: bool = False

    async def stop(self) -> None:
        """A graceful stop of this instance (background work finishes, the sweeper stops)."""
        if not self.stopped:
            self.stopped = True
            await self.bot.close()
            await self.server.close()

    @property
    def connector(self) -> FakeConnector:
        return self.bot.connector


@dataclass
class Launcher:
    sim: Any
    sim_env: dict[str, str]
    connector: FakeConnector
    database: Database
    tmp_path: Any
    started: list[VBot] = field(default_factory=list)

    async def start(
        self, *, reacher: bool | str = True, clock: Clock | None = None, **overrides: str
    ) -> VBot:
        """A bot with caller verification on (DEFAULT_POLICY unless overridden). `reacher`: True, a reacher that
        delivers; a reason string, one that fails with it; False, the bot's own Teams reacher without
        TEAMS_APP_ID (not configured). `clock`: one shared with other instances (default: its own)."""
        env = {
            "APPROVAL_POLICY": "never",
            "APPROVER_CONVERSATION_ID": APPROVERS_CONV,
            "TARGET_COOLDOWN_MINUTES": "0",
            "MAIL_SENDER": "servicedesk@contoso.example",
            "VERIFICATION_POLICY": DEFAULT_POLICY,
            # no reacher of its own: the bot's Teams reacher, which without TEAMS_APP_ID reaches only people
            # with a stored conversation (none here): not configured
            **({"TEAMS_APP_ID": ""} if reacher is False else {}),
            **overrides,
        }
        settings = BotSettings.from_env(
            bot_environ(self.sim_env, str(self.tmp_path / f"data-{uuid.uuid4().hex[:6]}"), **env)
        )
        store = await self.database.open()
        clock = clock if clock is not None else Clock()
        fake = None
        if reacher is not False:
            fake = FakeReacher(self.connector, fail_with=reacher if isinstance(reacher, str) else None)
        app = create_app(settings, store=store, clock=clock, reacher=fake, tenant_check=False)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        vbot = VBot(BotHarness(server, self.connector, settings, store, self.sim), server, clock, fake)
        self.started.append(vbot)
        await register_approvers(vbot.bot)
        return vbot

    async def close(self) -> None:
        for vbot in reversed(self.started):
            await vbot.stop()


@pytest.fixture
async def launcher(
    sim: Any, sim_env: dict[str, str], connector: FakeConnector, database: Database, tmp_path: Any
) -> AsyncIterator[Launcher]:
    launch = Launcher(sim, sim_env, connector, database, tmp_path)
    try:
        yield launch
    finally:
        await launch.close()


@dataclass
class Asked:
    request_id: str
    form: Recorded  # the agent's card, updated in place (form → confirmation → waiting → outcome)
    review: Reply
    confirm: Reply


async def ask(
    v: VBot,
    method: str = "teams",
    *,
    who: Persona = ALEX,
    target: str = LYNNE.upn,
    number: str = NEW_NUMBER,
) -> Asked:
    """The agent's path: set phone → review (with how the caller was verified) → confirm."""
    bot = v.bot
    form = await bot.open_form(who)
    assert "verification" in input_ids(form.card)
    review = await bot.review(
        who,
        form,
        {
            "targetUserText": target,
            "number": number,
            "action": "set",
            "notify": "false",
            "verification": method,
        },
    )
    data = action_data(review.card, "mfa.confirm")
    assert review.status == 200 and data is not None, review.text
    confirm = await bot.confirm(who, form.activity_id, review.card or {})
    assert confirm.status == 200, confirm
    return Asked(data["requestId"], form, review, confirm)


def card_to(v: VBot, person: Persona, verb: str = "mfa.verify.yes") -> Recorded:
    """The verification card the person got 1:1 (the last one)."""
    for r in reversed(v.connector.records):
        if r.kind == "send" and r.conversation_id == person.conversation_id and action_data(r.card, verb):
            return r
    raise AssertionError(f"no verification card to {person.name}")


def code_card_to(v: VBot, person: Persona) -> Recorded:
    for r in reversed(v.connector.records):
        if (
            r.kind == "send"
            and r.conversation_id == person.conversation_id
            and SIX_DIGITS.search(card_text(r.card))
        ):
            return r
    raise AssertionError(f"no code card to {person.name}")


async def answer(v: VBot, person: Persona, verb: str, card: Recorded, **kw: Any) -> Reply:
    data = action_data(card.card, verb)
    assert data is not None, card_text(card.card)
    return await v.bot.invoke(person, verb, data, reply_to_id=card.activity_id, **kw)


async def type_code(v: VBot, asked: Asked, code: str, who: Persona = ALEX) -> Reply:
    req = await v.bot.store.get_request(asked.request_id)
    data = {"verb": "mfa.verify.code", "requestId": asked.request_id, "rev": req.revision, "code": code}
    return await v.bot.invoke(who, "mfa.verify.code", data, reply_to_id=asked.form.activity_id)


def refusal_text(key: str, **params: Any) -> str:
    return texts.t("en", key, **params)


async def events(v: VBot, request_id: str) -> list[str]:
    return await v.bot.audit_events(request_id)


def writes_for(sim: Any, user_id: str) -> list[Any]:
    return [c for c in graph_writes(sim) if user_id in c.path]


# ---------------------------------------------------------------------------------------------- Teams confirmation


async def test_the_user_confirms_in_teams_and_only_then_the_change_runs(launcher: Launcher) -> None:
    v = await launcher.start()
    asked = await ask(v)
    assert "Confirmation in Teams" in asked.review.text or "confirmation in Teams" in asked.review.text
    waiting = asked.confirm.text
    assert "Waiting for Lynne Robbins to confirm in Teams (expires" in waiting
    assert action_data(asked.confirm.card, "mfa.cancel") is not None
    req = await v.bot.store.get_request(asked.request_id)
    assert req.state is RequestState.AWAITING_VERIFICATION and req.verifier.aad_object_id == LYNNE_ID

    # Lynne's card: who asks, the masked change, the ticket-free request, Yes / No; never a full number
    recipient, _ = v.reacher.sent[-1]
    assert recipient.aad_object_id == LYNNE_ID and recipient.user_principal_name == LYNNE.upn
    lynne_card = card_to(v, LYNNE)
    text = card_text(lynne_card.card)
    assert "Alex Wilber" in text and "Yes, I asked for this" in text and "No, I did not ask" in text
    assert "***" in text and NEW_E164 not in json.dumps(lynne_card.card) and "5557777" not in text
    assert writes_for(v.bot.sim, LYNNE_ID) == []  # nothing changed before she answered

    mark = v.connector.mark()
    yes = await answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    assert "You confirmed this request" in yes.text
    assert "No answer needed" not in yes.text  # her answer was needed: the title thanks her for it
    done = await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)
    assert done.verified_by.aad_object_id == LYNNE_ID and done.verified_at is not None
    assert len(writes_for(v.bot.sim, LYNNE_ID)) == 1
    # the agent's card went from "confirmed by" on to the outcome
    await v.connector.wait_for(
        lambda recs: [
            r
            for r in recs
            if r.kind == "update"
            and r.activity_id == asked.form.activity_id
            and "Confirmed by Lynne Robbins at" in card_text(r.card)
        ],
        since=mark,
    )
    trail = await events(v, asked.request_id)
    assert trail.index("verification_started") < trail.index("caller_verified") < trail.index("confirmed")
    assert trail[-1] == "completed"

    # status and history say how the caller was verified, by whom
    status = await v.bot.message(ALEX, f"status {asked.request_id}")
    assert status.status in (200, 201)
    shown = await v.connector.wait_for(
        lambda recs: next(
            (
                card_text(r.card)
                for r in recs
                if r.conversation_id == ALEX.conversation_id
                and r.card
                and "Caller verified" in card_text(r.card)
                and f"Status of request {done.ref}" in card_text(r.card)
            ),
            None,
        )
    )
    assert "confirmation in Teams: confirmed by Lynne Robbins" in shown
    assert "caller verified" in shown  # the audit entry
    assert "Caller verification: confirmation in Teams (Lynne Robbins)" in shown
    mark = v.connector.mark()
    await v.bot.message(ALEX, f"history {LYNNE.upn}")
    history = await v.connector.wait_for(
        lambda recs: next(
            (card_text(r.card) for r in recs if r.conversation_id == ALEX.conversation_id and r.card), None
        ),
        since=mark,
    )
    assert (
        "caller verified" in history
        and "Caller verification: confirmation in Teams (Lynne Robbins)" in history
    )


async def test_a_repeated_yes_changes_nothing_again(launcher: Launcher) -> None:
    v = await launcher.start()
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    await answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)
    again = await answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    assert "You confirmed this request" in again.text
    no_after = await answer(v, LYNNE, "mfa.verify.no", lynne_card)
    assert "Your click changed nothing" in no_after.text or "You confirmed" in no_after.text
    assert len(writes_for(v.bot.sim, LYNNE_ID)) == 1
    assert await v.bot.store.target_lock(LYNNE_ID, v.clock()) is None
    assert (await events(v, asked.request_id)).count("caller_verified") == 1


# ---------------------------------------------------------------------------------------------- "No, I did not ask"


async def test_no_cancels_locks_the_user_alerts_the_approvers_and_only_a_privileged_approver_unlocks(
    launcher: Launcher,
) -> None:
    v = await launcher.start(TARGET_LOCK_HOURS="24")
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    no = await answer(v, LYNNE, "mfa.verify.no", lynne_card)
    assert "The request was stopped and nothing was changed" in no.text
    assert "Stopped: you did not ask for this" in no.text
    req = await wait_state(v.bot, asked.request_id, RequestState.CANCELLED)
    assert req.decided_by.aad_object_id == LYNNE_ID
    assert writes_for(v.bot.sim, LYNNE_ID) == []
    assert await v.bot.store.target_lock(LYNNE_ID, v.clock()) is not None

    # the security alert in the approvers' conversation: who asked, the ticket-less request, the masked number
    alert = await v.connector.wait_for(
        lambda recs: next(
            (
                r
                for r in recs
                if r.conversation_id == APPROVERS_CONV and "Security alert" in card_text(r.card)
            ),
            None,
        )
    )
    alert_text = card_text(alert.card)
    assert "Lynne Robbins" in alert_text and "Alex Wilber" in alert_text and "***" in alert_text
    assert NEW_E164 not in json.dumps(alert.card)
    # the agent's card says the user refused
    await wait_card_text(v.connector, asked.form.activity_id, "said they did not ask")
    trail = await events(v, asked.request_id)
    assert "verification_refused" in trail and "target_locked" in trail
    await eventually(lambda: _has_event(v, asked.request_id, "security_alert"), what="the alert's audit row")

    # while locked: a new request for Lynne is refused at Review
    form = await v.bot.open_form(ALEX)
    refused = await v.bot.review(
        ALEX,
        form,
        {"targetUserText": LYNNE.upn, "number": NEW_NUMBER, "action": "set", "verification": "teams"},
    )
    assert "locked against changes through the bot" in refused.text

    # an approver who is not privileged cannot lift the lock; a privileged approver can
    mark = v.connector.mark()
    await v.bot.message(MEGAN, f"unlock {LYNNE.upn}")
    said = await v.connector.wait_for(
        lambda recs: next(
            (r.text for r in recs if r.conversation_id == MEGAN.conversation_id and r.text), None
        ),
        since=mark,
    )
    assert said == refusal_text("refusal.unlock_not_privileged")
    assert await v.bot.store.target_lock(LYNNE_ID, v.clock()) is not None
    mark = v.connector.mark()
    await v.bot.message(PATTI, f"unlock {LYNNE.upn}")
    said = await v.connector.wait_for(
        lambda recs: next(
            (r.text for r in recs if r.conversation_id == PATTI.conversation_id and r.text), None
        ),
        since=mark,
    )
    assert "was lifted" in said
    assert await v.bot.store.target_lock(LYNNE_ID, v.clock()) is None
    audit = await v.bot.all_audit()
    assert any(r["event"] == "target_unlocked" and r["actor_aad_id"] == PATTI.aad for r in audit)
    assert any(
        r["event"] == "refused"
        and r["actor_aad_id"] == MEGAN.aad
        and r["details"]["reason"] == "refusal.unlock_not_privileged"
        for r in audit
    )
    # and a new request goes through again
    again = await ask(v)
    assert "Waiting for Lynne Robbins" in again.confirm.text


async def test_a_lock_set_while_a_request_waited_stops_it_at_the_start_of_the_change(
    launcher: Launcher,
) -> None:
    v = await launcher.start()
    first = await ask(v)
    lynne_first = card_to(v, LYNNE)
    # the agent asks again for the same user while the first request waits, then Lynne says Yes to the
    # second and No to the first: the second must not run on a locked user
    second = await ask(v, number="+49 170 5558888")
    lynne_second = card_to(v, LYNNE)
    assert lynne_second.activity_id != lynne_first.activity_id
    await answer(v, LYNNE, "mfa.verify.no", lynne_first)
    await wait_state(v.bot, first.request_id, RequestState.CANCELLED)
    await answer(v, LYNNE, "mfa.verify.yes", lynne_second)
    done = await wait_state(v.bot, second.request_id, RequestState.CANCELLED)
    assert "locked against changes through the bot" in (done.decision_reason or "")
    assert writes_for(v.bot.sim, LYNNE_ID) == []


async def _has_event(v: VBot, request_id: str, event: str) -> bool:
    return event in await events(v, request_id)


# ---------------------------------------------------------------------------------------------- expiry


async def test_nobody_answers_in_time_and_both_cards_say_it_expired(launcher: Launcher) -> None:
    v = await launcher.start(SWEEP_INTERVAL_SECONDS="0.05", VERIFICATION_TIMEOUT_MINUTES="10")
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    v.clock.advance(minutes=9)
    sweeper = v.server.app[RUNTIME].sweeper
    rounds = sweeper.rounds
    await eventually(lambda: _rounds(sweeper, rounds + 3), what="three sweeper rounds")
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.AWAITING_VERIFICATION
    v.clock.advance(minutes=2)
    await wait_state(v.bot, asked.request_id, RequestState.EXPIRED)
    await wait_card_text(v.connector, asked.form.activity_id, "the caller was not verified in time")
    await wait_card_text(v.connector, lynne_card.activity_id, "no longer waits for your answer")
    late = await answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    assert "Your click changed nothing" in late.text
    assert writes_for(v.bot.sim, LYNNE_ID) == []
    assert "verification_expired" in await events(v, asked.request_id)
    assert "caller_verified" not in await events(v, asked.request_id)


async def test_a_yes_after_the_expiry_is_too_late_even_before_the_sweeper(launcher: Launcher) -> None:
    v = await launcher.start(SWEEP_INTERVAL_SECONDS="3600")
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    v.clock.advance(minutes=11)
    late = await answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    assert "Your click changed nothing" in late.text
    await wait_state(v.bot, asked.request_id, RequestState.EXPIRED)
    assert writes_for(v.bot.sim, LYNNE_ID) == []


async def _rounds(sweeper: Any, count: int) -> bool:
    return sweeper.rounds >= count


# ---------------------------------------------------------------------------------------------- one-time code


async def test_the_code_read_back_verifies_the_caller_and_a_replay_does_nothing(
    launcher: Launcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    v = await launcher.start()
    asked = await ask(v, "code")
    assert "A one-time code was sent to Lynne Robbins by a Teams message" in asked.confirm.text
    assert "code" in input_ids(asked.confirm.card)
    code = SIX_DIGITS.search(card_text(code_card_to(v, LYNNE).card)).group(1)
    assert code not in json.dumps(asked.confirm.card)

    ok = await type_code(v, asked, f"{code[:3]} {code[3:]}")
    assert "The code was right" in ok.text
    done = await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)
    assert done.verified_by.aad_object_id == LYNNE_ID
    replay = await type_code(v, asked, code)
    assert "already verified" in replay.text
    assert len(writes_for(v.bot.sim, LYNNE_ID)) == 1
    # the code is in no log line, no audit row and no card the agent got
    assert code not in caplog.text
    assert code not in json.dumps(await v.bot.all_audit(), default=str)
    for r in v.connector.records:
        if r.conversation_id == ALEX.conversation_id:
            assert code not in json.dumps(r.body)
    stored = await v.bot.store.verification(asked.request_id)
    assert stored.code_hash and code not in (stored.code_hash + (stored.code_salt or ""))


async def test_five_wrong_codes_end_the_request_and_nothing_changes(launcher: Launcher) -> None:
    v = await launcher.start()
    asked = await ask(v, "code")
    code = SIX_DIGITS.search(card_text(code_card_to(v, LYNNE).card)).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    malformed = await type_code(v, asked, "12ab")
    assert "Type the 6 digits" in malformed.text  # not counted
    for left in (4, 3, 2, 1):
        reply = await type_code(v, asked, wrong)
        assert f"Attempts left: {left}." in reply.text
        assert code not in json.dumps(reply.card)
    last = await type_code(v, asked, wrong)
    assert "typed wrong 5 times" in last.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.CANCELLED
    after = await type_code(v, asked, code)  # the right code after the fifth wrong one: too late
    assert "Cancelled" in after.text and "The code was right" not in after.text
    assert writes_for(v.bot.sim, LYNNE_ID) == []
    trail = await events(v, asked.request_id)
    assert trail.count("verification_wrong_code") == 5 and "verification_failed" in trail


async def test_the_code_goes_by_mail_when_teams_cannot_reach_the_user_and_never_to_the_new_number(
    launcher: Launcher,
) -> None:
    v = await launcher.start(reacher="blocked_by_policy")
    outbox_before = len(v.bot.sim.outbox)
    asked = await ask(v, "code")
    assert "by e-mail" in asked.confirm.text
    mails = v.bot.sim.outbox[outbox_before:]
    assert len(mails) == 1 and mails[0]["to"] == [LYNNE.upn]
    body = mails[0]["html"] or mails[0]["text"] or ""
    code = SIX_DIGITS.search(re.sub(r"<[^>]+>", " ", body)).group(1)
    assert not [c for c in v.bot.sim.calls if "sms" in c.path.lower()]
    ok = await type_code(v, asked, code)
    assert "The code was right" in ok.text
    await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)


async def test_the_code_expires(launcher: Launcher) -> None:
    v = await launcher.start(SWEEP_INTERVAL_SECONDS="3600", VERIFICATION_CODE_MINUTES="5")
    asked = await ask(v, "code")
    code = SIX_DIGITS.search(card_text(code_card_to(v, LYNNE).card)).group(1)
    v.clock.advance(minutes=6)
    late = await type_code(v, asked, code)
    assert "Expired" in late.text
    await wait_state(v.bot, asked.request_id, RequestState.EXPIRED)
    assert writes_for(v.bot.sim, LYNNE_ID) == []


# ---------------------------------------------------------------------------------------------- only the person asked


@pytest.mark.parametrize("who", [ALEX, MEGAN, PATTI])
async def test_nobody_but_the_person_asked_can_answer_the_card(launcher: Launcher, who: Persona) -> None:
    v = await launcher.start()
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    before = await v.bot.store.get_request(asked.request_id)
    for verb in ("mfa.verify.yes", "mfa.verify.no"):
        reply = await answer(v, who, verb, lynne_card)
        assert refusal_text("verify.not_verifier") in reply.text
    after = await v.bot.store.get_request(asked.request_id)
    assert after.state is RequestState.AWAITING_VERIFICATION and after.revision == before.revision
    assert v.connector.updates(lynne_card.activity_id) == []  # Lynne's card is unchanged
    assert await v.bot.store.target_lock(LYNNE_ID, v.clock()) is None
    refused = [
        r
        for r in await v.bot.refusals()
        if r["actor_aad_id"] == who.aad and str(r["details"].get("verb")).startswith("mfa.verify")
    ]
    assert [r["details"]["reason"] for r in refused] == ["verify.not_verifier", "verify.not_verifier"]
    assert all(r["request_id"] == asked.request_id for r in refused)


async def test_the_person_asked_from_another_tenant_is_refused(launcher: Launcher) -> None:
    v = await launcher.start()
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    reply = await answer(
        v, LYNNE, "mfa.verify.yes", lynne_card, tenant="0badc0de-0000-4000-8000-000000000bad"
    )
    assert refusal_text("refusal.other_tenant") in reply.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.AWAITING_VERIFICATION


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"requestId": "../x", "rev": 2}, "refusal.bad_input"),
        ({"requestId": "{id}", "rev": "two"}, "refusal.bad_input"),
        ({"requestId": "{id}", "rev": True}, "refusal.bad_input"),
        ({"requestId": "0" * 32, "rev": 2}, "refusal.not_found"),
        ({"requestId": "{id}", "rev": 1}, "refusal.stale"),
    ],
)
async def test_forged_answers_are_refused_and_change_nothing(
    launcher: Launcher, data: dict[str, Any], expected: str
) -> None:
    v = await launcher.start()
    asked = await ask(v)
    forged = {k: (asked.request_id if val == "{id}" else val) for k, val in data.items()}
    reply = await v.bot.invoke(LYNNE, "mfa.verify.yes", {"verb": "mfa.verify.yes", **forged})
    assert texts.t("en", expected) in reply.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.AWAITING_VERIFICATION
    unknown = await v.bot.invoke(LYNNE, "mfa.verify.maybe", {"requestId": asked.request_id, "rev": 2})
    assert texts.t("en", "refusal.unknown_action") in unknown.text
    assert writes_for(v.bot.sim, LYNNE_ID) == []


async def test_a_yes_for_a_code_request_is_refused(launcher: Launcher) -> None:
    v = await launcher.start()
    asked = await ask(v, "code")
    req = await v.bot.store.get_request(asked.request_id)
    data = {"verb": "mfa.verify.yes", "requestId": req.id, "rev": req.revision}
    reply = await v.bot.invoke(LYNNE, "mfa.verify.yes", data)
    assert texts.t("en", "refusal.bad_input") in reply.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.AWAITING_VERIFICATION


async def test_someone_else_cannot_type_the_code_for_the_agents_request(launcher: Launcher) -> None:
    launcher.sim.tenant.groups[HELPDESK_GROUP].members.append(PRADEEP.aad)  # another agent
    v = await launcher.start()
    asked = await ask(v, "code")
    code = SIX_DIGITS.search(card_text(code_card_to(v, LYNNE).card)).group(1)
    reply = await type_code(v, asked, code, who=PRADEEP)
    assert texts.t("en", "refusal.not_found") in reply.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.AWAITING_VERIFICATION


# ---------------------------------------------------------------------------------------------- unreachable


@pytest.mark.parametrize(
    "reason",
    ["app_not_in_catalog", "blocked_by_policy", "permission_missing", "graph_error", "send_failed", None],
)
async def test_when_teams_cannot_reach_the_user_the_agent_is_told_why_and_gets_the_draft_back(
    launcher: Launcher, reason: str | None
) -> None:
    v = await launcher.start(reacher=reason if reason else False)
    asked = await ask(v)
    why = texts.t("en", f"verify.undelivered.{reason or 'not_configured'}")
    assert "Lynne Robbins could not be reached in Teams" in asked.confirm.text
    assert why in asked.confirm.text
    req = await v.bot.store.get_request(asked.request_id)
    assert req.state is RequestState.DRAFT
    assert writes_for(v.bot.sim, LYNNE_ID) == []
    assert "verification_undelivered" in await events(v, asked.request_id)
    # Edit offers the other ways; the form keeps the choice
    edit = await v.bot.invoke(ALEX, "mfa.edit", action_data(asked.confirm.card, "mfa.edit"))
    choices = next(el for el in _walk(edit.card) if el.get("id") == "verification")
    assert {c["value"] for c in choices["choices"]} == {"teams", "code", "manager"}


async def test_the_reasons_are_said_in_german_too(launcher: Launcher) -> None:
    v = await launcher.start(reacher="blocked_by_policy")
    bot = v.bot
    form = await bot.open_form(ALEX, locale="de-DE")
    review = await bot.review(
        ALEX,
        form,
        {"targetUserText": LYNNE.upn, "number": NEW_NUMBER, "action": "set", "verification": "teams"},
        locale="de-DE",
    )
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {}, locale="de-DE")
    assert texts.DE["verify.undelivered.blocked_by_policy"] in confirm.text


def _walk(card: Any) -> Any:
    from tests.bot.conftest import walk

    return walk(card)


# ---------------------------------------------------------------------------------------------- manager


async def test_the_manager_confirms_instead_of_the_user(launcher: Launcher) -> None:
    v = await launcher.start()
    v.bot.sim.tenant.users[LYNNE_ID].manager_id = PRADEEP.aad
    asked = await ask(v, "manager")
    assert "Waiting for Pradeep Gupta, the user's manager" in asked.confirm.text
    pradeep_card = card_to(v, PRADEEP)
    assert "Please confirm a service desk request for Lynne Robbins" in card_text(pradeep_card.card)
    # Lynne herself is not the one asked this time
    wrong = await answer(v, LYNNE, "mfa.verify.yes", pradeep_card)
    assert refusal_text("verify.not_verifier") in wrong.text
    yes = await answer(v, PRADEEP, "mfa.verify.yes", pradeep_card)
    assert "You confirmed this request" in yes.text
    done = await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)
    assert done.verified_by.aad_object_id == PRADEEP.aad


async def test_no_manager_means_no_manager_confirmation(launcher: Launcher) -> None:
    v = await launcher.start()
    v.bot.sim.tenant.users[LYNNE_ID].manager_id = None
    asked = await ask(v, "manager")
    assert "has no manager in the directory" in asked.confirm.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.DRAFT
    assert v.reacher.sent == []


async def test_the_requester_cannot_confirm_as_the_manager(launcher: Launcher) -> None:
    v = await launcher.start()
    v.bot.sim.tenant.users[LYNNE_ID].manager_id = ALEX.aad
    asked = await ask(v, "manager")
    assert "You are Lynne Robbins's manager" in asked.confirm.text
    assert (await v.bot.store.get_request(asked.request_id)).state is RequestState.DRAFT
    assert v.reacher.sent == []
    refused = [r for r in await v.bot.refusals() if r["details"]["reason"] == "verify.manager_is_requester"]
    assert len(refused) == 1


# ---------------------------------------------------------------------------------------------- in person


async def test_in_person_always_needs_an_approver_and_the_approval_card_shows_the_attestation(
    launcher: Launcher,
) -> None:
    v = await launcher.start(VERIFICATION_POLICY=WITH_IN_PERSON, APPROVAL_POLICY="never")
    asked = await ask(v, "in_person")
    # one line for the approval rule, with its reason (APPROVAL_POLICY=never is overruled)
    assert "Needs approval by the approver group after you confirm: the caller was verified in person." in (
        asked.review.text
    )
    assert "No approval needed" not in asked.review.text
    req = await v.bot.store.get_request(asked.request_id)
    assert req.state is RequestState.AWAITING_APPROVAL and req.verified_by.aad_object_id == ALEX.aad
    channel = await channel_card(v.bot, asked.request_id)
    assert "in person, ID checked: attested by Alex Wilber" in card_text(channel.card)
    assert v.reacher.sent == []
    assert writes_for(v.bot.sim, LYNNE_ID) == []
    ok = await click(v.bot, MEGAN, "mfa.approve", asked.request_id, req.revision, card=channel)
    assert ok.status == 200
    await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)
    assert "caller_attested" in await events(v, asked.request_id)


async def test_in_person_is_refused_where_the_policy_does_not_accept_it(launcher: Launcher) -> None:
    v = await launcher.start()  # the default policy: teams, code, manager
    form = await v.bot.open_form(ALEX)
    choices = next(el for el in _walk(form.card) if el.get("id") == "verification")
    assert [c["value"] for c in choices["choices"]] == ["teams", "code", "manager"]
    assert choices["value"] == "teams"
    reply = await v.bot.review(
        ALEX,
        form,
        {"targetUserText": LYNNE.upn, "number": NEW_NUMBER, "action": "set", "verification": "in_person"},
    )
    assert "For this user the caller must be verified by" in reply.text
    missing = await v.bot.review(ALEX, form, {"targetUserText": LYNNE.upn, "number": NEW_NUMBER})
    assert refusal_text("error.verification.required") in missing.text


# ---------------------------------------------------------------------------------------------- privileged targets


async def test_privileged_targets_accept_only_teams_or_manager_and_then_need_approval(
    launcher: Launcher,
) -> None:
    v = await launcher.start(APPROVAL_POLICY="never")
    v.bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # Alex may ask for privileged targets
    form = await v.bot.open_form(ALEX)
    refused = await v.bot.review(
        ALEX,
        form,
        {"targetUserText": ISAIAH.upn, "number": "+49 170 5550199", "action": "set", "verification": "code"},
    )
    assert "For this user the caller must be verified by: confirmation in Teams, manager's confirmation" in (
        refused.text
    )
    asked = await ask(v, "teams", target=ISAIAH.upn, number="+49 170 5550199")
    isaiah_card = card_to(v, ISAIAH)
    await answer(v, ISAIAH, "mfa.verify.yes", isaiah_card)
    req = await wait_state(v.bot, asked.request_id, RequestState.AWAITING_APPROVAL)
    assert req.approver_group == "privileged" and req.verified_by.aad_object_id == ISAIAH.aad
    await wait_card_text(v.connector, asked.form.activity_id, "Confirmed by Isaiah Langer at")
    channel = await channel_card(v.bot, asked.request_id)
    assert "confirmation in Teams: confirmed by Isaiah Langer" in card_text(channel.card)
    assert writes_for(v.bot.sim, ISAIAH.aad) == []
    await click(v.bot, PATTI, "mfa.approve", asked.request_id, req.revision, card=channel)
    await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)


# ---------------------------------------------------------------------------------------------- cancel


async def test_the_agent_cancels_while_waiting_and_the_users_card_says_so(launcher: Launcher) -> None:
    v = await launcher.start()
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    cancel = await v.bot.invoke(ALEX, "mfa.cancel", action_data(asked.confirm.card, "mfa.cancel"))
    assert "Cancelled by Alex Wilber" in cancel.text
    await wait_card_text(v.connector, lynne_card.activity_id, "no longer waits for your answer")
    late = await answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    assert "Your click changed nothing" in late.text
    assert writes_for(v.bot.sim, LYNNE_ID) == []


# ---------------------------------------------------------------------------------------------- the setting


def test_verification_policy_setting() -> None:
    assert VerificationPolicy.parse(None).accepted(False) == ("teams", "code", "manager")
    assert VerificationPolicy.parse(None).accepted(True) == ("teams", "manager")
    assert VerificationPolicy.parse(None).approval(True) and not VerificationPolicy.parse(None).approval(
        False
    )
    assert not VerificationPolicy.parse("none").enabled
    custom = VerificationPolicy.parse("ordinary=code,in_person;privileged=teams")
    assert custom.accepted(False) == ("code", "in_person") and not custom.approval(True)
    for bad in ("sometimes", "ordinary=sms", "ordinary=", "privileged=teams;privileged=code", "admins=teams"):
        with pytest.raises(SettingsError) as error:
            VerificationPolicy.parse(bad)
        assert str(error.value).startswith("VERIFICATION_POLICY") and "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------- at the same moment


async def test_two_yes_clicks_at_the_same_moment_verify_and_run_once(launcher: Launcher) -> None:
    import asyncio

    v = await launcher.start()
    asked = await ask(v)
    lynne_card = card_to(v, LYNNE)
    first, second = await asyncio.gather(
        answer(v, LYNNE, "mfa.verify.yes", lynne_card), answer(v, LYNNE, "mfa.verify.yes", lynne_card)
    )
    assert "You confirmed this request" in first.text or "You confirmed this request" in second.text
    await wait_state(v.bot, asked.request_id, RequestState.COMPLETED)
    assert (await events(v, asked.request_id)).count("caller_verified") == 1
    assert len(writes_for(v.bot.sim, LYNNE_ID)) == 1


async def test_wrong_codes_typed_at_the_same_moment_all_count(launcher: Launcher) -> None:
    import asyncio

    v = await launcher.start()
    asked = await ask(v, "code")
    code = SIX_DIGITS.search(card_text(code_card_to(v, LYNNE).card)).group(1)
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    await asyncio.gather(*(type_code(v, asked, wrong) for _ in range(5)))
    req = await wait_state(v.bot, asked.request_id, RequestState.CANCELLED)
    assert "typed wrong 5 times" in (req.decision_reason or "")
    assert (await events(v, asked.request_id)).count("verification_wrong_code") == 5
    late = await type_code(v, asked, code)
    assert "The code was right" not in late.text
    assert writes_for(v.bot.sim, LYNNE_ID) == []

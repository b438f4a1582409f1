"""Four-eyes approvals through the real HTTP endpoint: the bot (create_app, CloudAdapter) on loopback, the Graph
simulator behind it, a fake Bot Connector in front of it, and a real database (SQLite, and PostgreSQL when
TEST_DATABASE_URL is set).

The approvers' channel is registered the way it is in Teams (the bot is added to the configured conversation),
approvers and other people have talked to the bot 1:1 (so it has their conversation references), and every click
is an `adaptiveCard/action` invoke posted to /api/messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

import bot.desk.approvals
import bot.desk.recovery
from app import RUNTIME, create_app
from bot.persistence.models import RequestState
from bot.settings import BotSettings
from bot.views import texts
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
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
    walk,
)
from tests.bot.db_fixtures import Database
from tests.bot.fake_connector import FakeConnector, Recorded

APPROVERS_CONV = "19:approvers-channel@thread.tacv2"
DIEGO_UPN = "diego.siciliani@contoso.example"
NEW_NUMBER = "+49 170 5556666"
DECISION_EVENTS = ("approved", "rejected", "cancelled", "expired")


# ---------------------------------------------------------------------------------------------- harness


class Clock:
    """Real time plus an offset the test moves forward (expiry without waiting a day)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Instance:
    bot: BotHarness
    server: TestServer
    clock: Clock
    stopped: bool = False

    async def stop(self) -> None:
        """A graceful stop of this bot instance (background work finishes, the sweeper stops)."""
        if not self.stopped:
            self.stopped = True
            await self.bot.close()
            await self.server.close()


@dataclass
class Bots:
    sim: Any
    sim_env: dict[str, str]
    connector: FakeConnector
    database: Database
    tmp_path: Any
    instances: list[Instance] = field(default_factory=list)

    async def start(
        self, *, store: Any | None = None, clock: Clock | None = None, **overrides: str
    ) -> Instance:
        env = {
            "APPROVAL_POLICY": "always",
            "APPROVER_CONVERSATION_ID": APPROVERS_CONV,
            "TARGET_COOLDOWN_MINUTES": "0",
            "MAIL_SENDER": "servicedesk@contoso.example",
            **overrides,
        }
        settings = BotSettings.from_env(
            bot_environ(self.sim_env, str(self.tmp_path / f"data-{uuid.uuid4().hex[:6]}"), **env)
        )
        if store is None:
            store = await self.database.open()
        clock = clock or Clock()
        server = TestServer(create_app(settings, store=store, clock=clock), host="127.0.0.1")
        await server.start_server()
        instance = Instance(BotHarness(server, self.connector, settings, store, self.sim), server, clock)
        self.instances.append(instance)
        return instance


@pytest.fixture
async def bots(
    sim: Any, sim_env: dict[str, str], connector: FakeConnector, database: Database, tmp_path: Any
) -> AsyncIterator[Bots]:
    factory = Bots(sim, sim_env, connector, database, tmp_path)
    try:
        yield factory
    finally:
        for instance in reversed(factory.instances):
            await instance.stop()


@pytest.fixture
async def one(bots: Bots) -> Instance:
    instance = await bots.start()
    await register_approvers(instance.bot)
    return instance


async def register_approvers(bot: BotHarness, *people: Persona) -> None:
    """The bot is added to the approvers' channel; approvers (and others) have talked to the bot 1:1."""
    reply = await bot.conversation_update(MEGAN, conversation_id=APPROVERS_CONV, conversation_type="channel")
    assert reply.status in (200, 201), reply
    assert await bot.store.conversation_reference("approvers") is not None
    for person in people or (MEGAN, PATTI, PRADEEP):
        await say_hello(bot, person)


async def say_hello(bot: BotHarness, person: Persona) -> None:
    reply = await bot.message(person, "help")
    assert reply.status in (200, 201), reply


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, what: str = "") -> Any:
    """Poll `check` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


async def wait_state(bot: BotHarness, request_id: str, state: RequestState, timeout: float = 15.0) -> Any:
    async def check() -> Any:
        req = await bot.store.get_request(request_id)
        return req if req is not None and req.state is state else None

    return await eventually(check, timeout=timeout, what=f"request {request_id} to be {state.value}")


@dataclass
class Submitted:
    request_id: str
    rev: int
    form: Recorded  # the requester's card (request form → confirmation → awaiting), updated in place
    confirm: Reply


async def submit(
    bot: BotHarness,
    who: Persona = ALEX,
    *,
    target: str = DIEGO_UPN,
    number: str = NEW_NUMBER,
    notify: bool = False,
) -> Submitted:
    """The agent's path up to "sent for approval": set phone → review → confirm."""
    form = await bot.open_form(who)
    review = await bot.review(
        who,
        form,
        {"targetUserText": target, "number": number, "action": "set", "notify": str(notify).lower()},
    )
    data = action_data(review.card, "mfa.confirm")
    assert review.status == 200 and data is not None, review.text
    confirm = await bot.confirm(who, form.activity_id, review.card or {})
    assert confirm.status == 200, confirm
    req = await bot.store.get_request(data["requestId"])
    assert req is not None
    return Submitted(req.id, req.revision, form, confirm)


def posted_approval(records: list[Recorded], request_id: str, conversation_id: str) -> Recorded | None:
    for r in records:
        if r.kind in ("send", "reply") and r.conversation_id == conversation_id:
            data = action_data(r.card, "mfa.approve")
            if data and data.get("requestId") == request_id:
                return r
    return None


async def channel_card(bot: BotHarness, request_id: str) -> Recorded:
    return await bot.connector.wait_for(lambda recs: posted_approval(recs, request_id, APPROVERS_CONV))


async def dm_card(bot: BotHarness, request_id: str, person: Persona) -> Recorded:
    return await bot.connector.wait_for(
        lambda recs: posted_approval(recs, request_id, person.conversation_id)
    )


async def click(
    bot: BotHarness,
    who: Persona,
    verb: str,
    request_id: Any,
    rev: Any,
    *,
    card: Recorded | None = None,
    in_channel: bool = True,
    **extra: Any,
) -> Reply:
    data = {"verb": verb, "requestId": request_id, "rev": rev, **extra}
    where: dict[str, Any] = (
        {"conversation_id": APPROVERS_CONV, "conversation_type": "channel"} if in_channel else {}
    )
    return await bot.invoke(who, verb, data, reply_to_id=card.activity_id if card else None, **where)


def last_card(connector: FakeConnector, activity_id: str) -> dict[str, Any] | None:
    updates = connector.updates(activity_id)
    return updates[-1].card if updates else None


async def wait_card_text(connector: FakeConnector, activity_id: str, *needles: str) -> str:
    """Wait until the card at activity_id was last updated to a card that shows every needle."""

    def check(_: list[Recorded]) -> str | None:
        text = card_text(last_card(connector, activity_id))
        return text if all(n in text for n in needles) else None

    return await connector.wait_for(check, timeout=15.0)


def texts_to(connector: FakeConnector, person: Persona) -> list[str]:
    return [r.text for r in connector.messages(person.conversation_id) if r.text]


async def decision_events(bot: BotHarness, request_id: str) -> list[str]:
    return [e for e in await bot.audit_events(request_id) if e in DECISION_EVENTS]


def has_button(card: dict[str, Any] | None, verb: str) -> bool:
    return action_data(card, verb) is not None


def refusal(lang: str = "en") -> str:
    return texts.t(lang, "refusal.title")


def notice(reply: Reply) -> str:
    """The refusal said on top of the card the clicker keeps: the first element, in the attention colour."""
    body = (reply.card or {}).get("body") or []
    assert body, reply
    top = body[0]
    if top.get("type") != "TextBlock" or top.get("color") != "Attention":
        return ""
    return card_text({"body": [top]})


def is_refusal_card(reply: Reply) -> bool:
    """The plain refusal card (no request to show): its title says it is not possible."""
    body = (reply.card or {}).get("body") or []
    return bool(body) and card_text({"body": body[:1]}) == refusal()


# ---------------------------------------------------------------------------------------------- the lifecycle


async def test_request_needing_approval_reaches_channel_and_approvers_dms_and_waits(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot)
    req = await bot.store.get_request(sub.request_id)
    assert req.state is RequestState.AWAITING_APPROVAL
    assert req.expires_at is not None
    assert timedelta(hours=23.9) < req.expires_at - one.clock() <= timedelta(hours=24)
    # The requester sees "sent for approval" with a Cancel button, in place of the confirmation card.
    assert texts.t("en", "awaiting.title") in sub.confirm.text
    assert has_button(sub.confirm.card, "mfa.cancel")

    channel = await channel_card(bot, sub.request_id)
    assert "Diego Siciliani" in card_text(channel.card) and "***6666" in card_text(channel.card)
    assert "5556666" not in card_text(channel.card).replace(" ", "")
    # The card carries only the request id and revision (and the verb), never the facts.
    data = action_data(channel.card, "mfa.approve")
    assert data is not None and set(data) <= {"verb", "requestId", "rev"}
    assert data["rev"] == sub.rev
    # 1:1 copies go to the approvers who have talked to the bot, not to the requester or non-approvers.
    await dm_card(bot, sub.request_id, MEGAN)
    await dm_card(bot, sub.request_id, PATTI)
    roles = await eventually(lambda: _roles(bot, sub.request_id, 4), what="four card references")
    assert roles == ["requester", "approvers", "approver_dm", "approver_dm"]
    assert posted_approval(bot.connector.records, sub.request_id, ALEX.conversation_id) is None
    assert posted_approval(bot.connector.records, sub.request_id, PRADEEP.conversation_id) is None
    # The channel card asks Teams to refresh it for the approvers (their Teams user ids, not object ids).
    refreshed = await bot.connector.wait_for(
        lambda _: (last_card(bot.connector, channel.activity_id) or {}).get("refresh")
    )
    assert set(refreshed["userIds"]) == {MEGAN.teams_id, PATTI.teams_id}
    assert refreshed["action"]["verb"] == "mfa.refresh"
    # Nothing changed in Graph while the request waits.
    assert graph_writes(bot.sim) == []
    assert await bot.audit_events(sub.request_id) == ["requested", "draft_updated", "submitted_for_approval"]


async def test_approval_runs_the_change_once_and_every_card_and_the_requester_see_it(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot, notify=True)
    channel = await channel_card(bot, sub.request_id)
    megan_dm = await dm_card(bot, sub.request_id, MEGAN)
    patti_dm = await dm_card(bot, sub.request_id, PATTI)

    answer = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert answer.status == 200
    assert "Megan Bowen" in answer.text and not has_button(answer.card, "mfa.approve")

    done = await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    assert done.decided_by.aad_object_id == MEGAN.aad and done.outcome["outcome"] == "added"
    writes = graph_writes(bot.sim)
    assert len(writes) == 1 and DIEGO_ID in writes[0].path
    assert len(bot.sim.outbox) == 1  # the notification mail to Diego, once
    assert await decision_events(bot, sub.request_id) == ["approved"]

    # Every copy shows who decided, then the outcome, updated in place.
    done_title = texts.t("en", "outcome.added.title")
    for activity_id in (
        channel.activity_id,
        megan_dm.activity_id,
        patti_dm.activity_id,
        sub.form.activity_id,
    ):
        assert activity_id is not None
        await wait_card_text(bot.connector, activity_id, done_title)
        shown = [card_text(u.card) for u in bot.connector.updates(activity_id)]
        decided_at = next(i for i, text in enumerate(shown) if "Approved by Megan Bowen" in text)
        assert decided_at < len(shown) - 1 and done_title in shown[-1]
        assert not has_button(last_card(bot.connector, activity_id), "mfa.approve")
    # The requester is told, in their own chat: who approved, then the result.
    told = await bot.connector.wait_for(
        lambda _: [t for t in texts_to(bot.connector, ALEX) if "Megan Bowen approved" in t]
    )
    assert "Diego Siciliani" in told[0]
    # Later clicks change nothing.
    again = await click(bot, PATTI, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert refusal() in notice(again) and "already approved" in notice(again)
    # Patti keeps the card: the decision and the facts, without buttons
    assert "Approved by Megan Bowen" in again.text and "Diego Siciliani" in again.text
    assert not has_button(again.card, "mfa.approve") and not has_button(again.card, "mfa.reject")
    assert len(graph_writes(bot.sim)) == 1 and len(bot.sim.outbox) == 1


_MARKDOWN_TOKENS = ("[", "](", "**", "<", ">", "![", "_")


def _shown(text: str) -> str:
    """What a markdown renderer shows of a text: every backslash escape replaced by its character."""
    return re.sub(r"\\(.)", r"\1", text)


async def test_reject_reason_and_names_reach_the_requester_as_text_without_links_or_markup(
    one: Instance,
) -> None:
    bot = one.bot
    bot.sim.tenant.users[DIEGO_ID].display_name = "Diego **Boss** <b>x</b> [Sign in](https://evil.example/a)"
    approver = dataclasses.replace(PATTI, name="Patti [IT Support](http://evil.example/b)")
    reason = "[Re-verify your MFA](https://evil.example) at www.evil.com or evil.com/login"
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    await click(bot, approver, "mfa.reject", sub.request_id, sub.rev, card=channel, reason=reason)
    await wait_state(bot, sub.request_id, RequestState.REJECTED)
    told = (
        await bot.connector.wait_for(lambda _: [t for t in texts_to(bot.connector, ALEX) if "rejected" in t])
    )[0]

    for token in _MARKDOWN_TOKENS:  # no link, image, emphasis or HTML tag can form: each is escaped
        assert not re.search(r"(?<!\\)" + re.escape(token), told), (token, told)
    shown = _shown(told)
    # Every outside string is there, readable, with its web addresses defanged so no client links them.
    assert "Diego **Boss** <b>x</b> [Sign in](https[:]//evil[.]example/a)" in shown
    assert "Patti [IT Support](http[:]//evil[.]example/b)" in shown
    assert "[Re-verify your MFA](https[:]//evil[.]example) at www[.]evil[.]com or evil[.]com/login" in shown
    assert "diego.siciliani@contoso.example" in shown
    for address in ("://", "evil.example", "www.evil.com", "evil.com"):
        assert address not in shown
    assert graph_writes(bot.sim) == []


async def test_reject_with_reason_tells_the_requester_and_changes_nothing(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    answer = await click(
        bot,
        PATTI,
        "mfa.reject",
        sub.request_id,
        sub.rev,
        card=channel,
        reason="Ticket does not match the user",
    )
    assert "Rejected by Patti Fernandez" in answer.text and "Ticket does not match the user" in answer.text

    req = await wait_state(bot, sub.request_id, RequestState.REJECTED)
    assert req.decision_reason == "Ticket does not match the user"
    told = await bot.connector.wait_for(
        lambda _: [t for t in texts_to(bot.connector, ALEX) if "Patti Fernandez rejected" in t]
    )
    assert "Ticket does not match the user" in told[0]
    for activity_id in (channel.activity_id, sub.form.activity_id):
        await wait_card_text(
            bot.connector, activity_id, "Rejected by Patti Fernandez", "Ticket does not match"
        )
    after = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "already rejected" in notice(after)
    assert "Rejected by Patti Fernandez" in after.text and not has_button(after.card, "mfa.approve")
    assert graph_writes(bot.sim) == [] and bot.sim.outbox == []
    assert await decision_events(bot, sub.request_id) == ["rejected"]


async def test_requester_cancels_while_waiting_and_approvers_cards_follow(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    cancel = action_data(sub.confirm.card, "mfa.cancel")
    assert cancel is not None
    # An approver cannot cancel somebody else's request.
    megan = await bot.invoke(
        MEGAN, "mfa.cancel", cancel, conversation_id=APPROVERS_CONV, conversation_type="channel"
    )
    assert "Only the person who asked" in notice(megan)
    # Megan keeps the approval card she may act on
    assert has_button(megan.card, "mfa.approve") and "Diego Siciliani" in megan.text
    assert (await bot.store.get_request(sub.request_id)).state is RequestState.AWAITING_APPROVAL

    answer = await bot.invoke(ALEX, "mfa.cancel", cancel, reply_to_id=sub.form.activity_id)
    assert "Cancelled by Alex Wilber" in answer.text
    await wait_state(bot, sub.request_id, RequestState.CANCELLED)
    await wait_card_text(bot.connector, channel.activity_id, "Cancelled by Alex Wilber")
    late = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert refusal() in notice(late) and "cancelled" in notice(late)
    assert "Cancelled by Alex Wilber" in late.text and not has_button(late.card, "mfa.approve")
    assert graph_writes(bot.sim) == []
    assert await decision_events(bot, sub.request_id) == ["cancelled"]


async def test_no_approvers_channel_refuses_to_submit_and_keeps_the_draft(bots: Bots) -> None:
    instance = await bots.start()
    bot = instance.bot
    await say_hello(bot, MEGAN)
    sub = await submit(bot)
    assert "No approvers' channel is set up" in sub.confirm.text
    req = await bot.store.get_request(sub.request_id)
    assert req.state is RequestState.DRAFT
    assert bot.connector.messages(APPROVERS_CONV) == []
    assert posted_approval(bot.connector.records, sub.request_id, MEGAN.conversation_id) is None


# ---------------------------------------------------------------------------------------------- refused clicks


async def test_requester_who_is_an_approver_cannot_approve_their_own_request(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot, MEGAN)  # Megan is in Helpdesk and in MFA Approvers
    channel = await channel_card(bot, sub.request_id)
    # Her own request does not land in her 1:1 chat as something to approve.
    await dm_card(bot, sub.request_id, PATTI)
    assert posted_approval(bot.connector.records, sub.request_id, MEGAN.conversation_id) is None
    answer = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert refusal() in notice(answer) and "You asked for this change" in notice(answer)
    # her view of the request she asked for: the facts and her Cancel, no Approve
    assert "Diego Siciliani" in answer.text and not has_button(answer.card, "mfa.approve")
    await assert_unchanged(bot, sub)


async def test_target_cannot_approve_a_change_of_their_own_account(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot, target=MEGAN.upn)
    channel = await channel_card(bot, sub.request_id)
    answer = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "about your own account" in notice(answer)
    assert "Megan Bowen" in answer.text and not has_button(answer.card, "mfa.approve")
    await assert_unchanged(bot, sub)


async def test_non_approver_cannot_approve_or_reject(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    for verb in ("mfa.approve", "mfa.reject"):
        answer = await click(bot, PRADEEP, verb, sub.request_id, sub.rev, card=channel)
        assert refusal() in notice(answer) and "Only members of the approver group" in notice(answer)
        # the approval card stays, read-only for him
        assert "Diego Siciliani" in answer.text and "***6666" in answer.text
        assert not has_button(answer.card, "mfa.approve") and not has_button(answer.card, "mfa.reject")
    await assert_unchanged(bot, sub)
    refused = [e for e in await bot.store.request_audit(sub.request_id) if e.event == "approval_refused"]
    assert len(refused) == 2 and all(e.actor_aad_id == PRADEEP.aad for e in refused)


async def test_a_refused_approver_keeps_the_approval_card_and_only_the_refusal_is_written(
    one: Instance,
) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    await eventually(lambda: _roles(bot, sub.request_id, 4), what="the 1:1 copies to be out")
    rows_before = await bot.all_audit()
    refs_before = await bot.store.card_refs(sub.request_id)
    answer = await click(bot, PRADEEP, "mfa.approve", sub.request_id, sub.rev, card=channel)
    # on top, in the attention colour: why not; below it the same approval card the channel shows
    assert answer.card is not None
    top = answer.card["body"][0]
    assert top["type"] == "TextBlock" and top["color"] == "Attention"
    assert notice(answer) == texts.t(
        "en",
        "notice.refused",
        reason=texts.t("en", "refusal.not_approver", group=texts.t("en", "approval.group.approver")),
    )
    below = card_text({"body": answer.card["body"][1:]})
    assert texts.t("en", "approval.title") in below
    for fact in ("Diego Siciliani", DIEGO_UPN, "***6666", "Alex Wilber"):
        assert fact in below, fact
    assert not has_button(answer.card, "mfa.approve") and not has_button(answer.card, "mfa.reject")
    # the database: one audited refusal and nothing else
    rows_after = await bot.all_audit()
    added = rows_after[len(rows_before) :]
    assert [r["event"] for r in added] == ["approval_refused"]
    assert added[0]["actor_aad_id"] == PRADEEP.aad
    assert await bot.store.card_refs(sub.request_id) == refs_before
    await assert_unchanged(bot, sub)


async def test_privileged_target_needs_the_privileged_group(one: Instance) -> None:
    bot = one.bot
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # Alex may ask for privileged targets
    sub = await submit(bot, target=ISAIAH.upn, number="+49 170 5550199")
    req = await bot.store.get_request(sub.request_id)
    assert req.target_privileged and req.approver_group == "privileged"
    channel = await channel_card(bot, sub.request_id)
    # Only the privileged approver gets the 1:1 copy.
    await dm_card(bot, sub.request_id, PATTI)
    assert posted_approval(bot.connector.records, sub.request_id, MEGAN.conversation_id) is None
    answer = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "Only members of the privileged group" in notice(answer)
    assert "Isaiah Langer" in answer.text and not has_button(answer.card, "mfa.approve")
    await assert_unchanged(bot, sub)
    ok = await click(bot, PATTI, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "Patti Fernandez" in ok.text
    await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    assert len(graph_writes(bot.sim)) == 1


@pytest.mark.parametrize(
    ("request_id", "rev", "expected"),
    [
        ("0" * 32, 3, "does not exist"),
        ("../../etc/passwd", 3, "could not read that card action"),
        (12345, 3, "could not read that card action"),
        (None, 3, "could not read that card action"),
        ("{id}", None, "could not read that card action"),
        ("{id}", "three", "could not read that card action"),
        ("{id}", True, "could not read that card action"),
        ("{id}", 1, "out of date"),
        ("{id}", 99, "out of date"),
    ],
)
async def test_forged_or_stale_clicks_are_refused_and_change_nothing(
    one: Instance, request_id: Any, rev: Any, expected: str
) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    if request_id == "{id}":
        request_id = sub.request_id
    answer = await click(bot, MEGAN, "mfa.approve", request_id, rev, card=channel)
    assert answer.status == 200
    if request_id == sub.request_id and isinstance(rev, int) and not isinstance(rev, bool):
        # a stale click on a real request: Megan keeps its current approval card, actionable at the current
        # revision, with the reason on top
        assert refusal() in notice(answer) and expected in notice(answer)
        assert (action_data(answer.card, "mfa.approve") or {}).get("rev") == sub.rev
        assert "Diego Siciliani" in answer.text
    else:
        assert is_refusal_card(answer) and expected in answer.text
    await assert_unchanged(bot, sub)


async def test_a_huge_or_wrongly_typed_reason_is_refused(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    huge = await click(bot, MEGAN, "mfa.reject", sub.request_id, sub.rev, card=channel, reason="x" * 100_000)
    assert huge.status == 200 and "too long" in notice(huge)
    assert has_button(huge.card, "mfa.reject")  # she can shorten the reason and reject again
    typed = await click(bot, MEGAN, "mfa.reject", sub.request_id, sub.rev, card=channel, reason={"a": 1})
    assert typed.status == 200 and "could not read" in notice(typed)
    await assert_unchanged(bot, sub)


async def test_repeated_click_gets_the_same_answer_and_runs_nothing_again(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    first = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    retry = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)  # Teams retries
    assert "Megan Bowen" in first.text and "Megan Bowen" in retry.text
    assert refusal() not in retry.text
    await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    third = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert refusal() not in third.text
    reject_after = await click(bot, MEGAN, "mfa.reject", sub.request_id, sub.rev, card=channel)
    assert "already approved" in notice(reject_after)
    assert len(graph_writes(bot.sim)) == 1
    assert await decision_events(bot, sub.request_id) == ["approved"]


async def test_concurrent_clicks_by_several_approvers_decide_once(one: Instance) -> None:
    bot = one.bot
    sub = await submit(bot, notify=True)
    channel = await channel_card(bot, sub.request_id)
    clicks = [
        click(bot, who, verb, sub.request_id, sub.rev, card=channel)
        for who, verb in [(MEGAN, "mfa.approve"), (PATTI, "mfa.approve"), (MEGAN, "mfa.approve")] * 3
        + [(PATTI, "mfa.reject")]
    ]
    answers = await asyncio.gather(*clicks)
    assert all(a.status == 200 for a in answers)
    req = await eventually(lambda: _final(bot, sub.request_id), what="the request to reach a final state")
    if req.state is RequestState.REJECTED:
        assert graph_writes(bot.sim) == [] and bot.sim.outbox == []
    else:
        assert req.state is RequestState.COMPLETED
        assert len(graph_writes(bot.sim)) == 1 and len(bot.sim.outbox) == 1
    assert len(await decision_events(bot, sub.request_id)) == 1
    assert (await bot.audit_events(sub.request_id)).count("execution_started") <= 1
    winner = req.decided_by.name
    assert any(winner in a.text and refusal() not in a.text for a in answers)


async def _roles(bot: BotHarness, request_id: str, count: int) -> list[str] | None:
    roles = [r.role for r in await bot.store.card_refs(request_id)]
    return roles if len(roles) >= count else None


async def _final(bot: BotHarness, request_id: str) -> Any:
    req = await bot.store.get_request(request_id)
    return req if req is not None and req.state in (RequestState.COMPLETED, RequestState.REJECTED) else None


async def assert_unchanged(bot: BotHarness, sub: Submitted) -> None:
    req = await bot.store.get_request(sub.request_id)
    assert req.state is RequestState.AWAITING_APPROVAL and req.revision == sub.rev
    assert req.decided_by is None
    assert graph_writes(bot.sim) == []
    assert await decision_events(bot, sub.request_id) == []


# ---------------------------------------------------------------------------------------------- refresh views


async def test_refresh_gives_approvers_buttons_the_requester_cancel_and_others_a_read_only_view(
    one: Instance,
) -> None:
    bot = one.bot
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    megan = await click(bot, MEGAN, "mfa.refresh", sub.request_id, sub.rev, card=channel)
    assert has_button(megan.card, "mfa.approve") and has_button(megan.card, "mfa.reject")
    pradeep = await click(bot, PRADEEP, "mfa.refresh", sub.request_id, sub.rev, card=channel)
    assert not has_button(pradeep.card, "mfa.approve") and "Diego Siciliani" in pradeep.text
    assert "Only members of the approver group can decide" in pradeep.text
    alex = await click(bot, ALEX, "mfa.refresh", sub.request_id, sub.rev, card=channel)
    assert has_button(alex.card, "mfa.cancel") and not has_button(alex.card, "mfa.approve")
    await assert_unchanged(bot, sub)

    await click(bot, PATTI, "mfa.approve", sub.request_id, sub.rev, card=channel)
    await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    after = await click(bot, MEGAN, "mfa.refresh", sub.request_id, sub.rev, card=channel)
    assert not has_button(after.card, "mfa.approve") and "Patti Fernandez" in after.text
    assert not any(el.get("type") == "Input.Text" for el in walk(after.card))


# ---------------------------------------------------------------------------------------------- expiry


async def test_sweeper_expires_a_request_nobody_decided_and_tells_everyone(bots: Bots) -> None:
    instance = await bots.start(SWEEP_INTERVAL_SECONDS="0.05", APPROVAL_EXPIRY_HOURS="2")
    bot = instance.bot
    await register_approvers(bot)
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    req = await bot.store.get_request(sub.request_id)
    assert timedelta(hours=1.9) < req.expires_at - instance.clock() <= timedelta(hours=2)

    instance.clock.advance(hours=1, minutes=50)
    sweeper = instance.server.app[RUNTIME].sweeper
    rounds = sweeper.rounds
    await eventually(lambda: _at_least(sweeper, rounds + 3), what="three more sweeper rounds")  # not due yet
    assert (await bot.store.get_request(sub.request_id)).state is RequestState.AWAITING_APPROVAL

    instance.clock.advance(minutes=11)
    await wait_state(bot, sub.request_id, RequestState.EXPIRED)
    for activity_id in (channel.activity_id, sub.form.activity_id):
        await wait_card_text(bot.connector, activity_id, texts.t("en", "decision.title.expired"))
    await bot.connector.wait_for(lambda _: [t for t in texts_to(bot.connector, ALEX) if "expired" in t])
    late = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert refusal() in notice(late) and "Expired" in notice(late)
    assert "Diego Siciliani" in late.text and not has_button(late.card, "mfa.approve")
    assert graph_writes(bot.sim) == []
    assert await decision_events(bot, sub.request_id) == ["expired"]


async def test_click_after_expiry_is_refused_even_before_the_sweeper_runs(bots: Bots) -> None:
    instance = await bots.start(SWEEP_INTERVAL_SECONDS="3600")
    bot = instance.bot
    await register_approvers(bot)
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    instance.clock.advance(hours=25)
    answer = await click(bot, MEGAN, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert refusal() in notice(answer) and "Expired" in notice(answer)
    assert "Diego Siciliani" in answer.text and not has_button(answer.card, "mfa.approve")
    await wait_state(bot, sub.request_id, RequestState.EXPIRED)
    assert graph_writes(bot.sim) == []
    assert await decision_events(bot, sub.request_id) == ["expired"]


# ---------------------------------------------------------------------------------------------- settings


async def test_manager_counts_as_approver_when_manager_approval_is_on(bots: Bots) -> None:
    instance = await bots.start(MANAGER_APPROVAL="true")
    bot = instance.bot
    bot.sim.tenant.users[LYNNE_ID].manager_id = PRADEEP.aad  # Pradeep is in no approver group
    await register_approvers(bot)
    sub = await submit(bot, target="lynne.robbins@contoso.example", number="+49 170 4443333")
    channel = await channel_card(bot, sub.request_id)
    await dm_card(bot, sub.request_id, PRADEEP)  # the manager gets the 1:1 copy too
    answer = await click(bot, PRADEEP, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "Pradeep Gupta" in answer.text and refusal() not in answer.text
    await wait_state(bot, sub.request_id, RequestState.COMPLETED)
    assert len(graph_writes(bot.sim)) == 1


async def test_manager_is_not_an_approver_when_manager_approval_is_off(one: Instance) -> None:
    bot = one.bot
    bot.sim.tenant.users[LYNNE_ID].manager_id = PRADEEP.aad
    sub = await submit(bot, target="lynne.robbins@contoso.example", number="+49 170 4443333")
    channel = await channel_card(bot, sub.request_id)
    answer = await click(bot, PRADEEP, "mfa.approve", sub.request_id, sub.rev, card=channel)
    assert "Only members of the approver group" in notice(answer)
    assert not has_button(answer.card, "mfa.approve")
    await assert_unchanged(bot, sub)


async def test_no_direct_messages_when_approver_dm_is_off(bots: Bots) -> None:
    instance = await bots.start(APPROVER_DM="false")
    bot = instance.bot
    await register_approvers(bot)
    sub = await submit(bot)
    channel = await channel_card(bot, sub.request_id)
    # The channel card still learns the approvers' Teams ids for the user-specific view.
    await bot.connector.wait_for(
        lambda _: (last_card(bot.connector, channel.activity_id) or {}).get("refresh")
    )
    assert posted_approval(bot.connector.records, sub.request_id, MEGAN.conversation_id) is None
    assert posted_approval(bot.connector.records, sub.request_id, PATTI.conversation_id) is None
    assert {r.role for r in await bot.store.card_refs(sub.request_id)} == {
        "requester",
        "approvers",
    }


# ---------------------------------------------------------------------------------------------- the sweeper itself


class _FlakyRecovery:
    """Expiry and crash recovery whose database fails on the first round (passed in; nothing is patched)."""

    def __init__(self) -> None:
        self.calls = 0

    async def expire_due(self) -> int:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database restarting")
        return 1

    async def recover_stuck(self) -> tuple[int, int]:
        if self.calls == 1:
            raise ConnectionError("database restarting")
        return 0, 0


async def test_sweeper_survives_a_failed_round_and_stops_promptly() -> None:
    from bot.desk.sweeper import Sweeper

    recovery = _FlakyRecovery()
    sweeper = Sweeper(recovery, interval_seconds=0.01)
    sweeper.start()
    try:
        await eventually(lambda: _at_least(sweeper, 3), timeout=30.0, what="three sweeper rounds")
    finally:
        await sweeper.stop()
    assert not sweeper.running
    assert sweeper.expired >= 2  # rounds after the failure expired what was due
    calls = recovery.calls
    await asyncio.sleep(0.05)
    assert recovery.calls == calls  # stopped means stopped

    # Promptly: a sweeper waiting out an hour-long interval stops at once, it does not finish the wait. The
    # 30 s bound only turns a stop that waited the hour into a failure instead of a hang.
    idle = Sweeper(_FlakyRecovery(), interval_seconds=3600)
    idle.start()
    await eventually(lambda: _at_least(idle, 1), timeout=30.0, what="the first sweeper round")
    stopping = asyncio.ensure_future(idle.stop())
    try:
        done, _ = await asyncio.wait({stopping}, timeout=30.0)  # not wait_for: a timeout must not cancel it
        assert stopping in done, "stop() waited for the interval to end"
    finally:
        stopping.cancel()
    assert not idle.running and idle.rounds == 1


async def _at_least(sweeper: Any, rounds: int) -> bool:
    return sweeper.rounds >= rounds


def test_sweeper_refuses_a_non_positive_interval() -> None:
    from bot.desk.sweeper import Sweeper

    with pytest.raises(ValueError):
        Sweeper(_FlakyRecovery(), interval_seconds=0)


def test_every_text_the_approvals_use_exists_in_english_and_german() -> None:
    """bot/views/texts.py is the one source of the approvals' words: each key they name is there in both languages."""
    source = "\n".join(
        Path(module.__file__).read_text(encoding="utf-8")
        for module in (bot.desk.approvals, bot.desk.recovery)
    )
    keys = set(re.findall(r'"((?:approval|refusal|execution|outcome_name)\.[a-z_.]+)"', source))
    assert {"approval.no_approvers_channel", "approval.requester.expired", "refusal.title"} <= keys
    assert {"approval.requester.interrupted", "execution.interrupted.body"} <= keys
    for key in sorted(keys):
        assert texts.has("en", key) and texts.has("de", key), key
        assert texts.t("de", key) != texts.t("en", key), key

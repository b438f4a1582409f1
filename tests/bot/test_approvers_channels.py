"""Where approval cards go: `register approvals` by an ordinary approver moves only the ordinary requests; the
conversation for requests a privileged approver must decide is set only by a privileged approver (or by the
installation in the configured APPROVER_CONVERSATION_ID). Through the real HTTP endpoint.
"""

from __future__ import annotations

from bot.persistence.models import RequestState
from bot.views import texts
from tests.bot.conftest import ALEX, ISAIAH, MEGAN, PATTI, PRADEEP, PRIVILEGED_GROUP, BotHarness, Persona
from tests.bot.test_approvals import (
    Bots,
    bots,  # noqa: F401  (fixture)
    posted_approval,
    say_hello,
    submit,
)

PATTI_CHAT = "19:privileged-approvers@thread.v2"
MEGAN_CHAT = "19:megans-own-chat@thread.v2"
PRIVILEGED_NUMBER = "+49 170 5550199"


async def register(bot: BotHarness, who: Persona, chat: str) -> str:
    """`@bot register approvals` in a group chat; returns the bot's answer there."""
    mark = bot.connector.mark()
    reply = await bot.message(
        who, "<at>MFA phone bot</at> register approvals", conversation_id=chat, conversation_type="groupChat"
    )
    assert reply.status in (200, 201), reply
    return str(
        await bot.connector.wait_for(
            lambda rs: next((r.text for r in rs if r.text and r.conversation_id == chat), None), since=mark
        )
    )


async def registrations(bot: BotHarness) -> list[tuple[str | None, object]]:
    return [
        (r["actor_aad_id"], (r["details"] or {}).get("channels"))
        for r in await bot.all_audit()
        if r["event"] == "approvers_registered"
    ]


async def card_in(bot: BotHarness, request_id: str, chat: str) -> bool:
    """Wait until the approval card of `request_id` has been posted in `chat`."""
    return bool(await bot.connector.wait_for(lambda recs: posted_approval(recs, request_id, chat)))


async def test_an_ordinary_approver_cannot_move_where_privileged_approval_cards_go(bots: Bots) -> None:  # noqa: F811
    bot = (await bots.start()).bot
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)  # Alex may ask for privileged targets
    assert await register(bot, PATTI, PATTI_CHAT) == texts.t("en", "approvers.registered")
    answer = await register(bot, MEGAN, MEGAN_CHAT)
    assert answer == texts.t("en", "approvers.registered_ordinary")
    assert await registrations(bot) == [
        (PATTI.aad, ["approvers", "approvers:privileged"]),
        (MEGAN.aad, ["approvers"]),
    ]
    for person in (MEGAN, PATTI):
        await say_hello(bot, person)

    privileged = await submit(bot, target=ISAIAH.upn, number=PRIVILEGED_NUMBER)
    req = await bot.store.get_request(privileged.request_id)
    assert req is not None and req.approver_group == "privileged"
    assert await card_in(bot, privileged.request_id, PATTI_CHAT)
    assert posted_approval(bot.connector.records, privileged.request_id, MEGAN_CHAT) is None

    ordinary = await submit(bot)  # Diego: the approver group decides; Megan's chat gets it now
    assert await card_in(bot, ordinary.request_id, MEGAN_CHAT)
    assert posted_approval(bot.connector.records, ordinary.request_id, PATTI_CHAT) is None


async def test_a_privileged_approver_registers_the_conversation_for_every_request(bots: Bots) -> None:  # noqa: F811
    bot = (await bots.start()).bot
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    answer = await register(bot, MEGAN, MEGAN_CHAT)
    assert answer == texts.t("en", "approvers.registered_ordinary_no_privileged")
    # nobody privileged has registered a conversation: a privileged request is not sent anywhere
    refused = await submit(bot, target=ISAIAH.upn, number=PRIVILEGED_NUMBER)
    assert texts.t("en", "approval.no_privileged_approvers_channel") in refused.confirm.text
    req = await bot.store.get_request(refused.request_id)
    assert req is not None and req.state is RequestState.DRAFT
    assert posted_approval(bot.connector.records, refused.request_id, MEGAN_CHAT) is None
    unavailable = [r for r in await bot.all_audit() if r["event"] == "approval_unavailable"]
    assert (unavailable[-1]["details"] or {}).get("channel") == "approvers:privileged"

    # a non-approver's attempt changes nothing and is audited, as before
    assert await register(bot, PRADEEP, PATTI_CHAT) == texts.t("en", "approvers.not_allowed")
    assert await bot.store.conversation_reference("approvers:privileged") is None
    assert [r["actor_aad_id"] for r in await bot.refusals()][-1:] == [PRADEEP.aad]

    assert await register(bot, PATTI, PATTI_CHAT) == texts.t("en", "approvers.registered")
    privileged = await submit(bot, target=ISAIAH.upn, number=PRIVILEGED_NUMBER)
    assert await card_in(bot, privileged.request_id, PATTI_CHAT)
    ordinary = await submit(bot)
    assert await card_in(bot, ordinary.request_id, PATTI_CHAT)  # hers replaced Megan's for every request
    assert posted_approval(bot.connector.records, ordinary.request_id, MEGAN_CHAT) is None


async def test_an_approvers_conversation_of_unknown_registrant_gets_no_privileged_cards(bots: Bots) -> None:  # noqa: F811
    """A database from before the split holds only "approvers", registered by someone unknown: ordinary requests
    still go there, privileged ones wait for a privileged approver's registration."""
    bot = (await bots.start()).bot
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(ALEX.aad)
    old = {
        "conversation": {"id": MEGAN_CHAT, "conversationType": "groupChat"},
        "serviceUrl": bot.connector.service_url,
        "channelId": "msteams",
        "bot": {"id": "28:mfa-phone-bot", "name": "MFA phone bot"},
    }
    await bot.store.save_conversation_reference("approvers", old)
    ordinary = await submit(bot)
    assert await card_in(bot, ordinary.request_id, MEGAN_CHAT)
    privileged = await submit(bot, target=ISAIAH.upn, number=PRIVILEGED_NUMBER)
    assert texts.t("en", "approval.no_privileged_approvers_channel") in privileged.confirm.text
    assert posted_approval(bot.connector.records, privileged.request_id, MEGAN_CHAT) is None

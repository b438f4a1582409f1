"""How many Graph round trips, one after another, the person waits for: Review (click to confirmation card) and
Confirm (click to outcome card), counted from the simulator's record of when each request arrived and was answered
(tests/benchmarks/round_trips.py), through the bot's HTTP endpoint. Requests in flight together are one round
trip; no duration is compared with a budget."""

from __future__ import annotations

from tests.benchmarks.round_trips import (
    LATENCY_MS,
    MAIL_SENDER,
    PICKED_TARGET,
    VARIANTS,
    critical_path,
    measure,
    warm_up,
)
from tests.bot.conftest import BotHarness, MakeBot

FACT_READS = ("checkMemberGroups", "transitiveMemberOf", "roleAssignments", "eligibilityScheduleInstances")


async def _bot(make_bot: MakeBot) -> BotHarness:
    bot = await make_bot(MAIL_SENDER=MAIL_SENDER, TARGET_COOLDOWN_MINUTES="0")
    bot.sim.behaviour.update({"latency_ms": LATENCY_MS, "batch_latency_ms": LATENCY_MS})
    await warm_up(bot)  # tenant-wide caches filled, as on a bot that has been running
    return bot


async def test_review_of_a_picked_user_is_one_round_trip_and_of_a_typed_upn_two(make_bot: MakeBot) -> None:
    bot = await _bot(make_bot)
    picked = await measure(bot, "picker", VARIANTS["picker"], notify=False)
    typed = await measure(bot, "upn", VARIANTS["upn"], notify=False)
    # the object id from the picker is all the rules and the phones need: they are read with the user
    assert picked.review.depth == 1, picked.review.describe()
    # a UPN is resolved first; then the rules and the phones together
    assert typed.review.depth == 2, typed.review.describe()
    assert typed.review.waves[0] == ["GET /users/{id}"], typed.review.describe()


async def test_confirm_reads_the_checks_and_the_user_together_then_writes(make_bot: MakeBot) -> None:
    bot = await _bot(make_bot)
    since = len(bot.sim.calls)
    measured = await measure(bot, "picker", VARIANTS["picker"], notify=False)
    assert measured.outcome == "added"
    assert measured.confirm.depth == 2, measured.confirm.describe()
    first, second = measured.confirm.waves
    assert second == ["POST /users/{id}/authentication/phoneMethods"], measured.confirm.describe()
    assert "GET /users/{id}/authentication/phoneMethods" in first
    assert all(any(name in call for call in first) for name in FACT_READS), first
    # the facts decide the change: the write went out only after every one of them had been answered
    calls = bot.sim.calls[since:]
    write = next(
        c
        for c in calls
        if c.method == "POST" and c.path.endswith(f"{PICKED_TARGET}/authentication/phoneMethods")
    )
    facts = [c for c in calls if any(name in c.path for name in FACT_READS) and c.ended <= write.started]
    assert {name for name in FACT_READS if any(name in c.path for c in facts)} == set(FACT_READS)
    assert critical_path(calls, write.started, write.ended).depth == 1


async def test_confirm_with_the_notification_mail_sends_it_with_the_write_in_one_batch(
    make_bot: MakeBot,
) -> None:
    bot = await _bot(make_bot)
    since = len(bot.sim.calls)
    mails = len(bot.sim.outbox)
    measured = await measure(bot, "upn", VARIANTS["upn"], notify=True)
    assert measured.outcome == "updated"
    # the card says whether the mail went out; it goes in the write's $batch, so the card waits for no more
    # round trips than without it
    assert measured.confirm.depth == 2, measured.confirm.describe()
    assert measured.confirm.waves[1] == ["POST /$batch"], measured.confirm.describe()
    batch = next(c for c in bot.sim.calls[since:] if c.path.endswith("/$batch") and not c.in_batch)
    write, mail = batch.json["requests"]
    assert write["method"] == "PATCH" and "/authentication/phoneMethods/" in write["url"]
    # Graph sends the mail only once the write succeeded
    assert mail["url"].endswith("/sendMail") and mail["dependsOn"] == [write["id"]]
    assert len(bot.sim.outbox) == mails + 1

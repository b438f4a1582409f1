"""Family 9, abuse limits: a per-requester limit on changes and a per-target cool-down, both refused with a clear
card and an audit row, before any Graph write; and bot.desk.limits.check_limits itself on the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.desk.limits import check_and_audit, check_limits
from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.persistence.store import new_request_id
from bot.settings import BotSettings
from tests.bot.conftest import ALEX, MEGAN, BotHarness, action_data, graph_writes
from tests.reliability.conftest import MakeRBot, audit_rows, last_audit_id, record_figures, wait_final

TARGETS = [
    ("diego.siciliani@contoso.example", "+49 170 5551001"),
    ("johanna.lorenz@contoso.example", "+43 664 5551002"),
    ("lee.gu@contoso.example", "+49 170 5551003"),
    ("nestor.wilke@contoso.example", "+49 170 5551004"),
]


async def _change(bot: BotHarness, who, upn: str, number: str) -> tuple[str | None, str]:
    reply = await bot.invoke(
        who, "mfa.review", {"verb": "mfa.review", "targetUserText": upn, "number": number}
    )
    data = action_data(reply.card, "mfa.confirm")
    if data is None:
        return None, reply.text
    confirm = await bot.invoke(who, "mfa.confirm", data)
    return data["requestId"], confirm.text


async def test_requester_limit_refuses_the_next_change_and_audits_it(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(MAX_CHANGES_PER_REQUESTER_PER_HOUR="3", TARGET_COOLDOWN_MINUTES="0")
    for upn, number in TARGETS[:3]:
        rid, _ = await _change(bot, ALEX, upn, number)
        assert rid is not None
        await wait_final(bot.store, rid)
    writes_before = len(graph_writes(bot.sim))
    mark = await last_audit_id(bot.store)
    rid, text = await _change(bot, ALEX, *TARGETS[3])
    assert rid is None  # refused already on review
    assert "limit of 3 changes" in text
    rows = await audit_rows(bot.store, mark)
    assert [r["details"]["reason"] for r in rows if r["event"] == "refused"] == ["refusal.rate_limit"]
    assert len(graph_writes(bot.sim)) == writes_before
    # another requester is not affected
    rid, _ = await _change(bot, MEGAN, *TARGETS[3])
    assert rid is not None
    await wait_final(bot.store, rid)


async def test_target_cooldown_refuses_flip_flopping_until_it_has_passed(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(TARGET_COOLDOWN_MINUTES="10", MAX_CHANGES_PER_REQUESTER_PER_HOUR="0")
    upn = TARGETS[0][0]
    # a draft made before the change, confirmed after it: refused at confirm, nothing written
    early = await bot.invoke(
        MEGAN, "mfa.review", {"verb": "mfa.review", "targetUserText": upn, "number": "+49 170 5551999"}
    )
    early_data = action_data(early.card, "mfa.confirm")
    assert early_data is not None
    rid, _ = await _change(bot, ALEX, upn, "+49 170 5551001")
    assert rid is not None and (await wait_final(bot.store, rid)).outcome["outcome"] == "added"
    writes = len(graph_writes(bot.sim))
    mark = await last_audit_id(bot.store)
    again, text = await _change(bot, MEGAN, upn, "+49 170 5551002")
    assert again is None and "Another change is possible after" in text
    late = await bot.invoke(MEGAN, "mfa.confirm", early_data)
    assert "Another change is possible after" in late.text
    req = await bot.store.get_request(early_data["requestId"])
    assert req is not None and req.state is RequestState.DRAFT
    assert len(graph_writes(bot.sim)) == writes
    reasons = [r["details"]["reason"] for r in await audit_rows(bot.store, mark) if r["event"] == "refused"]
    assert reasons == ["refusal.target_cooldown", "refusal.target_cooldown"]
    record_figures("abuse_limits", {"requester_limit_refusals": 1, "cooldown_refusals": len(reasons)})


async def test_check_limits_counts_only_executed_changes_and_real_changes(make_rbot: MakeRBot) -> None:
    bot = await make_rbot()
    store = bot.store
    settings: BotSettings = bot.settings
    alex = Person(ALEX.aad, ALEX.name)
    target = "00000000-0000-0000-0000-0000000000c2"
    now = datetime.now(UTC)
    assert await check_limits(store, settings, alex, target, now) is None

    async def run(outcome: str) -> None:
        req = await store.create_request(
            ChangeRequest(
                id=new_request_id(),
                revision=1,
                state=RequestState.DRAFT,
                action="set",
                requester=alex,
                target_id=target,
                target_upn="diego.siciliani@contoso.example",
                target_display_name="Diego",
                number="+491705551001",
            ),
            actor=alex,
        )
        req = await store.transition(req.id, 1, RequestState.APPROVED, actor=alex, event="confirmed")
        req = await store.transition(
            req.id, req.revision, RequestState.EXECUTING, actor=alex, event="execution_started"
        )
        await store.transition(
            req.id,
            req.revision,
            RequestState.COMPLETED,
            actor=alex,
            event="completed",
            outcome={"outcome": outcome},
        )

    await run("unchanged")  # counts for the requester, not for the cool-down
    assert await check_limits(store, settings, alex, target, datetime.now(UTC)) is None
    await run("updated")
    decision = await check_limits(store, settings, alex, target, datetime.now(UTC))
    assert decision is not None and decision.reason_key == "refusal.target_cooldown"
    later = datetime.now(UTC) + timedelta(minutes=settings.target_cooldown_minutes, seconds=1)
    assert await check_limits(store, settings, alex, target, later) is None
    tight = BotSettings(graph=settings.graph, max_changes_per_requester_per_hour=2, target_cooldown_minutes=0)
    decision = await check_and_audit(
        store, tight, alex, "other-target", datetime.now(UTC), verb="mfa.confirm"
    )
    assert decision is not None and decision.reason_key == "refusal.rate_limit"
    assert decision.params["limit"] == 2
    assert await check_limits(store, tight, alex, "x", datetime.now(UTC) + timedelta(hours=2)) is None
    rows = await audit_rows(store)
    assert rows[-1]["event"] == "refused" and rows[-1]["details"]["reason"] == "refusal.rate_limit"
    off = BotSettings(graph=settings.graph, max_changes_per_requester_per_hour=0, target_cooldown_minutes=0)
    assert await check_limits(store, off, alex, target, datetime.now(UTC)) is None

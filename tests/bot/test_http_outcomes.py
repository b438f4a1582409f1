"""Every workflow outcome reaches the agent as its own card, through the real endpoint and the simulator."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bot.persistence.models import RequestState
from bot.views import texts
from graph.simulator.tenant import Phone
from tests.bot.conftest import (
    ALEX,
    DIEGO_ID,
    GRADY_ID,
    JOHANNA_ID,
    LYNNE_ID,
    NESTOR_ID,
    BotHarness,
    MakeBot,
    action_data,
    card_text,
    graph_writes,
)
from tests.bot.fake_connector import Recorded
from tests.conftest import TEST_CLIENT_ID

DIRK_ID = "00000000-0000-0000-0000-0000000000d8"  # disabled account holding +49 170 8880006 for SMS sign-in


async def _request(bot: BotHarness, review_card: dict) -> object:
    data = action_data(review_card, "mfa.confirm")
    assert data
    return await bot.store.get_request(data["requestId"])


async def test_update_confirms_the_typed_number_in_full_and_the_outcome_masks_old_and_new(
    bot: BotHarness,
) -> None:
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "lynne.robbins@contoso.example", "number": "+49 170 7654321"}
    )
    # current (masked: the agent did not type it) → new (typed: in full, as Graph will store it)
    assert "+49 170 ***4567 → +49 1707654321" in review.text
    assert "1234567" not in review.text.replace(" ", "")
    text = card_text(final.card)
    assert "***4321" in text and "7654321" not in text.replace(" ", "")
    assert [c.method for c in graph_writes(bot.sim)] == ["PATCH"]
    assert bot.sim.tenant.user(LYNNE_ID).phones["mobile"].number.replace(" ", "") == "+491707654321"


async def test_same_number_is_unchanged_and_nothing_is_written(bot: BotHarness) -> None:
    review, _, final = await bot.run_change(
        ALEX,
        {"targetUserText": "lynne.robbins@contoso.example", "number": "0170 1234567", "language": "auto"},
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "unchanged"  # type: ignore[attr-defined]
    assert graph_writes(bot.sim) == []
    assert card_text(final.card)


async def test_sms_sign_in_conflict_keeps_the_number_for_mfa(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": True})
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 9876543"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["sms_sign_in_conflict"] is True  # type: ignore[attr-defined]
    assert req.outcome["outcome"] in ("added", "updated")  # type: ignore[attr-defined]
    from bot.views import texts

    assert texts.t("en", "outcome.sms_conflict.once", new="+49 170 ***6543") in card_text(final.card)


async def test_conflict_that_blocked_the_change_names_the_holder(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": False})
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 9876543"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "conflict_unresolved"  # type: ignore[attr-defined]
    assert req.outcome["holder"]["id"] == GRADY_ID  # type: ignore[attr-defined]
    text = card_text(final.card)
    assert "Grady Archie" in text
    assert req.state is RequestState.COMPLETED  # type: ignore[attr-defined]


async def test_conflict_with_a_disabled_holder_names_the_account_as_disabled(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": False})
    # Dirk Disabled holds the number; the registration report never lists him.
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 8880006"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "conflict_unresolved"  # type: ignore[attr-defined]
    holder = req.outcome["holder"]  # type: ignore[attr-defined]
    assert holder["id"] == DIRK_ID and holder["accountEnabled"] is False
    text = card_text(final.card)
    assert "Dirk Disabled" in text
    assert texts.t("en", "outcome.holder.account.disabled") in text
    assert texts.t("en", "outcome.holder.disabled_hint") in text
    assert texts.t("en", "outcome.holder.not_found") not in text


async def test_conflict_in_a_tenant_without_p1_says_the_holder_cannot_be_searched(bot: BotHarness) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": False, "p1_licensed": False})
    # Hanna Hidden holds the number: only the registration report would find her.
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 8880003"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "conflict_unresolved"  # type: ignore[attr-defined]
    assert req.outcome["holder_search"] == "not_licensed"  # type: ignore[attr-defined]
    text = card_text(final.card)
    assert texts.t("en", "outcome.holder.not_licensed") in text
    assert "cannot be searched in this tenant" in text and "deleted" not in text


async def test_conflict_with_the_report_refused_names_audit_log_read_all(sim: Any, make_bot: MakeBot) -> None:
    app = sim.tenant.app(TEST_CLIENT_ID)
    app.roles = [r for r in app.roles if r != "AuditLog.Read.All"]  # the phone-method permissions stay
    sim.behaviour.update({"conflict_stores_method": False})
    bot = await make_bot()
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 8880003"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "conflict_unresolved"  # type: ignore[attr-defined]
    assert req.outcome["holder_search"] == "not_permitted"  # type: ignore[attr-defined]
    assert "AuditLog.Read.All" in req.outcome["missing_permission"]  # type: ignore[attr-defined]
    assert "AuditLog.Read.All" in card_text(final.card)


async def test_remove_of_a_mobile_changed_since_review_is_a_mismatch_and_removes_nothing(
    bot: BotHarness,
) -> None:
    # A different number is said on the confirmation card (tests/bot/test_http_review_refusals.py); the mobile
    # can still change between the confirmation card and the run (another admin, the user in My Sign-ins).
    form = await bot.open_form(ALEX, "remove phone")
    review = await bot.review(
        ALEX,
        form,
        {"targetUserText": "lynne.robbins@contoso.example", "number": "+49 170 1234567", "action": "remove"},
    )
    lynne = bot.sim.tenant.user(LYNNE_ID)
    bot.sim.tenant.commit_phones(lynne, {"mobile": Phone("mobile", "+49 1701111111", "ready")})
    mark = bot.connector.mark()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirm.status == 200
    final = await bot.final_update(form.activity_id or "", since=mark)
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "number_mismatch"  # type: ignore[attr-defined]
    assert graph_writes(bot.sim) == []
    assert bot.sim.tenant.user(LYNNE_ID).phones["mobile"].number == "+49 1701111111"
    from bot.views import texts

    assert texts.t("en", "outcome.number_mismatch.title") in card_text(final.card)


async def test_remove_of_the_right_number_is_done(bot: BotHarness) -> None:
    review, _, final = await bot.run_change(
        ALEX,
        {"targetUserText": "lynne.robbins@contoso.example", "number": "+49 170 1234567", "action": "remove"},
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "removed"  # type: ignore[attr-defined]
    assert [c.method for c in graph_writes(bot.sim)] == ["DELETE"]


async def test_graph_rule_alternate_mobile_blocks_removal_and_says_what_to_do(bot: BotHarness) -> None:
    review, _, final = await bot.run_change(
        ALEX,
        {"targetUserText": "nestor.wilke@contoso.example", "number": "+49 170 2223333", "action": "remove"},
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "blocked_by_graph_rule"  # type: ignore[attr-defined]
    assert req.outcome["next_step"]  # type: ignore[attr-defined]
    assert graph_writes(bot.sim) == []
    assert bot.sim.tenant.user(NESTOR_ID).phones.get("mobile") is not None
    from bot.views import texts

    assert texts.t("en", "outcome.blocked_by_graph_rule.title") in card_text(final.card)
    assert req.outcome["next_step_code"] == "remove_alternate_first"  # type: ignore[attr-defined]
    assert texts.t("en", "outcome.next.remove_alternate_first") in card_text(final.card).replace("\\", "")


async def test_user_deleted_after_confirm_is_user_not_found(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    review = await bot.review(
        ALEX, form, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666"}
    )
    deleted = asyncio.Event()

    async def delete_on_progress(rec: Recorded) -> None:
        if not deleted.is_set():
            bot.sim.tenant.remove_user(DIEGO_ID)
            deleted.set()

    bot.connector.on_update = delete_on_progress
    mark = bot.connector.mark()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    assert confirm.status == 200
    final = await bot.final_update(form.activity_id or "", since=mark)
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "user_not_found"  # type: ignore[attr-defined]
    # The user's methods are read with the checks, before the progress card: the user deleted then is gone by
    # the write, which Graph answers 404; nothing was changed.
    assert all(c.status == 404 for c in graph_writes(bot.sim))
    from bot.views import texts

    assert texts.t("en", "outcome.user_not_found.title") in card_text(final.card)


async def test_permission_missing_names_the_permission(bot: BotHarness) -> None:
    bot.sim.faults.inject("POST", r"/authentication/phoneMethods$", 403, times=5)
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "permission_denied"  # type: ignore[attr-defined]
    perm = req.outcome["missing_permission"]  # type: ignore[attr-defined]
    assert perm and perm in card_text(final.card)


async def test_graph_unavailable_gives_the_request_id_and_marks_the_request_failed(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    # The confirmation card reads the phones too: let that read through, then fail the workflow's reads.
    review = await bot.review(
        ALEX, form, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666"}
    )
    bot.sim.faults.inject(
        "GET", r"/users/[^/]+/authentication/phoneMethods$", 503, times=50, retry_after=0.01
    )
    mark = bot.connector.mark()
    await bot.confirm(ALEX, form.activity_id, review.card or {})
    final = await bot.final_update(form.activity_id or "", since=mark, timeout=60)
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "graph_unavailable"  # type: ignore[attr-defined]
    assert req.state is RequestState.FAILED  # type: ignore[attr-defined]
    assert graph_writes(bot.sim) == []
    ids = req.outcome["graph_request_ids"]  # type: ignore[attr-defined]
    assert ids and ids[-1] in card_text(final.card)


async def test_notification_sent_to_the_user(make_bot: MakeBot) -> None:
    bot = await make_bot(MAIL_SENDER="servicedesk@contoso.example")
    review, _, final = await bot.run_change(
        ALEX,
        {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "notify": "true"},
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["notification"] == "sent"  # type: ignore[attr-defined]
    assert [m["to"] for m in bot.sim.outbox] in (
        [["diego.siciliani@contoso.example"]],
        ["diego.siciliani@contoso.example"],
    )
    assert "diego.siciliani@contoso.example" in card_text(final.card)


async def test_notification_disabled_is_said(bot: BotHarness) -> None:
    review, _, final = await bot.run_change(
        ALEX,
        {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "notify": "false"},
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["notification"] == "disabled"  # type: ignore[attr-defined]
    assert bot.sim.outbox == []
    from bot.views import texts

    assert texts.t("en", "notification.disabled").split("{")[0][:12] in card_text(final.card)


async def test_notification_for_a_user_without_mailbox_is_skipped(make_bot: MakeBot) -> None:
    bot = await make_bot(MAIL_SENDER="servicedesk@contoso.example")
    review, _, final = await bot.run_change(
        ALEX, {"targetUserText": JOHANNA_ID, "number": "+43 664 1234567", "notify": "true"}
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["notification"] == "skipped_no_mail"  # type: ignore[attr-defined]
    assert bot.sim.outbox == []


async def test_notification_failure_is_reported_and_the_change_stays_done(make_bot: MakeBot) -> None:
    bot = await make_bot(MAIL_SENDER="servicedesk@contoso.example")
    bot.sim.faults.inject("POST", r"/sendMail$", 400, times=5)
    review, _, final = await bot.run_change(
        ALEX,
        {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666", "notify": "true"},
    )
    req = await _request(bot, review.card or {})
    assert req.outcome["outcome"] == "added"  # type: ignore[attr-defined]
    assert req.outcome["notification"] == "failed"  # type: ignore[attr-defined]


async def test_invoke_is_answered_fast_while_graph_is_slow_and_the_card_follows(bot: BotHarness) -> None:
    form = await bot.open_form(ALEX)
    review = await bot.review(
        ALEX, form, {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 5556666"}
    )
    bot.sim.behaviour.update({"latency_ms": 1200})
    mark = bot.connector.mark()
    calls = len(bot.sim.calls)
    started = time.monotonic()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    # What had happened when the click was answered: Graph answers nothing in less than 1.2 s, so an answer
    # that came while no Graph request had been answered yet did not wait for Graph.
    answered_before_graph = bot.sim.calls[calls:] == []
    assert confirm.status == 200
    assert answered_before_graph, [c.path for c in bot.sim.calls[calls:]]
    from bot.views import texts

    assert texts.t("en", "progress.title") in confirm.text
    final = await bot.final_update(form.activity_id or "", since=mark, timeout=30)
    assert time.monotonic() - started > 1.2  # the result came later, through an update of the same card
    assert texts.t("en", "outcome.added.title") in card_text(final.card)
    assert len(graph_writes(bot.sim)) == 1  # the change was made after the answer


async def test_a_german_agent_gets_the_sms_sign_in_conflict_in_german(bot: BotHarness, caplog: Any) -> None:
    bot.sim.behaviour.update({"conflict_stores_method": True})
    with caplog.at_level(logging.WARNING):
        review, _, final = await bot.run_change(
            ALEX,
            {"targetUserText": "diego.siciliani@contoso.example", "number": "+49 170 9876543"},
            locale="de-DE",
        )
    req = await _request(bot, review.card or {})
    assert req.outcome["sms_sign_in_conflict"] is True  # type: ignore[attr-defined]
    assert [w["code"] for w in req.outcome["warning_codes"]] == ["sms_sign_in_unavailable"]  # type: ignore[attr-defined]
    text = card_text(final.card).replace("\\", "")
    from bot.views import cards

    # said once, in German, with the next step; the workflow's warning is not repeated under it
    assert texts.t("de", "outcome.sms_conflict.once", new=cards.masked(req.number)) in text
    assert texts.DE["outcome.sms_conflict.next"].split("{")[0][:60] in text
    assert texts.DE["warning.sms_sign_in_unavailable"] not in text
    # none of the workflow's English sentences, none of the English texts
    for sentence in req.outcome["warnings"]:  # type: ignore[attr-defined]
        assert sentence not in text
    assert texts.EN["warning.sms_sign_in_unavailable"] not in text
    assert texts.EN["outcome.sms_conflict.next"].split("{")[0][:60] not in text
    assert not [r for r in caplog.records if "missing text key" in r.getMessage()]

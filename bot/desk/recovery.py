"""Expiry and crash recovery: what the sweeper (bot/desk/sweeper.py) does for the approvals in every round.

Expiry: a request nobody decided before its approval time is up is expired, its cards updated, its requester told
(the move itself is ApprovalService's, which also expires a request at a click past its time). Crash recovery: an
approved request nobody started within APPROVED_GRACE was left behind between the decision and the start of the
change and is run now; a run still executing after EXECUTING_TIMEOUT was interrupted and is recorded as failed.
Every move is a conditional update, so two instances sweeping at the same moment act once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.desk.approvals import ApprovalService, _iso, _ref_lang, utcnow
from bot.desk.execution import outcome_without_run
from bot.persistence.models import CardRef, ChangeRequest, RequestState
from bot.persistence.store import InvalidTransition, StaleRevision
from bot.views import cards, texts

log = logging.getLogger(__name__)

EVENT_RESUMED = "execution_resumed"  # an approved request left unstarted by a crash was run by the sweeper
EVENT_FAILED = "failed"  # the same event the Executor writes when a run fails

# Crash recovery (the sweeper): an approved request nobody started within APPROVED_GRACE was left behind between
# the decision and the start of the change; a run still executing after EXECUTING_TIMEOUT was interrupted.
APPROVED_GRACE = timedelta(minutes=2)
EXECUTING_TIMEOUT = timedelta(minutes=10)
OUTCOME_INTERRUPTED = "interrupted"  # outcome["outcome"] of a run the sweeper completed as failed


class Recovery:
    """Expiry and crash recovery of the approvals; `approvals` updates the cards and tells the requester."""

    def __init__(
        self,
        approvals: ApprovalService,
        *,
        store: Any,
        executor: Any,
        updater: Any,
        clock: Callable[[], datetime] = utcnow,
        approved_grace: timedelta = APPROVED_GRACE,
        executing_timeout: timedelta = EXECUTING_TIMEOUT,
    ) -> None:
        if approved_grace <= timedelta(0) or executing_timeout <= timedelta(0):
            raise ValueError("approved_grace and executing_timeout must be positive")
        self._approved_grace = approved_grace
        self._executing_timeout = executing_timeout
        self._approvals = approvals
        self._store = store
        self._executor = executor
        self._updater = updater
        self._clock = clock

    # ------------------------------------------------------------------ expiry

    async def expire_due(self) -> int:
        """Expire every request whose approval time is up; update its cards and tell its requester."""
        due: list[ChangeRequest] = await self._store.due_for_expiry(self._clock())
        count = 0
        for req in due:
            if await self._approvals.expire(req) is not None:
                count += 1
        return count

    # ------------------------------------------------------------------ crash recovery

    async def recover_stuck(self) -> tuple[int, int]:
        """Carry on after a crash; returns (approved requests started, interrupted runs completed as failed).

        An approved request that nobody started within the grace period (the process died between the decision
        and the start of the change) is run by the Executor in the background: its APPROVED → EXECUTING move is
        conditional, so it runs once even when several instances sweep at the same moment. A request executing for
        longer than the bound was interrupted: it is completed as failed with an outcome that says the change may
        or may not have been applied, audited, its cards updated and its requester told.
        """
        now = self._clock()
        interrupted = 0
        for req in await self._store.stuck_requests(RequestState.EXECUTING, now - self._executing_timeout):
            if await self._interrupt(req) is not None:
                interrupted += 1
        started = 0
        for req in await self._store.stuck_requests(RequestState.APPROVED, now - self._approved_grace):
            self._executor.spawn(self._resume(req))
            started += 1
        return started, interrupted

    async def _resume(self, req: ChangeRequest) -> None:
        actor = req.decided_by or req.requester  # who approved it, or the requester who confirmed it
        log.warning("request %s was approved but never started: running it now", req.id)
        done = await self._executor.execute(req, actor=actor)
        if done is None:
            return  # another instance (or the original click) started it first
        await self._store.audit(
            EVENT_RESUMED,
            actor=None,
            request_id=req.id,
            target_id=req.target_id,
            target_upn=req.target_upn,
            details={"approved_at": _iso(req.decided_at or req.updated_at), "state": done.state.value},
        )

    async def _interrupt(self, req: ChangeRequest) -> ChangeRequest | None:
        try:
            failed = await self._store.transition(
                req.id,
                req.revision,
                RequestState.FAILED,
                actor=None,
                event=EVENT_FAILED,
                details={
                    "outcome": OUTCOME_INTERRUPTED,
                    "old_number": req.previous_number,
                    "new_number": req.number if req.action == "set" else None,
                    "executing_since": _iso(req.updated_at),
                },
                outcome=_interrupted_outcome(req),
            )
        except (StaleRevision, InvalidTransition):
            return None  # it finished after all, or another instance recorded the interruption first
        log.warning("request %s was interrupted while executing: recorded as failed", req.id)
        try:
            refs: list[CardRef] = await self._store.card_refs(failed.id)
            await asyncio.gather(
                *(
                    self._updater.update_card(
                        ref, _interrupted_card(_ref_lang(ref.conversation_reference, failed), failed)
                    )
                    for ref in refs
                    if ref.activity_id
                )
            )
            await self._approvals.tell_requester(failed, "approval.requester.interrupted")
        except Exception:
            log.exception("request %s: telling everyone about the interruption failed", failed.id)
        return failed


def _interrupted_outcome(req: ChangeRequest) -> dict[str, Any]:
    """The outcome of a run that was cut off: whether Graph applied the change is unknown."""
    outcome = outcome_without_run(
        req,
        notification_detail="unknown: the run was interrupted",
        message="The run was interrupted (the bot stopped while the change was running); the change may or may "
        "not have been applied.",
        next_step=f"Check the user's current state with `status {cards.ref_of(req)}` (or `show` on the command "
        "line) before trying again.",
    ).to_json()
    outcome["outcome"] = OUTCOME_INTERRUPTED
    return outcome


def _interrupted_card(lang: str, req: ChangeRequest) -> dict[str, Any]:
    """The decision card of the failed request with what happened and what to do next under its first line."""
    card = cards.decision_card(lang, req)
    lines = [
        texts.t(lang, "execution.interrupted.body"),
        texts.t(lang, "outcome.next", text=texts.t(lang, "execution.interrupted.next", id=cards.ref_of(req))),
    ]
    blocks = [{"type": "TextBlock", "text": cards.md(line), "wrap": True} for line in lines]
    body = list(card.get("body", []))
    card["body"] = [*body[:2], *blocks, *body[2:]]
    return card


__all__ = ["APPROVED_GRACE", "EXECUTING_TIMEOUT", "OUTCOME_INTERRUPTED", "Recovery"]

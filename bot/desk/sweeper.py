"""The background sweeper: expires approval requests nobody decided in time (and requests whose caller was not
verified in time) and recovers after a crash.

It keeps no state of its own: every round asks the database (store.due_for_expiry, store.stuck_requests), so after
a restart, or on a second instance, it simply carries on. Each round also picks up what a crash left behind
(bot/desk/recovery.py Recovery.recover_stuck): an approved request that never started is run, a run that never
finished is recorded as interrupted; and (bot/desk/verification.py CallerVerification.resume_verified) a request
whose caller was verified but that never went on to approval or the change goes on. Two sweepers on one database are safe: every move is a conditional update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, recovery: Any, interval_seconds: float, *, verification: Any | None = None) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._recovery = recovery  # bot/desk/recovery.py: approvals not decided in time, crash recovery
        self._verification = verification  # bot/desk/verification.py: callers not verified in time
        self._interval = float(interval_seconds)
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0  # completed rounds, for health checks and tests
        self.expired = 0  # requests expired by this sweeper since start
        self.resumed = 0  # approved requests left unstarted by a crash that this sweeper started
        self.interrupted = 0  # runs cut off by a crash that this sweeper recorded as failed
        self.verified_resumed = 0  # verified requests a crash left waiting that this sweeper moved on

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start sweeping in the running event loop: a first round at once, then every interval."""
        if self.running:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="approval-sweeper")

    async def stop(self) -> None:
        """Stop after the round in progress (if any) has finished."""
        if self._task is None or self._stopping is None:
            return
        self._stopping.set()
        task, self._task = self._task, None
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def sweep_once(self) -> int:
        """One round: expire what is due, then recover what a crash left behind. Returns the number expired."""
        try:
            count = int(await self._recovery.expire_due())
        except Exception:
            # A database hiccup must not end the sweeper; the next round tries again.
            log.exception("approval sweep failed; retrying in %.0f s", self._interval)
            count = 0
        verified = 0
        if self._verification is not None:
            try:
                count += int(await self._verification.expire_due())
            except Exception:
                log.exception("verification sweep failed; retrying in %.0f s", self._interval)
            try:
                verified = int(await self._verification.resume_verified())
            except Exception:
                log.exception("verified-request recovery failed; retrying in %.0f s", self._interval)
        try:
            resumed, interrupted = await self._recovery.recover_stuck()
        except Exception:
            log.exception("crash recovery sweep failed; retrying in %.0f s", self._interval)
            resumed = interrupted = 0
        self.rounds += 1
        self.expired += count
        self.resumed += resumed
        self.verified_resumed += verified
        self.interrupted += interrupted
        if count:
            log.info("expired %d approval request(s)", count)
        if verified:
            log.warning("recovered after a crash: %d verified request(s) moved on", verified)
        if resumed or interrupted:
            log.warning(
                "recovered after a crash: %d approved request(s) started, %d interrupted run(s) recorded as failed",
                resumed,
                interrupted,
            )
        return count

    async def _run(self) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            await self.sweep_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

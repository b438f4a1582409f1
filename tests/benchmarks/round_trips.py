"""Sequential Graph round trips on the critical path of Review and Confirm, through the bot's HTTP endpoint.

The real bot (create_app behind its HTTP endpoint, the fake Bot Connector, a real store) talks to the Graph
simulator, which records when each request arrived and when its answer went back (`Call.started`, `Call.ended`).
A round trip waits for another when it starts after that one ended; requests in flight at the same time are one
round trip. The depth of a critical path is the longest chain of calls each starting after the previous one
ended, among the calls made between the click and the card that answers it (the confirmation card after Review,
the outcome card after Confirm). Each call gets a wave: 1 + the highest wave of the calls that ended before it
started, so the depth is the last wave.

Nothing here reads a stopwatch: only which recorded intervals overlap. A fixed Graph latency
(Behaviour.latency_ms) makes every round trip long against the bot's own work, so calls sent together overlap
and calls sent one after another do not.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Each variant sets a different user (the cool-down per target would refuse a second change of the same one).
PICKED_TARGET = "00000000-0000-0000-0000-0000000000c2"  # Diego Siciliani, object id from the people picker
TYPED_TARGET = "lee.gu@contoso.example"  # Lee Gu, typed as a UPN
VARIANTS: dict[str, dict[str, str]] = {
    "picker": {"targetUserId": PICKED_TARGET, "number": "+49 170 5556601"},
    "upn": {"targetUserText": TYPED_TARGET, "number": "+49 170 5556602"},
}
MAIL_SENDER = "servicedesk@contoso.example"
# Graph's latency per request while counting: long against the bot's own work per request (a few ms of CPU, on a
# busy machine tens), so requests sent together overlap even when a dozen go out at once.
LATENCY_MS = 400
WARM_UP_TARGET = "nora.nosms@contoso.example"  # a third user, so no per-user cache helps the measured ones


@dataclass
class CriticalPath:
    """The Graph calls between a click and its card, by wave."""

    waves: list[list[str]] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return len(self.waves)

    def describe(self) -> str:
        return " -> ".join("[" + ", ".join(w) + "]" for w in self.waves) or "(no Graph call)"


@dataclass
class Measured:
    variant: str
    notify: bool
    review: CriticalPath
    confirm: CriticalPath
    outcome: str


def _label(call: Any) -> str:
    path = str(call.path).removeprefix("/v1.0")
    parts = path.split("/")
    # object ids and UPNs say nothing about the shape of a path: keep it short and free of personal data
    parts = ["{id}" if ("-" in p and len(p) >= 32) or "@" in p else p for p in parts]
    return f"{call.method} {'/'.join(parts)}"


def critical_path(calls: Iterable[Any], since: float, until: float) -> CriticalPath:
    """The waves of the Graph requests (not $batch items) that started at or after `since` (wall clock) and
    were answered by `until`: a request that waited for none of them is wave 1, one that started after a wave-n
    request had been answered is wave n+1 at least."""
    window = sorted(
        (
            c
            for c in calls
            if not c.in_batch
            and c.started is not None
            and c.ended is not None
            and c.started >= since
            and c.ended <= until
        ),
        key=lambda c: c.started,
    )
    level: dict[int, int] = {}
    for i, call in enumerate(window):
        before = [level[j] for j in range(i) if window[j].ended <= call.started]
        level[i] = 1 + max(before, default=0)
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=0))]
    for i, call in enumerate(window):
        waves[level[i] - 1].append(_label(call))
    return CriticalPath(waves)


def _wall(monotonic_at: float) -> float:
    """A time.monotonic() reading (the fake connector's record time) on the simulator's time.time() clock."""
    return monotonic_at + (time.time() - time.monotonic())


async def measure(bot: Any, variant: str, values: dict[str, str], *, notify: bool = True) -> Measured:
    """set phone → Review → Confirm as ALEX through the bot's HTTP endpoint; the Graph waves of Review (click
    to the confirmation card) and Confirm (click to the outcome card)."""
    from tests.bot.conftest import ALEX, action_data

    form = await bot.open_form(ALEX)
    assert form.activity_id is not None
    since = time.time()
    review = await bot.review(
        ALEX, form, {**values, "action": "set", "notify": "true" if notify else "false"}
    )
    confirm_data = action_data(review.card, "mfa.confirm")
    if review.status != 200 or confirm_data is None:
        raise RuntimeError(f"Review did not end with a confirmation card: {review.text[:300]}")
    card = bot.connector.updates(form.activity_id)
    review_at = _wall(card[-1].at) if review.answer is not None and card else time.time()
    review_path = critical_path(bot.sim.calls, since, review_at)

    mark = bot.connector.mark()
    since = time.time()
    confirm = await bot.confirm(ALEX, form.activity_id, review.card or {})
    if confirm.status != 200:
        raise RuntimeError(f"Confirm was not answered: {confirm}")
    final = await bot.final_update(form.activity_id, since=mark, timeout=60)
    confirm_path = critical_path(bot.sim.calls, since, _wall(final.at))
    req = await bot.store.get_request(str(confirm_data.get("requestId")))
    outcome = str((req.outcome or {}).get("outcome")) if req is not None else "?"
    return Measured(variant, notify, review_path, confirm_path, outcome)


async def warm_up(bot: Any) -> None:
    """One Review of another user first, as on a bot that has been running: the tenant-wide caches (the owners of
    the bot's app and of the role-assignable groups, read once per cache time) are filled, the token is there."""
    from tests.bot.conftest import ALEX

    form = await bot.open_form(ALEX)
    await bot.review(ALEX, form, {"targetUserText": WARM_UP_TARGET, "number": "+49 170 5556609"})


@contextlib.asynccontextmanager
async def running_bot(latency_ms: int, **settings: str) -> AsyncIterator[Any]:
    """The real bot on loopback, with the test tenant's simulator (fixed Graph latency) and the fake connector,
    the way tests/bot/conftest.py starts it, outside pytest."""
    import json

    from graph.simulator import Simulator, Tenant
    from graph.simulator.certs import ensure_certs
    from tests.bot.conftest import BotLauncher
    from tests.bot.db_fixtures import Database
    from tests.bot.fake_connector import FakeConnector
    from tests.conftest import TENANT_TEST, _env_for

    with tempfile.TemporaryDirectory(prefix="mfa-round-trips-") as tmp:
        work = Path(tmp)
        ensure_certs(work / "certs")
        sim = Simulator(Tenant.load(json.loads(TENANT_TEST.read_text("utf-8"))), cert_dir=work / "certs")
        await sim.start(host="127.0.0.1", port=0)
        connector = FakeConnector()
        await connector.start()
        database = Database("sqlite", None, work / "data")
        launcher = BotLauncher(sim, _env_for(sim), connector, database, work)
        try:
            bot = await launcher.serve(launcher.settings(**settings), store=None)
            sim.behaviour.update({"latency_ms": latency_ms, "batch_latency_ms": latency_ms})
            yield bot
        finally:
            await launcher.close()
            await database.close_all()
            await connector.stop()
            await sim.stop()


async def measure_all(latency_ms: int = LATENCY_MS) -> list[Measured]:
    """Both target variants on one bot, with the notification mail (the product's default, NOTIFY_DEFAULT=true)
    and without it. The cool-down per target is off, so the second pass can change the same users."""
    async with running_bot(latency_ms, MAIL_SENDER=MAIL_SENDER, TARGET_COOLDOWN_MINUTES="0") as bot:
        await warm_up(bot)
        return [
            await measure(
                bot,
                name,
                {**values, "number": values["number"][:-2] + ("1" if notify else "2") + values["number"][-1]},
                notify=notify,
            )
            for notify in (True, False)
            for name, values in VARIANTS.items()
        ]

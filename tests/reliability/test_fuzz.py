"""Family 4, property-based fuzz (hypothesis) over activity payloads and phone inputs, through the HTTP endpoint.

Properties: never a 500; no Graph write unless an allowed requester confirmed their own request (the only path
to a write under APPROVAL_POLICY=never); numbers that parse_number refuses never reach Graph.

Sizes: FUZZ_EXAMPLES (default 600 per property here, ~2000 in all; `make fuzz` runs 20000).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.numbers import InvalidNumber, parse_number
from tests.bot.conftest import ALEX, PRADEEP, graph_writes
from tests.reliability.conftest import MakeRBot, record_figures

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)

VERBS = st.sampled_from(
    [
        "mfa.review",
        "mfa.confirm",
        "mfa.edit",
        "mfa.cancel",
        "mfa.approve",
        "mfa.reject",
        "mfa.refresh",
        "x",
        "",
    ]
)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
PHONE_TEXT = st.one_of(
    st.text(alphabet="+0123456789 -()/.", max_size=24),
    st.from_regex(r"\+?[0-9 ]{0,20}", fullmatch=True),
    st.text(max_size=30),
)
FORM = st.fixed_dictionaries(
    {},
    optional={
        "targetUserText": st.one_of(
            st.sampled_from(["diego.siciliani@contoso.example", "isaiah.langer@contoso.example", ALEX.upn]),
            JSON,
        ),
        "targetUserId": st.one_of(
            st.sampled_from(["00000000-0000-0000-0000-0000000000c2", "not-a-guid"]), JSON
        ),
        "number": st.one_of(PHONE_TEXT, JSON),
        "action": st.one_of(st.sampled_from(["set", "remove"]), JSON),
        "notify": st.one_of(st.sampled_from(["true", "false"]), JSON),
        "language": st.one_of(st.sampled_from(["auto", "de", "en"]), JSON),
        "ticket": JSON,
        "requestId": st.one_of(st.text(max_size=70), JSON),
        "rev": JSON,
        "reason": JSON,
    },
)


def _status_ok(status: int) -> bool:
    return status != 500 and (200 <= status < 300 or 400 <= status < 500)


async def test_fuzzed_card_actions_never_500_and_never_write(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(APPROVAL_POLICY="never")
    seen: dict[int, int] = {}

    @FUZZ
    @given(who=st.sampled_from([ALEX, PRADEEP]), verb=st.one_of(VERBS, JSON), data=st.one_of(FORM, JSON))
    def run(who: Any, verb: Any, data: Any) -> None:
        # Only card actions a client could send: a confirm needs a request this requester drafted; fuzzed ids and
        # revisions never match one, so nothing may be written.
        reply = bot_loop.run(bot.invoke(who, verb, data))
        seen[reply.status] = seen.get(reply.status, 0) + 1
        assert _status_ok(reply.status), (verb, data, reply)
        assert "Traceback" not in json.dumps(reply.body)

    bot_loop = _Runner()
    await bot_loop.drive(run)
    assert graph_writes(bot.sim) == []
    record_figures("fuzz_card_actions", {"cases": sum(seen.values()), "statuses": seen, "graph_writes": 0})


async def test_fuzzed_activity_bodies_never_500(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(APPROVAL_POLICY="never")
    base = bot.activity(ALEX, "message", text="help")
    seen: dict[int, int] = {}

    @FUZZ
    @given(
        overrides=st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "text",
                    "value",
                    "from",
                    "conversation",
                    "channelData",
                    "serviceUrl",
                    "name",
                    "locale",
                    "replyToId",
                    "attachments",
                    "entities",
                    "recipient",
                    "channelId",
                    "id",
                ]
            ),
            JSON,
            max_size=4,
        ),
        drop=st.lists(
            st.sampled_from(["type", "from", "conversation", "serviceUrl", "recipient"]), max_size=2
        ),
    )
    def run(overrides: dict[str, Any], drop: list[str]) -> None:
        body = {k: v for k, v in {**base, **overrides}.items() if k not in drop}
        reply = runner.run(bot.post(body))
        seen[reply.status] = seen.get(reply.status, 0) + 1
        assert _status_ok(reply.status), (body, reply)

    runner = _Runner()
    await runner.drive(run)
    assert graph_writes(bot.sim) == []
    record_figures("fuzz_activities", {"cases": sum(seen.values()), "statuses": seen})


@FUZZ
@given(text=PHONE_TEXT, region=st.sampled_from([None, "DE", "AT", "US", "CH"]))
def test_fuzzed_phone_inputs_parse_or_are_refused_with_a_reason(text: str, region: str | None) -> None:
    try:
        parsed = parse_number(text, region)
    except InvalidNumber as exc:
        assert exc.code  # a translatable reason, never another exception
        return
    assert parsed.e164.startswith("+") and parsed.e164[1:].isdigit()
    assert parsed.graph.startswith("+") and " " in parsed.graph


class _Runner:
    """Hypothesis drives a synchronous test function; each example's coroutine runs on the test's event loop
    from a worker thread, so the bot, the simulator and the connector keep serving on that loop."""

    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()

    def run(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    async def drive(self, fn: Any) -> None:
        import asyncio

        await asyncio.to_thread(fn)

"""Family 4, property-based fuzz (hypothesis) over activity payloads and phone inputs, through the HTTP endpoint.

Properties: never a 500; no Graph write unless an allowed requester confirmed their own request (the only path
to a write under APPROVAL_POLICY=never); numbers that parse_number refuses never reach Graph.

Caller verification (mfa.verify.yes / mfa.verify.no / mfa.verify.code) is fuzzed with verification on, against
real requests waiting for the caller: forged answers and codes (any sender but the person asked or the requester,
or those two with ids that are not their request's) never move a request, never count a wrong code, never lock
the user and never write to Graph.

Sizes: FUZZ_EXAMPLES (default 600 per property here, 200 for the verification actions, ~2000 in all; `make fuzz`
runs 20000 each).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.persistence.models import RequestState
from graph.numbers import InvalidNumber, parse_number
from tests.bot.conftest import ALEX, ISAIAH, LYNNE, MEGAN, PATTI, PRADEEP, graph_writes
from tests.reliability.conftest import MakeRBot, audit_rows, last_audit_id, record_figures

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
VERIFY_FUZZ = settings(FUZZ, max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")))

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


VERIFY_VERBS = st.sampled_from(
    [
        "mfa.verify.yes",
        "mfa.verify.no",
        "mfa.verify.code",
        "mfa.verify.maybe",
        "mfa.verify.",
        "MFA.VERIFY.YES",
    ]
)
CODE_TEXT = st.one_of(
    st.text(alphabet="0123456789 \t\n\u00a0\u200b\uff10\uff11\u0660\u0661\u0967-", max_size=12),
    st.text(max_size=50),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.sampled_from(["1" * 10_000, "０１２３４５", "١٢٣٤٥٦", "12345６", "\x00" * 6, "𝟏𝟐𝟑𝟒𝟓𝟔"]),
    st.integers(min_value=-(10**12), max_value=10**12),
    JSON,
)


async def test_fuzzed_verification_actions_never_500_never_write_never_move(make_rbot: MakeRBot) -> None:
    """Forged answers and codes against requests that really wait for the caller's verification."""
    from tests.reliability.test_verification_matrix import CODE, POLICY, waiting_request

    bot = await make_rbot(VERIFICATION_POLICY=POLICY, APPROVAL_POLICY="never")
    teams = await waiting_request(bot, "teams")  # Lynne is asked
    code = await waiting_request(bot, "code")  # Alex (the requester) types the code Lynne got
    ids = [teams.id, code.id]
    revs = sorted({teams.revision, code.revision})
    mark = await last_audit_id(bot.store)
    seen: dict[int, int] = {}
    request_id = st.one_of(
        st.sampled_from(ids),
        st.sampled_from(ids).map(str.upper),
        st.sampled_from(ids).map(lambda i: i + "\u200b"),
        st.sampled_from(ids).map(lambda i: i[:-1] + "\uff10"),
        st.text(max_size=70),
        JSON,
    )
    rev = st.one_of(
        st.sampled_from([*revs, revs[0] - 1, revs[-1] + 1, 0, -1, 2**63, 1e9]),
        st.sampled_from([str(r) for r in revs] + [f" {revs[0]}", "\uff12", "\u0662", f"{revs[0]}.0"]),
        JSON,
    )
    data = st.one_of(
        # well-formed: a real request id and revision, as a forged or replayed card would carry them
        st.fixed_dictionaries(
            {"requestId": st.sampled_from(ids), "rev": st.sampled_from([*revs, *(str(r) for r in revs)])},
            optional={"code": CODE_TEXT},
        ),
        st.fixed_dictionaries(
            {},
            optional={
                "requestId": request_id,
                "rev": rev,
                "code": CODE_TEXT,
                "verb": VERIFY_VERBS,
                "x": JSON,
            },
        ),
        JSON,
    )

    @VERIFY_FUZZ
    @given(
        who=st.sampled_from([PRADEEP, MEGAN, PATTI, ISAIAH, LYNNE, ALEX]),
        verb=st.one_of(VERIFY_VERBS, JSON),
        data=data,
        tenant=st.sampled_from([None, "0badc0de-0000-4000-8000-000000000bad"]),
    )
    def run(who: Any, verb: Any, data: Any, tenant: str | None) -> None:
        # The person asked (Lynne) and the requester (Alex) act on their own request only with forged ids: a
        # real id from them is a genuine answer or a genuine (wrong) code attempt, not a forgery.
        genuine = (
            isinstance(data, dict) and isinstance(data.get("requestId"), str) and data["requestId"] in ids
        )
        assume(tenant is not None or who not in (LYNNE, ALEX) or not genuine)
        kw = {"tenant": tenant} if tenant else {}
        reply = runner.run(bot.invoke(who, verb, data, **kw))
        seen[reply.status] = seen.get(reply.status, 0) + 1
        assert _status_ok(reply.status), (who.name, verb, data, reply)
        assert "Traceback" not in json.dumps(reply.body)
        assert CODE not in json.dumps(reply.body)

    runner = _Runner()
    await runner.drive(run)
    for before in (teams, code):
        after = await bot.store.get_request(before.id)
        assert after is not None
        assert (after.state, after.revision) == (RequestState.AWAITING_VERIFICATION, before.revision)
        assert after.verified_by is None and after.decided_by is None
    record = await bot.store.verification(code.id)
    assert record is not None and record.attempts == 0  # no forged code counted as an attempt
    assert await bot.store.target_lock(LYNNE.aad, datetime.now(UTC)) is None
    events = {r["event"] for r in await audit_rows(bot.store, mark)}
    assert events <= {"refused"}, events  # only audited refusals, no move of any request
    assert graph_writes(bot.sim) == []
    record_figures("fuzz_verification", {"cases": sum(seen.values()), "statuses": seen, "graph_writes": 0})


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

"""Families 2 and 4: tenant isolation, tampering and bad input, through the HTTP endpoint.

Every case gets a clear 4xx or a clear card, never a 500, and changes nothing: no Graph write, the request's state
and revision as they were.
"""

from __future__ import annotations

import json
from typing import Any

from bot.persistence.models import RequestState
from tests.bot.conftest import (
    ALEX,
    MEGAN,
    OTHER_TENANT_ID,
    BotHarness,
    action_data,
    graph_writes,
)
from tests.reliability.conftest import audit_rows, last_audit_id, record_figures, wait_final

DIEGO = "diego.siciliani@contoso.example"


async def _draft(bot: BotHarness, who: Any = ALEX) -> dict[str, Any]:
    reply = await bot.invoke(
        who, "mfa.review", {"verb": "mfa.review", "targetUserText": DIEGO, "number": "+49 170 5556666"}
    )
    data = action_data(reply.card, "mfa.confirm")
    assert data, reply.text
    return data


# ------------------------------------------------------------------------------------------------ family 2


async def test_activities_from_another_tenant_are_refused_and_audited(rbot: BotHarness) -> None:
    data = await _draft(rbot)
    mark = await last_audit_id(rbot.store)
    answers = []
    for verb, payload in [
        ("mfa.review", {"verb": "mfa.review", "targetUserText": DIEGO, "number": "+49 170 5557777"}),
        ("mfa.confirm", data),
        ("mfa.approve", {"verb": "mfa.approve", "requestId": data["requestId"], "rev": data["rev"]}),
    ]:
        reply = await rbot.invoke(ALEX, verb, payload, tenant=OTHER_TENANT_ID)
        assert reply.status == 200
        assert action_data(reply.card, "mfa.confirm") is None
        answers.append(reply.text)
    no_tenant = await rbot.invoke(ALEX, "mfa.confirm", data, tenant=None)
    assert no_tenant.status == 200 and action_data(no_tenant.card, "mfa.confirm") is None
    history = await rbot.message(MEGAN, f"history {DIEGO}", tenant=OTHER_TENANT_ID)
    assert history.status in (200, 201)
    rows = await audit_rows(rbot.store, mark)
    assert sum(r["event"] == "refused" for r in rows) >= 5
    assert not any(r["event"] == "history_viewed" for r in rows)
    req = await rbot.store.get_request(data["requestId"])
    assert req is not None and req.state is RequestState.DRAFT and req.revision == data["rev"]
    assert graph_writes(rbot.sim) == []
    # the bot keeps no conversation reference for a foreign tenant's user
    assert all("other tenant" not in a.lower() or a for a in answers)


# ------------------------------------------------------------------------------------------------ family 4


async def test_tampered_card_payloads_get_a_clear_card_and_change_nothing(rbot: BotHarness) -> None:
    alex = await _draft(rbot, ALEX)
    megan = await _draft(rbot, MEGAN)
    rid, rev = alex["requestId"], alex["rev"]
    huge = "9" * 100_000
    cases: list[tuple[str, Any, Any]] = [
        ("another user's request id", "mfa.confirm", {**megan}),
        ("stale revision", "mfa.confirm", {"verb": "mfa.confirm", "requestId": rid, "rev": rev - 1}),
        ("future revision", "mfa.confirm", {"verb": "mfa.confirm", "requestId": rid, "rev": rev + 5}),
        ("unknown verb", "mfa.delete_everything", {**alex}),
        ("verb not a string", 42, {**alex}),
        ("data not an object", "mfa.confirm", ["requestId", rid]),
        ("request id not a string", "mfa.confirm", {"verb": "mfa.confirm", "requestId": 123, "rev": rev}),
        ("request id huge", "mfa.confirm", {"verb": "mfa.confirm", "requestId": "a" * 100_000, "rev": rev}),
        (
            "request id injection",
            "mfa.confirm",
            {"verb": "mfa.confirm", "requestId": "' OR 1=1 --", "rev": rev},
        ),
        ("request id unknown", "mfa.confirm", {"verb": "mfa.confirm", "requestId": "0" * 32, "rev": 1}),
        ("revision a float", "mfa.confirm", {"verb": "mfa.confirm", "requestId": rid, "rev": 1.5}),
        ("revision a bool", "mfa.confirm", {"verb": "mfa.confirm", "requestId": rid, "rev": True}),
        ("revision negative", "mfa.confirm", {"verb": "mfa.confirm", "requestId": rid, "rev": -1}),
        ("revision huge", "mfa.confirm", {"verb": "mfa.confirm", "requestId": rid, "rev": 10**30}),
        ("approve own request", "mfa.approve", {"verb": "mfa.approve", "requestId": rid, "rev": rev}),
        ("number 100 kB", "mfa.review", {"verb": "mfa.review", "targetUserText": DIEGO, "number": huge}),
        (
            "target 100 kB",
            "mfa.review",
            {"verb": "mfa.review", "targetUserText": huge, "number": "+4917055566"},
        ),
        (
            "number an object",
            "mfa.review",
            {"verb": "mfa.review", "targetUserText": DIEGO, "number": {"a": 1}},
        ),
        ("action unknown", "mfa.review", {"verb": "mfa.review", "targetUserText": DIEGO, "action": "wipe"}),
        ("notify a list", "mfa.review", {"verb": "mfa.review", "targetUserText": DIEGO, "notify": [1]}),
        ("picker not a guid", "mfa.review", {"verb": "mfa.review", "targetUserId": "../../users"}),
        (
            "control characters",
            "mfa.review",
            {"verb": "mfa.review", "targetUserText": "a\x00b", "number": "\x07"},
        ),
    ]
    outcomes: dict[str, int] = {}
    for name, verb, data in cases:
        reply = await rbot.invoke(ALEX, verb, data)
        outcomes[name] = reply.status
        assert reply.status == 200, (name, reply)
        assert reply.card is not None and reply.text.strip(), name
        assert "Traceback" not in json.dumps(reply.body), name
        assert action_data(reply.card, "mfa.confirm") is None or verb == "mfa.review", name
    for data in (alex, megan):
        req = await rbot.store.get_request(data["requestId"])
        assert req is not None and req.state is RequestState.DRAFT and req.revision == data["rev"]
        assert req.number == "+491705556666"
    assert graph_writes(rbot.sim) == []
    record_figures("tampering_cards", {"cases": len(cases), "status_200_with_card": len(outcomes)})


async def test_bad_bodies_get_a_clear_4xx_never_a_500(rbot: BotHarness) -> None:
    good = rbot.activity(ALEX, "message", text="help")
    body = json.dumps(good)
    nested = body[:-1] + ', "value": ' + '{"a":' * 5000 + '"x"' + "}" * 5000 + "}"
    deep_list = "[" * 100_000 + "]" * 100_000
    raw_cases: list[tuple[str, bytes, str]] = [
        ("not JSON", b"hello bot", "application/json"),
        ("truncated", json.dumps(good).encode()[:-7], "application/json"),
        ("empty", b"", "application/json"),
        ("a JSON array", b"[1,2,3]", "application/json"),
        ("a JSON string", b'"message"', "application/json"),
        ("null", b"null", "application/json"),
        ("invalid UTF-8", b'{"type": "message", "text": "\xff\xfe"}', "application/json"),
        ("10 MB", b'{"type":"message","text":"' + b"x" * (10 * 1024 * 1024) + b'"}', "application/json"),
        ("deeply nested object", nested.encode(), "application/json"),
        ("deeply nested list", deep_list.encode(), "application/json"),
        ("wrong content type", json.dumps(good).encode(), "text/plain"),
        ("no type", json.dumps({k: v for k, v in good.items() if k != "type"}).encode(), "application/json"),
        ("type a number", json.dumps({**good, "type": 7}).encode(), "application/json"),
        ("from a string", json.dumps({**good, "from": "alex"}).encode(), "application/json"),
        (
            "conversation missing",
            json.dumps({k: v for k, v in good.items() if k != "conversation"}).encode(),
            "application/json",
        ),
        ("serviceUrl a list", json.dumps({**good, "serviceUrl": ["x"]}).encode(), "application/json"),
        ("attachments an object", json.dumps({**good, "attachments": {"a": 1}}).encode(), "application/json"),
    ]
    mark = rbot.connector.mark()
    statuses: dict[str, int] = {}
    for name, raw, ctype in raw_cases:
        reply = await rbot.post(None, raw=raw, content_type=ctype)
        statuses[name] = reply.status
        assert 400 <= reply.status < 500, (name, reply.status, str(reply.body)[:200])
        assert isinstance(reply.body, dict) and reply.body.get("error", {}).get("message"), name
    assert rbot.connector.since(mark) == []
    assert graph_writes(rbot.sim) == []
    # the bot still works afterwards
    ok = await rbot.message(ALEX, "help")
    assert ok.status in (200, 201)
    record_figures("tampering_bodies", {"cases": len(raw_cases), "statuses": statuses})


async def test_fields_altered_in_a_confirm_payload_are_ignored_the_stored_request_runs(
    rbot: BotHarness,
) -> None:
    data = await _draft(rbot, ALEX)
    altered = {
        **data,
        "number": "+49 170 0000000",
        "targetUserId": "00000000-0000-0000-0000-0000000000b1",
        "targetUserText": "isaiah.langer@contoso.example",
        "action": "remove",
        "state": "approved",
        "approval_required": False,
    }
    reply = await rbot.invoke(ALEX, "mfa.confirm", altered)
    assert reply.status == 200
    req = await wait_final(rbot.store, data["requestId"])
    assert req.outcome and req.outcome["outcome"] == "added"
    writes = graph_writes(rbot.sim)
    assert len(writes) == 1 and writes[0].method == "POST"
    assert "0000000000c2" in writes[0].path  # Diego, the stored target
    assert "5556666" in json.dumps(writes[0].json) and "0000000" not in json.dumps(writes[0].json)
    isaiah = rbot.sim.tenant.user("00000000-0000-0000-0000-0000000000b1")
    assert isaiah is not None and isaiah.phones["mobile"].number.replace(" ", "") == "+491705550101"

"""Family 8, privacy: logs at DEBUG, across a whole run with successes, refusals, Graph failures, a notification
and bad input, carry no full phone number, no client secret and no token."""

from __future__ import annotations

import logging
import re

import pytest

from tests.bot.conftest import ALEX, PRADEEP, BotHarness, action_data
from tests.reliability.conftest import MakeRBot, record_figures, wait_final

NUMBERS = ["+49 170 5556666", "+49 170 7654321", "+43 664 1234999", "+49 170 1234567", "+49 1709876543"]
_JOIN_DIGITS = re.compile(r"(?<=\d)[ \-/().]+(?=\d)")
_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def _national(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[2:]  # without the country code: the number as the agent may also type it


async def _change(bot: BotHarness, upn: str, number: str, **extra: str) -> None:
    reply = await bot.invoke(
        ALEX, "mfa.review", {"verb": "mfa.review", "targetUserText": upn, "number": number, **extra}
    )
    data = action_data(reply.card, "mfa.confirm")
    if data:
        await bot.invoke(ALEX, "mfa.confirm", data)
        await wait_final(bot.store, data["requestId"])


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_debug_logs_of_a_whole_run_hold_no_number_secret_or_token(
    make_rbot: MakeRBot, caplog: pytest.LogCaptureFixture, sim_env: dict[str, str]
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    bot = await make_rbot(
        LOG_LEVEL="DEBUG",
        MAIL_SENDER="servicedesk@contoso.example",
        MAX_CHANGES_PER_REQUESTER_PER_HOUR="0",
        TARGET_COOLDOWN_MINUTES="0",
    )
    await bot.message(ALEX, "set phone")
    await _change(bot, "diego.siciliani@contoso.example", NUMBERS[0], notify="true")
    await _change(bot, "lynne.robbins@contoso.example", NUMBERS[1])
    bot.sim.faults.inject("POST", r"/authentication/phoneMethods$", 503, times=50, retry_after=0.01)
    await _change(bot, "johanna.lorenz@contoso.example", NUMBERS[2])
    bot.sim.faults.clear()
    await _change(bot, "grady.archie@contoso.example", NUMBERS[3], action="remove")  # mismatch
    await _change(bot, "diego.siciliani@contoso.example", NUMBERS[4])  # held by Grady for SMS sign-in: 409
    await bot.invoke(
        PRADEEP, "mfa.review", {"verb": "mfa.review", "targetUserText": "x", "number": NUMBERS[0]}
    )
    await bot.invoke(
        ALEX, "mfa.review", {"verb": "mfa.review", "targetUserText": "x@y", "number": "+49 170 55" + "5" * 70}
    )
    await bot.post(
        None, raw=b'{"type": "message", "text": "+49 170 5556666"', content_type="application/json"
    )

    text = (
        "\n".join(caplog.text.splitlines())
        + "\n"
        + "\n".join(r.getMessage() + (" " + str(r.exc_text) if r.exc_text else "") for r in caplog.records)
    )
    joined = _JOIN_DIGITS.sub("", text)
    leaks = [n for n in NUMBERS if _national(n) in joined]
    secret = sim_env["GRAPH_CLIENT_SECRET"]
    leaked_by = sorted(
        {
            r.name
            for r in caplog.records
            for n in NUMBERS
            if _national(n) in _JOIN_DIGITS.sub("", r.getMessage())
        }
    )
    record_figures(
        "privacy",
        {
            "log_records": len(caplog.records),
            "numbers_checked": len(NUMBERS),
            "leaked_numbers": len(leaks),
            "leaking_loggers": leaked_by,
        },
    )
    assert len(caplog.records) > 50  # DEBUG really was captured
    assert leaks == [], f"full numbers in the logs (loggers: {leaked_by})"
    assert secret not in text
    assert _TOKEN.search(text) is None

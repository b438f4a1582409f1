"""Family 8, privacy: logs at DEBUG, across a whole run with successes, refusals, Graph failures, a notification,
a conflict that sends the bot searching for the number's holder, and bad input, carry no full phone number (in
any spelling: digits only, E.164, with spaces, percent-encoded in a URL), no client secret and no token. Every
logger is captured, httpx's and httpcore's request logs included."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

import pytest

from tests.bot.conftest import ALEX, PRADEEP, BotHarness, action_data
from tests.reliability.conftest import MakeRBot, record_figures, wait_final

NUMBERS = ["+49 170 5556666", "+49 170 7654321", "+43 664 1234999", "+49 170 1234567", "+49 1709876543"]
_JOIN_DIGITS = re.compile(r"(?<=\d)[ \-/().]+(?=\d)")
_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def _national(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[2:]  # without the country code: the number as the agent may also type it


def _decoded(text: str) -> str:
    """The text with every layer of percent-encoding undone ("%2B49%20170" -> "+49 170")."""
    for _ in range(3):
        plain = unquote_plus(text)
        if plain == text:
            break
        text = plain
    return text


def _numbers_in(text: str) -> list[str]:
    """The NUMBERS whose national digits appear in the text, as written or percent-decoded, in any grouping."""
    forms = [_JOIN_DIGITS.sub("", text), _JOIN_DIGITS.sub("", _decoded(text))]
    return [n for n in NUMBERS if any(_national(n) in form for form in forms)]


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write of a record: the message, its arguments, the formatted traceback and
    stack, and any extra fields."""
    parts = [record.getMessage(), repr(record.args), str(record.exc_text or ""), str(record.stack_info or "")]
    parts += [str(v) for k, v in vars(record).items() if k not in ("args", "exc_info")]
    return " ".join(parts)


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
    for name in ("httpx", "httpcore"):  # whatever configured them before, they log at DEBUG here
        caplog.set_level(logging.DEBUG, logger=name)
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
    # Held by Grady for SMS sign-in: 409, and Graph does not store it, so the bot searches for the holder
    # (a filtered /users query with the number in its URL, then the phone methods of every candidate).
    bot.sim.behaviour.update({"conflict_stores_method": False})
    await _change(bot, "diego.siciliani@contoso.example", NUMBERS[4])
    bot.sim.behaviour.update({"conflict_stores_method": True})
    await bot.invoke(
        PRADEEP, "mfa.review", {"verb": "mfa.review", "targetUserText": "x", "number": NUMBERS[0]}
    )
    await bot.invoke(
        ALEX, "mfa.review", {"verb": "mfa.review", "targetUserText": "x@y", "number": "+49 170 55" + "5" * 70}
    )
    await bot.post(
        None, raw=b'{"type": "message", "text": "+49 170 5556666"', content_type="application/json"
    )

    text = caplog.text + "\n" + "\n".join(_record_text(r) for r in caplog.records)
    leaks = _numbers_in(text)
    secret = sim_env["GRAPH_CLIENT_SECRET"]
    leaked_by = sorted({r.name for r in caplog.records if _numbers_in(_record_text(r))})
    searched = [r for r in caplog.records if r.name == "httpx" and "mobilePhone" in _decoded(r.getMessage())]
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
    assert searched, "the owner search ran (its filtered /users query was logged)"
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert leaks == [], f"full numbers in the logs (loggers: {leaked_by})"
    assert secret not in text
    assert _TOKEN.search(text) is None

"""The bot runs the tenant check of `python -m graph doctor` in the background at start-up: a warning per problem in
the log, the result on /readyz and one line in the help card of approvers and privileged approvers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from app import RUNTIME
from bot.views import texts
from tests.bot.conftest import ALEX, MEGAN, BotHarness, BotLauncher, Database, card_text
from tests.bot.fake_connector import FakeConnector

HELPDESK = "11111111-1111-1111-1111-000000000001"
StartBot = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def start_bot(
    sim: Any, sim_env: dict[str, str], connector: FakeConnector, database: Database, tmp_path: Any
) -> AsyncIterator[StartBot]:
    launcher = BotLauncher(sim, sim_env, connector, database, tmp_path)

    async def start(**app_options: Any) -> BotHarness:
        bot = await launcher.serve(launcher.settings(), store=None, **app_options)
        task = bot.server.app[RUNTIME].tenant_task
        if task is not None:
            await task  # the check runs in the background; the test waits for it, not for a time
        return bot

    try:
        yield start
    finally:
        await launcher.close()


def _revoke(sim: Any, role: str) -> None:
    app = sim.tenant.applications[0]
    app.roles = [r for r in app.roles if r != role]


async def _readyz(bot: BotHarness) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(bot.server.make_url("/readyz")) as resp:
        return resp.status, await resp.json()


async def _help_text(bot: BotHarness, person: Any) -> str:
    mark = bot.connector.mark()
    await bot.message(person, "help")
    records = await bot.connector.wait_for(lambda rs: [r for r in rs if r.card], since=mark)
    return card_text(records[0].card)


async def test_readyz_shows_a_missing_permission_and_stays_ready(sim: Any, start_bot: StartBot) -> None:
    _revoke(sim, "AuditLog.Read.All")
    bot = await start_bot(tenant_check=True)
    status, body = await _readyz(bot)
    assert status == 200 and body["status"] == "ready" and body["failed"] == []
    tenant = body["tenant"]
    assert tenant["state"] == "done" and tenant["ok"] is False
    report = {c["name"]: c for c in tenant["checks"]}
    assert report["registration_report"]["status"] == "missing"
    assert report["registration_report"]["permission"] == "AuditLog.Read.All"
    assert report["registration_report"]["request_id"]
    assert report["group:HELPDESK_GROUP_ID"]["status"] == "ok"


async def test_readyz_says_when_the_check_is_off(start_bot: StartBot) -> None:
    bot = await start_bot(tenant_check=False)
    _, body = await _readyz(bot)
    assert body["tenant"] == {"state": "off", "ok": None, "checks": []}


async def test_each_problem_is_a_warning_in_the_log(
    sim: Any, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    del sim.tenant.groups[HELPDESK]
    with caplog.at_level(logging.WARNING, logger="mfa_bot.app"):
        await start_bot(tenant_check=True)
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "mfa_bot.app" and r.levelno == logging.WARNING
    ]
    assert any(
        "tenant check group:HELPDESK_GROUP_ID: missing; to fix: HELPDESK_GROUP_ID" in w for w in warnings
    ), warnings
    assert len([w for w in warnings if w.startswith("tenant check ")]) == 1


async def test_an_approver_sees_the_problems_in_help(sim: Any, start_bot: StartBot) -> None:
    _revoke(sim, "Application.Read.All")
    bot = await start_bot(tenant_check=True)
    text = await _help_text(bot, MEGAN)  # helpdesk and approver
    assert "Tenant check: app_owners missing (Application.Read.All (or Directory.Read.All))" in text


async def test_an_approver_sees_all_ok_in_german(start_bot: StartBot) -> None:
    bot = await start_bot(tenant_check=True)
    mark = bot.connector.mark()
    await bot.message(MEGAN, "help", locale="de-DE")
    records = await bot.connector.wait_for(lambda rs: [r for r in rs if r.card], since=mark)
    assert texts.t("de", "help.tenant.ok") in card_text(records[0].card)


async def test_an_agent_who_is_no_approver_sees_no_tenant_line(start_bot: StartBot) -> None:
    bot = await start_bot(tenant_check=True)
    text = await _help_text(bot, ALEX)
    assert texts.t("en", "help.title") in text
    assert "Tenant check" not in text

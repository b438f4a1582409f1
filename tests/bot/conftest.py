"""Fixtures that run the real bot (create_app, CloudAdapter, the HTTP endpoint) on loopback, with the Graph
simulator behind it, a real store (SQLite always, PostgreSQL when TEST_DATABASE_URL is set) and a fake Bot
Connector in front of it that records what the bot sends.

    async def test_x(bot):                          # default settings (APPROVAL_POLICY=never)
        r = await bot.message(ALEX, "set phone")
    async def test_y(make_bot):                     # own settings
        bot = await make_bot(APPROVAL_POLICY="always")
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from app import create_app
from bot.settings import BotSettings
from bot.views import texts
from graph.simulator import DEFAULT_TEAMS_APP_EXTERNAL_ID
from tests.bot.db_fixtures import Database, database  # noqa: F401  (fixture)
from tests.bot.fake_connector import FakeConnector, Recorded

TENANT_ID = "8f3c2a51-0d6e-4b7a-9c1f-2e4d6b8a0c11"
OTHER_TENANT_ID = "0badc0de-0000-4000-8000-000000000bad"
HELPDESK_GROUP = "11111111-1111-1111-1111-000000000001"
APPROVER_GROUP = "11111111-1111-1111-1111-000000000002"
PRIVILEGED_GROUP = "11111111-1111-1111-1111-000000000003"
BOT_ID = "28:mfa-phone-bot"


@dataclass(frozen=True)
class Persona:
    aad: str
    name: str
    upn: str

    @property
    def teams_id(self) -> str:
        return f"29:{self.aad}"

    @property
    def conversation_id(self) -> str:
        return f"a:personal-{self.aad}"


ALEX = Persona("00000000-0000-0000-0000-0000000000a1", "Alex Wilber", "alex.wilber@contoso.example")
MEGAN = Persona("00000000-0000-0000-0000-0000000000a2", "Megan Bowen", "megan.bowen@contoso.example")
PATTI = Persona("00000000-0000-0000-0000-0000000000a3", "Patti Fernandez", "patti.fernandez@contoso.example")
PRADEEP = Persona("00000000-0000-0000-0000-0000000000a4", "Pradeep Gupta", "pradeep.gupta@contoso.example")
ISAIAH = Persona("00000000-0000-0000-0000-0000000000b1", "Isaiah Langer", "isaiah.langer@contoso.example")
LYNNE = Persona("00000000-0000-0000-0000-0000000000c1", "Lynne Robbins", "lynne.robbins@contoso.example")
ADELE_ID = "00000000-0000-0000-0000-0000000000b2"
LYNNE_ID = LYNNE.aad
DIEGO_ID = "00000000-0000-0000-0000-0000000000c2"
NESTOR_ID = "00000000-0000-0000-0000-0000000000c3"
JOHANNA_ID = "00000000-0000-0000-0000-0000000000c4"
GRADY_ID = "00000000-0000-0000-0000-0000000000c5"
LEE_ID = "00000000-0000-0000-0000-0000000000c6"
MIRIAM_ID = "00000000-0000-0000-0000-0000000000c7"

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def graph_writes(sim: Any) -> list[Any]:
    """Graph calls that change a phone method (sendMail and reads excluded)."""
    return [
        c
        for c in sim.calls
        if c.method in WRITE_METHODS and "/authentication/" in c.path and "phoneMethods" in c.path
    ]


# ---------------------------------------------------------------------------------------------- card helpers


def walk(card: Any) -> Iterator[dict[str, Any]]:
    """Every element of a card (body, containers, column sets, action sets, actions)."""
    stack = [card]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            for key in ("body", "items", "columns", "actions", "card", "inlines"):
                value = item.get(key)
                if isinstance(value, list):
                    stack.extend(reversed(value))
                elif isinstance(value, dict):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(reversed(item))


def card_text(card: dict[str, Any] | None) -> str:
    """All visible words of a card: text blocks, facts, input labels and button titles."""
    if not card:
        return ""
    parts: list[str] = []
    for el in walk(card):
        for key in ("text", "title", "label", "errorMessage"):
            if isinstance(el.get(key), str):
                parts.append(el[key])
        for fact in el.get("facts") or []:
            parts.append(f"{fact.get('title')}: {fact.get('value')}")
    return _MD_ESCAPE.sub(r"\1", "\n".join(parts))


_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")


def action_data(card: dict[str, Any] | None, verb: str) -> dict[str, Any] | None:
    for el in walk(card or {}):
        if el.get("type") in ("Action.Execute", "Action.Submit") and (
            el.get("verb") == verb or (el.get("data") or {}).get("verb") == verb
        ):
            return dict(el.get("data") or {})
    return None


def input_ids(card: dict[str, Any] | None) -> set[str]:
    return {
        el["id"] for el in walk(card or {}) if str(el.get("type", "")).startswith("Input.") and "id" in el
    }


# ---------------------------------------------------------------------------------------------- the harness


@dataclass
class Reply:
    status: int
    body: Any
    # Review: the invoke's own answer (the look-up card) when `body` is the card it was updated to afterwards
    answer: Reply | None = None

    @property
    def card(self) -> dict[str, Any] | None:
        """The card of an adaptiveCard/action invoke answer."""
        if isinstance(self.body, dict) and self.body.get("type") == "application/vnd.microsoft.card.adaptive":
            return self.body.get("value")
        return None

    @property
    def text(self) -> str:
        return card_text(self.card)


class BotHarness:
    def __init__(
        self, server: TestServer, connector: FakeConnector, settings: BotSettings, store: Any, sim: Any
    ):
        self.server = server
        self.connector = connector
        self.settings = settings
        self.store = store
        self.sim = sim
        self._ids = itertools.count(1)
        self._http = aiohttp.ClientSession()

    @property
    def url(self) -> str:
        return str(self.server.make_url("/api/messages"))

    async def close(self) -> None:
        await self._http.close()

    def activity(
        self,
        who: Persona,
        type_: str,
        *,
        conversation_id: str | None = None,
        conversation_type: str = "personal",
        tenant: str | None = TENANT_ID,
        locale: str = "en-US",
        **fields: Any,
    ) -> dict[str, Any]:
        conversation: dict[str, Any] = {
            "id": conversation_id or who.conversation_id,
            "conversationType": conversation_type,
        }
        if tenant:
            conversation["tenantId"] = tenant
        activity = {
            "type": type_,
            "id": f"in-{next(self._ids)}",
            "channelId": "msteams",
            "serviceUrl": self.connector.service_url,
            "timestamp": "2026-11-27T08:00:00.000Z",
            "locale": locale,
            "from": {"id": who.teams_id, "name": who.name, "aadObjectId": who.aad},
            "recipient": {"id": BOT_ID, "name": "MFA phone bot"},
            "conversation": conversation,
            "channelData": {"tenant": {"id": tenant}} if tenant else {},
        }
        activity.update(fields)
        return activity

    async def post(
        self, body: Any, *, raw: bytes | None = None, content_type: str = "application/json"
    ) -> Reply:
        import json

        data = raw if raw is not None else json.dumps(body).encode()
        async with self._http.post(self.url, data=data, headers={"Content-Type": content_type}) as resp:
            try:
                payload: Any = await resp.json(content_type=None)
            except ValueError:
                payload = await resp.text()
            return Reply(resp.status, payload)

    async def message(self, who: Persona, text: str | None, *, value: Any = None, **kw: Any) -> Reply:
        fields: dict[str, Any] = {"text": text} if text is not None else {}
        if value is not None:
            fields["value"] = value
        return await self.post(self.activity(who, "message", **fields, **kw))

    async def invoke(
        self, who: Persona, verb: Any, data: Any, *, reply_to_id: str | None = None, **kw: Any
    ) -> Reply:
        value = {
            "action": {"type": "Action.Execute", "id": "", "verb": verb, "data": data},
            "trigger": "manual",
        }
        fields: dict[str, Any] = {"name": "adaptiveCard/action", "value": value}
        if reply_to_id:
            fields["replyToId"] = reply_to_id
        return await self.post(self.activity(who, "invoke", **fields, **kw))

    async def conversation_update(self, who: Persona, **kw: Any) -> Reply:
        fields = {"membersAdded": [{"id": BOT_ID, "name": "MFA phone bot"}]}
        return await self.post(self.activity(who, "conversationUpdate", **fields, **kw))

    # --- the agent's path ----------------------------------------------------------------------------------
    async def open_form(self, who: Persona, text: str = "set phone", **kw: Any) -> Recorded:
        """Send a command and return the request card the bot posted."""
        mark = self.connector.mark()
        reply = await self.message(who, text, **kw)
        assert reply.status in (200, 201), reply
        return await self.connector.wait_for(
            lambda recs: next(
                (
                    r
                    for r in recs
                    if r.kind in ("send", "reply") and r.card and "targetUserText" in input_ids(r.card)
                ),
                None,
            ),
            since=mark,
        )

    async def review(self, who: Persona, form: Recorded, values: dict[str, Any], **kw: Any) -> Reply:
        """Review on the request card `form` with `values`; returns what the person ends up seeing (see
        review_and_wait)."""
        data = {**(action_data(form.card, "mfa.review") or {"verb": "mfa.review"}), **values}
        return await self.review_and_wait(who, data, reply_to_id=form.activity_id, **kw)

    async def review_and_wait(
        self, who: Persona, data: dict[str, Any], *, reply_to_id: str | None, timeout: float = 15.0, **kw: Any
    ) -> Reply:
        """Send the Review invoke; when it is answered with the look-up card (the Graph work runs after the
        answer), wait for the card at reply_to_id to be updated and return that card (the invoke's answer in
        `.answer`). An answer that is already final (errors beside the fields, a refusal) is returned as is."""
        mark = self.connector.mark()
        answer = await self.invoke(who, "mfa.review", data, reply_to_id=reply_to_id, **kw)
        if answer.status != 200 or not is_lookup(answer.card):
            return answer
        assert reply_to_id is not None, "a look-up card needs a card to update"
        update = await self.card_update(reply_to_id, since=mark, timeout=timeout)
        return Reply(200, {"type": ADAPTIVE_CARD, "value": update.card}, answer=answer)

    async def card_update(self, activity_id: str, *, since: int, timeout: float = 15.0) -> Recorded:
        """The first in-place update of the card at activity_id after `since`."""
        return await self.connector.wait_for(
            lambda recs: next(
                (r for r in recs if r.kind == "update" and r.activity_id == activity_id and r.card), None
            ),
            since=since,
            timeout=timeout,
        )

    async def confirm(
        self, who: Persona, card_id: str | None, confirmation: dict[str, Any], **kw: Any
    ) -> Reply:
        data = action_data(confirmation, "mfa.confirm")
        assert data is not None, card_text(confirmation)
        return await self.invoke(who, "mfa.confirm", data, reply_to_id=card_id, **kw)

    async def final_update(self, activity_id: str, *, timeout: float = 15.0, since: int = 0) -> Recorded:
        """Wait for the card at activity_id to be updated with something other than a progress card."""

        def done(recs: list[Recorded]) -> Recorded | None:
            for r in reversed(recs):
                if (
                    r.kind == "update"
                    and r.activity_id == activity_id
                    and r.card
                    and not _is_progress(r.card)
                ):
                    return r
            return None

        return await self.connector.wait_for(done, timeout=timeout, since=since)

    async def run_change(
        self, who: Persona, values: dict[str, Any], **kw: Any
    ) -> tuple[Reply, Reply, Recorded]:
        """set phone → review → confirm → the final card. Returns (review answer, confirm answer, final update)."""
        form = await self.open_form(who, **kw)
        review = await self.review(who, form, values, **kw)
        assert review.status == 200 and action_data(review.card, "mfa.confirm"), review.text
        mark = self.connector.mark()
        confirm = await self.confirm(who, form.activity_id, review.card or {}, **kw)
        assert confirm.status == 200, confirm
        assert form.activity_id is not None
        final = await self.final_update(form.activity_id, since=mark)
        return review, confirm, final

    async def audit_events(self, request_id: str) -> list[str]:
        return [e.event for e in await self.store.request_audit(request_id)]

    async def all_audit(self) -> list[dict[str, Any]]:
        """Every audit row, oldest first (read straight from the table)."""
        from sqlalchemy import select

        from bot.persistence.store import AuditRow

        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(AuditRow.__table__).order_by(AuditRow.id))).mappings().all()
        return [dict(r) for r in rows]

    async def refusals(self) -> list[dict[str, Any]]:
        return [r for r in await self.all_audit() if r["event"] == "refused"]


def _is_progress(card: dict[str, Any]) -> bool:
    titles = {texts.t(lang, "progress.title") for lang in texts.LANGUAGES}
    return any(el.get("text") in titles for el in walk(card))


def is_lookup(card: dict[str, Any] | None) -> bool:
    """The answer to Review while the user is looked up: a progress card whose Edit brings the form back."""
    return bool(card) and _is_progress(card or {}) and action_data(card, "mfa.edit") is not None


# ---------------------------------------------------------------------------------------------- fixtures


def bot_environ(sim_env: dict[str, str], data_dir: str, **overrides: str) -> dict[str, str]:
    env = dict(sim_env)
    env.update(
        {
            "HELPDESK_GROUP_ID": HELPDESK_GROUP,
            "APPROVER_GROUP_ID": APPROVER_GROUP,
            "PRIVILEGED_GROUP_ID": PRIVILEGED_GROUP,
            "APPROVAL_POLICY": "never",
            "NOTIFY_DEFAULT": "false",
            "ROLE_CACHE_SECONDS": "60",
            "DATA_DIR": data_dir,
            # The test bots have no app id and talk to the fake connector on loopback: the explicit opt-in
            "ALLOW_UNAUTHENTICATED_INBOUND": "true",
            "HOST": "127.0.0.1",
            "PORT": "0",
            "SHUTDOWN_TIMEOUT_SECONDS": "10",
            "PHONE_DEFAULT_REGION": "DE",
            # the simulator shows a stored number at once unless a test delays it: a short 409 read-back window
            "CONFLICT_READBACK_SECONDS": "1",
            # Caller verification is off for the tests written before it (their forms have no verification
            # field); tests/bot/test_verification.py turns it on with its own policies.
            "VERIFICATION_POLICY": "none",
            # the bot's Teams app as the simulator publishes it: a person who never wrote to the bot is reached
            # by installing the app for them (bot/teams/reach.py)
            "TEAMS_APP_ID": DEFAULT_TEAMS_APP_EXTERNAL_ID,
        }
    )
    env.update(overrides)
    return env


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@dataclass
class BotLauncher:
    """Starts real bot instances (create_app on a loopback TestServer) for one test and closes them at its end.

    make_bot and the reliability suite's make_rbot both start their bots through this."""

    sim: Any
    sim_env: dict[str, str]
    connector: FakeConnector
    database: Database
    tmp_path: Any
    _harnesses: list[BotHarness] = field(default_factory=list)
    _servers: list[TestServer] = field(default_factory=list)

    def settings(self, **overrides: str) -> BotSettings:
        """The test settings (bot_environ) with `overrides`, each instance with its own data folder."""
        env = bot_environ(self.sim_env, str(self.tmp_path / f"data-{uuid.uuid4().hex[:6]}"), **overrides)
        return BotSettings.from_env(env)

    async def serve(self, settings: BotSettings, *, store: Any | None, **app_options: Any) -> BotHarness:
        """Serve create_app(settings, store=…, **app_options); store None: a new Store on the test's database."""
        if store is None:
            store = await self.database.open()
        # The start-up tenant check reads Graph in the background; only its own tests turn it on.
        app_options.setdefault("tenant_check", False)
        server = TestServer(create_app(settings, store=store, **app_options), host="127.0.0.1")
        await server.start_server()
        self._servers.append(server)
        harness = BotHarness(server, self.connector, settings, store, self.sim)
        self._harnesses.append(harness)
        return harness

    async def close(self) -> None:
        for harness in self._harnesses:
            await harness.close()
        for server in self._servers:
            await server.close()


MakeBot = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def make_bot(
    sim: Any,
    sim_env: dict[str, str],
    connector: FakeConnector,
    database: Database,  # noqa: F811
    tmp_path: Any,
) -> AsyncIterator[MakeBot]:
    launcher = BotLauncher(sim, sim_env, connector, database, tmp_path)

    async def start(
        *, store: Any | None = None, clock: Any | None = None, reacher: Any | None = None, **overrides: str
    ) -> BotHarness:
        options: dict[str, Any] = {"reacher": reacher} if reacher is not None else {}
        return await launcher.serve(launcher.settings(**overrides), store=store, clock=clock, **options)

    try:
        yield start
    finally:
        await launcher.close()


@pytest.fixture
async def bot(make_bot: MakeBot) -> BotHarness:
    return await make_bot()

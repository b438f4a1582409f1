"""Family 1, inbound authentication: with MicrosoftAppId set, only activities carrying a Bot Framework channel token
signed by a key from the configured OpenID metadata, for this bot, from the channel issuer and for this serviceUrl
are processed. Everything else (emulator tokens and the bot's own outbound tokens included) gets 401 and leaves no
trace: no connector call, no audit row. An authenticated activity from another channel than Teams gets 403 and an
audit row. A bot without an app id (the opt-in on loopback) warns at every start.

The test makes its own RSA key, serves OpenID metadata and JWKS on loopback (in a thread: botbuilder fetches them
with blocking `requests`) and points botbuilder at it through TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL, the
Bot Framework's own setting.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.bot.conftest import PRADEEP, TENANT_ID, BotHarness
from tests.reliability.conftest import MakeRBot, audit_rows, last_audit_id, record_figures

APP_ID = "6a0f3c1e-4b2d-4e8f-9a7c-1d2e3f4a5b6c"
CHANNEL_ISSUER = "https://api.botframework.com"
# The Bot Framework's own Entra tenant: the issuer of emulator tokens and of the bot's outbound tokens
BOT_FRAMEWORK_TENANT = "d6d49420-f39b-4df7-a1dc-d59a935871db"
EMULATOR_ISSUER_V1 = f"https://sts.windows.net/{BOT_FRAMEWORK_TENANT}/"
EMULATOR_ISSUER_V2 = f"https://login.microsoftonline.com/{BOT_FRAMEWORK_TENANT}/v2.0"
CONNECTOR_AUDIENCE = "https://api.botframework.com"
ATTACKER_SERVICE_URL = "https://smba.evil.example/emea/"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class OpenIdServer:
    """OpenID metadata + JWKS on 127.0.0.1, answered from a thread."""

    jwks: list[dict[str, Any]]
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/v1/.well-known/openidconfiguration"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("openidconfiguration"):
                    body = {
                        "issuer": CHANNEL_ISSUER,
                        "jwks_uri": f"{outer.base}/v1/keys",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path.endswith("/keys"):
                    body = {"keys": outer.jwks}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Signer:
    key: rsa.RSAPrivateKey
    kid: str

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": CHANNEL_ISSUER, "aud": APP_ID, "iat": now - 10, "nbf": now - 10, "exp": now + 3600}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    # Bot Framework keys endorse the channels they may sign for (the published keys list many)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams", "webchat"]})
    return jwk


@pytest.fixture(scope="module")
def channel_key() -> Signer:
    return Signer(_new_key(), f"kid-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def openid(channel_key: Signer) -> Iterator[OpenIdServer]:
    server = OpenIdServer([_jwk(channel_key.key, channel_key.kid)])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _auth_env(metadata_url: str) -> dict[str, str]:
    """A bot with its app id, trusting the keys published at metadata_url (for channel and emulator tokens
    alike, so that a token botbuilder would take as an emulator token is signed with a key it trusts)."""
    return {
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": "inbound-auth-test-password",  # only used for outbound calls, none happen here
        "MicrosoftAppType": "SingleTenant",
        "MicrosoftAppTenantId": TENANT_ID,
        "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": metadata_url,
        "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL": metadata_url,
        # botbuilder takes the parameterized path only with the whole set; these are the public cloud's values
        # (nothing outbound happens in these tests).
        "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": CHANNEL_ISSUER,
        "TO_CHANNEL_FROM_BOT_LOGIN_URL": f"https://login.microsoftonline.com/{TENANT_ID}",
        "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": "https://api.botframework.com",
        "OAUTH_URL": "https://api.botframework.com",
    }


@pytest.fixture
async def authed_bot(make_rbot: MakeRBot, openid: OpenIdServer) -> BotHarness:
    return await make_rbot(**_auth_env(openid.metadata_url))


async def _post(bot: BotHarness, activity: dict[str, Any], authorization: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with aiohttp.ClientSession() as http:
        async with http.post(bot.url, data=json.dumps(activity).encode(), headers=headers) as resp:
            try:
                body: Any = await resp.json(content_type=None)
            except ValueError:
                body = await resp.text()
            return resp.status, body


def _review_by_pradeep(bot: BotHarness) -> dict[str, Any]:
    """An invoke that, when processed, leaves a trace: Pradeep has no helpdesk role, so the bot answers with a
    refusal card and writes a "refused" audit row."""
    value = {
        "action": {
            "type": "Action.Execute",
            "verb": "mfa.review",
            "data": {"verb": "mfa.review", "targetUserText": "diego.siciliani@contoso.example"},
        },
        "trigger": "manual",
    }
    return bot.activity(PRADEEP, "invoke", name="adaptiveCard/action", value=value)


async def _count_audit(bot: BotHarness) -> int:
    from sqlalchemy import func, select

    from bot.persistence.store import AUDIT

    async with bot.store._read() as conn:  # noqa: SLF001  (a test reads the table it checks)
        return int(await conn.scalar(select(func.count()).select_from(AUDIT)) or 0)


def _cases(key: Signer, service_url: str) -> dict[str, str | None]:
    other = Signer(_new_key(), key.kid)  # same kid, a key the metadata does not hold: a forged signature
    unknown_kid = Signer(_new_key(), "kid-not-published")
    now = int(time.time())
    return {
        "no Authorization header": None,
        "empty bearer": "Bearer ",
        "not a JWT": "Bearer not-a-token",
        "wrong scheme": "Basic " + key.token(serviceurl=service_url),
        "wrong signature (same kid, other key)": "Bearer " + other.token(serviceurl=service_url),
        "unknown signing key id": "Bearer " + unknown_kid.token(serviceurl=service_url),
        "alg none": "Bearer "
        + jwt.encode(
            {"iss": CHANNEL_ISSUER, "aud": APP_ID, "exp": now + 3600, "serviceurl": service_url},
            key=None,
            algorithm="none",
        ),
        "expired": "Bearer "
        + key.token(serviceurl=service_url, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "not yet valid": "Bearer " + key.token(serviceurl=service_url, nbf=now + 3600, iat=now + 3600),
        "wrong audience": "Bearer " + key.token(serviceurl=service_url, aud=str(uuid.uuid4())),
        "no audience": "Bearer " + key.token(serviceurl=service_url, aud=None),
        "wrong issuer": "Bearer " + key.token(serviceurl=service_url, iss="https://sts.example.invalid/"),
        "serviceUrl claim mismatch": "Bearer " + key.token(serviceurl="https://smba.evil.example/emea/"),
        "serviceUrl claim missing": "Bearer " + key.token(),
    }


async def test_a_token_signed_per_bot_framework_rules_is_accepted(
    authed_bot: BotHarness, channel_key: Signer
) -> None:
    before = await _count_audit(authed_bot)
    token = channel_key.token(serviceurl=authed_bot.connector.service_url)
    status, body = await _post(authed_bot, _review_by_pradeep(authed_bot), f"Bearer {token}")
    assert status == 200, body
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert await _count_audit(authed_bot) == before + 1  # processed: the refusal was audited


async def test_every_bad_token_is_401_and_nothing_is_processed(
    authed_bot: BotHarness, channel_key: Signer
) -> None:
    cases = _cases(channel_key, authed_bot.connector.service_url)
    before_audit = await _count_audit(authed_bot)
    before_connector = authed_bot.connector.mark()
    results: dict[str, int] = {}
    for name, header in cases.items():
        status, body = await _post(authed_bot, _review_by_pradeep(authed_bot), header)
        results[name] = status
        assert status == 401, (name, status, body)
        assert "Traceback" not in json.dumps(body)
    assert await _count_audit(authed_bot) == before_audit
    assert authed_bot.connector.since(before_connector) == []
    # and a message activity (which would make the bot send a card through the connector) is refused too
    message = authed_bot.activity(PRADEEP, "message", text="help")
    status, _ = await _post(authed_bot, message, None)
    assert status == 401
    assert authed_bot.connector.since(before_connector) == []
    record_figures(
        "inbound_auth",
        {"cases": len(results) + 1, "refused_401": sum(s == 401 for s in results.values()) + 1},
    )


async def test_a_valid_token_for_another_service_url_cannot_be_replayed(
    authed_bot: BotHarness, channel_key: Signer
) -> None:
    token = channel_key.token(serviceurl=authed_bot.connector.service_url)
    activity = _review_by_pradeep(authed_bot)
    activity["serviceUrl"] = "https://smba.evil.example/emea/"
    before = await _count_audit(authed_bot)
    status, _ = await _post(authed_bot, activity, f"Bearer {token}")
    assert status == 401
    assert await _count_audit(authed_bot) == before


def _not_channel_tokens(key: Signer, service_url: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Tokens botbuilder's CloudAdapter takes for other callers (the emulator, the bot's own outbound calls): each
    is signed with a published key, and none is a channel token. name -> (token, activity changes)."""
    attacker = {"channelId": "webchat", "serviceUrl": ATTACKER_SERVICE_URL}
    teams = {"channelId": "msteams", "serviceUrl": service_url}
    return {
        # the shape an attacker used: emulator issuer, audience and appid the bot's id, no serviceurl claim
        "emulator v1 token, webchat, attacker's serviceUrl": (
            key.token(iss=EMULATOR_ISSUER_V1, appid=APP_ID, ver="1.0"),
            attacker,
        ),
        "emulator v1 token, Teams activity": (
            key.token(iss=EMULATOR_ISSUER_V1, appid=APP_ID, ver="1.0"),
            teams,
        ),
        "emulator v2 token, Teams activity": (
            key.token(iss=EMULATOR_ISSUER_V2, azp=APP_ID, ver="2.0"),
            teams,
        ),
        # the bot's own outbound token (audience: the Bot Connector), replayed at the bot
        "outbound token (Connector audience), Teams activity": (
            key.token(iss=EMULATOR_ISSUER_V1, aud=CONNECTOR_AUDIENCE, appid=APP_ID, ver="1.0"),
            teams,
        ),
        "channel issuer with the Connector's audience": (
            key.token(aud=CONNECTOR_AUDIENCE, serviceurl=service_url),
            teams,
        ),
        "emulator v1 token with a serviceurl claim": (
            key.token(iss=EMULATOR_ISSUER_V1, appid=APP_ID, ver="1.0", serviceurl=service_url),
            teams,
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "emulator v1 token, webchat, attacker's serviceUrl",
        "emulator v1 token, Teams activity",
        "emulator v2 token, Teams activity",
        "outbound token (Connector audience), Teams activity",
        "channel issuer with the Connector's audience",
        "emulator v1 token with a serviceurl claim",
    ],
)
async def test_a_token_that_is_not_a_channel_token_is_401_and_nothing_is_processed(
    authed_bot: BotHarness, channel_key: Signer, case: str
) -> None:
    token, changes = _not_channel_tokens(channel_key, authed_bot.connector.service_url)[case]
    activity = {**_review_by_pradeep(authed_bot), **changes}
    before_audit = await _count_audit(authed_bot)
    before_connector = authed_bot.connector.mark()
    status, body = await _post(authed_bot, activity, f"Bearer {token}")
    assert status == 401, body
    assert body["error"]["code"] == "Unauthorized"
    assert await _count_audit(authed_bot) == before_audit
    assert authed_bot.connector.since(before_connector) == []


async def test_an_activity_from_another_channel_is_403_and_audited(
    authed_bot: BotHarness, channel_key: Signer
) -> None:
    """A genuine channel token (this bot, this serviceUrl, a key endorsed for webchat) for a Web Chat activity:
    the bot serves Teams only."""
    activity = _review_by_pradeep(authed_bot)
    activity["channelId"] = "webchat"
    after = await last_audit_id(authed_bot.store)
    before_connector = authed_bot.connector.mark()
    token = channel_key.token(serviceurl=authed_bot.connector.service_url)
    status, body = await _post(authed_bot, activity, f"Bearer {token}")
    assert status == 403, body
    assert body["error"]["code"] == "Forbidden"
    rows = await audit_rows(authed_bot.store, after)
    assert [(r["event"], r["details"]["reason"], r["details"]["channel_id"]) for r in rows] == [
        ("refused", "channel_not_allowed", "webchat")
    ]
    assert rows[0]["actor_aad_id"] == PRADEEP.aad
    assert authed_bot.connector.since(before_connector) == []


async def test_without_inbound_authentication_only_teams_activities_are_taken_too(
    make_rbot: MakeRBot,
) -> None:
    bot = await make_rbot()  # the test settings: ALLOW_UNAUTHENTICATED_INBOUND on loopback, no app id
    after = await last_audit_id(bot.store)
    mark = bot.connector.mark()
    reply = await bot.post(bot.activity(PRADEEP, "message", text="help", channelId="directline"))
    assert reply.status == 403
    rows = await audit_rows(bot.store, after)
    assert [(r["event"], r["details"]["reason"]) for r in rows] == [("refused", "channel_not_allowed")]
    assert bot.connector.since(mark) == []


async def test_demo_mode_takes_activities_from_any_channel(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(DEMO_MODE="true")
    mark = bot.connector.mark()
    reply = await bot.post(bot.activity(PRADEEP, "message", text="help", channelId="webchat"))
    assert reply.status in (200, 201)
    assert await bot.connector.wait_for(lambda rs: [r for r in rs if r.text or r.card], since=mark)


async def test_a_bot_without_inbound_authentication_warns_at_every_start(
    make_rbot: MakeRBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mfa_bot.app"):
        await make_rbot()
        await make_rbot()
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "ALLOW_UNAUTHENTICATED_INBOUND" in r.message
    ]
    assert len(warnings) == 2
    assert "127.0.0.1" in warnings[0].message


async def test_when_the_signing_keys_cannot_be_fetched_every_request_is_401(
    make_rbot: MakeRBot, channel_key: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    closed = OpenIdServer([])
    closed.start()
    metadata_url = closed.metadata_url
    closed.stop()  # nothing listens there any more
    bot = await make_rbot(**_auth_env(metadata_url))
    before = await _count_audit(bot)
    token = channel_key.token(serviceurl=bot.connector.service_url)
    with caplog.at_level(logging.WARNING):
        status, body = await _post(bot, _review_by_pradeep(bot), f"Bearer {token}")
    assert status == 401, body
    assert await _count_audit(bot) == before
    assert any(metadata_url in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)

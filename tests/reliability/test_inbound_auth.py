"""Family 1, inbound authentication: with MicrosoftAppId set, only activities carrying a Bot Framework token signed
by a key from the configured OpenID metadata, for this bot, from the channel issuer and for this serviceUrl are
processed. Everything else gets 401 and leaves no trace: no connector call, no audit row.

The test makes its own RSA key, serves OpenID metadata and JWKS on loopback (in a thread: botbuilder fetches them
with blocking `requests`) and points botbuilder at it through TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL, the
Bot Framework's own setting.
"""

from __future__ import annotations

import json
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
from tests.reliability.conftest import MakeRBot, record_figures

APP_ID = "6a0f3c1e-4b2d-4e8f-9a7c-1d2e3f4a5b6c"
CHANNEL_ISSUER = "https://api.botframework.com"


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
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]})
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


@pytest.fixture
async def authed_bot(make_rbot: MakeRBot, openid: OpenIdServer) -> BotHarness:
    return await make_rbot(
        MicrosoftAppId=APP_ID,
        MicrosoftAppPassword="inbound-auth-test-password",  # only used for outbound calls, none happen here
        MicrosoftAppType="SingleTenant",
        MicrosoftAppTenantId=TENANT_ID,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=openid.metadata_url,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=openid.metadata_url,
        # botbuilder takes the parameterized path only with the whole set; these are the public cloud's values
        # (nothing outbound happens in these tests).
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=CHANNEL_ISSUER,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=f"https://login.microsoftonline.com/{TENANT_ID}",
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE="https://api.botframework.com",
        OAUTH_URL="https://api.botframework.com",
    )


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

    from bot.store import AUDIT

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

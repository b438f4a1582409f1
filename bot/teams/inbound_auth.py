"""Inbound authentication: which requests to /api/messages reach the bot at all.

Microsoft's rules for a request from the Bot Connector service ("Authenticate requests from the Bot Connector
service to your bot", https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication?view=azure-bot-service-4.0):
a bearer JWT issued by `https://api.botframework.com`, audience the bot's Microsoft App ID, within its validity
(5 minutes of clock skew), signed (RS256) by a key from the OpenID metadata at
`https://login.botframework.com/v1/.well-known/openidconfiguration`, carrying a `serviceurl` claim equal to the
activity's `serviceUrl`, and signed by a key whose `endorsements` include the activity's `channelId`.

botbuilder 4.17.1's CloudAdapter takes more than that: emulator tokens (issuer the Bot Framework's Entra tenant, no
`serviceurl` claim, so any serviceUrl and channel), skill tokens, and it answers some of them with HTTP 500. This
bot only ever talks to Teams through the Bot Connector, so `ChannelTokenValidator` runs before the adapter and lets
through channel tokens only; the adapter's own check still runs after it.

The signing keys are fetched without blocking the event loop, kept for a day, fetched again (at most every five
minutes) when a token names a key id they do not hold, and kept when a refresh fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from botframework.connector.auth import AuthenticationConstants, GovernmentConstants
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger("mfa_bot.inbound_auth")

ALLOWED_CHANNELS = frozenset({"msteams"})
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512")  # botbuilder's list; the Bot Connector signs with RS256
CLOCK_SKEW_SECONDS = 300
KEYS_MAX_AGE_SECONDS = 24 * 3600.0
UNKNOWN_KEY_REFRESH_SECONDS = 300.0  # an unknown key id fetches the keys again at most this often
RETRY_AFTER_FAILURE_SECONDS = 10.0
MAX_TOKEN_CHARS = 16_384
FETCH_TIMEOUT = httpx.Timeout(10.0)


class TokenRefused(Exception):
    """The request is not from the Bot Framework channel for this bot. `reason` is for the log (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    public_key: Any
    endorsements: frozenset[str]


Fetch = Callable[[str], Any]  # async: url -> parsed JSON


class OpenIdKeys:
    """The signing keys published through one OpenID metadata document."""

    def __init__(
        self,
        metadata_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
    ) -> None:
        self.metadata_url = metadata_url
        self._clock = clock
        self._fetch = fetch or _fetch_json
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> SigningKey | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= KEYS_MAX_AGE_SECONDS
        if stale or kid not in self._keys:
            wait = RETRY_AFTER_FAILURE_SECONDS if stale else UNKNOWN_KEY_REFRESH_SECONDS
            if self._tried_at is None or now - self._tried_at >= wait:
                await self._refresh(seen=self._tried_at)
        return self._keys.get(kid)

    async def _refresh(self, *, seen: float | None) -> None:
        async with self._lock:
            if self._tried_at != seen:
                return  # another request refreshed while this one waited
            self._tried_at = self._clock()
            try:
                metadata = await self._fetch(self.metadata_url)
                jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, Mapping) else None
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                    raise ValueError("the metadata has no jwks_uri")
                document = await self._fetch(jwks_uri)
                keys = _parse_keys(document)
                if not keys:
                    raise ValueError("the key set holds no RSA signing key")
            except Exception as exc:  # noqa: BLE001
                log.warning(
                    "could not fetch the Bot Framework signing keys from %s (%s); %s",
                    self.metadata_url,
                    _describe(exc),
                    "keeping the keys fetched before" if self._keys else "requests get 401 until they are",
                )
                return
            self._keys = keys
            self._fetched_at = self._tried_at


class ChannelTokenValidator:
    """Checks the Authorization header of an activity against Microsoft's rules for channel tokens."""

    def __init__(self, *, app_id: str, issuer: str, keys: OpenIdKeys) -> None:
        self.app_id = app_id
        self.issuer = issuer
        self.keys = keys

    @classmethod
    def from_settings(cls, bf: Any) -> ChannelTokenValidator:
        """From BotFrameworkConfig: the public cloud's issuer and metadata, the US Government cloud's with
        CHANNEL_SERVICE=https://botframework.azure.us, either overridden by TO_BOT_FROM_CHANNEL_TOKEN_ISSUER and
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL (the same settings botbuilder reads)."""
        government = (bf.CHANNEL_SERVICE or "").lower() == GovernmentConstants.CHANNEL_SERVICE
        constants: Any = GovernmentConstants if government else AuthenticationConstants
        issuer = bf.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER or constants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
        metadata = (
            bf.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL or constants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
        )
        return cls(app_id=bf.APP_ID, issuer=issuer, keys=OpenIdKeys(metadata))

    async def validate(
        self, authorization: str | None, *, service_url: Any, channel_id: Any
    ) -> dict[str, Any]:
        """The token's claims; TokenRefused for anything that is not a channel token for this activity."""
        if not authorization:
            raise TokenRefused("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRefused("not a bearer token")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenRefused(f"signing algorithm {str(alg)[:10]!r} not allowed")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("no key id")
        key = await self.keys.get(kid)
        if key is None:
            raise TokenRefused("signing key not published in the channel's OpenID metadata")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=[alg],
                audience=self.app_id,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"token rejected ({type(exc).__name__})") from None
        if claims.get("aud") != self.app_id:  # PyJWT also takes a list that contains it
            raise TokenRefused("audience is not this bot")
        claimed_url = claims.get("serviceurl")
        if not isinstance(claimed_url, str) or not claimed_url:
            raise TokenRefused("no serviceurl claim")
        if claimed_url != service_url:
            raise TokenRefused("serviceurl claim does not match the activity's serviceUrl")
        if not isinstance(channel_id, str) or channel_id not in key.endorsements:
            raise TokenRefused("signing key not endorsed for the activity's channel")
        return claims


def _parse_keys(document: Any) -> dict[str, SigningKey]:
    keys: dict[str, SigningKey] = {}
    entries = document.get("keys") if isinstance(document, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if (
            not isinstance(entry, Mapping)
            or entry.get("kty") != "RSA"
            or not isinstance(entry.get("kid"), str)
        ):
            continue
        try:
            public_key = RSAAlgorithm.from_jwk(json.dumps(dict(entry)))
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        endorsements = entry.get("endorsements")
        names = (
            frozenset(e for e in endorsements if isinstance(e, str))
            if isinstance(endorsements, list)
            else frozenset()
        )
        keys[entry["kid"]] = SigningKey(public_key, names)
    return keys


async def _fetch_json(url: str) -> Any:
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, headers={"User-Agent": "mfa-phone-bot/0.1"}) as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.json()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"

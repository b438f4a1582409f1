"""App-only tokens for Microsoft Graph through msal.

msal is synchronous and its constructor fetches the OpenID metadata over the network, so the application is
built once in a worker thread (`await TokenProvider.create(settings)`) and every token call goes through
`asyncio.to_thread`. msal caches the token and renews it before expiry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from graph.errors import TokenError
from graph.settings import GraphSettings

log = logging.getLogger("graph.auth")

# Hosts where msal's instance discovery is meaningful (public and sovereign clouds).
_MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
        "login-us.microsoftonline.com",
    }
)


class PinnedVerifySession(requests.Session):
    """A requests session whose `verify` is what we configured, whatever the environment says.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `Session.verify` (merge_environment_settings),
    which made msal distrust a private CA given explicitly. Proxies and the rest still come from the
    environment as usual.
    """

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        merged["verify"] = self.verify if verify in (None, True) else verify
        return merged


def make_session(ca_file: str | None) -> requests.Session:
    session = PinnedVerifySession()
    session.verify = ca_file if ca_file else True
    return session


def is_microsoft_login_host(authority_host: str) -> bool:
    host = (urlsplit(authority_host).hostname or "").lower()
    return host in _MICROSOFT_LOGIN_HOSTS


def certificate_credential(path: str, password: str | None) -> dict[str, Any]:
    """msal client_credential for a PEM holding the private key and the certificate.

    The thumbprints come from the certificate itself. msal 1.39 computes SHA-256 and SHA-1 from
    `public_certificate` and signs with PS256 + x5t#S256 (what Entra prefers); passing `thumbprint` would force
    the legacy SHA-1/RS256 form, so we only pass the certificate and keep our own SHA-1 for logs and checks.
    """
    with open(path, "rb") as fh:
        pem = fh.read()
    certificate_pem = _first_block(pem, b"CERTIFICATE")
    key_pem = _first_private_key(pem)
    if certificate_pem is None or key_pem is None:
        raise TokenError(
            f"{path} must hold a PEM private key and a PEM certificate", code="invalid_certificate"
        )
    credential: dict[str, Any] = {
        "private_key": key_pem.decode("ascii"),
        "public_certificate": certificate_pem.decode("ascii"),
    }
    if password:
        credential["passphrase"] = password
    return credential


def certificate_thumbprints(certificate_pem: str | bytes) -> tuple[str, str]:
    """(sha1, sha256) thumbprints as upper-case hex, as the Entra portal shows them."""
    data = certificate_pem.encode("ascii") if isinstance(certificate_pem, str) else certificate_pem
    cert = x509.load_pem_x509_certificate(data)
    return (
        cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S324 - thumbprint, not a security hash
        cert.fingerprint(hashes.SHA256()).hex().upper(),
    )


class TokenProvider:
    """`await provider.token()` gives a Graph access token for the configured application."""

    def __init__(
        self,
        app: msal.ConfidentialClientApplication,
        scope: str,
        *,
        secret: str | None = None,
        thumbprint: str | None = None,
    ) -> None:
        self._app = app
        self._scopes = [scope]
        self._secret = secret
        # One acquisition at a time: requests that need a token together (the checks before a change read several
        # things at once) wait for the first one and then take the token from msal's cache, instead of each
        # asking the endpoint (and meeting each other in msal's replay of a failed answer).
        self._acquiring = asyncio.Lock()
        self.thumbprint = thumbprint

    @classmethod
    async def create(
        cls, settings: GraphSettings, *, session: requests.Session | None = None, http_timeout: float = 30.0
    ) -> TokenProvider:
        """Build the msal application once, off the event loop (its constructor fetches metadata)."""
        http = session or make_session(settings.ca_file)
        thumbprint: str | None = None
        credential: str | dict[str, Any]
        if settings.client_certificate:
            credential = await asyncio.to_thread(
                certificate_credential, settings.client_certificate, settings.client_certificate_password
            )
            thumbprint = certificate_thumbprints(credential["public_certificate"])[0]
        else:
            assert settings.client_secret is not None  # guaranteed by GraphSettings
            credential = settings.client_secret

        def build() -> msal.ConfidentialClientApplication:
            return msal.ConfidentialClientApplication(
                settings.client_id,
                client_credential=credential,
                authority=settings.authority,
                instance_discovery=is_microsoft_login_host(settings.authority_host),
                http_client=http,
                timeout=http_timeout,
                token_cache=msal.TokenCache(),
            )

        try:
            app = await asyncio.to_thread(build)
        except TokenError:
            raise
        except Exception as exc:  # network, TLS, malformed metadata, bad key: one clear error
            raise TokenError(
                _redact(
                    f"cannot reach the authority {settings.authority}: {_describe(exc)}",
                    settings.client_secret,
                ),
                code="authority_unreachable",
                url=settings.authority,
            ) from None
        log.info(
            "token provider ready",
            extra={
                "authority": settings.authority,
                "client_id": settings.client_id,
                "credential": "certificate" if thumbprint else "secret",
                "thumbprint": thumbprint,
            },
        )
        return cls(app, settings.scope, secret=settings.client_secret, thumbprint=thumbprint)

    async def token(self) -> str:
        try:
            async with self._acquiring:
                result = await asyncio.to_thread(self._app.acquire_token_for_client, scopes=self._scopes)
        except Exception as exc:  # requests errors, TLS failures, a 5xx page that is not JSON
            # msal replays a failed answer (5xx/429) from memory for its Retry-After, 5 s by default, so a call
            # right after this one fails the same way without asking the endpoint (graph-behaviour.md §10).
            untrusted = isinstance(exc, requests.exceptions.SSLError)
            raise TokenError(
                _redact(
                    f"the token endpoint's certificate is not trusted: {_describe(exc)}"
                    if untrusted
                    else f"token endpoint unreachable: {_describe(exc)}",
                    self._secret,
                ),
                code="tls_untrusted" if untrusted else "token_endpoint_unreachable",
            ) from None
        if not isinstance(result, dict):
            raise TokenError("token endpoint gave no answer", code="no_response")
        access_token = result.get("access_token")
        if access_token:
            return str(access_token)
        code = str(result.get("error") or "token_error")
        description = str(result.get("error_description") or "")
        codes = result.get("error_codes")
        aadsts = f"AADSTS{codes[0]}" if isinstance(codes, list) and codes else None
        if aadsts is None and description.startswith("AADSTS"):
            aadsts = description.split(":", 1)[0]
        first_line = description.splitlines()[0].strip() if description else "the token endpoint refused"
        error = TokenError(
            _redact(first_line, self._secret)[:500],
            code=code,
            aadsts=aadsts,
            request_id=_str_or_none(result.get("trace_id")),
            client_request_id=_str_or_none(result.get("correlation_id")),
        )
        log.warning(
            "token request refused", extra={"code": code, "aadsts": aadsts, "request_id": error.request_id}
        )
        raise error

    async def invalidate(self) -> None:
        """Drop cached access tokens so the next `token()` asks the endpoint again (after a Graph 401)."""

        def drop() -> None:
            cache = self._app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)

        await asyncio.to_thread(drop)


def _first_block(pem: bytes, label: bytes) -> bytes | None:
    begin = b"-----BEGIN " + label + b"-----"
    end = b"-----END " + label + b"-----"
    start = pem.find(begin)
    if start < 0:
        return None
    stop = pem.find(end, start)
    if stop < 0:
        return None
    return pem[start : stop + len(end)] + b"\n"


def _first_private_key(pem: bytes) -> bytes | None:
    for label in (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"EC PRIVATE KEY"):
        block = _first_block(pem, label)
        if block is not None:
            return block
    return None


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


def _redact(text: str, secret: str | None) -> str:
    if secret and secret in text:
        text = text.replace(secret, "***")
    return text


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)

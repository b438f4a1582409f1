"""One typed error family for everything Microsoft Graph or the Entra token endpoint refuses.

`error_from_response` is the one mapping from an HTTP answer (status, body, headers) to a `GraphError`.
It understands Graph's `{"error": {"code", "message", "innerError": {"request-id", ...}}}` shape, the Entra
token endpoint's `{"error": "invalid_client", "error_description": "AADSTS...", "error_codes": [...]}` shape,
bodies that are not JSON at all and missing headers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any


class GraphError(Exception):
    """Graph (or the token endpoint, or the network) refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after = retry_after
        self.method = method
        self.url = url

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.code) if p not in (None, ""))
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request-id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(GraphError):
    """400."""


class AuthenticationError(GraphError):
    """401: the token was refused."""


class PermissionDeniedError(GraphError):
    """403: the application lacks a permission (or a role) for this call."""


class NotFoundError(GraphError):
    """404."""


class ConflictError(GraphError):
    """409, e.g. phoneNumberNotUnique."""


class ThrottledError(GraphError):
    """429 that was still there when the retries or the deadline ran out."""


class GraphUnavailableError(GraphError):
    """5xx after the retries, or the overall deadline passed."""


class TransportError(GraphError):
    """No usable HTTP answer: connection refused or dropped, timeout; or a 502/503/504 answer to a write.

    `status` is None when nothing came back, else the 5xx that answered a write. `write_outcome_unknown` is True
    when a write (POST/PATCH/DELETE) may have reached Graph: its result is unknown, it was not repeated, and the
    caller must read the state back before doing anything else.
    """

    def __init__(self, message: str, *, write_outcome_unknown: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.write_outcome_unknown = write_outcome_unknown


class TokenError(GraphError):
    """The token endpoint refused to issue a token (or could not be reached).

    `.code` is the OAuth error (e.g. "invalid_client"); `.aadsts` the Entra error number (e.g. "AADSTS7000215")
    when the endpoint sent one.
    """

    def __init__(self, message: str, *, aadsts: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.aadsts = aadsts

    def __str__(self) -> str:
        text = super().__str__()
        if self.aadsts and self.aadsts not in text:
            text = f"{text} [{self.aadsts}]"
        return text

    @property
    def transient(self) -> bool:
        """True when the sign-in service did not answer properly (down, busy, unreachable): try again later.

        False when Entra answered with a refusal (credentials, consent, tenant, scope): trying again will not help.
        """
        if self.code in _TRANSIENT_TOKEN_CODES or self.aadsts in _TRANSIENT_AADSTS:
            return True
        return self.status is not None and (self.status == 429 or self.status >= 500)

    @property
    def problem(self) -> str:
        """What is wrong, in words an administrator can act on (for a refusal that is not transient)."""
        if self.aadsts in _AADSTS_PROBLEMS:
            return _AADSTS_PROBLEMS[self.aadsts]
        return _TOKEN_CODE_PROBLEMS.get(
            self.code, "Microsoft Entra refused to issue a token for the application"
        )


# OAuth/Entra answers that mean "the sign-in service could not serve the request now" (RFC 6749 §5.2 allows
# temporarily_unavailable and server_error; AADSTS90033 is Entra's "a transient error has occurred"), and our own
# codes for "no answer at all" (graph/auth.py).
_TRANSIENT_TOKEN_CODES = frozenset(
    {
        "temporarily_unavailable",
        "server_error",
        "token_endpoint_unreachable",
        "no_response",
        "authority_unreachable",
    }
)
_TRANSIENT_AADSTS = frozenset({"AADSTS90033"})

_AADSTS_PROBLEMS: dict[str, str] = {
    "AADSTS7000215": "the client secret is wrong (GRAPH_CLIENT_SECRET does not match a secret of the application)",
    "AADSTS7000222": "the client secret has expired; create a new secret for the application and set "
    "GRAPH_CLIENT_SECRET",
    "AADSTS700016": "no application with GRAPH_CLIENT_ID exists in the tenant GRAPH_TENANT_ID, or it was never "
    "consented to there",
    "AADSTS700027": "the certificate is not registered for the application (GRAPH_CLIENT_CERTIFICATE), or the "
    "signed assertion is not valid",
    "AADSTS700024": "the signed client assertion is outside its valid time range; check the server's clock",
    "AADSTS90002": "the tenant GRAPH_TENANT_ID does not exist in this cloud (GRAPH_AUTHORITY_HOST)",
    "AADSTS900023": "GRAPH_TENANT_ID is not a valid tenant id or domain",
    "AADSTS70011": "the scope GRAPH_SCOPE is not valid for a client-credentials token",
    "AADSTS1002012": "the scope GRAPH_SCOPE is not valid for a client-credentials token (it must end in /.default)",
    "AADSTS500011": "the resource of GRAPH_SCOPE is not known in the tenant; check GRAPH_SCOPE and GRAPH_BASE_URL",
    "AADSTS65001": "an administrator has not consented to the application's permissions",
    "AADSTS7000112": "the application is disabled in the tenant",
}
_TOKEN_CODE_PROBLEMS: dict[str, str] = {
    "invalid_client": "Microsoft Entra refused the application's credentials (GRAPH_CLIENT_ID and the client "
    "secret or certificate)",
    "unauthorized_client": "the application GRAPH_CLIENT_ID is not known in the tenant or not allowed to sign in "
    "there (admin consent)",
    "invalid_scope": "the scope GRAPH_SCOPE is not valid for the application",
    "invalid_resource": "the resource of GRAPH_SCOPE is not known in the tenant",
    "invalid_certificate": "the certificate file (GRAPH_CLIENT_CERTIFICATE) cannot be used",
    "tls_untrusted": "the sign-in service's TLS certificate is not trusted (SSL_CERT_FILE / REQUESTS_CA_BUNDLE)",
}

_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: ThrottledError,
}

_AADSTS = re.compile(r"AADSTS\d+")
_MAX_MESSAGE = 500


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Case-insensitive header lookup that works for httpx.Headers and for the plain dicts inside $batch."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = item
                break
    if value is None:
        return None
    return str(value).strip() or None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds (fractional too, e.g. "2.128") or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def error_class_for(status: int | None) -> type[GraphError]:
    if status is None:
        return GraphError
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 500 <= status <= 599:
        return GraphUnavailableError
    return GraphError


def error_from_response(
    status: int,
    body: bytes | str | dict[str, Any] | None,
    headers: Mapping[str, Any] | None,
    *,
    method: str | None = None,
    url: str | None = None,
    client_request_id: str | None = None,
) -> GraphError:
    """Map one HTTP error answer to the typed family. Never raises."""
    data = _as_json(body)
    code = ""
    message = ""
    request_id = header(headers, "request-id")
    echoed_client_id = header(headers, "client-request-id")
    aadsts: str | None = None
    is_token_shape = False

    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):  # Graph
            code = str(error.get("code") or "")
            message = str(error.get("message") or "")
            inner = error.get("innerError") or error.get("innererror") or {}
            if isinstance(inner, dict):
                request_id = request_id or _str_or_none(inner.get("request-id"))
                echoed_client_id = echoed_client_id or _str_or_none(inner.get("client-request-id"))
        elif isinstance(error, str):  # Entra token endpoint
            is_token_shape = True
            code = error
            description = str(data.get("error_description") or "")
            message = description.splitlines()[0].strip() if description else ""
            codes = data.get("error_codes")
            if isinstance(codes, list) and codes:
                aadsts = f"AADSTS{codes[0]}"
            else:
                found = _AADSTS.search(description)
                aadsts = found.group(0) if found else None
            request_id = request_id or _str_or_none(data.get("trace_id"))
            echoed_client_id = echoed_client_id or _str_or_none(data.get("correlation_id"))
    elif data is None and body:
        message = _text_excerpt(body)

    if not code:
        code = _default_code(status)
    if not message:
        message = f"HTTP {status} without an error message"
    message = message[:_MAX_MESSAGE]
    retry_after = parse_retry_after(header(headers, "Retry-After"))

    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id,
        "client_request_id": client_request_id or echoed_client_id,
        "retry_after": retry_after,
        "method": method,
        "url": url,
    }
    if is_token_shape:
        return TokenError(message, aadsts=aadsts, **common)
    return error_class_for(status)(message, **common)


def _as_json(body: bytes | str | dict[str, Any] | None) -> Any:
    if body is None or isinstance(body, dict):
        return body
    if isinstance(body, bytes | bytearray):
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
    if isinstance(body, str):
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None
    return None


def _text_excerpt(body: bytes | str | dict[str, Any]) -> str:
    if isinstance(body, bytes | bytearray):
        text = bytes(body[:400]).decode("utf-8", "replace")
    else:
        text = str(body)[:400]
    text = re.sub(r"<[^>]+>", " ", text)  # HTML error pages from proxies
    text = " ".join(text.split())
    return text[:200]


def _default_code(status: int) -> str:
    return {
        400: "badRequest",
        401: "unauthenticated",
        403: "accessDenied",
        404: "notFound",
        409: "conflict",
        429: "TooManyRequests",
        502: "badGateway",
        503: "serviceUnavailable",
        504: "gatewayTimeout",
    }.get(status, f"http{status}")


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)

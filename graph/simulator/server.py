"""The Graph + Entra login simulator: an aiohttp HTTPS server on loopback that behaves as graph-behaviour.md says.

Graph requests go through one pipeline (latency, injected faults, bearer token, app role, throttles, handler,
standard headers, call record). ``$batch`` items run through the same pipeline minus the transport parts, so a
per-item 429 or 403 looks exactly like the standalone answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import math
import os
import re
import secrets
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jwt
from aiohttp import web

from graph import permissions

from . import login
from .behaviour import Behaviour, Call, Fault, Faults
from .certs import ensure_certs
from .odata import FilterSpec, UnsupportedQuery, operators, parse_filter
from .phones import METHOD_IDS, METHOD_TYPES, PHONE_TYPES, InvalidPhoneNumber, check_number
from .tenant import Phone, TeamsApp, TeamsAppInstallation, Tenant, User

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
AGS_DIAGNOSTIC = json.dumps(
    {
        "ServerInfo": {
            "DataCenter": "North Europe",
            "Slice": "E",
            "Ring": "4",
            "ScaleUnit": "000",
            "RoleInstance": "DB1PEPF00000000",
            "ADSiteName": "NEU",
        }
    },
    separators=(",", ":"),
)
_SELF_FOR_USER = "TeamsAppInstallation.ReadWriteSelfForUser.All"
MAX_PAGE = 999
DEFAULT_PAGE = 100
_CALL_KEY = web.RequestKey("graph_simulator_call", Call)  # the request's Call record, kept on the request

# Which permissions each endpoint accepts is graph/permissions.py (one table, from Microsoft's pages). These two
# sets only decide what a directoryObject collection shows of an object type: without a permission to read that
# type, "members of that type are returned but with limited information" (@odata.type and id, the rest null), as
# the pages of transitiveMemberOf, transitiveMembers and owners say.
USER_READ = frozenset().union(*permissions.USER_READ.accepted)
# List userRegistrationDetails (authenticationmethodsroot-list-userregistrationdetails,
# https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails): application
# permission AuditLog.Read.All, "Higher privileged permissions: Not available"; UserAuthenticationMethod.* is not
# among them.
REPORT_READ = frozenset({"AuditLog.Read.All"})
GROUP_READ = frozenset().union(*permissions.GROUP_OWNERS.accepted)
# Application.ReadWrite.OwnedBy is accepted for any app's owners (Graph limits it to apps the caller owns).

USER_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_PROPERTIES = frozenset(USER_DEFAULT_SELECT + ("userType", "usageLocation", "accountEnabled"))

ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
}


def _graph_date() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


class GraphFailure(Exception):
    """A Graph error answer: status, code, message (+ extra headers, extra innerError fields)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        inner: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}


def not_found(ref: str) -> GraphFailure:
    return GraphFailure(
        404,
        "Request_ResourceNotFound",
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
    )


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphFailure:
    return GraphFailure(400, code, message)


def _with_mailbox(user: User | None, address: str) -> User:
    """The sender or in-tenant recipient of sendMail; Graph's answer when it is unknown or has no mailbox."""
    if user is None:
        raise GraphFailure(404, "ErrorInvalidUser", f"The requested user '{address}' is invalid.")
    if not user.has_mailbox:
        raise GraphFailure(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    return user


@dataclass(frozen=True)
class Identity:
    app_id: str
    tenant_id: str
    roles: frozenset[str]


@dataclass
class GraphRequest:
    method: str
    path: str  # relative to /v1.0, starts with "/"
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    request_id: str
    client_request_id: str
    identity: Identity | None = None
    in_batch: bool = False


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[GraphRequest, re.Match[str]], GraphResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    # the permission sets that allow the call (graph/permissions.py); None: the handler decides
    accepted: tuple[frozenset[str], ...] | None
    kind: str  # cost class for the identity throttle: "users", "read", "write", "check", "transitive", "report", "batch"
    forbidden_message: str = "Insufficient privileges to complete the operation."
    forbidden_code: str = "Authorization_RequestDenied"


class _Bucket:
    """A token bucket: ``capacity`` units refilled evenly over ``window_s``."""

    __slots__ = ("capacity", "window_s", "tokens", "stamp")

    def __init__(self, capacity: float, window_s: float) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self, cost: float) -> float:
        """Take ``cost`` units; return 0 on success, else the seconds until they would be available."""
        now = time.monotonic()
        rate = self.capacity / self.window_s
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / rate


def _encode_skiptoken(index: int) -> str:
    return base64.urlsafe_b64encode(f"sim:{index}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, value = raw.split(":", 1)
        if prefix != "sim":
            raise ValueError(raw)
        index = int(value)
        if index < 0:
            raise ValueError(raw)
        return index
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request("Invalid $skiptoken value.") from exc


def _select(obj: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return obj
    return {k: v for k, v in obj.items() if k in select or k.startswith("@odata.")}


def _parse_select(query: dict[str, str], allowed: frozenset[str] | None, type_name: str) -> list[str] | None:
    raw = query.get("$select")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if allowed is not None:
        for name in names:
            if name not in allowed:
                raise bad_request(f"Could not find a property named '{name}' on type '{type_name}'.")
    return names


def _parse_expand(query: dict[str, str], allowed: set[str], type_name: str) -> dict[str, list[str] | None]:
    """`$expand=a,b($select=x,y)` as {name: nested $select or None}; an unknown navigation property is a 400."""
    raw = query.get("$expand")
    result: dict[str, list[str] | None] = {}
    if not raw:
        return result
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", raw):
        part = part.strip()
        if not part:
            continue
        name, _, rest = part.partition("(")
        name = name.strip()
        if name not in allowed:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )
        nested = None
        if rest:
            options = dict(o.split("=", 1) for o in rest.rstrip(")").split(";") if "=" in o)
            if "$select" in options:
                nested = [n.strip() for n in options["$select"].split(",") if n.strip()]
        result[name] = nested
    return result


def _page_size(query: dict[str, str]) -> int:
    raw = query.get("$top")
    if raw is None:
        return DEFAULT_PAGE
    try:
        top = int(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid value '{raw}' for $top.") from exc
    if top < 1 or top > MAX_PAGE:
        raise bad_request(
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive."
        )
    return top


class Simulator:
    """See docs/ARCHITECTURE.md (graph/simulator/)."""

    def __init__(
        self,
        tenant: Tenant | str | os.PathLike[str] | dict[str, Any],
        behaviour: Behaviour | None = None,
        *,
        cert_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(tenant, Tenant):
            self._initial: Any = tenant.to_dict()
            self.tenant = tenant
        else:
            self._initial = tenant
            self.tenant = Tenant.load(tenant)
        self.behaviour = behaviour or Behaviour()
        self.faults = Faults()
        self.calls: list[Call] = []
        self.outbox: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, Any]] = []
        self._cert_dir = cert_dir
        self._key = secrets.token_bytes(32)
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._report_hits: dict[tuple[str, str], deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._routes = self._build_routes()
        self.host = "127.0.0.1"
        self.port = 0
        self.ca_file = ""

    # ----- lifecycle ------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://{self._url_host}:{self.port}/v1.0"

    @property
    def authority_host(self) -> str:
        return f"https://{self._url_host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant.tenant_id}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        paths = await asyncio.to_thread(ensure_certs, self._cert_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(paths.cert_file, paths.key_file)
        self.ca_file = str(paths.ca_file)
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/v1.0/{tail:.*}", self._timed_graph_entry)
        app.router.add_route("*", "/_sim/{tail:.*}", self._control)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        app.router.add_get("/{tenant}/discovery/v2.0/keys", self._jwks)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=context)
        await site.start()
        server = site._server  # noqa: SLF001 - the only way to learn the bound port
        assert server is not None
        self.host = host
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reset(self) -> None:
        """Back to the tenant it was started with; calls, outbox, faults and throttles cleared."""
        self.tenant = Tenant.load(self._initial)
        self.calls.clear()
        self.outbox.clear()
        self.token_requests.clear()
        self.faults.clear()
        self._buckets.clear()
        self._report_hits.clear()

    def graph_calls(self, method: str | None = None, path_regex: str | None = None) -> list[Call]:
        """Recorded Graph calls, optionally filtered by method and a regex searched in the path."""
        return [
            c
            for c in self.calls
            if (method is None or c.method == method.upper())
            and (path_regex is None or re.search(path_regex, c.path))
        ]

    # ----- login ----------------------------------------------------------------------------------------------
    def _login_error(self, exc: login.LoginError, request: web.Request) -> web.Response:
        body = exc.body(request.headers.get("client-request-id"))
        headers = {
            "Cache-Control": "no-store, no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": body["trace_id"],
        }
        return web.json_response(body, status=exc.status, headers=headers)

    async def _openid(self, request: web.Request) -> web.Response:
        segment = request.match_info["tenant"]
        if not login.resolve_tenant(self.tenant, segment):
            err = login.LoginError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
            return self._login_error(err, request)
        return web.json_response(
            login.openid_configuration(self._request_origin(request), segment, self.tenant)
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": []})

    def _request_origin(self, request: web.Request) -> str:
        return f"https://{request.host}"

    async def _token(self, request: web.Request) -> web.StreamResponse:
        segment = request.match_info["tenant"]
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        record: dict[str, Any] = {
            "tenant": segment,
            "client_id": fields.get("client_id"),
            "grant_type": fields.get("grant_type"),
            "scope": fields.get("scope"),
            "auth": "assertion"
            if "client_assertion" in fields
            else ("secret" if "client_secret" in fields else None),
            "ts": time.time(),
        }
        self.token_requests.append(record)
        fault = self.faults.take("POST", request.path)
        if fault is not None:
            record["status"] = fault.action if isinstance(fault.action, int) else None
            if isinstance(fault.action, int):
                headers = (
                    {"Retry-After": self._retry_after_text(fault.retry_after)} if fault.retry_after else {}
                )
                err = login.LoginError(
                    fault.action,
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                )
                body = err.body(request.headers.get("client-request-id"))
                return web.json_response(body, status=fault.action, headers=headers)
            return await self._abort(request, fault.action)
        try:
            response = self._token_response(request, segment, fields)
        except login.LoginError as exc:
            record["status"] = exc.status
            record["error"] = exc.error
            return self._login_error(exc, request)
        record["status"] = 200
        return web.json_response(
            response, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        )

    def _token_response(self, request: web.Request, segment: str, fields: dict[str, str]) -> dict[str, Any]:
        if not login.resolve_tenant(self.tenant, segment):
            raise login.LoginError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
        basic_id = basic_secret = None
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:]).decode()
                basic_id, basic_secret = decoded.split(":", 1)
            except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
                raise login.LoginError(
                    401, "invalid_client", 7000216, "Invalid Basic authorization header."
                ) from exc
        grant = fields.get("grant_type")
        if grant != "client_credentials":
            raise login.LoginError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = fields.get("client_id") or basic_id
        if not client_id:
            raise login.LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        scope = fields.get("scope", "")
        if not scope:
            raise login.LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise login.LoginError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
                "with /.default suffixed to the resource identifier (application ID URI).",
            )
        origins = [self._request_origin(request), self.authority_host]
        if scopes[0] not in login.accepted_scopes(origins):
            resource = scopes[0].removesuffix("/.default")
            raise login.LoginError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {self.tenant.display_name}.",
            )
        app = self.tenant.app(client_id)
        if app is None:
            raise login.LoginError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant.display_name}'. "
                "This can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant.",
            )
        secret = fields.get("client_secret") or basic_secret
        assertion = fields.get("client_assertion")
        if assertion:
            if fields.get("client_assertion_type") != login.ASSERTION_TYPE:
                raise login.LoginError(400, "invalid_request", 50012, "Invalid client_assertion_type.")
            audiences = []
            for origin in origins:
                for seg in {segment, self.tenant.tenant_id, self.tenant.default_domain}:
                    audiences.append(f"{origin}/{seg}/oauth2/v2.0/token")
            login.verify_assertion(app, assertion, audiences)
        elif secret:
            login.check_secret(app, secret)
        else:
            raise login.LoginError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        return login.issue_token(
            app, self.tenant, self._key, self.behaviour.token_lifetime_s, self.authority_host
        )

    # ----- the Graph pipeline ---------------------------------------------------------------------------------
    def _base_headers(self, request_id: str, client_request_id: str) -> dict[str, str]:
        return {
            "request-id": request_id,
            "client-request-id": client_request_id,
            "x-ms-ags-diagnostic": AGS_DIAGNOSTIC,
            "Cache-Control": "no-cache",
            "Strict-Transport-Security": "max-age=31536000",
        }

    def _retry_after_text(self, seconds: float | None) -> str:
        value = max(seconds or 1.0, 0.001)
        if self.behaviour.fractional_retry_after:
            return f"{max(value, 0.001):.3f}"
        return str(max(1, math.ceil(value)))

    def _error_body(self, failure: GraphFailure, rid: str, crid: str) -> dict[str, Any]:
        inner = {"date": _graph_date(), "request-id": rid, "client-request-id": crid}
        inner.update(failure.inner)
        return {"error": {"code": failure.code, "message": failure.message, "innerError": inner}}

    def _failure_response(self, failure: GraphFailure, rid: str, crid: str) -> GraphResponse:
        return GraphResponse(failure.status, self._error_body(failure, rid, crid), dict(failure.headers))

    async def _timed_graph_entry(self, request: web.Request) -> web.StreamResponse:
        """_graph_entry, with the request's arrival and the hand-back of its answer on its Call record."""
        arrived = time.time()
        try:
            return await self._graph_entry(request)
        finally:
            call = request.get(_CALL_KEY)
            if call is not None:
                call.started, call.ended = arrived, time.time()

    async def _graph_entry(self, request: web.Request) -> web.StreamResponse:
        rid = str(uuid.uuid4())
        crid = request.headers.get("client-request-id") or rid
        path = request.path
        rel = path[len("/v1.0") :] or "/"
        query = {k: v for k, v in request.query.items()}
        raw = await request.read()
        body: Any = None
        body_error: GraphFailure | None = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = raw.decode("utf-8", "replace")
                body_error = bad_request(
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
                    "BadRequest",
                )
        is_batch = rel == "/$batch"
        delay_ms = self.behaviour.batch_latency_ms if is_batch else self.behaviour.latency_ms
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        call = Call(
            method=request.method,
            path=path,
            query=query,
            status=None,
            json=body,
            request_id=rid,
            ts=time.time(),
            client_request_id=request.headers.get("client-request-id"),
        )
        self.calls.append(call)
        request[_CALL_KEY] = call
        fault = self.faults.take(request.method, path)
        if fault is None and is_batch and body_error is None:
            fault = self._batch_connection_fault(body)
        if fault is not None and not fault.after_apply:
            call.fault = str(fault.action)
            if isinstance(fault.action, int):
                response = self._fault_response(fault.action, fault.retry_after, rid, crid)
                call.status = response.status
                return self._to_web(response, rid, crid)
            return await self._abort(request, fault.action)
        greq = GraphRequest(
            method=request.method,
            path=rel,
            query=query,
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            request_id=rid,
            client_request_id=crid,
        )
        if body_error is not None:
            response = self._failure_response(body_error, rid, crid)
        else:
            response = self._process(greq)
        call.status = response.status
        if fault is not None:  # after_apply: the request was carried out, the answer is lost
            call.fault = f"apply_then_{fault.action}"
            if isinstance(fault.action, int):
                response = self._fault_response(fault.action, fault.retry_after, rid, crid)
                call.status = response.status
                return self._to_web(response, rid, crid)
            call.status = None
            return await self._abort(request, fault.action)
        return self._to_web(response, rid, crid)

    def _batch_connection_fault(self, body: Any) -> Fault | None:
        """A connection fault ("drop", "timeout") injected for a request the $batch carries: the connection that
        fails is the $batch's, so it cuts the whole $batch (before its requests run, or after with after_apply)."""
        requests = body.get("requests") if isinstance(body, dict) else None
        for item in requests if isinstance(requests, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            url = item["url"]
            path = urlsplit(url if url.startswith("/") else "/" + url).path
            fault = self.faults.take_connection(str(item.get("method") or "GET").upper(), "/v1.0" + path)
            if fault is not None:
                return fault
        return None

    def _fault_response(self, status: int, retry_after: float | None, rid: str, crid: str) -> GraphResponse:
        codes = {
            403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
            429: ("TooManyRequests", "Please retry again later."),
            500: ("generalException", "General exception while processing."),
            502: ("BadGateway", "Bad Gateway"),
            503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
            504: ("GatewayTimeout", "The gateway did not receive a response in time."),
        }
        code, message = codes.get(status, ("generalException", f"Injected failure {status}."))
        headers = {"Retry-After": self._retry_after_text(retry_after)} if retry_after is not None else {}
        return self._failure_response(GraphFailure(status, code, message, headers), rid, crid)

    async def _abort(self, request: web.Request, action: str | int) -> web.StreamResponse:
        if action == "timeout" and self._stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.behaviour.hang_s)
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # the connection is gone; nothing is sent

    def _to_web(self, response: GraphResponse, rid: str, crid: str) -> web.Response:
        headers = self._base_headers(rid, crid)
        headers.update(response.headers)
        if response.body is None:
            return web.Response(status=response.status, headers=headers)
        is_error = isinstance(response.body, dict) and "error" in response.body
        headers["Content-Type"] = "application/json" if is_error else JSON_TYPE
        if not is_error:
            headers["OData-Version"] = "4.0"
        return web.Response(
            status=response.status,
            body=json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode(),
            headers=headers,
        )

    def _authenticate(self, req: GraphRequest) -> Identity:
        header = req.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise GraphFailure(
                401, "InvalidAuthenticationToken", "Access token is empty.", self._www_authenticate()
            )
        token = header[7:].strip()
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=[login.GRAPH_AUDIENCE, login.GRAPH_APP_ID],
                options={"require": ["exp", "tid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise GraphFailure(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
                self._www_authenticate(),
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise GraphFailure(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
                self._www_authenticate(),
            ) from exc
        except jwt.DecodeError as exc:
            raise GraphFailure(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed.",
                self._www_authenticate(),
            ) from exc
        except jwt.PyJWTError as exc:
            raise GraphFailure(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure.",
                self._www_authenticate(),
            ) from exc
        if claims.get("tid") != self.tenant.tenant_id:
            raise GraphFailure(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer."
            )
        return Identity(str(claims.get("appid")), str(claims["tid"]), frozenset(claims.get("roles") or ()))

    def _www_authenticate(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.authority_host}/common/oauth2/authorize", '
            f'client_id="{login.GRAPH_APP_ID}"'
        }

    def _process(self, req: GraphRequest, identity: Identity | None = None) -> GraphResponse:
        """Authenticate, route, authorise, throttle and run one Graph request (standalone or a $batch item)."""
        rid, crid = req.request_id, req.client_request_id
        try:
            req.identity = identity or self._authenticate(req)
            route, match = self._route(req)
            held = req.identity.roles
            if route.accepted is not None and not any(need <= held for need in route.accepted):
                raise GraphFailure(403, route.forbidden_code, route.forbidden_message)
            if route.kind == "batch":
                if req.in_batch:
                    raise bad_request("Nested $batch requests are not supported.", "BadRequest")
                return self._batch(req)
            cost = self._throttle(req, route)
            response = route.handler(req, match)
            response.headers.setdefault("x-ms-resource-unit", str(cost))
            return response
        except GraphFailure as failure:
            return self._failure_response(failure, rid, crid)

    def _route(self, req: GraphRequest) -> tuple[Route, re.Match[str]]:
        path = req.path.rstrip("/") or "/"
        allowed = False
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if route.method == req.method:
                return route, match
            allowed = True
        if allowed:
            raise GraphFailure(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        if path.startswith("/me/") or path == "/me":
            raise bad_request("/me request is only valid with delegated authentication flow.", "BadRequest")
        segment = path.strip("/").split("/")[-1] if path != "/" else ""
        raise bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest")

    # ----- throttling -----------------------------------------------------------------------------------------
    def _tenant_capacity(self) -> int:
        if self.behaviour.throttle_capacity is not None:
            return self.behaviour.throttle_capacity
        size = len(self.tenant.users)
        return 3500 if size < 50 else 5000 if size <= 500 else 8000

    def _throttled(self, seconds: float, scope: str, information: str) -> GraphFailure:
        return GraphFailure(
            429,
            "TooManyRequests",
            "Please retry again later.",
            {
                "Retry-After": self._retry_after_text(seconds),
                "x-ms-throttle-scope": scope,
                "x-ms-throttle-information": information,
            },
            {"code": "429", "message": "Please retry after", "status": "429"},
        )

    def _throttle(self, req: GraphRequest, route: Route) -> int:
        assert req.identity is not None
        ident = req.identity
        if route.kind == "report" and self.behaviour.report_throttle:
            window = self.behaviour.report_window_s
            hits = self._report_hits.setdefault((ident.app_id, ident.tenant_id), deque())
            now = time.monotonic()
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= self.behaviour.report_limit:
                raise self._throttled(
                    hits[0] + window - now,
                    f"Tenant_Application/Reports/{ident.app_id}/{ident.tenant_id}",
                    "CPULimitExceeded",
                )
            hits.append(now)
        cost = {"users": 2, "check": 4, "transitive": 2}.get(route.kind, 1)
        if "$select" in req.query:
            cost -= 1
        if "$top" in req.query and req.query["$top"].isdigit() and int(req.query["$top"]) < 20:
            cost -= 1
        cost = max(cost, 1)
        if not self.behaviour.throttle:
            return cost
        scope = f"Tenant_Application/ReadWrite/{ident.app_id}/{ident.tenant_id}"
        key = (ident.app_id, ident.tenant_id, "ru")
        bucket = self._buckets.get(key)
        capacity = self._tenant_capacity()
        if (
            bucket is None
            or bucket.capacity != capacity
            or bucket.window_s != self.behaviour.throttle_window_s
        ):
            bucket = self._buckets[key] = _Bucket(capacity, self.behaviour.throttle_window_s)
        wait = bucket.take(cost)
        if wait > 0:
            raise self._throttled(wait, scope, "ResourceUnitLimitExceeded")
        if route.kind == "write":
            wkey = (ident.app_id, ident.tenant_id, "write")
            wbucket = self._buckets.get(wkey)
            if wbucket is None or wbucket.capacity != self.behaviour.write_capacity:
                wbucket = self._buckets[wkey] = _Bucket(
                    self.behaviour.write_capacity, self.behaviour.write_window_s
                )
            wait = wbucket.take(1)
            if wait > 0:
                raise self._throttled(wait, scope, "WriteLimitExceeded")
        return cost

    # ----- routes ---------------------------------------------------------------------------------------------
    def _build_routes(self) -> list[Route]:
        seg = r"([^/]+)"
        app_ref = r"(?:/([^/()]+)|\(appId='([^'/]*)'\))"  # /{object id} or (appId='{client id}')
        pm = rf"/users/{seg}/authentication/phoneMethods"
        pm_denied = "Request Authorization failed"
        p = permissions  # which permission sets allow each call: one table, from Microsoft's pages
        specs: list[tuple[str, str, Handler, tuple[frozenset[str], ...] | None, str, str]] = [
            ("POST", r"/\$batch", self._batch_placeholder, None, "batch", ""),
            ("GET", r"/users", self._list_users, p.USER_READ.accepted, "users", ""),
            ("GET", rf"/users/{seg}", self._get_user, p.USER_READ.accepted, "users", ""),
            ("GET", pm, self._list_phones, p.PHONE_READ.accepted, "read", pm_denied),
            ("POST", pm, self._create_phone, p.PHONE_WRITE.accepted, "write", pm_denied),
            ("GET", rf"{pm}/{seg}", self._get_phone, p.PHONE_READ.accepted, "read", pm_denied),
            ("PATCH", rf"{pm}/{seg}", self._update_phone, p.PHONE_WRITE.accepted, "write", pm_denied),
            ("DELETE", rf"{pm}/{seg}", self._delete_phone, p.PHONE_WRITE.accepted, "write", pm_denied),
            ("PUT", rf"{pm}/{seg}", self._put_phone, p.PHONE_WRITE.accepted, "write", pm_denied),
            (
                "POST",
                rf"{pm}/{seg}/(enableSmsSignIn|disableSmsSignIn)",
                self._sms_sign_in,
                p.PHONE_WRITE.accepted,
                "write",
                pm_denied,
            ),
            (
                "GET",
                r"/reports/authenticationMethods/userRegistrationDetails",
                self._report,
                p.REPORT_READ.accepted,
                "report",
                "",
            ),
            (
                "GET",
                rf"/reports/authenticationMethods/userRegistrationDetails/{seg}",
                self._report_item,
                p.REPORT_READ.accepted,
                "report",
                "",
            ),
            ("GET", r"/organization", self._organization, p.ORGANIZATION_READ.accepted, "read", ""),
            ("POST", rf"/users/{seg}/sendMail", self._send_mail, None, "write", ""),  # the handler decides
            (
                "POST",
                rf"/users/{seg}/checkMemberGroups",
                self._check_member_groups,
                p.CHECK_MEMBER_GROUPS.accepted,
                "check",
                "",
            ),
            ("GET", r"/groups", self._list_groups, p.GROUPS_LIST.accepted, "read", ""),
            ("GET", rf"/groups/{seg}", self._get_group, p.GROUP_GET.accepted, "read", ""),
            ("GET", rf"/groups/{seg}/owners", self._group_owners, p.GROUP_OWNERS.accepted, "read", ""),
            (
                "GET",
                rf"/groups/{seg}/transitiveMembers(?:/(microsoft\.graph\.user))?",
                self._group_transitive_members,
                p.GROUP_TRANSITIVE_MEMBERS.accepted,
                "transitive",
                "",
            ),
            (
                "GET",
                rf"/users/{seg}/transitiveMemberOf",
                self._transitive_member_of,
                p.TRANSITIVE_MEMBER_OF.accepted,
                "transitive",
                "",
            ),
            (
                "GET",
                rf"/users/{seg}/transitiveMemberOf/(microsoft\.graph\.group|microsoft\.graph\.directoryRole)",
                self._transitive_member_of,
                p.TRANSITIVE_MEMBER_OF.accepted,
                "transitive",
                "",
            ),
            ("GET", rf"/users/{seg}/ownedObjects", self._owned_objects, None, "read", ""),
            (
                "GET",
                r"/roleManagement/directory/roleAssignments",
                self._role_assignments,
                p.ROLE_ASSIGNMENTS.accepted,
                "read",
                "",
            ),
            (
                "GET",
                r"/roleManagement/directory/roleEligibilityScheduleInstances",
                self._role_eligibilities,
                p.ROLE_ELIGIBILITY.accepted,
                "read",
                "",
            ),
            (
                "GET",
                r"/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
                self._group_eligibilities,
                p.GROUP_ELIGIBILITY.accepted,
                "read",
                "",
            ),
            ("GET", rf"/applications{app_ref}/owners", self._app_owners, p.APP_OWNERS.accepted, "read", ""),
            (
                "GET",
                rf"/servicePrincipals{app_ref}/owners",
                self._app_owners,
                p.APP_OWNERS.accepted,
                "read",
                "",
            ),
            ("GET", rf"/users/{seg}/manager", self._manager, p.USER_READ.accepted, "read", ""),
            ("GET", r"/appCatalogs/teamsApps", self._teams_apps, p.TEAMS_APP_CATALOG.accepted, "read", ""),
            (
                "POST",
                rf"/users/{seg}/teamwork/installedApps",
                self._install_teams_app,
                p.TEAMS_APP_INSTALL.accepted,
                "write",
                "",
            ),
            (
                "GET",
                rf"/users/{seg}/teamwork/installedApps",
                self._installed_apps,
                p.TEAMS_APP_INSTALLED.accepted,
                "read",
                "",
            ),
            (
                "GET",
                rf"/users/{seg}/teamwork/installedApps/{seg}",
                self._installed_app,
                p.TEAMS_APP_INSTALLED.accepted,
                "read",
                "",
            ),
            (
                "GET",
                rf"/users/{seg}/teamwork/installedApps/{seg}/chat",
                self._installed_app_chat,
                p.TEAMS_APP_CHAT.accepted,
                "read",
                "",
            ),
        ]
        routes = []
        for method, pattern, handler, accepted, kind, denied in specs:
            if handler == self._send_mail:
                routes.append(
                    Route(
                        method,
                        re.compile(pattern),
                        handler,
                        accepted,
                        kind,
                        "Access is denied. Check credentials and try again.",
                        "ErrorAccessDenied",
                    )
                )
            elif denied:
                routes.append(Route(method, re.compile(pattern), handler, accepted, kind, denied))
            else:
                routes.append(Route(method, re.compile(pattern), handler, accepted, kind))
        return routes

    def _batch_placeholder(
        self, req: GraphRequest, match: re.Match[str]
    ) -> GraphResponse:  # pragma: no cover
        raise AssertionError("handled in _process")

    def _context(self, fragment: str) -> str:
        return f"{self.base_url}/$metadata#{fragment}"

    def _user_or_404(self, ref: str) -> User:
        user = self.tenant.user(ref)
        if user is None:
            raise not_found(ref)
        return user

    # users ------------------------------------------------------------------------------------------------------
    def _user_json(self, user: User, select: list[str] | None) -> dict[str, Any]:
        props = user.graph_properties()
        names = select or list(USER_DEFAULT_SELECT)
        return {name: props.get(name) for name in names}

    def _get_user(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        select = _parse_select(req.query, USER_PROPERTIES, "microsoft.graph.user")
        user = self._user_or_404(match.group(1))
        body = {
            "@odata.context": self._context(
                f"users({','.join(select)})/$entity" if select else "users/$entity"
            )
        }
        body.update(self._user_json(user, select))
        return GraphResponse(200, body)

    _USER_FILTER = FilterSpec(
        {
            "id": (lambda u: u.id, "str", True),
            "userPrincipalName": (lambda u: u.upn, "str", True),
            "mail": (lambda u: u.mail, "str", True),
            "displayName": (lambda u: u.display_name, "str", True),
            "givenName": (lambda u: u.given_name, "str", True),
            "surname": (lambda u: u.surname, "str", True),
            "userType": (lambda u: u.user_type, "str", True),
            "usageLocation": (lambda u: u.usage_location, "str", True),
            "jobTitle": (lambda u: u.job_title, "str", True),
            "mobilePhone": (lambda u: u.mobile_phone, "str", False),
            "accountEnabled": (lambda u: u.account_enabled, "bool", False),
            "businessPhones": (lambda u: u.business_phones, "coll", False),
        }
    )

    def _filter(self, query: dict[str, str], spec: FilterSpec) -> Callable[[Any], bool] | None:
        text = query.get("$filter")
        if text is None:
            return None
        try:
            return parse_filter(text, spec)
        except UnsupportedQuery as exc:
            raise GraphFailure(400, "Request_UnsupportedQuery", f"Unsupported Query. {exc}") from exc

    def _page(
        self,
        req: GraphRequest,
        predicate: Callable[[User], bool] | None,
        render: Callable[[User], dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page over the tenant's users in stable order: O(page + skipped non-matches), never the whole list."""
        top = _page_size(req.query)
        start = _decode_skiptoken(req.query["$skiptoken"]) if "$skiptoken" in req.query else 0
        items: list[dict[str, Any]] = []
        next_index: int | None = None
        for index, user in self.tenant.iter_users(start):
            if predicate is not None and not predicate(user):
                continue
            if len(items) == top:
                next_index = index
                break
            items.append(render(user))
        next_link = None
        if next_index is not None:
            params = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            params["$skiptoken"] = _encode_skiptoken(next_index)
            encoded = urlencode(params, quote_via=quote, safe="$',:()")
            next_link = f"{self.base_url}{req.path}?{encoded}"
        return items, next_link

    def _list_users(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """`$filter=accountEnabled eq false` works by default; `ne` is an advanced query that needs the
        ConsistencyLevel: eventual header and $count=true (https://learn.microsoft.com/graph/aad-advanced-queries),
        else 400 "Filter operator 'NotEqualsMatch' is not supported." (microsoftgraph/microsoft-graph-docs-contrib
        #9043)."""
        select = _parse_select(req.query, USER_PROPERTIES, "microsoft.graph.user")
        advanced = req.headers.get("consistencylevel", "").lower() == "eventual" and (
            req.query.get("$count", "").lower() == "true"
        )
        if not advanced and "ne" in operators(req.query.get("$filter", "")):
            raise GraphFailure(
                400, "Request_UnsupportedQuery", "Filter operator 'NotEqualsMatch' is not supported."
            )
        predicate = self._filter(req.query, self._USER_FILTER)
        items, next_link = self._page(req, predicate, lambda u: self._user_json(u, select))
        body: dict[str, Any] = {
            "@odata.context": self._context(f"users({','.join(select)})" if select else "users")
        }
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = items
        return GraphResponse(200, body)

    def _manager(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        manager = self.tenant.users.get(user.manager_id) if user.manager_id else None
        if manager is None:
            raise not_found("manager")
        select = _parse_select(req.query, USER_PROPERTIES, "microsoft.graph.user")
        body = {
            "@odata.context": self._context("directoryObjects/$entity"),
            "@odata.type": "#microsoft.graph.user",
        }
        body.update(self._user_json(manager, select))
        return GraphResponse(200, body)

    # phone methods ----------------------------------------------------------------------------------------------
    def _visible_delay(self) -> float:
        return max(self.behaviour.visibility_delay_ms, 0) / 1000

    _PHONE_FILTER = FilterSpec(
        {
            "phoneType": (lambda p: p.type, "str", False),
            "id": (lambda p: METHOD_IDS[p.type], "str", False),
            "phoneNumber": (lambda p: p.number, "str", False),
            "smsSignInState": (lambda p: p.sms, "str", False),
        }
    )

    def _list_phones(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        predicate = self._filter(req.query, self._PHONE_FILTER)
        user = self._user_or_404(match.group(1))
        phones = user.visible_phones()
        items = [
            phones[t].to_graph()
            for t in PHONE_TYPES
            if t in phones and (predicate is None or predicate(phones[t]))
        ]
        body = {
            "@odata.context": self._context(f"users('{user.id}')/authentication/phoneMethods"),
            "value": items,
        }
        return GraphResponse(200, body)

    def _method_type(self, method_id: str) -> str:
        ptype = METHOD_TYPES.get(method_id.lower())
        if ptype is None:
            raise not_found(method_id)
        return ptype

    def _get_phone(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        ptype = self._method_type(match.group(2))
        phone = user.visible_phones().get(ptype)
        if phone is None:
            raise not_found(match.group(2))
        body = {"@odata.context": self._context(f"users('{user.id}')/authentication/phoneMethods/$entity")}
        body.update(phone.to_graph())
        return GraphResponse(200, body)

    def _sms_state(self, user: User, ptype: str, number: str) -> tuple[str, bool]:
        """smsSignInState for a new or changed number, and whether SMS sign-in uniqueness is violated."""
        if ptype != "mobile":
            return "notSupported", False
        if not user.sms_policy:
            return "notAllowedByPolicy", False
        if self.behaviour.sms_uniqueness and (self.tenant.sms_holders(number) - {user.id}):
            return "phoneNumberNotUnique", True
        return "ready", False

    def _conflict(self) -> GraphFailure:
        return GraphFailure(
            409,
            "phoneNumberNotUnique",
            "The phone number is already registered for SMS sign-in by another user. The phone method was "
            "saved, but SMS sign-in could not be enabled for it.",
        )

    def _phone_body(self, req: GraphRequest) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise bad_request("Request body is required and must be a JSON object.", "badRequest")
        if "smsSignInState" in req.body:
            raise bad_request("Property 'smsSignInState' is read-only and cannot be set.", "badRequest")
        return req.body

    def _write_phone(self, user: User, ptype: str, raw_number: Any) -> tuple[Phone, bool]:
        try:
            number = check_number(raw_number, ptype, normalise=self.behaviour.normalise_numbers)
        except InvalidPhoneNumber as exc:
            raise bad_request(f"Invalid phone number. {exc}", "badRequest") from exc
        if self.behaviour.write_conflict_code:
            # A 409 that is not about SMS sign-in: nothing is stored, and the message is Graph's own.
            raise GraphFailure(
                409,
                self.behaviour.write_conflict_code,
                "The request conflicts with the current state of the user's authentication methods. "
                "Try again later.",
            )
        sms, conflict = self._sms_state(user, ptype, number)
        phone = Phone(ptype, number, sms)
        if conflict and not self.behaviour.conflict_stores_method:
            raise self._conflict()
        phones = dict(user.phones)
        phones[ptype] = phone
        self.tenant.commit_phones(user, phones, self._visible_delay())
        if conflict:
            raise self._conflict()
        return phone, conflict

    def _create_phone(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        body = self._phone_body(req)
        ptype = body.get("phoneType")
        if ptype not in PHONE_TYPES:
            raise bad_request(
                f"Invalid value for phoneType: '{ptype}'. Expected mobile, alternateMobile or office.",
                "badRequest",
            )
        if ptype in user.phones:
            raise bad_request(
                f"A phone method of type '{ptype}' already exists for this user. A user can have only one number of "
                "each type; update the existing method instead.",
                "badRequest",
            )
        if ptype == "alternateMobile" and "mobile" not in user.phones:
            raise bad_request(
                "A user must have a mobile phone before an alternateMobile phone can be added.", "badRequest"
            )
        phone, _ = self._write_phone(user, ptype, body.get("phoneNumber"))
        out = {"@odata.context": self._context(f"users('{user.id}')/authentication/phoneMethods/$entity")}
        out.update(phone.to_graph())
        location = f"{self.base_url}/users/{user.id}/authentication/phoneMethods/{METHOD_IDS[ptype]}"
        return GraphResponse(201, out, {"Location": location})

    def _update_phone(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        ptype = self._method_type(match.group(2))
        body = self._phone_body(req)
        if "phoneType" in body and body["phoneType"] != ptype:
            raise bad_request(
                "A phone's type cannot be changed. Add a new number of the desired type and delete the original.",
                "badRequest",
            )
        if ptype not in user.phones:
            raise not_found(match.group(2))
        if "phoneNumber" not in body:
            raise bad_request("phoneNumber is required.", "badRequest")
        self._write_phone(user, ptype, body.get("phoneNumber"))
        return GraphResponse(204)

    def _put_phone(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        raise GraphFailure(
            405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
        )

    def _delete_phone(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        ptype = self._method_type(match.group(2))
        if ptype not in user.phones:
            raise not_found(match.group(2))
        if ptype == "mobile" and "alternateMobile" in user.phones:
            raise bad_request(
                "A mobile phone cannot be deleted while an alternateMobile phone exists. Update the mobile number to "
                "the new number, then delete the alternateMobile number.",
                "badRequest",
            )
        if user.default_method == ptype and (
            self._other_methods(user, ptype) or not self.behaviour.lone_default_deletable
        ):
            # Microsoft's page (https://learn.microsoft.com/graph/api/phoneauthenticationmethod-delete) says only
            # that the default method "can't be deleted"; the status, the message and that a user's only method
            # can be deleted are observed in production (Behaviour.lone_default_deletable).
            raise bad_request("Cannot delete default method with other methods configured.", "badRequest")
        phones = dict(user.phones)
        del phones[ptype]
        self.tenant.commit_phones(user, phones, self._visible_delay())
        return GraphResponse(204)

    @staticmethod
    def _other_methods(user: User, ptype: str) -> bool:
        """Whether the user has an authentication method besides the phone method `ptype`."""
        return any(t != ptype for t in user.phones) or bool(user.other_methods)

    def _sms_sign_in(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        ptype = self._method_type(match.group(2))
        action = match.group(3)
        if ptype != "mobile":
            raise bad_request("SMS sign-in can be enabled only on the primary mobile number.", "badRequest")
        phone = user.phones.get("mobile")
        if phone is None:
            raise not_found(match.group(2))
        if action == "enableSmsSignIn":
            if not user.sms_policy:
                raise bad_request(
                    "The user is not enabled for SMS sign-in by the authentication methods policy.",
                    "badRequest",
                )
            if self.tenant.sms_holders(phone.number) - {user.id}:
                raise GraphFailure(
                    409,
                    "phoneNumberNotUnique",
                    "The phone number is already registered for SMS sign-in by another user.",
                )
            new = Phone("mobile", phone.number, "ready")
        else:
            new = Phone("mobile", phone.number, "notEnabled")
        phones = dict(user.phones)
        phones["mobile"] = new
        self.tenant.commit_phones(user, phones, self._visible_delay())
        return GraphResponse(204)

    # registration report ----------------------------------------------------------------------------------------
    def _methods_registered(self, user: User) -> list[str]:
        names = {"mobile": "mobilePhone", "alternateMobile": "alternateMobilePhone", "office": "officePhone"}
        phones = user.visible_phones()
        return [names[t] for t in PHONE_TYPES if t in phones] + list(user.other_methods)

    def _report_json(self, user: User, admins: set[str]) -> dict[str, Any]:
        methods = self._methods_registered(user)
        mfa = any(m != "email" for m in methods)
        preferred = "none"
        if user.default_method == "mobile":
            preferred = "sms"
        elif user.default_method == "alternateMobile":
            preferred = "voiceAlternateMobile"
        elif user.default_method == "office":
            preferred = "voiceOffice"
        return {
            "id": user.id,
            "userPrincipalName": user.upn,
            "userDisplayName": user.display_name,
            "userType": "guest" if user.user_type.lower() == "guest" else "member",
            "isAdmin": user.id in admins,
            "isSsprRegistered": False,
            "isSsprEnabled": False,
            "isSsprCapable": False,
            "isMfaRegistered": mfa,
            "isMfaCapable": mfa and user.account_enabled,
            "isPasswordlessCapable": False,
            "isSystemPreferredAuthenticationMethodEnabled": False,
            "systemPreferredAuthenticationMethods": [],
            "userPreferredMethodForSecondaryAuthentication": preferred,
            "methodsRegistered": methods,
            "lastUpdatedDateTime": "2025-01-01T00:00:00Z",
        }

    _REPORT_FIELDS = frozenset(
        {
            "id",
            "userPrincipalName",
            "userDisplayName",
            "userType",
            "isAdmin",
            "isSsprRegistered",
            "isSsprEnabled",
            "isSsprCapable",
            "isMfaRegistered",
            "isMfaCapable",
            "isPasswordlessCapable",
            "isSystemPreferredAuthenticationMethodEnabled",
            "systemPreferredAuthenticationMethods",
            "userPreferredMethodForSecondaryAuthentication",
            "methodsRegistered",
            "lastUpdatedDateTime",
        }
    )

    def _report_licence(self) -> None:
        """Usage and insights reports need Entra ID P1 or P2 ("A Microsoft Entra ID P1 or P2 license is required to
        access authentication methods usage and insights reports",
        https://learn.microsoft.com/graph/api/resources/authenticationmethods-usage-insights-overview). Without it
        Graph answers 403 with this code and wording (microsoftgraph/microsoft-graph-docs#12919,
        microsoftgraph/microsoft-graph-docs-contrib#3808)."""
        if not self.behaviour.p1_licensed:
            raise GraphFailure(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )

    def _report(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """List userRegistrationDetails: "This method doesn't work for disabled users"
        (https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails), so disabled
        accounts are not in the listing, whatever the filter."""
        self._report_licence()
        select = _parse_select(req.query, self._REPORT_FIELDS, "microsoft.graph.userRegistrationDetails")
        admins = self.tenant.admin_user_ids()
        spec = FilterSpec(
            {
                "id": (lambda u: u.id, "str", False),
                "userPrincipalName": (lambda u: u.upn, "str", True),
                "userDisplayName": (lambda u: u.display_name, "str", True),
                "userType": (lambda u: "guest" if u.user_type.lower() == "guest" else "member", "str", True),
                "methodsRegistered": (self._methods_registered, "coll", False),
                "isAdmin": (lambda u: u.id in admins, "bool", False),
                "isMfaRegistered": (lambda u: bool(self._methods_registered(u)), "bool", False),
                "isMfaCapable": (
                    lambda u: bool(self._methods_registered(u)) and u.account_enabled,
                    "bool",
                    False,
                ),
                "isSsprRegistered": (lambda u: False, "bool", False),
                "isSsprEnabled": (lambda u: False, "bool", False),
                "isSsprCapable": (lambda u: False, "bool", False),
                "isPasswordlessCapable": (lambda u: False, "bool", False),
            }
        )
        filtered = self._filter(req.query, spec)

        def predicate(u: User) -> bool:
            return u.account_enabled and (filtered is None or filtered(u))

        items, next_link = self._page(req, predicate, lambda u: _select(self._report_json(u, admins), select))
        body: dict[str, Any] = {
            "@odata.context": self._context("reports/authenticationMethods/userRegistrationDetails")
        }
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = items
        return GraphResponse(200, body)

    def _report_item(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        self._report_licence()
        user = self.tenant.users.get(match.group(1))
        if user is None:
            raise not_found(match.group(1))
        body = {
            "@odata.context": self._context("reports/authenticationMethods/userRegistrationDetails/$entity")
        }
        body.update(self._report_json(user, self.tenant.admin_user_ids()))
        return GraphResponse(200, body)

    # organization, mail, groups, roles --------------------------------------------------------------------------
    def _organization(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        select = _parse_select(req.query, None, "microsoft.graph.organization")
        org = {
            "id": self.tenant.tenant_id,
            "displayName": self.tenant.display_name,
            "tenantType": "AAD",
            "countryLetterCode": "DE",
            "preferredLanguage": "en",
            "verifiedDomains": [
                {
                    "capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": True,
                    "isInitial": True,
                    "name": self.tenant.default_domain,
                    "type": "Managed",
                }
            ],
        }
        context = f"organization({','.join(select)})" if select else "organization"
        return GraphResponse(
            200,
            {"@odata.context": self._context(context), "value": [_select(org, select) if select else org]},
        )

    def _send_mail(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """POST /users/{sender}/sendMail (https://learn.microsoft.com/graph/api/user-sendmail): application
        permission Mail.Send (any mailbox), or the Exchange Online role "Application Mail.Send" for the mailboxes
        of its scope (Role Based Access Control for Applications,
        https://learn.microsoft.com/exchange/permissions-exo/application-rbac: "independent of the unscoped grants
        in Microsoft Entra ID"; the app's `exchange_mail_send`). Neither: 403 ErrorAccessDenied."""
        ref = match.group(1)
        assert req.identity is not None
        if not permissions.MAIL_SEND.allows(req.identity.roles):
            app = self.tenant.app(req.identity.app_id)
            scope = {a.lower() for a in (app.exchange_mail_send if app else [])}
            who = self.tenant.user(ref) or self.tenant.user_by_address(ref)
            names = {ref.lower()} | ({who.upn.lower(), (who.mail or "").lower()} if who else set())
            if not scope & names:
                raise GraphFailure(
                    403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                )
        sender = _with_mailbox(self.tenant.user(ref) or self.tenant.user_by_address(ref), ref)
        body = req.body
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            raise GraphFailure(
                400, "ErrorInvalidRequest", "Cannot read the request body: 'message' is required."
            )

        def addresses(key: str) -> list[str]:
            out = []
            for item in message.get(key) or []:
                address = (item.get("emailAddress") or {}).get("address") if isinstance(item, dict) else None
                if not isinstance(address, str) or "@" not in address:
                    raise GraphFailure(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
                out.append(address)
            return out

        to, cc = addresses("toRecipients"), addresses("ccRecipients")
        if not to:
            raise GraphFailure(
                400, "ErrorInvalidRecipients", "At least one recipient is not valid., Recipient is missing."
            )
        for address in to + cc:
            # Only mailboxes of this tenant are checked; external addresses (guests' home mail) are accepted.
            if not address.lower().endswith("@" + self.tenant.default_domain.lower()):
                continue
            _with_mailbox(self.tenant.user_by_address(address), address)
        content = message.get("body") or {}
        content_type = str(content.get("contentType") or "Text")
        text = content.get("content")
        self.outbox.append(
            {
                "sender": ref,
                "sender_id": sender.id,
                "to": to,
                "cc": cc,
                "subject": message.get("subject"),
                "contentType": content_type,
                "html": text if content_type.lower() == "html" else None,
                "text": text if content_type.lower() == "text" else None,
                "saveToSentItems": body.get("saveToSentItems", True) if isinstance(body, dict) else True,
                "request_id": req.request_id,
                "ts": time.time(),
            }
        )
        return GraphResponse(202)

    def _check_member_groups(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        user = self._user_or_404(match.group(1))
        ids = req.body.get("groupIds") if isinstance(req.body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise bad_request("Invalid request body: 'groupIds' must be a list of strings.")
        if len(ids) > 20:
            raise bad_request("The number of group ids exceeds the limit of 20 per request.")
        member_of = {g.id for g in self.tenant.transitive_groups(user.id)}
        body = {
            "@odata.context": self._context("Collection(Edm.String)"),
            "value": [i for i in ids if i in member_of],
        }
        return GraphResponse(200, body)

    def _group_json(self, group: Any) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.group",
            "id": group.id,
            "displayName": group.display_name,
            "isAssignableToRole": group.is_assignable_to_role,
            "securityEnabled": True,
            "mailEnabled": False,
            "groupTypes": [],
        }

    def _transitive_member_of(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/transitiveMemberOf (https://learn.microsoft.com/graph/api/user-list-transitivememberof):
        application permission User.Read.All or a group or directory one. With User.Read.All alone the groups come
        back with limited information (the page: `@odata.type` and `id`, every other property null)."""
        user = self._user_or_404(match.group(1))
        cast = match.group(2) if match.lastindex and match.lastindex >= 2 else None
        select = _parse_select(req.query, None, "microsoft.graph.directoryObject")
        assert req.identity is not None
        groups_readable = bool(req.identity.roles & GROUP_READ)
        items: list[dict[str, Any]] = []
        if cast in (None, "microsoft.graph.group"):
            for g in self.tenant.transitive_groups(user.id):
                props = self._group_json(g)
                if not groups_readable:
                    props = {k: (v if k in ("@odata.type", "id") else None) for k, v in props.items()}
                items.append(props)
        if cast in (None, "microsoft.graph.directoryRole"):
            seen: set[str] = set()
            for assignment in self.tenant.roles_of(user.id):
                if assignment.directory_scope_id != "/" or assignment.role_template_id in seen:
                    continue
                seen.add(assignment.role_template_id)
                items.append(
                    {
                        "@odata.type": "#microsoft.graph.directoryRole",
                        "id": str(
                            uuid.uuid5(
                                uuid.NAMESPACE_URL, f"{self.tenant.tenant_id}/{assignment.role_template_id}"
                            )
                        ),
                        "displayName": assignment.display_name,
                        "description": assignment.display_name,
                        "roleTemplateId": assignment.role_template_id,
                    }
                )
        body = {
            "@odata.context": self._context("directoryObjects"),
            "value": [_select(i, select) for i in items],
        }
        return GraphResponse(200, body)

    def _owned_objects(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/ownedObjects. Microsoft's page (https://learn.microsoft.com/graph/api/user-list-ownedobjects)
        lists "Application: Not supported." (an older revision listed User.Read.All): an app-only token is refused.
        Which answer Graph gives is not documented; the simulator answers 403 Authorization_RequestDenied, Graph's
        answer to a token without the permission a directory call needs. `Behaviour.owned_objects_app_only` turns
        the older revision's behaviour back on (read with a user or group permission)."""
        assert req.identity is not None
        if not self.behaviour.owned_objects_app_only or not (req.identity.roles & (USER_READ | GROUP_READ)):
            raise GraphFailure(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        user = self._user_or_404(match.group(1))
        select = _parse_select(req.query, None, "microsoft.graph.directoryObject")
        items = [_select(self._group_json(g), select) for g in self.tenant.owned_groups(user.id)]
        return GraphResponse(200, {"@odata.context": self._context("directoryObjects"), "value": items})

    _GROUP_FILTER = FilterSpec(
        {
            "id": (lambda g: g.id, "str", True),
            "displayName": (lambda g: g.display_name, "str", True),
            "isAssignableToRole": (lambda g: g.is_assignable_to_role, "bool", False),
            "securityEnabled": (lambda g: True, "bool", False),
            "mailEnabled": (lambda g: False, "bool", False),
        }
    )
    _GROUP_PROPERTIES = frozenset(
        {"id", "displayName", "isAssignableToRole", "securityEnabled", "mailEnabled", "groupTypes"}
    )

    def _list_groups(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /groups (https://learn.microsoft.com/graph/api/group-list; application permission GroupMember.Read.All
        or a broader group or directory one). `isAssignableToRole` "Supports $filter (eq, ne, not)"
        (https://learn.microsoft.com/graph/api/resources/group); `eq` works by default, `ne` and `not` only as an
        advanced query (ConsistencyLevel: eventual and $count=true,
        https://learn.microsoft.com/graph/aad-advanced-queries), else 400 as on /users. `$select`, `$top` (default
        100, at most 999) and `@odata.nextLink`; `@odata.count` with `$count=true` in an advanced query."""
        select = _parse_select(req.query, self._GROUP_PROPERTIES, "microsoft.graph.group")
        advanced = req.headers.get("consistencylevel", "").lower() == "eventual" and (
            req.query.get("$count", "").lower() == "true"
        )
        outside_strings = re.sub(r"'(?:[^']|'')*'", "''", req.query.get("$filter", ""))
        if not advanced and re.search(r"\b(?:ne|not)\b", outside_strings, re.IGNORECASE):
            raise GraphFailure(
                400, "Request_UnsupportedQuery", "Filter operator 'NotEqualsMatch' is not supported."
            )
        predicate = self._filter(req.query, self._GROUP_FILTER)
        groups = [g for g in self.tenant.groups.values() if predicate is None or predicate(g)]
        items = [_select(self._group_json(g), select) for g in groups]
        return self._collection(req, items, "groups", count=advanced)

    def _get_group(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /groups/{id} (https://learn.microsoft.com/graph/api/group-get; application permission
        GroupMember.Read.All, least privileged, or a broader group or directory one): the group, `$select` honoured;
        an id that names no group answers 404 Request_ResourceNotFound."""
        group = self.tenant.groups.get(match.group(1))
        if group is None:
            raise not_found(match.group(1))
        select = _parse_select(req.query, self._GROUP_PROPERTIES, "microsoft.graph.group")
        body = {"@odata.context": self._context("groups/$entity"), **_select(self._group_json(group), select)}
        return GraphResponse(200, body)

    def _group_owners(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /groups/{id}/owners (https://learn.microsoft.com/graph/api/group-list-owners; application permission
        GroupMember.Read.All or broader): the owners as directoryObjects; users with limited information (the page's
        `@odata.type` and `id`) when the token cannot read users. Unknown group 404."""
        group = self.tenant.groups.get(match.group(1))
        if group is None:
            raise not_found(match.group(1))
        select = _parse_select(req.query, None, "microsoft.graph.directoryObject")
        assert req.identity is not None
        users_readable = bool(req.identity.roles & USER_READ)
        items = []
        for owner in group.owners:
            props = self._directory_object(owner, select)
            if not users_readable and props.get("@odata.type") == "#microsoft.graph.user":
                props = {k: (v if k in ("@odata.type", "id") else None) for k, v in props.items()}
            items.append(props)
        return self._collection(req, items, "directoryObjects", count=False)

    def _collection(
        self, req: GraphRequest, items: list[dict[str, Any]], context: str, *, count: bool
    ) -> GraphResponse:
        """One page of a collection held in full: `$top` (default 100, at most 999) and `$skiptoken` paging."""
        top = _page_size(req.query)
        start = _decode_skiptoken(req.query["$skiptoken"]) if "$skiptoken" in req.query else 0
        body: dict[str, Any] = {"@odata.context": self._context(context)}
        if count:
            body["@odata.count"] = len(items)
        if start + top < len(items):
            params = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            params["$skiptoken"] = _encode_skiptoken(start + top)
            encoded = urlencode(params, quote_via=quote, safe="$',:()")
            body["@odata.nextLink"] = f"{self.base_url}{req.path}?{encoded}"
        body["value"] = items[start : start + top]
        return GraphResponse(200, body)

    def _group_transitive_members(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /groups/{id}/transitiveMembers[/microsoft.graph.user], as
        https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers describes it: a flat list of
        all nested members (application permission GroupMember.Read.All, least privileged). The OData cast to
        microsoft.graph.user is an advanced query: it needs the `ConsistencyLevel: eventual` header and
        `$count=true` (else 400 Request_UnsupportedQuery), and then carries `@odata.count`. `$select`, `$top`
        (default 100, at most 999) and `@odata.nextLink` paging as on /users. Without a permission to read
        users, user members come back with limited information: `@odata.type` and `id`, everything else null.
        """
        group = self.tenant.groups.get(match.group(1))
        if group is None:
            raise not_found(match.group(1))
        cast = match.group(2)
        advanced = req.headers.get("consistencylevel", "").lower() == "eventual" and (
            req.query.get("$count", "").lower() == "true"
        )
        if cast and not advanced:
            raise GraphFailure(
                400,
                "Request_UnsupportedQuery",
                "The OData cast on transitiveMembers is only supported with the ConsistencyLevel header "
                "set to 'eventual' and $count=true.",
            )
        select = _parse_select(
            req.query,
            USER_PROPERTIES if cast else None,
            "microsoft.graph.user" if cast else "directoryObject",
        )
        user_ids, group_ids = self.tenant.transitive_members(group.id)
        assert req.identity is not None
        full = bool(req.identity.roles & USER_READ)
        items: list[dict[str, Any]] = []
        for uid in user_ids:
            user = self.tenant.users[uid]
            props = self._user_json(user, select)
            if not full:
                props = {k: (v if k == "id" else None) for k, v in props.items()}
            items.append({"@odata.type": "#microsoft.graph.user", **props})
        if not cast:
            items.extend(_select(self._group_json(self.tenant.groups[gid]), select) for gid in group_ids)
        top = _page_size(req.query)
        start = _decode_skiptoken(req.query["$skiptoken"]) if "$skiptoken" in req.query else 0
        page = items[start : start + top]
        body: dict[str, Any] = {
            "@odata.context": self._context(
                f"users({','.join(select)})" if cast and select else "users" if cast else "directoryObjects"
            )
        }
        if req.query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(items)
        if start + top < len(items):
            params = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            params["$skiptoken"] = _encode_skiptoken(start + top)
            encoded = urlencode(params, quote_via=quote, safe="$',:()")
            body["@odata.nextLink"] = f"{self.base_url}{req.path}?{encoded}"
        body["value"] = page
        return GraphResponse(200, body)

    _ROLE_FILTER = FilterSpec(
        {
            "principalId": (lambda a: a.principal_id, "str", True),
            "roleDefinitionId": (lambda a: a.role_template_id, "str", True),
            "directoryScopeId": (lambda a: a.directory_scope_id, "str", False),
        }
    )

    def _role_assignments(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        text = req.query.get("$filter", "")
        if "principalId" not in text and "roleDefinitionId" not in text:
            raise GraphFailure(
                400,
                "Request_UnsupportedQuery",
                "This operation requires a $filter on either principalId or roleDefinitionId.",
            )
        predicate = self._filter(req.query, self._ROLE_FILTER)
        expand = {e.strip() for e in req.query.get("$expand", "").split(",") if e.strip()}
        if expand - {"roleDefinition", "principal"}:
            raise bad_request(
                f"Could not find a property named '{sorted(expand)[0]}' on type 'microsoft.graph.unifiedRoleAssignment'."
            )
        items = []
        for assignment in self.tenant.role_assignments:
            if predicate is not None and not predicate(assignment):
                continue
            item: dict[str, Any] = {
                "id": assignment.id,
                "principalId": assignment.principal_id,
                "roleDefinitionId": assignment.role_template_id,
                "directoryScopeId": assignment.directory_scope_id,
                "resourceScope": assignment.directory_scope_id,
            }
            if "roleDefinition" in expand:
                item["roleDefinition"] = {
                    "id": assignment.role_template_id,
                    "templateId": assignment.role_template_id,
                    "displayName": assignment.display_name or ROLE_NAMES.get(assignment.role_template_id),
                    "isBuiltIn": True,
                }
            if "principal" in expand:
                principal_user = self.tenant.users.get(assignment.principal_id)
                group = self.tenant.groups.get(assignment.principal_id)
                if principal_user is not None:
                    item["principal"] = {
                        "@odata.type": "#microsoft.graph.user",
                        **self._user_json(principal_user, None),
                    }
                elif group is not None:
                    item["principal"] = self._group_json(group)
            items.append(item)
        return GraphResponse(
            200, {"@odata.context": self._context("roleManagement/directory/roleAssignments"), "value": items}
        )

    def _role_eligibilities(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        if not self.behaviour.pim_licensed:
            raise GraphFailure(400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")
        text = req.query.get("$filter", "")
        if "principalId" not in text and "roleDefinitionId" not in text:
            raise GraphFailure(
                400,
                "Request_UnsupportedQuery",
                "This operation requires a $filter on either principalId or roleDefinitionId.",
            )
        predicate = self._filter(req.query, self._ROLE_FILTER)
        items = [
            {
                "id": eligibility.id,
                "principalId": eligibility.principal_id,
                "roleDefinitionId": eligibility.role_template_id,
                "directoryScopeId": eligibility.directory_scope_id,
                "appScopeId": None,
                "startDateTime": eligibility.start_date_time,
                "endDateTime": eligibility.end_date_time,
                "memberType": "Direct",
                "roleEligibilityScheduleId": eligibility.id,
            }
            for eligibility in self.tenant.role_eligibilities
            if predicate is None or predicate(eligibility)
        ]
        return GraphResponse(
            200,
            {
                "@odata.context": self._context("roleManagement/directory/roleEligibilityScheduleInstances"),
                "value": items,
            },
        )

    _GROUP_ELIGIBILITY_FILTER = FilterSpec(
        {
            "principalId": (lambda e: e.principal_id, "str", True),
            "groupId": (lambda e: e.group_id, "str", True),
            "accessId": (lambda e: e.access_id, "str", False),
        }
    )

    def _group_eligibilities(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """PIM for Groups: eligible memberships and ownerships
        (https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityscheduleinstances). The page
        says the method "requires the $filter (eq) query parameter to scope the request to a principalId or a
        groupId"; `$expand` takes `group` and `principal` (with a nested `$select`). Without Entra ID P2 the same
        answer as the role eligibility read (AadPremiumLicenseRequired)."""
        if not self.behaviour.pim_licensed:
            raise GraphFailure(400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")
        text = req.query.get("$filter", "")
        if "principalId" not in text and "groupId" not in text:
            raise GraphFailure(
                400,
                "Request_UnsupportedQuery",
                "This operation requires a $filter on either principalId or groupId.",
            )
        predicate = self._filter(req.query, self._GROUP_ELIGIBILITY_FILTER)
        expand = _parse_expand(
            req.query, {"group", "principal"}, "privilegedAccessGroupEligibilityScheduleInstance"
        )
        items = []
        for eligibility in self.tenant.group_eligibilities:
            if predicate is not None and not predicate(eligibility):
                continue
            item: dict[str, Any] = {
                "id": eligibility.id,
                "startDateTime": eligibility.start_date_time,
                "endDateTime": eligibility.end_date_time,
                "accessId": eligibility.access_id,
                "principalId": eligibility.principal_id,
                "groupId": eligibility.group_id,
                "memberType": "direct",
                "eligibilityScheduleId": eligibility.id,
            }
            if "group" in expand:
                group = self.tenant.groups.get(eligibility.group_id)
                item["group"] = _select(self._group_json(group), expand["group"]) if group else None
            if "principal" in expand:
                item["principal"] = self._directory_object(eligibility.principal_id, expand["principal"])
            items.append(item)
        return GraphResponse(
            200,
            {
                "@odata.context": self._context(
                    "identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"
                ),
                "value": items,
            },
        )

    def _directory_object(self, object_id: str, select: list[str] | None) -> dict[str, Any]:
        """A user, group or service principal as a directoryObject item (owners, expanded principals)."""
        user = self.tenant.users.get(object_id)
        if user is not None:
            return _select({"@odata.type": "#microsoft.graph.user", **self._user_json(user, None)}, select)
        group = self.tenant.groups.get(object_id)
        if group is not None:
            return _select(self._group_json(group), select)
        app = self.tenant.app_by_object_id(object_id, service_principal=True)
        return _select(
            {
                "@odata.type": "#microsoft.graph.servicePrincipal",
                "id": object_id,
                "appId": app.client_id if app else None,
                "displayName": app.display_name if app else None,
            },
            select,
        )

    def _app_owners(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /applications/{id}/owners, /applications(appId='{appId}')/owners and the same for
        /servicePrincipals (application-list-owners, serviceprincipal-list-owners,
        https://learn.microsoft.com/graph/api/application-list-owners,
        https://learn.microsoft.com/graph/api/serviceprincipal-list-owners): the owners as directoryObjects."""
        service_principal = req.path.startswith("/servicePrincipals")
        object_id, app_id = match.group(1), match.group(2)
        if app_id is not None:
            app = self.tenant.app(app_id)
        else:
            app = self.tenant.app_by_object_id(object_id, service_principal=service_principal)
        if app is None:
            raise not_found(app_id if app_id is not None else object_id)
        select = _parse_select(req.query, None, "microsoft.graph.directoryObject")
        owners = app.service_principal_owners if service_principal else app.owners
        return GraphResponse(
            200,
            {
                "@odata.context": self._context("directoryObjects"),
                "value": [self._directory_object(o, select) for o in owners],
            },
        )

    # $batch ----------------------------------------------------------------------------------------------------
    def _batch(self, req: GraphRequest) -> GraphResponse:
        body = req.body
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad_request("Invalid batch payload format.", "BadRequest")
        if len(requests) > 20:
            raise bad_request("The number of batch requests exceeds the limit of 20.", "BadRequest")
        ids: set[str] = set()
        for item in requests:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise bad_request(
                    "Invalid batch payload format: every request needs a string id.", "BadRequest"
                )
            if not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
                raise bad_request(
                    f"Invalid batch payload format: request '{item['id']}' needs method and url.",
                    "BadRequest",
                )
            if item["id"] in ids:
                raise bad_request(
                    f"Batch request contains duplicate request id '{item['id']}'.", "BadRequest"
                )
            ids.add(item["id"])
        assert req.identity is not None
        results: dict[str, int] = {}
        answers: dict[str, dict[str, Any]] = {}
        for item in _dependency_order(requests, ids):
            response = self._batch_item(req, item, results)
            results[item["id"]] = response["status"]
            answers[item["id"]] = response
        return GraphResponse(200, {"responses": [answers[item["id"]] for item in requests]})

    def _batch_item(
        self, outer: GraphRequest, item: dict[str, Any], results: dict[str, int]
    ) -> dict[str, Any]:
        rid = str(uuid.uuid4())
        crid = outer.client_request_id
        method = item["method"].upper()
        url = item["url"]
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        path = parts.path
        call = Call(
            method,
            "/v1.0" + path,
            query,
            None,
            item.get("body"),
            rid,
            time.time(),
            in_batch=True,
            client_request_id=crid,
        )
        self.calls.append(call)

        def answer(response: GraphResponse) -> dict[str, Any]:
            call.status = response.status
            out_headers = {"Cache-Control": "no-cache"}
            if response.body is not None:
                out_headers["Content-Type"] = (
                    "application/json"
                    if isinstance(response.body, dict) and "error" in response.body
                    else JSON_TYPE
                )
            out_headers.update(response.headers)
            out: dict[str, Any] = {"id": item["id"], "status": response.status, "headers": out_headers}
            if response.body is not None:
                out["body"] = response.body
            return out

        # "If an individual request fails, any request that depends on that request fails with status code 424
        # (Failed Dependency)" (https://learn.microsoft.com/graph/json-batching, "Sequencing requests with the
        # dependsOn property"); _dependency_order has run every dependency before its dependents.
        depends = item.get("dependsOn") or []
        if any(results.get(dep, 424) >= 400 for dep in depends):
            failure = GraphFailure(424, "BadRequest", "Failed dependency.")
            return answer(self._failure_response(failure, rid, crid))
        if url.lower().startswith(("http://", "https://")):
            return answer(
                self._failure_response(
                    bad_request("Invalid request URL: a relative URL is required.", "BadRequest"), rid, crid
                )
            )
        if item.get("body") is not None and "content-type" not in headers:
            failure = bad_request(
                f"Write request id : {item['id']} does not contain Content-Type header or body.",
                "BadRequest",
            )
            return answer(self._failure_response(failure, rid, crid))
        fault = self.faults.take(method, call.path, in_batch=True)
        if fault is not None and isinstance(fault.action, int) and not fault.after_apply:
            call.fault = str(fault.action)
            return answer(self._fault_response(fault.action, fault.retry_after, rid, crid))
        sub = GraphRequest(
            method=method,
            path=path,
            query=query,
            body=item.get("body"),
            headers={"authorization": outer.headers.get("authorization", ""), **headers},
            request_id=rid,
            client_request_id=crid,
            in_batch=True,
        )
        response = self._process(sub, identity=outer.identity)
        if fault is not None and isinstance(fault.action, int):
            call.fault = f"apply_then_{fault.action}"
            response = self._fault_response(fault.action, fault.retry_after, rid, crid)
        return answer(response)

    # Teams apps -------------------------------------------------------------------------------------------------
    _TEAMS_APP_FILTER = FilterSpec(
        {
            "id": (lambda a: a.id, "str", True),
            "externalId": (lambda a: a.external_id, "str", True),
            "displayName": (lambda a: a.display_name, "str", True),
            "distributionMethod": (lambda a: a.distribution_method, "str", True),
        }
    )

    def _catalog(self) -> list[TeamsApp]:
        return list(self.tenant.teams_apps) if self.behaviour.teams_app_in_catalog else []

    def _teams_apps(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /appCatalogs/teamsApps (https://learn.microsoft.com/graph/api/appcatalogs-list-teamsapps): application
        permission AppCatalog.Read.All or AppCatalog.ReadWrite.All; `$filter` on the teamsApp's fields (equal,
        not-equal, and, or, not), `$select`. The catalog's `id` is its own, the manifest's id is `externalId`.
        Behaviour.teams_app_in_catalog off: nothing matches (the app is not published, or not visible yet)."""
        select = _parse_select(
            req.query,
            frozenset({"id", "externalId", "displayName", "distributionMethod"}),
            "microsoft.graph.teamsApp",
        )
        predicate = self._filter(req.query, self._TEAMS_APP_FILTER)
        apps = [a for a in self._catalog() if predicate is None or predicate(a)]
        return GraphResponse(
            200,
            {
                "@odata.context": self._context("appCatalogs/teamsApps"),
                "value": [_select(a.to_graph(), select) for a in apps],
            },
        )

    def _installation_json(
        self, installation: TeamsAppInstallation, expand: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
            "id": installation.id,
        }
        app = self.tenant.teams_app(installation.teams_app_id)
        if "teamsApp" in expand:
            body["teamsApp"] = app.to_graph() if app else None
        if "teamsAppDefinition" in expand:
            body["teamsAppDefinition"] = (
                {
                    "id": base64.b64encode(f"{app.id}##1.0.0".encode()).decode(),
                    "teamsAppId": app.id,
                    "displayName": app.display_name,
                    "version": "1.0.0",
                }
                if app
                else None
            )
        return body

    _INSTALLED_FILTER = re.compile(r"\s*teamsApp/(id|externalId)\s+eq\s+'([^']*)'\s*")

    def _install_teams_app(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """POST /users/{id}/teamwork/installedApps (https://learn.microsoft.com/graph/api/userteamwork-post-installedapps):
        body {"teamsApp@odata.bind": ".../appCatalogs/teamsApps/{catalog id}"}; 201 Created without a body.

        Not on Microsoft's page, observed and switchable: an app already installed for the user answers 409
        Conflict (what clients that install proactively, such as Company Communicator, treat as "installed");
        an app an app permission policy blocks answers 403 Forbidden "App is blocked by app permission policy."
        (Behaviour.teams_app_blocked); an unknown catalog id answers 404."""
        user = self._user_or_404(match.group(1))
        bind = req.body.get("teamsApp@odata.bind") if isinstance(req.body, dict) else None
        found = re.search(r"/appCatalogs/teamsApps/([^/?#]+)$", bind) if isinstance(bind, str) else None
        if found is None:
            raise bad_request(
                "Invalid request body: 'teamsApp@odata.bind' must name an app of the catalog.", "BadRequest"
            )
        app = next((a for a in self._catalog() if a.id == found.group(1)), None)
        if app is None:
            raise GraphFailure(
                404, "NotFound", f"The teamsApp '{found.group(1)}' was not found in the app catalog."
            )
        if self.behaviour.teams_app_blocked:
            raise GraphFailure(
                403,
                "Forbidden",
                f"App is blocked by app permission policy. TenantId: {self.tenant.tenant_id}, UserObjectId: "
                f"{user.id}, AppId: {app.id}, AppType: Private",
                inner={"code": "AccessDenied"},
            )
        if any(i.teams_app_id == app.id for i in self.tenant.installations_of(user.id)):
            raise GraphFailure(409, "Conflict", "App is already installed for the user.")
        self.tenant.install_teams_app(user.id, app, _graph_date())
        return GraphResponse(201)

    def _installed_apps(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/teamwork/installedApps (https://learn.microsoft.com/graph/api/userteamwork-list-installedapps):
        `$expand=teamsApp` / `teamsAppDefinition`; `$filter=teamsApp/id eq '…'` or `teamsApp/externalId eq '…'`
        (the forms Microsoft's proactive installation page uses); an empty list when the app is not installed."""
        user = self._user_or_404(match.group(1))
        expand = _parse_expand(req.query, {"teamsApp", "teamsAppDefinition"}, "userScopeTeamsAppInstallation")
        installations = self.tenant.installations_of(user.id)
        text = req.query.get("$filter")
        if text is not None:
            clause = self._INSTALLED_FILTER.fullmatch(text)
            if clause is None:
                raise GraphFailure(
                    400, "Request_UnsupportedQuery", f"Unsupported Query. Invalid filter clause: {text[:80]}"
                )
            prop, value = clause.groups()

            def matches(i: TeamsAppInstallation) -> bool:
                app = self.tenant.teams_app(i.teams_app_id)
                return (
                    app is not None and (app.id if prop == "id" else app.external_id).lower() == value.lower()
                )

            installations = [i for i in installations if matches(i)]
        # "If you plan to use the TeamsAppInstallation.ReadWriteSelfForUser.All permission ... The app id given in
        # the webApplicationInfo property and the app id used to generate the access token must match. Otherwise,
        # the API returns an empty result." (the page above): with only the Self permission, the caller sees the
        # installations of the apps whose manifest names it.
        assert req.identity is not None
        caller = req.identity.app_id.lower()
        others = [a for a in permissions.TEAMS_APP_INSTALLED.accepted if _SELF_FOR_USER not in a]
        if not any(a <= req.identity.roles for a in others):

            def names_caller(i: TeamsAppInstallation) -> bool:
                app = self.tenant.teams_app(i.teams_app_id)
                return app is not None and (app.web_application_id or "").lower() == caller

            installations = [i for i in installations if names_caller(i)]
        return GraphResponse(
            200,
            {
                "@odata.context": self._context(f"users('{user.id}')/teamwork/installedApps"),
                "value": [self._installation_json(i, expand) for i in installations],
            },
        )

    def _installation_or_404(self, user_ref: str, installation_id: str) -> TeamsAppInstallation:
        user = self._user_or_404(user_ref)
        found = next((i for i in self.tenant.installations_of(user.id) if i.id == installation_id), None)
        if found is None:
            raise GraphFailure(404, "NotFound", f"The app installation '{installation_id}' was not found.")
        return found

    def _installed_app(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/teamwork/installedApps/{installation id}
        (https://learn.microsoft.com/graph/api/userteamwork-get-installedapps)."""
        expand = _parse_expand(req.query, {"teamsApp", "teamsAppDefinition"}, "userScopeTeamsAppInstallation")
        installation = self._installation_or_404(match.group(1), match.group(2))
        return GraphResponse(200, self._installation_json(installation, expand))

    def _installed_app_chat(self, req: GraphRequest, match: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/teamwork/installedApps/{installation id}/chat
        (https://learn.microsoft.com/graph/api/userscopeteamsappinstallation-get-chat): the 1:1 chat between the
        user and the app's bot; its `id` (19:…@unq.gbl.spaces) is the chatId the bot sends to."""
        installation = self._installation_or_404(match.group(1), match.group(2))
        return GraphResponse(
            200,
            {
                "@odata.context": self._context(
                    f"users('{installation.user_id}')/teamwork/installedApps('{installation.id}')/chat/$entity"
                ),
                "id": installation.chat_id,
                "topic": None,
                "createdDateTime": installation.created or None,
                "lastUpdatedDateTime": installation.created or None,
                "chatType": "oneOnOne",
                "webUrl": f"https://teams.microsoft.com/l/chat/{quote(installation.chat_id)}/0?tenantId={self.tenant.tenant_id}",
                "tenantId": self.tenant.tenant_id,
            },
        )

    # ----- control endpoints ----------------------------------------------------------------------------------
    async def _control(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"].strip("/")
        method = request.method
        try:
            payload: Any = await request.json() if request.can_read_body else None
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        try:
            if tail == "state" and method == "GET":
                return web.json_response(self.tenant.to_dict())
            if tail == "state" and method in ("PUT", "POST"):
                self._initial = payload
                self.reset()
                return web.json_response({"ok": True})
            if tail == "reset" and method == "POST":
                self.reset()
                return web.json_response({"ok": True})
            if tail == "calls" and method == "GET":
                return web.json_response([c.to_dict() for c in self.calls])
            if tail == "calls" and method == "DELETE":
                self.calls.clear()
                return web.json_response({"ok": True})
            if tail == "outbox" and method == "GET":
                return web.json_response(self.outbox)
            if tail == "outbox" and method == "DELETE":
                self.outbox.clear()
                return web.json_response({"ok": True})
            if tail == "faults" and method == "GET":
                return web.json_response(self.faults.to_list())
            if tail == "faults" and method == "POST":
                fault = self.faults.inject(
                    payload.get("method", "*"),
                    payload["path"],
                    payload["action"],
                    int(payload.get("times", 1)),
                    payload.get("retry_after"),
                    after_apply=bool(payload.get("after_apply", False)),
                )
                return web.json_response(fault.to_dict())
            if tail == "faults" and method == "DELETE":
                self.faults.clear()
                return web.json_response({"ok": True})
            if tail == "behaviour" and method == "GET":
                return web.json_response(self.behaviour.to_dict())
            if tail == "behaviour" and method in ("POST", "PATCH", "PUT"):
                self.behaviour.update(payload or {})
                return web.json_response(self.behaviour.to_dict())
            match = re.fullmatch(r"users/([^/]+)/phones/(mobile|alternateMobile|office)", tail)
            if match and method in ("PUT", "DELETE"):
                user = self.tenant.user(match.group(1))
                if user is None:
                    return web.json_response({"error": "unknown user"}, status=404)
                number = None if method == "DELETE" else payload["phoneNumber"]
                self.tenant.set_phone(user.id, match.group(2), number, (payload or {}).get("smsSignInState"))
                return web.json_response({"ok": True})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return web.json_response({"error": f"bad control request: {exc}"}, status=400)
        return web.json_response({"error": f"unknown control endpoint {method} /_sim/{tail}"}, status=404)


def _dependency_order(requests: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    """The batch's requests in an order that runs each one after the requests its `dependsOn` names
    (https://learn.microsoft.com/graph/json-batching: "the dependsOn property ... specifies that the request
    should be run after the specified request"); otherwise in the order sent. A `dependsOn` that is not a list of
    this batch's other ids, or a cycle, is a 400 for the whole batch, as Graph validates the payload first."""
    depends: dict[str, list[str]] = {}
    for item in requests:
        value = item.get("dependsOn")
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(d, str) and d in ids for d in value):
            raise bad_request(
                f"Invalid batch payload format: dependsOn of request '{item['id']}' must name other requests "
                "of the batch.",
                "BadRequest",
            )
        if item["id"] in value:
            raise bad_request(f"Request '{item['id']}' cannot depend on itself.", "BadRequest")
        depends[item["id"]] = value
    ordered: list[dict[str, Any]] = []
    done: set[str] = set()
    remaining = list(requests)
    while remaining:
        ready = [item for item in remaining if all(d in done for d in depends[item["id"]])]
        if not ready:
            raise bad_request("Invalid batch payload format: dependsOn forms a cycle.", "BadRequest")
        for item in ready:
            ordered.append(item)
            done.add(item["id"])
        remaining = [item for item in remaining if item["id"] not in done]
    return ordered


def load_tenant_file(path: str | os.PathLike[str]) -> Tenant:
    return Tenant.load(Path(path))

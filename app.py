"""The bot's web server: POST /api/messages (Bot Framework CloudAdapter), GET /healthz, GET /readyz.

`create_app(settings)` builds the aiohttp Application; nothing happens at import time. The database, the Graph
client and the background sweeper are opened in on_startup and closed in on_cleanup; a graceful shutdown stops
taking new work and lets running changes finish (bounded by SHUTDOWN_TIMEOUT_SECONDS).

    python app.py           # serve on HOST:PORT (default 0.0.0.0:3978)
    python app.py --demo    # demo mode on a simulated tenant (bot/teams/demo.py)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.settings import BotSettings, SettingsError

log = logging.getLogger("mfa_bot.app")

MAX_JSON_DEPTH = 64


@dataclass
class Runtime:
    """Everything on_startup builds; kept on the application (app[RUNTIME])."""

    settings: BotSettings
    store: Any
    graph: Any
    adapter: Any
    bot: Any
    executor: Any
    sweeper: Any | None
    owns_store: bool
    owns_graph: bool
    accepting: bool = True
    inbound: Any | None = None  # bot.teams.inbound_auth.ChannelTokenValidator; None without an app id
    tenant_report: Any | None = None  # graph.doctor.Report of the start-up tenant check, None until it ends
    tenant_task: asyncio.Task[None] | None = None  # the start-up tenant check; None when switched off


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def create_app(
    settings: BotSettings,
    *,
    graph: Any | None = None,
    store: Any | None = None,
    clock: Callable[[], Any] | None = None,
    start_sweeper: bool = True,
    tenant_check: bool = True,
    reacher: Any | None = None,
) -> web.Application:
    """The bot as an aiohttp application. `graph` (bot.desk.graph_services.GraphServices) and `store` (bot.persistence.store.Store) may be
    passed in (tests, demo mode); otherwise they are built from settings at start-up and closed at clean-up.
    `tenant_check`: run the read-only tenant check (graph/doctor.py) in the background once started.
    `reacher` (bot.desk.verification.Reacher): puts the caller-verification card in front of a person in Teams;
    None: the Teams one (bot/teams/reach.py) on this bot's adapter, store and Graph client (tests may pass their own)."""
    from graph.log_privacy import install as mask_numbers_in_logs

    mask_numbers_in_logs()  # every log record of the process, httpx's request lines included
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_errors_as_json])

    async def on_startup(app: web.Application) -> None:
        runtime = app[RUNTIME] = await _build_runtime(
            settings, graph=graph, store=store, clock=clock, start_sweeper=start_sweeper, reacher=reacher
        )
        if tenant_check:  # in the background: start-up does not wait for a dozen Graph reads
            runtime.tenant_task = asyncio.create_task(_check_tenant(runtime), name="tenant-check")

    async def on_shutdown(app: web.Application) -> None:
        runtime = app.get(RUNTIME)
        if runtime is None:
            return
        runtime.accepting = False
        await runtime.executor.shutdown(timeout=settings.shutdown_timeout_seconds)

    async def on_cleanup(app: web.Application) -> None:
        runtime = app.get(RUNTIME)
        if runtime is None:
            return
        runtime.accepting = False
        if runtime.tenant_task is not None and not runtime.tenant_task.done():
            runtime.tenant_task.cancel()
        if runtime.sweeper is not None:
            await runtime.sweeper.stop()
        await runtime.executor.shutdown(timeout=settings.shutdown_timeout_seconds)
        if runtime.owns_graph and runtime.graph is not None:
            await runtime.graph.close()
        if runtime.owns_store:
            await runtime.store.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/api/messages", _messages)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


async def _build_runtime(
    settings: BotSettings,
    *,
    graph: Any | None,
    store: Any | None,
    clock: Callable[[], Any] | None,
    start_sweeper: bool,
    reacher: Any | None = None,
) -> Runtime:
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

    from bot.desk.approvals import ApprovalService
    from bot.desk.context import Desk
    from bot.desk.execution import Executor
    from bot.desk.graph_services import GraphServices
    from bot.desk.policy import Policy
    from bot.desk.recovery import Recovery
    from bot.desk.sweeper import Sweeper
    from bot.desk.verification import CallerVerification
    from bot.persistence.store import Store
    from bot.teams.handler import DemoBanner, InertText, MfaBot
    from bot.teams.proactive import CardUpdater

    inbound = _inbound_authentication(settings)
    _speed_up_connector_clients()
    owns_store = store is None
    if store is None:
        store = await Store.open(settings.database_url, data_dir=settings.data_dir)
    owns_graph = graph is None
    try:
        if graph is None:
            if settings.graph is None:
                raise SettingsError("GRAPH_TENANT_ID", "missing")
            graph = await GraphServices.create(settings.graph)
            await _warm_graph_token(graph)
            warning = await _bot_owners_warning(graph)
            if warning:
                log.warning("owners of the bot's Graph application: %s", warning)
        bf = settings.bot_framework
        if not bf.APP_ID:
            # Local mode (Agents Playground, tests): no app id, no inbound authentication. botbuilder only allows
            # that under its MultiTenant credential factory.
            bf = dataclasses.replace(bf, APP_TYPE="MultiTenant")
        adapter = CloudAdapter(
            ConfigurationBotFrameworkAuthentication(bf, credentials_factory=_credentials_factory(settings))
        )
        updater = CardUpdater(adapter, bf.APP_ID)
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        policy = Policy(graph.directory, settings, **kwargs)
        executor = Executor(
            store=store, workflow=graph.workflow, updater=updater, settings=settings, policy=policy, **kwargs
        )
        approvals = ApprovalService(
            store=store, policy=policy, executor=executor, updater=updater, settings=settings, **kwargs
        )
        desk = Desk(
            store=store,
            graph=graph,
            policy=policy,
            executor=executor,
            updater=updater,
            settings=settings,
            approvals=approvals,
            # the caller-verification card's way to a person in Teams (tests may pass their own)
            reacher=reacher if reacher is not None else _reacher(settings, adapter, bf.APP_ID, store, graph),
            **kwargs,
        )
        bot = MfaBot(desk=desk, store=store, settings=settings)
        adapter.on_turn_error = bot.on_turn_error
        # every text message leaving the bot goes out markdown-escaped with its web addresses defanged
        adapter.use(InertText())
        if settings.demo_mode:
            # every card and text leaving the bot (turns and proactive updates alike) says it is a simulation
            adapter.use(DemoBanner())
        sweeper = None
        if start_sweeper:
            # Its first round runs at once: it expires overdue approvals and resumes or closes requests a crash
            # left approved-but-not-started or executing.
            recovery = Recovery(approvals, store=store, executor=executor, updater=updater, **kwargs)
            sweeper = Sweeper(
                recovery, settings.sweep_interval_seconds, verification=CallerVerification(desk)
            )
            sweeper.start()
    except BaseException:
        if owns_graph and graph is not None:
            await graph.close()
        if owns_store:
            await store.close()
        raise
    # Everything built so far (modules, botbuilder's models, the settings) lives as long as the process. Out of
    # the collector's view, a full collection under load pauses the event loop for a few ms instead of ~100 ms.
    gc.collect()
    gc.freeze()
    return Runtime(
        settings=settings,
        store=store,
        graph=graph,
        adapter=adapter,
        bot=bot,
        executor=executor,
        sweeper=sweeper,
        owns_store=owns_store,
        owns_graph=owns_graph,
        inbound=inbound,
    )


def _reacher(settings: BotSettings, adapter: Any, app_id: str | None, store: Any, graph: Any) -> Any:
    """Who puts the caller-verification card in front of a person in Teams: their stored 1:1 conversation, else
    the app installed for them through Graph (only with TEAMS_APP_ID; without it, stored conversations only)."""
    from bot.teams.reach import TeamsReacher
    from graph.teams_apps import TeamsApps

    client = getattr(graph, "client", None)
    teams_apps = (
        TeamsApps.from_settings(settings.graph, client)
        if settings.graph is not None and client is not None
        else None
    )
    return TeamsReacher(
        adapter,
        app_id,
        store,
        teams_apps,
        tenant_id=settings.tenant_id,
        service_url=settings.bot_service_url,
    )


def _inbound_authentication(settings: BotSettings) -> Any | None:
    """The strict channel-token check when the bot has its app id. Without one, demo mode or the explicit opt-in on
    a loopback HOST (BotSettings.from_env checks both; checked again here for settings built another way)."""
    from bot.settings import is_loopback
    from bot.teams.inbound_auth import ChannelTokenValidator

    bf = settings.bot_framework
    if bf.authentication_enabled:
        return ChannelTokenValidator.from_settings(bf)
    if settings.demo_mode:
        return None
    if not settings.allow_unauthenticated_inbound:
        raise SettingsError(
            "MicrosoftAppId", "missing: the bot's Microsoft App ID authenticates every request"
        )
    if not is_loopback(settings.host):
        raise SettingsError(
            "ALLOW_UNAUTHENTICATED_INBOUND", f"true needs a loopback HOST, not '{settings.host}'"
        )
    log.warning(
        "ALLOW_UNAUTHENTICATED_INBOUND=true and no MicrosoftAppId: /api/messages takes requests without any "
        "authentication, for local tests only (HOST=%s)",
        settings.host,
    )
    return None


async def _warm_graph_token(graph: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Ask for the Graph token once before serving. Without it the first card actions after a start each find
    the token cache empty and queue for the token endpoint together (a second or more for the first answers). A
    failure here only means the first card action asks again (readyz reports it); start-up goes on."""
    try:
        await asyncio.wait_for(graph.tokens.token(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        code = getattr(exc, "code", None) or type(exc).__name__
        log.warning("no Graph token at start-up (%s); the first card action asks again", code)


async def _bot_owners_warning(graph: Any, timeout: float = 10.0) -> str | None:  # noqa: ASYNC109
    """None when the owners of the bot's Graph application and service principal can be read (they count as
    privileged targets); else what an administrator should fix. Read once at start-up (then cached, see
    graph.directory.Directory.bot_owners) and shown by readyz: while they cannot be read every target counts as
    privileged, so the bot stays safe and serves the privileged group only."""
    read = getattr(getattr(graph, "directory", None), "bot_owners", None)
    if read is None:
        return None
    try:
        owners = await asyncio.wait_for(read(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return f"unreadable ({type(exc).__name__}); every target counts as privileged until they can be read"
    if owners.error is None:
        return None
    if owners.missing_permission:
        return (
            f"missing permission {owners.missing_permission}; every target counts as privileged until it is "
            "granted"
        )
    return f"unreadable ({owners.error}); every target counts as privileged until they can be read"


async def _check_tenant(runtime: Runtime) -> None:
    """The read-only tenant check of `python -m graph doctor` with the bot's own Graph client and group settings: a
    warning per problem in the log, the result on /readyz and in the approvers' help card."""
    from graph.doctor import run_checks

    s = runtime.settings
    graph = runtime.graph
    if s.graph is None or getattr(graph, "client", None) is None or getattr(graph, "tokens", None) is None:
        return
    named = (
        ("HELPDESK_GROUP_ID", s.helpdesk_group_id),
        ("APPROVER_GROUP_ID", s.approver_group_id),
        ("PRIVILEGED_GROUP_ID", s.privileged_group_id),
    )
    try:
        report = await run_checks(graph.client, graph.tokens, s.graph, groups={k: v for k, v in named if v})
    except Exception as exc:  # noqa: BLE001 - the check must never take the bot down
        log.warning("tenant check could not run: %s", type(exc).__name__)
        return
    runtime.tenant_report = report
    runtime.bot.desk.tenant_report = report
    for check in report.problems:
        log.warning(
            "tenant check %s: %s; to fix: %s (%s)",
            check.name,
            check.status,
            check.permission or "see the detail",
            check.detail,
            extra={"check": check.name, "status": check.status, "request_id": check.request_id},
        )
    if report.ok:
        log.info("tenant check: all required checks ok")


def _speed_up_connector_clients() -> None:
    """botbuilder builds a new msrest ConnectorClient (and a UserTokenClient) for every turn and every card update.
    Each builds msrest's ClientRetryPolicy, which computes its retry status codes as `i not in safe_codes` for 999
    codes against a 500-item list: about 3 ms of CPU each time, a fifth of the bot's CPU under load. The same
    codes as a frozenset give the same list in microseconds. Only membership is ever asked of safe_codes."""
    from msrest.universal_http.requests import ClientRetryPolicy

    if not isinstance(ClientRetryPolicy.safe_codes, frozenset):
        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]


def _credentials_factory(settings: BotSettings) -> Any | None:
    """A certificate credential when MicrosoftAppCertificate* are set; otherwise botbuilder's own factory from the
    configuration (password, UserAssignedMSI, or none in local mode)."""
    bf = settings.bot_framework
    if not (bf.APP_ID and bf.CERTIFICATE_THUMBPRINT and bf.CERTIFICATE_PRIVATE_KEY_FILE):
        return None
    from botframework.connector.auth import CertificateServiceClientCredentialsFactory

    with open(bf.CERTIFICATE_PRIVATE_KEY_FILE, encoding="ascii") as fh:
        private_key = fh.read()
    return CertificateServiceClientCredentialsFactory(
        bf.CERTIFICATE_THUMBPRINT, private_key, bf.APP_ID, bf.APP_TENANTID
    )


# ------------------------------------------------------------------------------------------------ handlers


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def _errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error leaves as a short JSON body: a bad request is a 4xx that says what was wrong; an internal
    failure is logged and answered with a 500 that carries no detail (never a stack trace)."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _problem(
            413, "PayloadTooLarge", f"The body is larger than {request.app._client_max_size} bytes."
        )  # noqa: SLF001
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _problem(exc.status, exc.reason.replace(" ", ""), exc.text or exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _problem(500, "InternalError", "The bot could not process this request.")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, iteratively (no recursion on hostile input); stops early past limit."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


async def _messages(request: web.Request) -> web.StreamResponse:
    runtime = request.app.get(RUNTIME)
    if runtime is None or not runtime.accepting:
        return _problem(503, "ShuttingDown", "The bot is not taking new work right now; try again shortly.")
    if request.content_type != "application/json":
        return _problem(415, "UnsupportedMediaType", "Send the activity as application/json.")
    raw = await request.read()  # client_max_size bounds it (413)
    try:
        body = json.loads(raw)
    except RecursionError:
        return _problem(400, "BadRequest", "The body is nested too deeply.")
    except (ValueError, UnicodeDecodeError):
        return _problem(400, "BadRequest", "The body is not valid JSON.")
    if not isinstance(body, dict):
        return _problem(400, "BadRequest", "The body must be a JSON object (a Bot Framework activity).")
    if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return _problem(400, "BadRequest", "The body is nested too deeply.")
    from bot.teams.inbound_auth import ALLOWED_CHANNELS, TokenRefused

    if runtime.inbound is not None:
        try:
            await runtime.inbound.validate(
                request.headers.get("Authorization"),
                service_url=body.get("serviceUrl"),
                channel_id=body.get("channelId"),
            )
        except TokenRefused as exc:
            log.info("refused a request to /api/messages: %s", exc.reason)
            return _problem(401, "Unauthorized", "The request is not authenticated for this bot.")
    problem = _activity_problem(body)
    if problem:
        return _problem(400, "BadRequest", problem)
    if not runtime.settings.demo_mode and body.get("channelId") not in ALLOWED_CHANNELS:
        await _audit_other_channel(runtime, body)
        return _problem(403, "Forbidden", "This bot takes activities from Microsoft Teams only.")
    from bot.teams.handler import AFTER_RESPONSE

    deferred: list[Any] = []
    token = AFTER_RESPONSE.set(deferred)
    try:
        response = await runtime.adapter.process(request, runtime.bot)
    except (web.HTTPUnauthorized, PermissionError):
        _drop(deferred)
        return _problem(401, "Unauthorized", "The request is not authenticated for this bot.")
    except web.HTTPException:
        _drop(deferred)
        raise
    except Exception as exc:
        _drop(deferred)
        if _is_auth_failure(exc):
            return _problem(401, "Unauthorized", "The request is not authenticated for this bot.")
        log.exception("activity processing failed")
        return _problem(500, "InternalError", "The bot could not process this activity.")
    finally:
        AFTER_RESPONSE.reset(token)
    if response is None:
        response = web.Response(status=201)
    if deferred:
        # Answer first (the card the person sees now), then start the slow work that updates it later: the
        # final card update can then never arrive before the answer it replaces.
        try:
            await response.prepare(request)
            await response.write_eof()
        finally:
            for work in deferred:
                runtime.executor.spawn(work)
    return response


async def _audit_other_channel(runtime: Runtime, body: Mapping[str, Any]) -> None:
    from bot.persistence.models import Person

    sender = body.get("from")
    if not isinstance(sender, dict):
        sender = {}
    aad, name = sender.get("aadObjectId"), sender.get("name")
    actor = Person(
        aad_object_id=aad[:64] if isinstance(aad, str) else "",
        name=name[:200] if isinstance(name, str) else "",
    )
    details = {
        "reason": "channel_not_allowed",
        "channel_id": str(body.get("channelId"))[:64],
        "activity_type": str(body.get("type"))[:40],
        "service_url": str(body.get("serviceUrl"))[:200],
    }
    log.info("refused an activity from channel %r", details["channel_id"])
    try:
        await runtime.store.audit("refused", actor=actor, details=details)
    except Exception:
        log.exception("writing the audit record of a refusal failed")


def _drop(deferred: list[Any]) -> None:
    for work in deferred:
        work.close()
    deferred.clear()


def _is_auth_failure(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    if module.startswith("jwt") or "Unauthorized" in type(exc).__name__:
        return True
    # botbuilder 4.17.1's token validation fails with AttributeError (no or empty Authorization header) or
    # IndexError (a key id the OpenID metadata does not publish, alg "none") instead of PermissionError: whatever
    # escapes its authenticate_request is a refused token, not a failure of the bot.
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "authenticate_request" and str(
            frame.f_globals.get("__name__", "")
        ).startswith("botframework.connector.auth"):
            return True
        tb = tb.tb_next
    return False


_OBJECT_FIELDS = ("from", "recipient", "conversation", "channelData")
_STRING_FIELDS = ("type", "id", "serviceUrl", "channelId", "text", "name", "locale", "replyToId")


def _activity_problem(body: Mapping[str, Any]) -> str | None:
    """The shape checks botbuilder's deserializer does not make (it would fail later with a 500)."""
    if not isinstance(body.get("type"), str) or not body["type"]:
        return "The activity has no type."
    for name in _STRING_FIELDS:
        if name in body and body[name] is not None and not isinstance(body[name], str):
            return f"The activity field '{name}' must be a string."
    for name in _OBJECT_FIELDS:
        if name in body and body[name] is not None and not isinstance(body[name], dict):
            return f"The activity field '{name}' must be an object."
    for name in ("from", "recipient", "conversation"):
        part = body.get(name) or {}
        for key, value in part.items():
            if value is not None and not isinstance(value, str | bool | int) and key != "properties":
                return f"The activity field '{name}.{key}' has the wrong type."
    if (
        "attachments" in body
        and body["attachments"] is not None
        and not isinstance(body["attachments"], list)
    ):
        return "The activity field 'attachments' must be a list."
    if "entities" in body and body["entities"] is not None and not isinstance(body["entities"], list):
        return "The activity field 'entities' must be a list."
    for name in ("attachments", "entities", "membersAdded", "membersRemoved"):
        items = body.get(name)
        if isinstance(items, list) and any(not isinstance(item, dict) for item in items):
            return f"The activity field '{name}' must be a list of objects."
    if body["type"] in ("message", "invoke") and not isinstance(body.get("serviceUrl"), str):
        return "The activity has no serviceUrl."
    if body["type"] in ("message", "invoke", "conversationUpdate", "installationUpdate"):
        if not isinstance(body.get("conversation"), dict) or not isinstance(
            body["conversation"].get("id"), str
        ):
            return "The activity has no conversation id."
    return None


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    runtime = request.app.get(RUNTIME)
    if runtime is None:
        return web.json_response({"status": "starting", "failed": ["startup"]}, status=503)
    checks: dict[str, str] = {}
    try:
        ok = await asyncio.wait_for(runtime.store.ping(), timeout=5.0)
        checks["database"] = "ok" if ok else "unreachable"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"unreachable ({type(exc).__name__})"
    try:
        await asyncio.wait_for(runtime.graph.tokens.token(), timeout=10.0)
        checks["graph_token"] = "ok"  # noqa: S105
    except Exception as exc:  # noqa: BLE001
        code = getattr(exc, "code", None) or type(exc).__name__
        checks["graph_token"] = f"unavailable ({code})"
    if not runtime.accepting:
        checks["accepting"] = "shutting down"
    failed = [name for name, value in checks.items() if value != "ok"]
    # Not a failed check: the bot still serves (safely). An administrator should fix it.
    warnings: dict[str, str] = {}
    owners = await _bot_owners_warning(runtime.graph)
    if owners:
        warnings["bot_owners"] = owners
    return web.json_response(
        {
            "status": "ready" if not failed else "not ready",
            "checks": checks,
            "failed": failed,
            "warnings": warnings,
            "tenant": _tenant_state(runtime),
        },
        status=200 if not failed else 503,
    )


def _tenant_state(runtime: Runtime) -> dict[str, Any]:
    """The start-up tenant check for /readyz: graph/doctor.py's JSON (`ok`, `checks`) and whether it has run. It
    does not decide readiness: the graph_token check above already fails when sign-in does."""
    report = runtime.tenant_report
    if report is not None:
        return {"state": "done", **report.to_json()}
    task = runtime.tenant_task
    state = "off" if task is None else "running" if not task.done() else "not run"
    return {"state": state, "ok": None, "checks": []}


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    if "--demo" in args:
        try:
            from bot.teams import demo
        except ImportError:
            print("demo mode is not available in this build (bot/teams/demo.py is missing)", file=sys.stderr)
            return 2
        result = demo.main(create_app, argv=args, environ=env)
        return int(result or 0)
    if args:
        print(f"unknown argument: {args[0]} (use: python app.py [--demo])", file=sys.stderr)
        return 2
    try:
        settings = BotSettings.from_env(env)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from graph.log_privacy import install as mask_numbers_in_logs

    mask_numbers_in_logs()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
        print=lambda text: log.info("%s", text),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

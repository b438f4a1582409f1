"""Demo mode: the bot on a simulated tenant, in the Microsoft 365 Agents Playground, with one command.

    python app.py --demo          (or `make demo`, which sets everything up first)

starts, all on loopback:
- the Graph + Entra simulator (graph/simulator/) seeded with the demo tenant "Contoso Demo"
  (graph/simulator/demo_tenant.json), HTTPS with its own CA, which only this process trusts;
- the bot (app.create_app) with settings pointing at the simulator, an SQLite database under data/demo/ and
  DEMO_MODE=true;
- a small read-only page showing the simulated tenant's phone methods and the e-mail the bot sent;
- three Agents Playground processes (node_modules/.bin/agentsplayground), signed in as the helpdesk agent Alex
  Wilber, the approver Megan Bowen and Lynne Robbins, the user whose phone Alex changes and who confirms in her
  window that she asked for it (caller verification); each from its own folder under
  bot/teams/demo/playground/ holding its `.m365agentsplayground.yml`; their logs go to data/demo/.

Lynne is reached where she talks to the bot: every Playground is a connector of its own, and the bot keeps her
conversation (service URL included) when her window opens (the Playground announces the installation of the app
in the chat it shows, bot/teams/handler.py stores it). A chat the bot would get from Graph instead (installing the
app for her, TEAMS_APP_ID) is not a conversation any Playground knows: a confirmation card sent there before her
window was ever opened is refused, and the agent's card says she could not be reached.

Demo mode refuses to start when real Graph or Bot Framework credentials are set in the environment, so it can
never be pointed at a real tenant by accident. Ctrl-C stops everything (the Playgrounds are stopped by process
group; they also die with this process).

The same `DemoStack` runs the end-to-end tests (tests/e2e) on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("mfa_bot.demo")

ROOT = Path(__file__).resolve().parents[3]  # bot/teams/demo/__init__.py -> the repository
DEMO_TENANT_FILE = ROOT / "graph" / "simulator" / "demo_tenant.json"
PLAYGROUND_DIR = Path(__file__).resolve().parent / "playground"
PLAYGROUND_BIN = ROOT / "node_modules" / ".bin" / "agentsplayground"
PLAYGROUND_CONFIG = ".m365agentsplayground.yml"

DEMO_TENANT_ID = "8f3c2a51-0d6e-4b7a-9c1f-2e4d6b8a0c11"
DEMO_CLIENT_ID = "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"
HELPDESK_GROUP_ID = "11111111-1111-1111-1111-000000000001"
APPROVER_GROUP_ID = "11111111-1111-1111-1111-000000000002"
PRIVILEGED_GROUP_ID = "11111111-1111-1111-1111-000000000003"
MAIL_SENDER = "servicedesk@contoso.example"
APPROVERS_CHAT_ID = "19:demo-group-megan-bowen@thread.v2"  # groupChat.id in playground/megan-bowen/

DEFAULT_BOT_PORT = 3978
DEFAULT_INFO_PORT = 3979
DEFAULT_SIM_PORT = 8443


@dataclass(frozen=True)
class Persona:
    key: str  # folder under bot/teams/demo/playground/
    name: str
    role: str
    aad_object_id: str
    upn: str


PERSONAS: dict[str, Persona] = {
    p.key: p
    for p in (
        Persona(
            "alex-wilber",
            "Alex Wilber",
            "helpdesk agent",
            "00000000-0000-0000-0000-0000000000a1",
            "alex.wilber@contoso.example",
        ),
        Persona(
            "megan-bowen",
            "Megan Bowen",
            "approver",
            "00000000-0000-0000-0000-0000000000a2",
            "megan.bowen@contoso.example",
        ),
        Persona(
            "patti-fernandez",
            "Patti Fernandez",
            "privileged approver",
            "00000000-0000-0000-0000-0000000000a3",
            "patti.fernandez@contoso.example",
        ),
        Persona(
            "lynne-robbins",
            "Lynne Robbins",
            "user who confirms",
            "00000000-0000-0000-0000-0000000000c1",
            "lynne.robbins@contoso.example",
        ),
        Persona(
            "pradeep-gupta",
            "Pradeep Gupta",
            "no helpdesk role",
            "00000000-0000-0000-0000-0000000000a4",
            "pradeep.gupta@contoso.example",
        ),
    )
}

# What the demo starts by default: the helpdesk agent, the approver and the user who confirms the change.
DEFAULT_PLAYGROUNDS: tuple[tuple[str, int], ...] = (
    ("alex-wilber", 56150),
    ("megan-bowen", 56151),
    ("lynne-robbins", 56152),
)

# Environment variables that would point the bot at a real tenant or a real Bot Framework registration.
_REAL_CREDENTIALS = (
    "GRAPH_CLIENT_SECRET",
    "GRAPH_CLIENT_CERTIFICATE",
    "MicrosoftAppPassword",
    "MicrosoftAppCertificateThumbprint",
    "MicrosoftAppCertificatePrivateKey",
)
# Settings a person may still change for the demo (everything else is fixed to the simulated tenant).
_OVERRIDABLE = (
    "APPROVAL_POLICY",
    "APPROVAL_EXPIRY_HOURS",
    "APPROVER_DM",
    "MANAGER_APPROVAL",
    "NOTIFY_DEFAULT",
    "ROLE_CACHE_SECONDS",
    "MAX_CHANGES_PER_REQUESTER_PER_HOUR",
    "TARGET_COOLDOWN_MINUTES",
    "SWEEP_INTERVAL_SECONDS",
    "VERIFICATION_POLICY",
    "VERIFICATION_TIMEOUT_MINUTES",
    "VERIFICATION_CODE_MINUTES",
    "TARGET_LOCK_HOURS",
    "LOG_LEVEL",
)


class DemoError(Exception):
    """Demo mode cannot start; the message is one line for the person who started it."""


def real_credentials_problem(environ: Mapping[str, str]) -> str | None:
    """One line naming the variable when the environment holds real Graph or Bot Framework credentials."""
    for name in _REAL_CREDENTIALS:
        if (environ.get(name) or "").strip():
            return (
                f"demo mode refuses to start: {name} is set, which looks like real credentials. The demo only "
                f"talks to its simulated tenant; unset {name} (or run `python app.py` without --demo)."
            )
    tenant = (environ.get("GRAPH_TENANT_ID") or "").strip()
    if tenant and tenant.lower() != DEMO_TENANT_ID:
        return (
            "demo mode refuses to start: GRAPH_TENANT_ID is set to another tenant than the demo's. The demo only "
            "talks to its simulated tenant; unset GRAPH_TENANT_ID (or run `python app.py` without --demo)."
        )
    return None


def demo_environment(
    *,
    authority_host: str,
    base_url: str,
    ca_file: str,
    bot_host: str,
    bot_port: int,
    data_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings (as BotSettings.from_env reads them) of a bot that talks to the simulator and nothing else."""
    from graph.simulator import DEFAULT_TEAMS_APP_EXTERNAL_ID

    env = {
        "DEMO_MODE": "true",
        "GRAPH_TENANT_ID": DEMO_TENANT_ID,
        "GRAPH_CLIENT_ID": DEMO_CLIENT_ID,
        "GRAPH_CLIENT_SECRET": "demo-secret-for-the-simulator-only",
        "GRAPH_AUTHORITY_HOST": authority_host,
        "GRAPH_BASE_URL": base_url,
        # The simulator's own CA, trusted by this bot's Graph clients only (never the system trust store).
        "SSL_CERT_FILE": ca_file,
        "MAIL_SENDER": MAIL_SENDER,
        # The bot's Teams app as the simulated tenant publishes it: a user who never wrote to the bot is reached
        # by installing it for them through Graph (bot/teams/reach.py).
        "TEAMS_APP_ID": DEFAULT_TEAMS_APP_EXTERNAL_ID,
        "SERVICE_DESK_DISPLAY_NAME": "Contoso Service Desk (demo)",
        "SERVICE_DESK_EMAIL": MAIL_SENDER,
        "SERVICE_DESK_PHONE": "+49 30 1234 5678",
        "PHONE_DEFAULT_REGION": "DE",
        "HELPDESK_GROUP_ID": HELPDESK_GROUP_ID,
        "APPROVER_GROUP_ID": APPROVER_GROUP_ID,
        "PRIVILEGED_GROUP_ID": PRIVILEGED_GROUP_ID,
        # Every change waits for an approver, so the approver's Playground has something to do: in the demo
        # tenant only Patti Fernandez is in the privileged group and nobody in it may request changes, so under
        # "privileged" no request would ever reach an approver. APPROVAL_POLICY=privileged make demo switches back.
        "APPROVAL_POLICY": "always",
        "APPROVER_DM": "true",
        # Megan Bowen's group chat "Helpdesk approvals" in her Playground: the bot registers it as the approvers'
        # conversation, for every request (privileged ones too: the configuration chose it), when it is added
        # there (when she opens that chat). Her own `register approvals` would move only the ordinary requests.
        "APPROVER_CONVERSATION_ID": APPROVERS_CHAT_ID,
        "NOTIFY_DEFAULT": "true",
        # Try things again and again on the same demo users without waiting for the cool-down.
        "TARGET_COOLDOWN_MINUTES": "0",
        "HOST": bot_host,
        "PORT": str(bot_port),
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite+aiosqlite:///{(data_dir / 'mfa-bot.sqlite3').as_posix()}",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
    }
    for name in _OVERRIDABLE:
        value = (overrides or {}).get(name)
        if value is not None and value.strip():
            env[name] = value
    return env


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers do: TIME_WAIT is no obstacle)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------------ Playground


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the Playground gets SIGTERM when the process that started it dies (no orphan node processes)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # noqa: BLE001, S110 - best effort: the process group is stopped on exit anyway
        pass


class Playground:
    """One Agents Playground process for one persona, started from that persona's config folder."""

    def __init__(
        self,
        persona: Persona,
        *,
        port: int,
        bot_endpoint: str,
        log_dir: Path,
        bin_dir: Path,
        config_dir: Path | None = None,
        executable: Path = PLAYGROUND_BIN,
    ) -> None:
        self.persona = persona
        self.port = port
        self.bot_endpoint = bot_endpoint
        self.log_file = log_dir / f"playground-{persona.key}.log"
        # Started from a folder of its own under log_dir holding a copy of the persona's config: the Playground
        # writes its devTools log next to the config, and the source tree stays clean.
        self.source_config = (config_dir or PLAYGROUND_DIR / persona.key) / PLAYGROUND_CONFIG
        self.config_dir = log_dir / f"playground-{persona.key}"
        self._bin_dir = bin_dir
        self._executable = executable
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self, wait_s: float = 60.0) -> None:
        if not self._executable.exists():
            raise DemoError(
                f"the Agents Playground is not installed ({self._executable.relative_to(ROOT)} is missing); "
                "run `npm ci` (or `make setup`)"
            )
        if not self.source_config.is_file():
            raise DemoError(f"no Playground configuration {self.source_config}")
        await asyncio.to_thread(self._copy_config)
        if not port_is_free("127.0.0.1", self.port):
            raise DemoError(f"port {self.port} for the Playground of {self.persona.name} is already in use")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("GRAPH_", "Microsoft", "SSL_", "REQUESTS_"))
        }
        # A do-nothing xdg-open first on PATH: the Playground opens a browser on start and exits when it can't.
        env["PATH"] = f"{self._bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["BROWSER"] = "none"
        out = await asyncio.to_thread(_open_log, self.log_file)
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self._executable),
                "-e",
                self.bot_endpoint,
                "-c",
                "msteams",
                "-p",
                str(self.port),
                "--dt",
                cwd=str(self.config_dir),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
            )
        finally:
            out.close()  # the child holds its own copy
        await self._wait_listening(wait_s)

    def _copy_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source_config, self.config_dir / PLAYGROUND_CONFIG)

    async def _wait_listening(self, wait_s: float) -> None:
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        delay = 0.05
        while loop.time() < deadline:
            if self._process.returncode is not None:
                raise DemoError(
                    f"the Playground for {self.persona.name} exited with code {self._process.returncode} "
                    f"(a bad {PLAYGROUND_CONFIG} or a port in use); see {self.log_file}"
                )
            if await _http_ok(self.url):
                # It answers before it has read its config; a bad config makes it exit right after.
                await asyncio.sleep(0)
                if self._process.returncode is None:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise DemoError(f"the Playground for {self.persona.name} did not start in time; see {self.log_file}")

    async def stop(self, grace_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                await asyncio.wait_for(process.wait(), grace_s)
                return
            except TimeoutError:
                continue


def _open_log(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")  # noqa: SIM115 - handed to the child process, closed by the caller


async def _http_ok(url: str) -> bool:
    """True when something answers HTTP on url (any status)."""
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url) as response:
                await response.read()
                return True
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def write_fake_xdg_open(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "xdg-open"
    script.write_text(
        "#!/bin/sh\n# demo mode: the Playground's page is opened by a person or a test, not here\nexit 0\n"
    )
    script.chmod(0o755)
    return script


# ------------------------------------------------------------------------------------------------ the stack


@dataclass(kw_only=True)
class DemoStack:
    """Simulator + bot + info page + Playgrounds, in the caller's event loop. `create_app` is app.create_app,
    passed in by app.py (the demo does not import app: app.py starts the demo)."""

    create_app: Callable[[Any], Any]
    playgrounds: Sequence[tuple[str, int]] = DEFAULT_PLAYGROUNDS
    host: str = "127.0.0.1"
    bot_port: int = DEFAULT_BOT_PORT
    info_port: int | None = DEFAULT_INFO_PORT
    sim_port: int = DEFAULT_SIM_PORT
    data_dir: Path = field(default_factory=lambda: ROOT / "data" / "demo")
    overrides: Mapping[str, str] = field(default_factory=dict)
    fresh_database: bool = True

    sim: Any = field(default=None, init=False)
    settings: Any = field(default=None, init=False)
    running: dict[str, Playground] = field(default_factory=dict, init=False)
    _runners: list[Any] = field(default_factory=list, init=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)

    @property
    def bot_endpoint(self) -> str:
        return f"http://{self.host}:{self.bot_port}/api/messages"

    @property
    def info_url(self) -> str | None:
        return f"http://{self.host}:{self.info_port}/" if self.info_port else None

    def playground(self, key: str) -> Playground:
        return self.running[key]

    async def start(self) -> DemoStack:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start(self) -> None:
        from aiohttp import web

        from bot.settings import BotSettings, SettingsError
        from graph.simulator import Simulator

        for what, port in (
            ("bot", self.bot_port),
            ("info page", self.info_port),
            ("simulator", self.sim_port),
        ):
            if port and not port_is_free(self.host, port):
                raise DemoError(f"port {port} for the {what} is already in use")
        for key, port in self.playgrounds:
            if key not in PERSONAS:
                raise DemoError(f"no demo persona '{key}' (known: {', '.join(PERSONAS)})")
            if not port_is_free(self.host, port):
                raise DemoError(f"port {port} for the Playground of {PERSONAS[key].name} is already in use")

        self._tmp = await asyncio.to_thread(self._prepare_dirs)
        tmp = Path(self._tmp.name)

        self.sim = Simulator(str(DEMO_TENANT_FILE), cert_dir=str(tmp / "certs"))
        await self.sim.start(self.host, self.sim_port)
        log.info(
            "SIMULATION: Graph and Entra ID are simulated at %s (tenant Contoso Demo)", self.sim.base_url
        )

        env = demo_environment(
            authority_host=self.sim.authority_host,
            base_url=self.sim.base_url,
            ca_file=self.sim.ca_file,
            bot_host=self.host,
            bot_port=self.bot_port,
            data_dir=self.data_dir,
            overrides=self.overrides,
        )
        try:
            self.settings = BotSettings.from_env(env)
        except SettingsError as exc:
            raise DemoError(f"demo settings: {exc}") from None

        bot_runner = web.AppRunner(self.create_app(self.settings), access_log=None, shutdown_timeout=5.0)
        await bot_runner.setup()
        self._runners.append(bot_runner)
        await web.TCPSite(bot_runner, self.host, self.bot_port).start()
        log.info("SIMULATION: the bot listens on %s (DEMO_MODE)", self.bot_endpoint)

        if self.info_port:
            info_runner = web.AppRunner(info_app(self.sim), access_log=None)
            await info_runner.setup()
            self._runners.append(info_runner)
            await web.TCPSite(info_runner, self.host, self.info_port).start()

        bin_dir = tmp / "bin"
        for key, port in self.playgrounds:
            playground = Playground(
                PERSONAS[key],
                port=port,
                bot_endpoint=self.bot_endpoint,
                log_dir=self.data_dir,
                bin_dir=bin_dir,
            )
            self.running[key] = playground
        await asyncio.gather(*(p.start() for p in self.running.values()))

    def _prepare_dirs(self) -> tempfile.TemporaryDirectory[str]:
        """data_dir (fresh database: every demo run starts from the seeded tenant) and a private temp folder for
        the simulator's certificates and the do-nothing xdg-open."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.fresh_database:
            for old in self.data_dir.glob("mfa-bot.sqlite3*"):
                old.unlink()
        tmp = tempfile.TemporaryDirectory(prefix="mfa-demo-")
        write_fake_xdg_open(Path(tmp.name) / "bin")
        return tmp

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.running.values()), return_exceptions=True)
        for runner in reversed(self._runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
        if self.sim is not None:
            with contextlib.suppress(Exception):
                await self.sim.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def banner(self) -> str:
        lines = [
            "",
            "=" * 78,
            " MFA Phone Bot - DEMO MODE. This is a SIMULATION: nothing talks to Microsoft.",
            " Changes go to the simulated tenant 'Contoso Demo' and are gone when the demo stops.",
            "=" * 78,
            " Open in a browser:",
        ]
        for playground in self.running.values():
            persona = playground.persona
            lines.append(f"   {persona.name + ' (' + persona.role + ')':<42} {playground.url}")
        if self.info_url:
            lines.append(f"   {'Sent e-mail and the simulated tenant':<42} {self.info_url}")
        policy = self.settings.approval_policy if self.settings else "?"
        lines += [
            "",
            f" Approval policy: {policy}. Demo personas (all @contoso.example): alex.wilber (helpdesk agent),",
            "   megan.bowen (approver), patti.fernandez (privileged approver), pradeep.gupta (no helpdesk role),",
            "   isaiah.langer (Global Administrator), lynne.robbins (mobile +49 170 1234567, SMS sign-in),",
            "   diego.siciliani (no phone), nestor.wilke (mobile + alternate), grady.archie (holds",
            "   +49 170 9876543 for SMS sign-in), johanna.lorenz (no mailbox), adele_partner.example#EXT# (guest).",
            " 1. Open Megan Bowen's page and click the chat 'Helpdesk approvals': approval requests go there.",
            " 2. Open Lynne Robbins' page: she is the caller, and confirms there that she asked.",
            " 3. In Alex Wilber's page type 'set phone'; user lynne.robbins@contoso.example, number",
            "    +49 170 7654321, verified by 'Confirmation in Teams'; Review, Confirm. Lynne gets a card:",
            "    'Yes, I asked for this' sends it to Megan, who approves; Alex's card shows the result and the",
            "    e-mail appears on the page above. 'No, I did not ask' stops it, locks Lynne's phone methods",
            "    and alerts the approvers.",
            " 4. Try a number held by grady.archie, a Global Administrator (isaiah.langer), 'remove phone',",
            "    'history lynne.robbins@contoso.example', 'help'.",
            f" Logs: {self.data_dir}",
            " Press Ctrl-C to stop.",
            "=" * 78,
        ]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ info page


def info_app(sim: Any) -> Any:
    """A read-only page: the simulated users' phone methods and the e-mail the bot sent (newest first)."""
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=render_info(sim), content_type="text/html", charset="utf-8")

    async def outbox(request: web.Request) -> web.Response:
        return web.json_response(list(sim.outbox))

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/outbox.json", outbox)
    return app


def render_info(sim: Any) -> str:
    esc = html.escape
    state = sim.tenant.to_dict()
    rows = []
    for user in state.get("users", []):
        phones = ", ".join(
            f"{esc(str(p.get('phoneType')))}: {esc(str(p.get('phoneNumber')))}"
            f" (SMS sign-in {esc(str(p.get('smsSignInState')))})"
            for p in user.get("phoneMethods") or []
        )
        rows.append(
            f"<tr><td>{esc(str(user.get('displayName')))}</td><td>{esc(str(user.get('userPrincipalName')))}</td>"
            f"<td>{phones or '&ndash;'}</td></tr>"
        )
    mails = []
    for mail in reversed(list(sim.outbox)):
        to = ", ".join(str(a) for a in mail.get("to") or [])
        body = mail.get("text") or re.sub(r"<[^>]+>", " ", str(mail.get("html") or ""))
        mails.append(
            f"<article><h3>{esc(str(mail.get('subject')))}</h3><p>From {esc(str(mail.get('sender')))} to "
            f"{esc(to)}</p><pre>{esc(str(body))}</pre></article>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        "<title>Contoso Demo (simulated tenant)</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border-bottom:1px solid #ddd;padding:4px 8px;"
        "text-align:left}pre{white-space:pre-wrap;background:#f6f6f6;padding:8px}</style></head><body>"
        "<p><strong>Simulation.</strong> This page shows the simulated tenant of the demo; nothing here is "
        "Microsoft Entra ID. It refreshes every 5 seconds.</p>"
        f"<h2>Sent e-mail ({len(mails)})</h2>{''.join(mails) or '<p>None yet.</p>'}"
        "<h2>Users and their phone methods</h2><table><tr><th>Name</th><th>User principal name</th>"
        f"<th>Phone methods</th></tr>{''.join(rows)}</table></body></html>"
    )


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py --demo",
        description="Run the bot on a simulated tenant with the Microsoft 365 Agents Playground.",
    )
    parser.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bot-port", type=int, default=DEFAULT_BOT_PORT)
    parser.add_argument("--info-port", type=int, default=DEFAULT_INFO_PORT)
    parser.add_argument("--sim-port", type=int, default=DEFAULT_SIM_PORT)
    parser.add_argument(
        "--agent-port", type=int, default=DEFAULT_PLAYGROUNDS[0][1], help="Alex Wilber's Playground"
    )
    parser.add_argument(
        "--approver-port", type=int, default=DEFAULT_PLAYGROUNDS[1][1], help="Megan Bowen's Playground"
    )
    parser.add_argument(
        "--target-port",
        type=int,
        default=DEFAULT_PLAYGROUNDS[2][1],
        help="Lynne Robbins' Playground, the user who confirms (0: none)",
    )
    parser.add_argument(
        "--privileged-approver-port",
        type=int,
        default=0,
        help="also start a Playground for Patti Fernandez, the privileged approver, on this port",
    )
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "demo"))
    parser.add_argument(
        "--ready-file", default=None, help=argparse.SUPPRESS
    )  # JSON with the addresses (tests)
    return parser.parse_args(list(argv))


async def run(args: argparse.Namespace, environ: Mapping[str, str], create_app: Callable[[Any], Any]) -> int:
    stack = DemoStack(
        create_app=create_app,
        playgrounds=tuple(
            (key, port)
            for key, port in (
                ("alex-wilber", args.agent_port),
                ("megan-bowen", args.approver_port),
                ("lynne-robbins", args.target_port),
                ("patti-fernandez", args.privileged_approver_port),
            )
            if port
        ),
        bot_port=args.bot_port,
        info_port=args.info_port or None,
        sim_port=args.sim_port,
        data_dir=args.data_dir,
        overrides=environ,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
    except DemoError as exc:
        print(f"demo mode: {exc}", file=sys.stderr)
        return 1
    try:
        print(stack.banner(), flush=True)
        if args.ready_file:
            await asyncio.to_thread(Path(args.ready_file).write_text, json.dumps(stack_info(stack)))
        await stop.wait()
        print("\nStopping the demo...", flush=True)
    finally:
        await stack.stop()
    print("Demo stopped.", flush=True)
    return 0


def stack_info(stack: DemoStack) -> dict[str, Any]:
    return {
        "bot": stack.bot_endpoint,
        "info": stack.info_url,
        "simulator": stack.sim.base_url if stack.sim else None,
        "ca_file": stack.sim.ca_file if stack.sim else None,
        "playgrounds": {
            key: {"url": p.url, "pid": p.pid, "name": p.persona.name} for key, p in stack.running.items()
        },
    }


def main(
    create_app: Callable[[Any], Any],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """`python app.py --demo` (app.py passes its create_app)."""
    env = os.environ if environ is None else environ
    problem = real_credentials_problem(env)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.data_dir = Path(args.data_dir).resolve()
    level = (env.get("LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in ("httpx", "alembic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from graph.log_privacy import install as mask_numbers_in_logs

    mask_numbers_in_logs()
    if shutil.which("node") is None:
        print("demo mode: Node.js is not installed (the Agents Playground needs it)", file=sys.stderr)
        return 1
    try:
        return asyncio.run(run(args, env, create_app))
    except KeyboardInterrupt:
        return 130

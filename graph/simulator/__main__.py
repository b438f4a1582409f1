"""Run the simulator standalone: ``python -m graph.simulator --tenant FILE --port 8443``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from graph.settings import GUID

from .behaviour import Behaviour
from .server import Simulator
from .tenant import DEFAULT_TEAMS_APP_EXTERNAL_ID, DEFAULT_TEAMS_APP_ID

DEMO_TENANT = Path(__file__).with_name("demo_tenant.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m graph.simulator", description="Microsoft Graph + Entra simulator"
    )
    parser.add_argument(
        "--tenant", default=str(DEMO_TENANT), help="tenant fixture JSON (default: the demo tenant)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--batch-latency-ms", type=int, default=None)
    parser.add_argument("--cert-dir", default=None)
    parser.add_argument("--throttle", action="store_true", help="identity token-bucket throttling on")
    parser.add_argument(
        "--no-report-throttle", action="store_true", help="userRegistrationDetails 5/10 s throttle off"
    )
    parser.add_argument("--visibility-delay-ms", type=int, default=0)
    parser.add_argument(
        "--teams-app-id",
        type=_guid,
        default=None,
        help="the manifest id (TEAMS_APP_ID) of the bot's app in the tenant app catalog, instead of the tenant "
        f"file's (default without one: {DEFAULT_TEAMS_APP_EXTERNAL_ID})",
    )
    return parser.parse_args(argv)


def _guid(value: str) -> str:
    if not GUID.match(value.strip()):
        raise argparse.ArgumentTypeError(f"must be a GUID (the Teams app's manifest id), got {value!r}")
    return value.strip().lower()


def load_tenant(args: argparse.Namespace) -> dict[str, Any]:
    """The tenant file's data; with --teams-app-id its catalog holds the bot's app under that manifest id."""
    data: dict[str, Any] = json.loads(Path(args.tenant).read_text(encoding="utf-8"))
    if args.teams_app_id:
        apps = data.get("teamsApps") or [{"id": DEFAULT_TEAMS_APP_ID}]
        data["teamsApps"] = [{**apps[0], "externalId": args.teams_app_id}, *apps[1:]]
    return data


async def serve(args: argparse.Namespace) -> None:
    behaviour = Behaviour(
        latency_ms=args.latency_ms,
        batch_latency_ms=args.batch_latency_ms if args.batch_latency_ms is not None else args.latency_ms,
        throttle=args.throttle,
        report_throttle=not args.no_report_throttle,
        visibility_delay_ms=args.visibility_delay_ms,
    )
    sim = Simulator(load_tenant(args), behaviour, cert_dir=args.cert_dir)
    await sim.start(args.host, args.port)
    info = {
        "base_url": sim.base_url,
        "authority_host": sim.authority_host,
        "tenant_id": sim.tenant.tenant_id,
        "ca_file": sim.ca_file,
    }
    print(json.dumps(info), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"graph simulator: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

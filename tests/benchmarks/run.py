"""The benchmark run: a generated tenant, the simulator in a subprocess, ours against the runbook."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from graph.client import GraphClient, create_graph_client
from graph.directory import Directory
from graph.outcome import OutcomeKind
from graph.owner_search import OwnerSearch
from graph.settings import GraphSettings
from graph.workflow import PhoneMfaWorkflow, WorkflowRequest, WorkflowSettings
from tests.benchmarks import round_trips, runbook

ROOT = Path(__file__).resolve().parents[2]
TENANT_ID = "7f3b6c1e-5a2d-4c8e-9b1f-0d2e3a4b5c6d"
CLIENT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SECRET = "bench-secret-" + "x" * 16
ROLES = [
    "UserAuthenticationMethod.ReadWrite.All",
    "User.Read.All",
    "AuditLog.Read.All",
    "Mail.Send",
    "Organization.Read.All",
]
HOLDER_NUMBER = "+49 1609876543"  # the owner-search holder's number (profile fields do not show it)
CONFLICT_NUMBER = "+49 1609876544"
REPORT_LIMIT, REPORT_WINDOW_S = 5, 10.0
CONFLICT_DELAYS_S = (0, 2, 5, 8)  # how long after the write Graph shows a number it stored despite the 409
OUR_PAGE = 999
BATCH = 20


def log(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------------------------- tenant


@dataclass
class TenantInfo:
    path: Path
    users: int
    holder_id: str
    holder_position: int  # 0-based, in report (tenant) order
    search_target_id: str
    conflict_target_id: str
    plain_target_id: str


def generate_tenant(directory: Path, users: int, holder_at: float) -> TenantInfo:
    """`users` phone-registered users with distinct mobiles; the holder sits at `holder_at` of the order."""
    holder_pos = min(users - 1, max(0, int(users * holder_at)))
    records: list[dict[str, Any]] = []
    ids: dict[str, str] = {}

    def user(index: int, name: str, phones: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
        uid = str(uuid.UUID(int=(0xB0 << 120) | index))
        ids[name] = uid
        return {
            "id": uid,
            "userPrincipalName": f"{name}@bench.example",
            "displayName": name.replace(".", " ").title(),
            "phoneMethods": phones,
            **extra,
        }

    for i in range(users):
        if i == holder_pos:
            rec = user(
                i,
                "holder.user",
                [{"phoneType": "mobile", "phoneNumber": HOLDER_NUMBER, "smsSignInState": "ready"}],
            )
        else:
            rec = {
                "id": str(uuid.UUID(int=(0xB0 << 120) | i)),
                "userPrincipalName": f"u{i:06d}@bench.example",
                "displayName": f"User {i:06d}",
                "phoneMethods": [{"phoneType": "mobile", "phoneNumber": f"+49 151{i:08d}"}],
            }
        records.append(rec)
    # Targets have no phone yet (so they are not in the report) and SMS sign-in by policy.
    records.append(user(users + 1, "search.target", []))
    records.append(user(users + 2, "conflict.target", []))
    records.append(
        user(users + 3, "plain.target", [{"phoneType": "mobile", "phoneNumber": "+49 17622334455"}])
    )
    records.append(
        user(
            users + 4,
            "conflict.holder",
            [{"phoneType": "mobile", "phoneNumber": CONFLICT_NUMBER, "smsSignInState": "ready"}],
        )
    )
    # The conflict holder sits after the search holder in order; it is only used for the 409 benchmark.
    tenant = {
        "tenantId": TENANT_ID,
        "displayName": "Bench Tenant",
        "defaultDomain": "bench.example",
        "applications": [{"clientId": CLIENT_ID, "clientSecret": SECRET, "roles": ROLES}],
        "users": records,
    }
    path = directory / "tenant.json"
    path.write_text(json.dumps(tenant, separators=(",", ":")), encoding="utf-8")
    return TenantInfo(
        path=path,
        users=users + 1,  # phone-registered: the generated ones plus conflict.holder and plain.target
        holder_id=ids["holder.user"],
        holder_position=holder_pos,
        search_target_id=ids["search.target"],
        conflict_target_id=ids["conflict.target"],
        plain_target_id=ids["plain.target"],
    )


# ----------------------------------------------------------------------------------------------- simulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SimProcess:
    proc: subprocess.Popen[bytes]
    port: int
    ca_file: str

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def control(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.origin, verify=self.ca_file, timeout=60.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def start_simulator(tenant: Path, cert_dir: Path, latency_ms: int) -> SimProcess:
    port = _free_port()
    log_path = cert_dir.parent / "simulator.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - stays open for the simulator's lifetime
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graph.simulator",
            "--tenant",
            str(tenant),
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--cert-dir",
            str(cert_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log_file,  # a file, not a pipe: a pipe nobody reads could fill and stall the simulator
    )
    sim = SimProcess(proc, port, str(cert_dir / "ca.pem"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log_path.read_text(errors="replace")
            raise RuntimeError(f"simulator exited: {err[-2000:]}")
        if os.path.exists(sim.ca_file):
            try:
                async with sim.control() as http:
                    r = await http.get("/_sim/behaviour")
                    if r.status_code == 200:
                        return sim
            except (httpx.HTTPError, OSError):
                pass
        await asyncio.sleep(0.2)
    sim.stop()
    raise RuntimeError("simulator did not start within 120 s")


async def set_behaviour(sim: SimProcess, **changes: Any) -> dict[str, Any]:
    async with sim.control() as http:
        r = await http.post("/_sim/behaviour", json=changes)
        r.raise_for_status()
        return dict(r.json())


async def sim_calls(sim: SimProcess) -> list[dict[str, Any]]:
    async with sim.control() as http:
        r = await http.get("/_sim/calls")
        r.raise_for_status()
        data = r.json()
        return list(data["calls"] if isinstance(data, dict) else data)


async def clear_calls(sim: SimProcess) -> None:
    async with sim.control() as http:
        r = await http.delete("/_sim/calls")
        r.raise_for_status()


async def report_page_size(sim: SimProcess) -> int:
    async with sim.control() as http:
        r = await http.get("/_sim/behaviour")
        return int(r.json().get("report_default_page_size") or r.json().get("default_page_size") or 100)


# ----------------------------------------------------------------------------------------------- memory


class PeakRss:
    """Samples this process's RSS every few ms from a thread (the asyncio loop is never blocked)."""

    def __init__(self, interval: float = 0.005) -> None:
        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._proc.memory_info().rss
            if rss > self.peak:
                self.peak = rss
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1_000_000


# ----------------------------------------------------------------------------------------------- benches


async def wait_for_report_bucket() -> None:
    """Let the report throttle refill, so each search starts as a fresh run would."""
    await asyncio.sleep(REPORT_WINDOW_S + 0.5)


async def bench_ours(client: GraphClient, info: TenantInfo, concurrency: int) -> tuple[float, float, int]:
    last = [0.0]

    def progress(p: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= 15 or p.found:
            last[0] = now
            log(f"  ours: {p.stage} stage, {p.scanned} users checked{', holder found' if p.found else ''}")

    search = OwnerSearch(client, concurrency=concurrency)
    with PeakRss() as rss:
        started = time.perf_counter()
        result = await search.find(HOLDER_NUMBER, exclude_user_id=info.search_target_id, progress=progress)
        elapsed = time.perf_counter() - started
    if result.holder is None or result.holder.id != info.holder_id:
        raise RuntimeError(f"our search did not find the holder: {result.status} {result.message}")
    return elapsed, rss.growth_mb, result.scanned


async def bench_runbook(
    client: GraphClient, info: TenantInfo, args: argparse.Namespace, page_size: int
) -> dict[str, float]:
    pages_total = math.ceil(info.users / page_size)
    batches_to_holder = math.ceil((info.holder_position + 1) / BATCH)
    if args.full_runbook:
        started = time.perf_counter()
        users, sample = await runbook.page_report(client)
        match, sent, _ = await runbook.scan_batches(client, users, HOLDER_NUMBER)
        total = time.perf_counter() - started
        if not match or match["id"] != info.holder_id:
            raise RuntimeError("the runbook re-implementation did not find the holder")
        return {"total": total, "measured": 1.0, "pages": sample.pages, "batches": sent}
    users, sample = await runbook.page_report(client, max_pages=args.runbook_sample_pages)
    t = sample.page_times
    burst = min(REPORT_LIMIT, len(t))
    steady = (t[-1] - t[burst - 1]) / max(1, len(t) - burst)
    paging = t[-1] + max(0, pages_total - len(t)) * steady
    _, sent, seconds = await runbook.scan_batches(
        client, users, "+00 0", max_batches=args.runbook_sample_batches
    )
    per_batch = seconds / max(1, sent)
    scanning = batches_to_holder * per_batch
    return {
        "total": paging + scanning,
        "measured": 0.0,
        "paging": paging,
        "scanning": scanning,
        "pages": pages_total,
        "batches": batches_to_holder,
        "page_interval": steady,
        "per_batch": per_batch,
        "sample_pages": len(t),
        "sample_batches": sent,
    }


async def bench_conflict(
    client: GraphClient, sim: SimProcess, info: TenantInfo, workflow: PhoneMfaWorkflow
) -> tuple[float, float]:
    await set_behaviour(sim, conflict_stores_method=True, visibility_delay_ms=300, sms_uniqueness=True)
    started = time.perf_counter()
    out = await workflow.run(WorkflowRequest("set", info.conflict_target_id, CONFLICT_NUMBER))
    ours = time.perf_counter() - started
    if out.kind is not OutcomeKind.ADDED or not out.sms_sign_in_conflict:
        raise RuntimeError(f"unexpected outcome for the 409 benchmark: {out.kind} {out.message}")
    # Reset the target and answer the same 409 the runbook's way.
    async with sim.control() as http:
        r = await http.delete(f"/_sim/users/{info.conflict_target_id}/phones/mobile")
        r.raise_for_status()
    started = time.perf_counter()
    result, _ = await runbook.set_with_fixed_wait(client, info.conflict_target_id, CONFLICT_NUMBER)
    theirs = time.perf_counter() - started
    if result != "conflict_stored":
        raise RuntimeError(f"unexpected runbook result for the 409 benchmark: {result}")
    await set_behaviour(sim, visibility_delay_ms=0)
    return ours, theirs


@dataclass
class ConflictAnswer:
    delay_s: int
    ours_s: float
    ours: str  # "stored" when we found the number, else the outcome
    runbook_s: float
    runbook: str  # "conflict_stored" / "conflict_not_stored"


async def _clear_mobile(sim: SimProcess, user_id: str) -> None:
    async with sim.control() as http:
        r = await http.delete(f"/_sim/users/{user_id}/phones/mobile")
        r.raise_for_status()


async def bench_conflict_delays(
    client: GraphClient, sim: SimProcess, info: TenantInfo, workflow: PhoneMfaWorkflow
) -> list[ConflictAnswer]:
    """The 409 answer when Graph shows the number it stored anyway only 0, 2, 5 or 8 s after the write: ours reads
    until it shows (up to CONFLICT_READBACK_SECONDS), the runbook sleeps 5 s and reads once. The owner search is
    left out: this measures the read-back, not the search."""
    answers = []
    for delay in CONFLICT_DELAYS_S:
        await set_behaviour(
            sim, conflict_stores_method=True, visibility_delay_ms=delay * 1000, sms_uniqueness=True
        )
        await _clear_mobile(sim, info.conflict_target_id)
        request = WorkflowRequest("set", info.conflict_target_id, CONFLICT_NUMBER, owner_search=False)
        started = time.perf_counter()
        out = await workflow.run(request)
        ours_s = time.perf_counter() - started
        ours = "stored" if out.kind is OutcomeKind.ADDED and out.sms_sign_in_conflict else out.kind.value
        await _clear_mobile(sim, info.conflict_target_id)
        started = time.perf_counter()
        result, _ = await runbook.set_with_fixed_wait(client, info.conflict_target_id, CONFLICT_NUMBER)
        answers.append(ConflictAnswer(delay, ours_s, ours, time.perf_counter() - started, result))
    await _clear_mobile(sim, info.conflict_target_id)
    await set_behaviour(sim, visibility_delay_ms=0)
    return answers


def conflict_figures(answers: list[ConflictAnswer]) -> str:
    """`conflict_answer_s_visible_0s=0.21 ...` for the last line of make bench."""
    return " ".join(f"conflict_answer_s_visible_{a.delay_s}s={a.ours_s:.2f}" for a in answers)


def log_conflict_rows(answers: list[ConflictAnswer], window_s: float) -> None:
    for a in answers:
        log(
            f"| 409 answered, write visible after {a.delay_s} s | {a.ours_s:.2f} s ({a.ours}) | "
            f"{a.runbook_s:.2f} s ({a.runbook.removeprefix('conflict_')}) | ours reads for up to {window_s:g} s |"
        )


async def bench_calls(
    client: GraphClient, sim: SimProcess, info: TenantInfo, workflow: PhoneMfaWorkflow
) -> tuple[int, int]:
    await clear_calls(sim)
    out = await workflow.run(WorkflowRequest("set", "plain.target@bench.example", "+49 176 22334456"))
    if out.kind is not OutcomeKind.UPDATED:
        raise RuntimeError(f"unexpected outcome for the call-count benchmark: {out.kind} {out.message}")
    ours = len([c for c in await sim_calls(sim) if not c.get("in_batch")])
    await clear_calls(sim)
    result, _ = await runbook.set_with_fixed_wait(client, info.plain_target_id, "+49 176 22334457")
    if result != "done":
        raise RuntimeError(f"unexpected runbook result for the call-count benchmark: {result}")
    theirs = len([c for c in await sim_calls(sim) if not c.get("in_batch")])
    return ours, theirs


async def bench_round_trips(latency_ms: int) -> tuple[int, int]:
    """Sequential Graph round trips from the click to the card, for Review and Confirm, through the bot's HTTP
    endpoint (tests/benchmarks/round_trips.py); the worse of a picked and a typed target."""
    measured = await round_trips.measure_all(latency_ms)
    for m in measured:
        mail = "with" if m.notify else "without"
        if m.notify:  # the Review of the second pass finds the per-user caches warm: not counted
            log(f"  {m.variant}: Review {m.review.depth} round trip(s): {m.review.describe()}")
        log(
            f"  {m.variant}: Confirm {mail} the notification mail {m.confirm.depth} round trip(s) to the "
            f"{m.outcome} card: {m.confirm.describe()}"
        )
    without_mail = max(m.confirm.depth for m in measured if not m.notify)
    log(f"  Confirm without the notification mail (NOTIFY_DEFAULT=false or unticked): {without_mail}")
    with_mail = [m for m in measured if m.notify]
    return max(m.review.depth for m in with_mail), max(m.confirm.depth for m in with_mail)


# ----------------------------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> int:
    if args.conflict_only:
        return await main_conflict_only(args)
    if args.round_trips_only:
        review_rt, confirm_rt = await _round_trips(args)
        log("")
        log(f"review_round_trips={review_rt} confirm_round_trips={confirm_rt}")
        return 0
    work = Path(tempfile.mkdtemp(prefix="mfa-bench-"))
    log(f"generating a tenant of {args.users} phone-registered users (holder at {args.holder_at:.0%}) ...")
    info = generate_tenant(work, args.users, args.holder_at)
    log("starting the simulator in its own process ...")
    sim = await start_simulator(info.path, work / "certs", args.latency_ms)
    try:
        await set_behaviour(
            sim,
            latency_ms=args.latency_ms,
            batch_latency_ms=args.batch_latency_ms,
            throttle=True,
            report_throttle=True,
            report_limit=REPORT_LIMIT,
            report_window_s=REPORT_WINDOW_S,
            sms_uniqueness=True,
            conflict_stores_method=False,
        )
        env = {
            "GRAPH_TENANT_ID": TENANT_ID,
            "GRAPH_CLIENT_ID": CLIENT_ID,
            "GRAPH_CLIENT_SECRET": SECRET,
            "GRAPH_AUTHORITY_HOST": sim.origin,
            "GRAPH_BASE_URL": sim.origin + "/v1.0",
            "SSL_CERT_FILE": sim.ca_file,
        }
        settings = GraphSettings.from_env(env)
        client, close = await create_graph_client(settings)
        try:
            wf_settings = WorkflowSettings.from_graph_settings(settings)
            workflow = PhoneMfaWorkflow(client, Directory(client), wf_settings)
            await client.get("/organization")  # token and connection warm, like a running service
            page_size = await report_page_size(sim)

            log(
                f"(a) owner search: runbook re-implementation ({'full run' if args.full_runbook else 'measured sample'}) ..."
            )
            rb = await bench_runbook(client, info, args, page_size)
            await wait_for_report_bucket()
            log(f"(a) owner search: ours (concurrency {wf_settings.search_concurrency}) ...")
            ours_s, rss_mb, scanned = await bench_ours(client, info, wf_settings.search_concurrency)

            log("(b) 409 answer, write visible after 300 ms ...")
            conflict_ours, conflict_rb = await bench_conflict(client, sim, info, workflow)
            log(f"(b) 409 answer, write visible after {', '.join(map(str, CONFLICT_DELAYS_S))} s ...")
            conflicts = await bench_conflict_delays(client, sim, info, workflow)
            log("(c) Graph calls for a set without conflict ...")
            calls_ours, calls_rb = await bench_calls(client, sim, info, workflow)
        finally:
            await close()
    finally:
        sim.stop()
    # Last: the round trips run a whole bot in this process, whose memory would otherwise sit under the owner
    # search's RSS baseline and hide its growth.
    review_rt, confirm_rt = await _round_trips(args)

    our_pages = math.ceil((info.holder_position + 1) / OUR_PAGE)
    report_bound = max(0, our_pages - REPORT_LIMIT) * REPORT_WINDOW_S / REPORT_LIMIT
    reads = info.holder_position + 1
    identity_rate = (
        8000 / 10.0
    )  # resource units per second for a tenant over 500 users; one per phoneMethods read
    batch_bound = reads / identity_rate
    bound = max(report_bound, batch_bound) + (args.latency_ms + args.batch_latency_ms) / 1000
    speedup = rb["total"] / ours_s
    log("")
    log("| measure | ours | runbook | note |")
    log("|---|---|---|---|")
    log(
        f"| owner search, {args.users:,} users, holder at #{info.holder_position + 1:,} | {ours_s:.1f} s | "
        f"{rb['total']:.1f} s{'' if rb['measured'] else ' (extrapolated)'} | speedup {speedup:.1f}x |"
    )
    log(
        f"| throttle-bound lower limit for ours | {bound:.1f} s | | {our_pages} report pages at 5/10 s = "
        f"{report_bound:.1f} s; {reads:,} reads at 800/s = {batch_bound:.1f} s; ours/bound {ours_s / bound:.2f} |"
    )
    if not rb["measured"]:
        log(
            f"| runbook breakdown | | paging {rb['paging']:.0f} s + batches {rb['scanning']:.0f} s | "
            f"{rb['pages']:.0f} pages of {page_size} (no $top) at {rb['page_interval']:.2f} s; "
            f"{rb['batches']:.0f} sequential batches at {rb['per_batch']:.3f} s (from {rb['sample_pages']:.0f} pages, "
            f"{rb['sample_batches']:.0f} batches) |"
        )
    if not rb["measured"]:
        pages_999 = math.ceil(info.users / OUR_PAGE)
        paging_999 = max(0, pages_999 - REPORT_LIMIT) * rb["page_interval"]
        rb_999 = paging_999 + rb["scanning"]
        log(
            f"| runbook if Graph's default page were 999 | | {rb_999:.0f} s | {pages_999} pages; "
            f"speedup would be {rb_999 / ours_s:.1f}x (overlap, concurrency and early stop alone) |"
        )
    log(f"| peak RSS growth during our search | {rss_mb:.1f} MB | | {scanned:,} users checked |")
    log(f"| 409 answered, write visible after 300 ms | {conflict_ours:.2f} s | {conflict_rb:.2f} s | |")
    log_conflict_rows(conflicts, wf_settings.conflict_poll_timeout)
    log(f"| Graph calls, set without conflict | {calls_ours} | {calls_rb} | |")
    log(
        f"| sequential Graph round trips, Review (click to confirmation card) | {review_rt} | | worse of picker/UPN |"
    )
    log(
        f"| sequential Graph round trips, Confirm (click to outcome card) | {confirm_rt} | 3 | worse of picker/UPN,"
        " with the notification mail (the default); the runbook: user, phone methods, write |"
    )
    log("")
    log(
        f"owner_search_speedup={speedup:.1f} conflict_answer_s={conflict_ours:.2f} peak_rss_mb={rss_mb:.1f}"
        f" {conflict_figures(conflicts)}"
        f" review_round_trips={review_rt} confirm_round_trips={confirm_rt}"
    )
    return 0


async def _round_trips(args: argparse.Namespace) -> tuple[int, int]:
    log(
        "Graph round trips on the critical path of Review and Confirm, "
        f"{args.round_trip_latency_ms} ms per request ..."
    )
    return await bench_round_trips(args.round_trip_latency_ms)


async def main_conflict_only(args: argparse.Namespace) -> int:
    """`--conflict-only`: the 409 answers for each visibility delay on a small tenant, nothing else."""
    work = Path(tempfile.mkdtemp(prefix="mfa-bench-"))
    info = generate_tenant(work, 50, 0.5)
    sim = await start_simulator(info.path, work / "certs", args.latency_ms)
    try:
        await set_behaviour(sim, latency_ms=args.latency_ms, batch_latency_ms=args.batch_latency_ms)
        settings = GraphSettings.from_env(
            {
                "GRAPH_TENANT_ID": TENANT_ID,
                "GRAPH_CLIENT_ID": CLIENT_ID,
                "GRAPH_CLIENT_SECRET": SECRET,
                "GRAPH_AUTHORITY_HOST": sim.origin,
                "GRAPH_BASE_URL": sim.origin + "/v1.0",
                "SSL_CERT_FILE": sim.ca_file,
            }
        )
        client, close = await create_graph_client(settings)
        try:
            wf_settings = WorkflowSettings.from_graph_settings(settings)
            workflow = PhoneMfaWorkflow(client, Directory(client), wf_settings)
            await client.get("/organization")
            log(f"409 answer, write visible after {', '.join(map(str, CONFLICT_DELAYS_S))} s ...")
            conflicts = await bench_conflict_delays(client, sim, info, workflow)
        finally:
            await close()
    finally:
        sim.stop()
    log("")
    log("| measure | ours | runbook | note |")
    log("|---|---|---|---|")
    log_conflict_rows(conflicts, wf_settings.conflict_poll_timeout)
    log("")
    log(conflict_figures(conflicts))
    return 0

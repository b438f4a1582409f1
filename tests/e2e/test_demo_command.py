"""`python app.py --demo`: refuses real credentials, starts the whole demo, tells where to go, and Ctrl-C stops
everything (no Playground left behind)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.teams.demo import (
    PERSONAS,
    PLAYGROUND_BIN,
    PLAYGROUND_CONFIG,
    PLAYGROUND_DIR,
    ROOT,
    DemoError,
    Playground,
    free_port,
    write_fake_xdg_open,
)

DEMO_TENANT_ID = "8f3c2a51-0d6e-4b7a-9c1f-2e4d6b8a0c11"
needs_playground = pytest.mark.skipif(
    not PLAYGROUND_BIN.exists(), reason="node_modules is missing (no Agents Playground); `npm ci` installs it"
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPH_", "Microsoft", "APPROVAL_", "DATABASE_URL"))
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRAPH_CLIENT_SECRET", "a-real-looking-secret"),
        ("GRAPH_CLIENT_CERTIFICATE", "/etc/ssl/private/graph.pem"),
        ("GRAPH_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("MicrosoftAppPassword", "a-bot-password"),
    ],
)
def test_demo_refuses_to_start_with_real_credentials_in_the_environment(name: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "app.py", "--demo"],
        cwd=ROOT,
        env=_clean_env(**{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "refuses to start" in lines[0]
    assert value not in result.stderr + result.stdout  # never echo a credential
    assert "SIMULATION" not in result.stdout  # nothing was started


@needs_playground
def test_a_playground_with_a_bad_config_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    good = (PLAYGROUND_DIR / "alex-wilber" / PLAYGROUND_CONFIG).read_text()
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    # Four users instead of the five the Playground's schema demands.
    lines = good.splitlines()
    start = lines.index('  - id: "29:demo-lynne-robbins"')
    (bad_dir / PLAYGROUND_CONFIG).write_text("\n".join(lines[:start] + lines[start + 7 :]) + "\n")

    async def start() -> str:
        playground = Playground(
            PERSONAS["alex-wilber"],
            port=free_port(),
            bot_endpoint="http://127.0.0.1:9/api/messages",
            log_dir=tmp_path / "logs",
            bin_dir=tmp_path / "bin",
            config_dir=bad_dir,
        )
        write_fake_xdg_open(tmp_path / "bin")
        try:
            await playground.start(wait_s=30)
        except DemoError as exc:
            return str(exc)
        finally:
            await playground.stop()
        return "started"

    message = asyncio.run(start())
    assert "exited" in message and PLAYGROUND_CONFIG in message


@pytest.mark.e2e
@needs_playground
def test_demo_starts_everything_prints_the_addresses_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    ports = {name: free_port() for name in ("bot", "info", "sim", "agent", "approver", "target")}
    process = subprocess.Popen(
        [
            sys.executable,
            "app.py",
            "--demo",
            f"--bot-port={ports['bot']}",
            f"--info-port={ports['info']}",
            f"--sim-port={ports['sim']}",
            f"--agent-port={ports['agent']}",
            f"--approver-port={ports['approver']}",
            f"--target-port={ports['target']}",
            f"--data-dir={tmp_path / 'data'}",
            f"--ready-file={ready}",
        ],
        cwd=ROOT,
        env=_clean_env(LOG_LEVEL="INFO"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the demo did not come up"
        info = json.loads(ready.read_text())
        agent, approver = info["playgrounds"]["alex-wilber"], info["playgrounds"]["megan-bowen"]
        target = info["playgrounds"]["lynne-robbins"]
        assert agent["url"] == f"http://127.0.0.1:{ports['agent']}"
        assert approver["url"] == f"http://127.0.0.1:{ports['approver']}"
        assert target["url"] == f"http://127.0.0.1:{ports['target']}"
        with httpx.Client(timeout=10) as client:
            assert client.get(agent["url"]).status_code == 200
            assert client.get(approver["url"]).status_code == 200
            assert client.get(target["url"]).status_code == 200
            assert client.get(f"http://127.0.0.1:{ports['bot']}/healthz").json() == {"status": "alive"}
            page = client.get(info["info"])
            assert page.status_code == 200 and "Simulation" in page.text and "Lynne Robbins" in page.text
            # The simulator's CA is trusted on request only: the system trust store does not know it.
            with pytest.raises(httpx.ConnectError):
                client.get(f"https://127.0.0.1:{ports['sim']}/_sim/outbox")
            assert (
                httpx.get(f"https://127.0.0.1:{ports['sim']}/_sim/outbox", verify=info["ca_file"]).json()
                == []
            )
        pids = [agent["pid"], approver["pid"], target["pid"]]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            pytest.fail(f"the demo did not stop on Ctrl-C:\n{output}")
    assert process.returncode == 0, output
    assert "SIMULATION" in output
    assert "Alex Wilber (helpdesk agent)" in output and f"http://127.0.0.1:{ports['agent']}" in output
    assert "Megan Bowen (approver)" in output and f"http://127.0.0.1:{ports['approver']}" in output
    assert "Lynne Robbins (user who confirms)" in output and f"http://127.0.0.1:{ports['target']}" in output
    assert "Demo stopped." in output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the Playground is gone, not orphaned
    assert (tmp_path / "data" / "playground-alex-wilber.log").read_text().startswith("Listening on")

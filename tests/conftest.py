"""Simulator fixtures shared by the test suite: the Graph + Entra simulator over loopback HTTPS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graph.simulator import Simulator, SimulatorThread, Tenant
from graph.simulator.certs import ensure_certs

FIXTURES = Path(__file__).parent / "fixtures"
TENANT_TEST = FIXTURES / "tenant_test.json"
TEST_CLIENT_ID = "5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"


@pytest.fixture(scope="session")
def sim_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA and server certificate per test session (generated once, reused by every simulator)."""
    directory = tmp_path_factory.mktemp("sim-certs")
    ensure_certs(directory)
    return directory


@pytest.fixture(scope="session")
def tenant_test_data() -> dict:
    import json

    return json.loads(TENANT_TEST.read_text(encoding="utf-8"))


@pytest.fixture
async def sim(sim_cert_dir: Path, tenant_test_data: dict) -> AsyncIterator[Simulator]:
    """A fresh simulator on a free loopback port, started in the test's event loop."""
    simulator = Simulator(Tenant.load(tenant_test_data), cert_dir=sim_cert_dir)
    await simulator.start(host="127.0.0.1", port=0)
    try:
        yield simulator
    finally:
        await simulator.stop()


def _env_for(target: Simulator | SimulatorThread) -> dict[str, str]:
    tenant = target.tenant
    app = tenant.app(TEST_CLIENT_ID)
    assert app is not None and app.client_secret
    return {
        "GRAPH_TENANT_ID": tenant.tenant_id,
        "GRAPH_CLIENT_ID": app.client_id,
        "GRAPH_CLIENT_SECRET": app.client_secret,
        "GRAPH_AUTHORITY_HOST": target.authority_host,
        "GRAPH_BASE_URL": target.base_url,
        "SSL_CERT_FILE": target.ca_file,
    }


@pytest.fixture
def sim_env(sim: Simulator) -> dict[str, str]:
    """GRAPH_* settings (and SSL_CERT_FILE for the simulator's CA) as a dict; os.environ is left alone."""
    return _env_for(sim)


@pytest.fixture
def sim_thread(sim_cert_dir: Path, tenant_test_data: dict) -> Iterator[SimulatorThread]:
    """The simulator in a background thread, for synchronous tests and CLI subprocesses."""
    thread = SimulatorThread(Tenant.load(tenant_test_data), cert_dir=sim_cert_dir).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def sim_thread_env(sim_thread: SimulatorThread) -> dict[str, str]:
    return _env_for(sim_thread)

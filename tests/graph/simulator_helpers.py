"""Helpers for the simulator tests: real msal for tokens, real httpx over HTTPS trusting the simulator's CA."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import msal
import requests

from graph.simulator import Simulator

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
READONLY_CLIENT_ID = "6e2f8d4c-3b5a-4f7e-8c2d-1b2c3d4e5f60"
MOBILE_ID = "3179e48a-750b-4051-897c-87b9720928f7"
ALT_ID = "b6332ec1-7057-4abe-9331-3d72feddfe41"
OFFICE_ID = "e37fc753-ff3b-4958-9484-eaa9425c82bc"


class Sleeps:
    """An injectable `sleep` (GraphClient, PhoneMfaWorkflow) that records every wait asked for.

    real=True: then really sleeps it, so the simulator's clock moves as it would. real=False: does not sleep,
    only advances `clock()`, a clock that moves by the waits alone (pass it as the client's clock to check the
    retry deadline as arithmetic, whatever the speed of the machine). Tests assert on `delays`, never on how
    long something took."""

    def __init__(self, *, real: bool = True) -> None:
        self.real = real
        self.delays: list[float] = []
        self._now = 0.0

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._now += delay
        await asyncio.sleep(delay if self.real else 0)

    def clock(self) -> float:
        return self._now

    @property
    def total(self) -> float:
        return sum(self.delays)


def uid(suffix: str) -> str:
    return f"00000000-0000-0000-0000-0000000000{suffix}"


def requests_session(ca_file: str) -> requests.Session:
    """A session that trusts only the simulator's CA (the environment's CA bundle variables are ignored)."""
    session = requests.Session()
    session.verify = ca_file
    session.trust_env = False
    return session


def msal_app(
    sim: Simulator, client_id: str | None = None, credential: Any = None
) -> msal.ConfidentialClientApplication:
    app = sim.tenant.applications[0] if client_id is None else sim.tenant.app(client_id)
    assert app is not None
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=credential if credential is not None else app.client_secret,
        authority=sim.authority,
        instance_discovery=False,
        http_client=requests_session(sim.ca_file),
    )


async def acquire(app: msal.ConfidentialClientApplication) -> dict[str, Any]:
    return await asyncio.to_thread(app.acquire_token_for_client, GRAPH_SCOPE)


async def token_for(sim: Simulator, client_id: str | None = None) -> str:
    result = await acquire(await asyncio.to_thread(msal_app, sim, client_id))
    assert "access_token" in result, result
    return str(result["access_token"])


def http(
    sim: Simulator, token: str | None = None, timeout: float | httpx.Timeout = 10.0
) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = ssl.create_default_context(cafile=sim.ca_file)
    return httpx.AsyncClient(base_url=sim.base_url, verify=context, headers=headers, timeout=timeout)


def raw_http(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=sim.authority_host, verify=ssl.create_default_context(cafile=sim.ca_file), timeout=10.0
    )


def assert_graph_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    inner = error["innerError"]
    assert set(inner) >= {"date", "request-id", "client-request-id"}
    assert inner["request-id"] == response.headers["request-id"]
    return dict(error)

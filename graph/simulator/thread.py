"""The simulator in a background thread with its own event loop (sync fixtures, CLI subprocess tests)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .behaviour import Behaviour, Call, Faults
from .server import Simulator
from .tenant import Tenant

T = TypeVar("T")


class SimulatorThread:
    def __init__(
        self,
        tenant: Tenant | str | os.PathLike[str] | dict[str, Any],
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.sim = Simulator(tenant, behaviour, cert_dir=cert_dir)
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 30.0) -> SimulatorThread:
        self._thread = threading.Thread(target=self._run, name="graph-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the Graph simulator did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the Graph simulator failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.sim.start(self._host, self._port)
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.sim.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the simulator's loop (safe way to arrange state while it serves)."""
        assert self._loop is not None

        async def runner() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(runner(), self._loop).result(10)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Same surface as Simulator.
    @property
    def base_url(self) -> str:
        return self.sim.base_url

    @property
    def authority_host(self) -> str:
        return self.sim.authority_host

    @property
    def ca_file(self) -> str:
        return self.sim.ca_file

    @property
    def tenant(self) -> Tenant:
        return self.sim.tenant

    @property
    def calls(self) -> list[Call]:
        return self.sim.calls

    @property
    def outbox(self) -> list[dict[str, Any]]:
        return self.sim.outbox

    @property
    def behaviour(self) -> Behaviour:
        return self.sim.behaviour

    @property
    def faults(self) -> Faults:
        return self.sim.faults

"""The Graph side the bot uses (token provider, client, directory, workflow), built once at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class GraphServices:
    """The Graph side the bot uses, built once at start-up (or passed in by tests and demo mode)."""

    client: Any
    directory: Any
    workflow: Any
    tokens: Any
    _close: Callable[[], Awaitable[None]] | None = None
    notifier: Any = None  # graph.notify.Notifier when MAIL_SENDER is set (one-time codes by mail)

    @classmethod
    async def create(cls, settings: Any) -> GraphServices:
        from graph.auth import TokenProvider
        from graph.client import create_graph_client
        from graph.directory import Directory
        from graph.notify import Notifier
        from graph.workflow import PhoneMfaWorkflow, WorkflowSettings

        tokens = await TokenProvider.create(settings)
        client, close = await create_graph_client(settings, tokens=tokens)
        directory = Directory(client, app_id=settings.client_id)  # its owners count as privileged targets
        notifier = Notifier.from_settings(settings, client) if settings.mail_sender else None
        workflow = PhoneMfaWorkflow(
            client, directory, WorkflowSettings.from_graph_settings(settings), notifier=notifier
        )
        return cls(
            client=client,
            directory=directory,
            workflow=workflow,
            tokens=tokens,
            _close=close,
            notifier=notifier,
        )

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

"""Shared arrangement for the workflow tests: our real Graph stack against the simulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from graph.client import GraphClient, RetryPolicy, create_graph_client
from graph.directory import Directory
from graph.settings import GraphSettings
from graph.workflow import PhoneMfaWorkflow, WorkflowRequest, WorkflowSettings
from tests.graph.simulator_helpers import Sleeps

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, deadline=5.0)


@dataclass
class Stack:
    sim: Any
    settings: GraphSettings
    client: GraphClient
    workflow: PhoneMfaWorkflow
    client_sleeps: Sleeps = field(default_factory=Sleeps)  # the client's retry waits, as asked for
    workflow_sleeps: Sleeps = field(default_factory=Sleeps)  # the workflow's own waits (read-back polls, ...)

    def with_settings(self, **changes: Any) -> PhoneMfaWorkflow:
        wf = WorkflowSettings.from_graph_settings(self.settings, **changes)
        return PhoneMfaWorkflow(
            self.client,
            Directory(self.client),
            wf,
            notifier=self.workflow._notifier,
            sleep=self.workflow_sleeps,
        )


async def make_stack(
    sim: Any, env: dict[str, str], *, retry: RetryPolicy = FAST_RETRY, **wf_changes: Any
) -> AsyncIterator[Stack]:
    settings = GraphSettings.from_env(env)
    client_sleeps, workflow_sleeps = Sleeps(), Sleeps()
    client, close = await create_graph_client(settings, retry=retry, sleep=client_sleeps)
    notifier = None
    if settings.mail_sender:
        from graph.notify import Notifier

        notifier = Notifier.from_settings(settings)
    wf_settings = WorkflowSettings.from_graph_settings(settings, **wf_changes)
    workflow = PhoneMfaWorkflow(
        client, Directory(client), wf_settings, notifier=notifier, sleep=workflow_sleeps
    )
    try:
        yield Stack(sim, settings, client, workflow, client_sleeps, workflow_sleeps)
    finally:
        await close()


def add_user(
    sim: Any,
    *,
    name: str = "Adele Vance",
    mobile: str | None = None,
    alternate: str | None = None,
    office: str | None = None,
    mobile_sms: str | None = None,
    mail: str | None = "auto",
    usage_location: str | None = "DE",
    **extra: Any,
) -> Any:
    """A fresh user in the simulated tenant with the given phone methods."""
    uid = str(uuid.uuid4())
    local = "".join(ch for ch in name.lower().replace(" ", ".") if ch.isalnum() or ch == ".") + "." + uid[:6]
    upn = f"{local}@contoso.example"
    phones = []
    if mobile:
        phones.append(
            {
                "phoneType": "mobile",
                "phoneNumber": mobile,
                **({"smsSignInState": mobile_sms} if mobile_sms else {}),
            }
        )
    if alternate:
        phones.append({"phoneType": "alternateMobile", "phoneNumber": alternate})
    if office:
        phones.append({"phoneType": "office", "phoneNumber": office})
    data = {
        "id": uid,
        "userPrincipalName": upn,
        "displayName": name,
        "mail": upn if mail == "auto" else mail,
        "usageLocation": usage_location,
        "phoneMethods": phones,
        **extra,
    }
    return sim.tenant.add_user(data)


def request(action: str, user: str, number: str | None, **kw: Any) -> WorkflowRequest:
    return WorkflowRequest(action=action, user_ref=user, number=number, **kw)  # type: ignore[arg-type]


def graph_calls(sim: Any, since: int = 0) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in sim.calls[since:]]


def mobile_of(sim: Any, user: Any) -> str | None:
    """The user's mobile number as the simulated tenant holds it now (None: no mobile method)."""
    phone = sim.tenant.users[user.id].phones.get("mobile")
    return phone.number if phone else None


def writes(sim: Any, since: int = 0) -> list[tuple[str, str]]:
    out = []
    for c in sim.calls[since:]:
        if c.method in ("POST", "PATCH", "DELETE", "PUT") and not c.path.endswith("$batch"):
            out.append((c.method, c.path))
    return out

"""A faithful re-implementation of the reference runbook's algorithms, for comparison only.

Owner search (runbook step 8): page ``userRegistrationDetails`` completely into memory (no ``$top``: the runbook
sends none), then walk the list in slices of 500 users, each slice as sequential ``$batch`` requests of 20
``phoneMethods`` reads, compare numbers with whitespace removed and stop at the first match.

Conflict answer (runbook step 7): after a 409 wait a fixed 5 s, then read the mobile method once.

Both run on our GraphClient, so they get its retries for free (the runbook itself does not honour per-item 429s);
that can only make the runbook look better than it is.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from graph.client import BatchItem, GraphClient
from graph.errors import ConflictError

REPORT = "/reports/authenticationMethods/userRegistrationDetails"
FILTER = "methodsRegistered/any(t: t eq 'mobilePhone')"
SLICE = 500
BATCH = 20


@dataclass
class PagingSample:
    pages: int
    users: int
    seconds: float
    page_times: list[float]  # completion time of each page, from the start


async def page_report(
    client: GraphClient, *, max_pages: int | None = None
) -> tuple[list[dict[str, Any]], PagingSample]:
    """Runbook paging: everything into one list (stops early only when ``max_pages`` asks for a sample)."""
    users: list[dict[str, Any]] = []
    started = time.perf_counter()
    times: list[float] = []
    params = {"$filter": FILTER, "$select": "id,userPrincipalName,userDisplayName"}
    async for page in client.pages(REPORT, params=params):
        users.extend(page)
        times.append(time.perf_counter() - started)
        if max_pages is not None and len(times) >= max_pages:
            break
    return users, PagingSample(len(times), len(users), time.perf_counter() - started, times)


async def scan_batches(
    client: GraphClient, users: list[dict[str, Any]], number: str, *, max_batches: int | None = None
) -> tuple[dict[str, Any] | None, int, float]:
    """Runbook scan: slices of 500, sequential $batch of 20; returns (match, batches sent, seconds)."""
    wanted = number.replace(" ", "")
    started = time.perf_counter()
    sent = 0
    for s in range(0, len(users), SLICE):
        part = users[s : s + SLICE]
        for b in range(0, len(part), BATCH):
            chunk = part[b : b + BATCH]
            items = [
                BatchItem(id=str(i), method="GET", url=f"/users/{u['id']}/authentication/phoneMethods")
                for i, u in enumerate(chunk)
            ]
            results = await client.batch(items)
            sent += 1
            for res in results:
                if res.status == 200 and isinstance(res.body, dict):
                    for m in res.body.get("value") or []:
                        if str(m.get("phoneNumber") or "").replace(" ", "") == wanted:
                            return chunk[int(res.id)], sent, time.perf_counter() - started
            if max_batches is not None and sent >= max_batches:
                return None, sent, time.perf_counter() - started
    return None, sent, time.perf_counter() - started


async def set_with_fixed_wait(
    client: GraphClient, user_id: str, number: str, wait_s: float = 5.0
) -> tuple[str, int]:
    """Runbook steps 2-7 for an add/update; returns (result, Graph calls made)."""
    calls = 0
    await client.get(
        f"/users/{user_id}",
        params={"$select": "id,userPrincipalName,displayName,userType,mail,usageLocation"},
    )
    calls += 1
    resp = await client.get(
        f"/users/{user_id}/authentication/phoneMethods", params={"$filter": "phoneType eq 'mobile'"}
    )
    calls += 1
    methods = (resp.json or {}).get("value") or []
    mobile = methods[0] if methods else None
    body = {"phoneNumber": number.replace(" ", ""), "phoneType": "mobile"}
    try:
        if mobile is not None:
            if str(mobile.get("phoneNumber") or "").replace(" ", "") == number.replace(" ", ""):
                return "unchanged", calls
            await client.patch(f"/users/{user_id}/authentication/phoneMethods/{mobile['id']}", json=body)
        else:
            await client.post(f"/users/{user_id}/authentication/phoneMethods", json=body)
        calls += 1
        return "done", calls
    except ConflictError:
        calls += 1
        await asyncio.sleep(wait_s)
        resp = await client.get(
            f"/users/{user_id}/authentication/phoneMethods", params={"$filter": "phoneType eq 'mobile'"}
        )
        calls += 1
        methods = (resp.json or {}).get("value") or []
        stored = bool(methods) and str(methods[0].get("phoneNumber") or "").replace(
            " ", ""
        ) == number.replace(" ", "")
        return ("conflict_stored" if stored else "conflict_not_stored"), calls

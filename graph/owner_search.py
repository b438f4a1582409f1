"""Find who holds a phone number for SMS sign-in.

Graph answers a 409 ``phoneNumberNotUnique`` when another user holds the number for SMS sign-in, but it does not
say who. This module finds that user in three stages:

1. ``profile``: one filtered ``/users`` query on the profile fields ``mobilePhone``/``businessPhones`` (the forms
   Graph may hold), then the phone methods of those few candidates in one ``$batch``. Cheap and usually enough.
2. ``disabled``: the disabled accounts (``/users?$filter=accountEnabled eq false``, which needs no advanced query:
   https://learn.microsoft.com/graph/aad-advanced-queries) and their phone methods in ``$batch``. The report of
   stage 3 leaves them out ("This method doesn't work for disabled users",
   https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails), yet a disabled
   account keeps its number for SMS sign-in. There are few of them; this stage runs before the scan, so it still
   answers when the report cannot be read.
3. ``scan``: stream ``userRegistrationDetails`` pages (users with ``mobilePhone`` registered) and ``$batch`` the
   phone-method reads with bounded concurrency *while* paging. The report allows only 5 requests per 10 s, so the
   scan is bound by paging; reads overlap with it and the search stops at the first match. A bounded queue keeps
   at most a few pages in memory, whatever the tenant size. The report needs AuditLog.Read.All (no other
   permission will do) and Microsoft Entra ID P1 or P2; without either the search says so
   (``not_permitted``, ``not_licensed``) instead of blaming a deleted user.

The holder is the user whose **mobile** method holds the number with ``smsSignInState == "ready"`` (SMS sign-in
works only on the mobile method, and only one user can hold a number for it). Users who merely have the number as
an MFA phone (allowed for many users) are remembered as a fallback answer when no SMS sign-in holder is found.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from graph.errors import GraphError, PermissionDeniedError
from graph.numbers import digits, number_key
from graph.outcome import Holder

REPORT_PATH = "/reports/authenticationMethods/userRegistrationDetails"
PHONE_REGISTERED_FILTER = "methodsRegistered/any(t: t eq 'mobilePhone')"
DISABLED_FILTER = "accountEnabled eq false"
# The report's answer in a tenant without Microsoft Entra ID P1 or P2 (403; the licence: "A Microsoft Entra ID P1 or
# P2 license is required to access authentication methods usage and insights reports",
# https://learn.microsoft.com/graph/api/resources/authenticationmethods-usage-insights-overview).
NOT_LICENSED_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
PORTAL_USER_PATH = "/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/{id}"
BATCH_SIZE = 20


Stage = Literal["profile", "disabled", "scan"]
SearchStatus = Literal["found", "not_found", "failed", "not_licensed", "not_permitted"]
_STAGE_RANK = {"profile": 0, "disabled": 1, "scan": 2}


@dataclass(frozen=True)
class SearchProgress:
    stage: Stage
    scanned: int
    total_hint: int | None
    found: bool


ProgressCallback = Callable[[SearchProgress], Any]


@dataclass
class SearchResult:
    """``not_licensed``: the report answered that the tenant has no Entra ID P1/P2; ``not_permitted``: Graph refused
    a read of the search for a missing permission (``missing_permission``, filled in by the caller's table). Both
    mean that the enabled accounts could not be searched; profile fields and disabled accounts were."""

    status: SearchStatus
    holder: Holder | None = None
    scanned: int = 0
    stage: Stage | None = None
    unchecked: int = (
        0  # users whose phone methods could not be read (deleted meanwhile, throttled past deadline)
    )
    error: GraphError | None = None
    request_ids: list[str] = field(default_factory=list)
    disabled_checked: int = 0  # disabled accounts whose phone methods were read
    missing_permission: str | None = None

    @property
    def message(self) -> str:
        if self.holder is not None:
            kind = "enabled" if self.holder.account_enabled else "disabled"
            return (
                f"The number is held by {self.holder.display_name} ({self.holder.user_principal_name}, "
                f"{kind} account), {self.holder.phone_type} phone, smsSignInState {self.holder.sms_sign_in_state}."
            )
        checked = (
            f"; the profile phone numbers and {self.disabled_checked} disabled accounts were checked without a match"
            if self.stage == "scan"
            else ""
        )
        if self.status == "not_licensed":
            return (
                "The holder of the number cannot be searched in this tenant: the registration report "
                f"(userRegistrationDetails) needs Microsoft Entra ID P1 or P2{checked}."
            )
        if self.status == "not_permitted":
            return (
                "The holder of the number cannot be searched: the application lacks the permission "
                f"{self.missing_permission or 'for one of its reads'}{checked}."
            )
        if self.status == "failed":
            return "The search for the holder of the number failed" + (
                f": {self.error.message}" if self.error else "."
            )
        text = (
            "No enabled or disabled user holds the number: it may be held by a deleted or soft-deleted user "
            f"({self.scanned} users checked, {self.disabled_checked} of them disabled)."
        )
        if self.unchecked:
            text += f" {self.unchecked} users could not be checked."
        return text


class _Client(Protocol):  # the parts of GraphClient the search uses
    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any: ...

    def pages(self, path: str, params: dict[str, str] | None = None) -> Any: ...

    async def batch(self, requests: list[Any]) -> list[Any]: ...


def portal_link(user_id: str, portal_base: str = "https://entra.microsoft.com") -> str:
    return portal_base.rstrip("/") + PORTAL_USER_PATH.format(id=user_id)


def profile_forms(graph_number: str) -> list[str]:
    """The forms a profile field may hold the number in: "+49 1701234567", "+49 170 1234567", "+491701234567"."""
    forms: list[str] = [graph_number]
    compact = "+" + digits(graph_number)
    if " " in graph_number:
        cc, _, national = graph_number.partition(" ")
        national = national.replace(" ", "")
        if len(national) > 3:
            forms.append(f"{cc} {national[:3]} {national[3:]}")
    forms.append(compact)
    seen: list[str] = []
    for f in forms:
        if f not in seen:
            seen.append(f)
    return seen


def _odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class OwnerSearch:
    """Search for the SMS sign-in holder of a number. One instance per search."""

    def __init__(
        self,
        client: _Client,
        *,
        concurrency: int = 4,
        portal_base: str = "https://entra.microsoft.com",
        page_size: int = 999,
        queued_pages: int = 2,
        use_profile: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._client = client
        self._concurrency = concurrency
        self._portal_base = portal_base
        self._page_size = page_size
        self._queued_pages = max(1, queued_pages)
        self._use_profile = use_profile
        self._progress: ProgressCallback | None = None
        self._scanned = 0
        self._unchecked = 0
        self._disabled_checked = 0
        self._fallback: Holder | None = None
        self._fallback_pos: tuple[int, int] | None = None

    async def find(
        self,
        number: str,
        *,
        exclude_user_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> SearchResult:
        """``number`` in any form (compared by graph.numbers.number_key, so a holder's number stored with a trunk zero
        is found); ``exclude_user_id`` is the target, never its own holder."""
        self._progress = progress
        wanted = number_key(number)
        result = SearchResult(status="not_found")
        try:
            if self._use_profile:
                result.stage = "profile"
                holder = await self._profile_stage(number, wanted, exclude_user_id)
                await self._report("profile", found=holder is not None)
                if holder is not None:
                    result.status, result.holder = "found", holder
                    result.scanned = self._scanned
                    return result
            result.stage = "disabled"
            holder = await self._disabled_stage(wanted, exclude_user_id)
            await self._report("disabled", found=holder is not None)
            if holder is not None:
                result.status, result.holder = "found", holder
                result.scanned, result.disabled_checked = self._scanned, self._disabled_checked
                return result
            result.stage = "scan"
            holder = await self._scan_stage(wanted, exclude_user_id)
        except GraphError as err:
            result.status, result.error, result.scanned = _failure(err), err, self._scanned
            result.disabled_checked, result.unchecked = self._disabled_checked, self._unchecked
            if err.request_id:
                result.request_ids.append(err.request_id)
            return result
        result.scanned, result.unchecked = self._scanned, self._unchecked
        result.disabled_checked = self._disabled_checked
        holder = holder or self._fallback
        if holder is not None:
            result.status, result.holder = "found", holder
        await self._report("scan", found=holder is not None)
        return result

    # -- stage 1: profile fields --------------------------------------------------------------------------
    async def _profile_stage(self, number: str, wanted: str, exclude: str | None) -> Holder | None:
        forms = profile_forms(number if number.startswith("+") else "+" + wanted)
        clauses = [f"mobilePhone eq {_odata_quote(f)}" for f in forms]
        clauses += [f"businessPhones/any(p:p eq {_odata_quote(f)})" for f in forms]
        resp = await self._client.request(
            "GET",
            "/users",
            params={
                "$filter": " or ".join(clauses),
                "$select": "id,displayName,userPrincipalName,accountEnabled,mobilePhone,businessPhones",
                "$count": "true",
                "$top": "20",
            },
            headers={"ConsistencyLevel": "eventual"},
        )
        body = resp.json or {}
        candidates = [
            (u["id"], u.get("displayName") or "", u.get("userPrincipalName") or "")
            for u in body.get("value", [])
            if u.get("id") and u.get("id") != exclude
        ]
        if not candidates:
            return None
        enabled = {
            u["id"]: u.get("accountEnabled") is not False for u in body.get("value", []) if u.get("id")
        }
        return await self._check_chunk(candidates[:BATCH_SIZE], wanted, position=0, enabled=enabled)

    # -- stage 2: disabled accounts (not in the report) -------------------------------------------------------
    async def _disabled_stage(self, wanted: str, exclude: str | None) -> Holder | None:
        params = {
            "$filter": DISABLED_FILTER,
            "$select": "id,displayName,userPrincipalName",
            "$top": str(self._page_size),
        }
        position = 0
        async for page in self._client.pages("/users", params=params):
            rows = [
                (u["id"], u.get("displayName") or "", u.get("userPrincipalName") or "")
                for u in page
                if u.get("id") and u.get("id") != exclude
            ]
            for start in range(0, len(rows), BATCH_SIZE):
                chunk = rows[start : start + BATCH_SIZE]
                holder = await self._check_chunk(
                    chunk,
                    wanted,
                    position + start,
                    stage="disabled",
                    enabled=dict.fromkeys((r[0] for r in chunk), False),
                )
                self._disabled_checked += len(chunk)
                if holder is not None:
                    return holder
            position += len(rows)
        return None

    # -- stage 3: report scan -------------------------------------------------------------------------------
    async def _scan_stage(self, wanted: str, exclude: str | None) -> Holder | None:
        chunks_per_page = -(-self._page_size // BATCH_SIZE)
        queue: asyncio.Queue[tuple[int, list[tuple[str, str, str]]] | None] = asyncio.Queue(
            maxsize=chunks_per_page * self._queued_pages
        )
        found: asyncio.Future[Holder] = asyncio.get_running_loop().create_future()

        async def produce() -> None:
            position = 0
            params = {
                "$filter": PHONE_REGISTERED_FILTER,
                "$select": "id,userPrincipalName,userDisplayName",
                "$top": str(self._page_size),
            }
            async for page in self._client.pages(REPORT_PATH, params=params):
                rows = [
                    (r["id"], r.get("userDisplayName") or "", r.get("userPrincipalName") or "")
                    for r in page
                    if r.get("id") and r.get("id") != exclude
                ]
                for start in range(0, len(rows), BATCH_SIZE):
                    await queue.put((position + start, rows[start : start + BATCH_SIZE]))
                position += len(rows)
            for _ in range(self._concurrency):
                await queue.put(None)

        async def consume() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    return
                position, chunk = item
                holder = await self._check_chunk(chunk, wanted, position, stage="scan")
                if holder is None:
                    await self._report("scan", found=False)
                if holder is not None and not found.done():
                    found.set_result(holder)
                    return

        tasks = [asyncio.create_task(produce())]
        tasks += [asyncio.create_task(consume()) for _ in range(self._concurrency)]
        try:
            pending: set[asyncio.Future[Any]] = set(tasks) | {found}
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if found in done:
                    return found.result()
                for t in done:
                    exc = t.exception()
                    if exc is not None:
                        raise exc
                if pending == {found}:  # every worker finished without a match
                    return None
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not found.done():
                found.cancel()

    # -- shared -------------------------------------------------------------------------------------------
    async def _check_chunk(
        self,
        chunk: list[tuple[str, str, str]],
        wanted: str,
        position: int,
        *,
        stage: Stage = "profile",
        enabled: dict[str, bool] | None = None,
    ) -> Holder | None:
        """The SMS sign-in holder among ``chunk``; an MFA-only match is kept as the fallback, the earliest by
        (stage, position) winning. ``enabled``: accountEnabled by user id (the report lists enabled users only)."""
        from graph.client import BatchItem  # the client's batch item type

        items = [
            BatchItem(id=str(i), method="GET", url=f"/users/{user_id}/authentication/phoneMethods")
            for i, (user_id, _, _) in enumerate(chunk)
        ]
        results = await self._client.batch(items)
        best: Holder | None = None
        for res in results:
            idx = int(res.id)
            user_id, name, upn = chunk[idx]
            status = int(res.status)
            if status in (401, 403):
                err = res.error()
                err.method, err.url = "GET", f"/users/{user_id}/authentication/phoneMethods"
                raise err
            if status != 200:
                self._unchecked += 1  # deleted meanwhile (404) or still throttled after the client's retries
                continue
            body = res.body if isinstance(res.body, dict) else {}
            methods: Iterable[dict[str, Any]] = body.get("value", []) or []
            for m in methods:
                if number_key(str(m.get("phoneNumber") or "")) != wanted:
                    continue
                holder = Holder(
                    id=user_id,
                    display_name=name,
                    user_principal_name=upn,
                    phone_type=str(m.get("phoneType") or ""),
                    sms_sign_in_state=m.get("smsSignInState"),
                    portal_url=portal_link(user_id, self._portal_base),
                    account_enabled=(enabled or {}).get(user_id, True),
                )
                rank = (_STAGE_RANK[stage], position + idx)
                if holder.phone_type == "mobile" and holder.sms_sign_in_state == "ready":
                    best = best or holder
                elif self._fallback is None or (self._fallback_pos is not None and rank < self._fallback_pos):
                    self._fallback, self._fallback_pos = holder, rank
        self._scanned += len(chunk)
        return best

    async def _report(self, stage: Stage, *, found: bool) -> None:
        if self._progress is None:
            return
        res = self._progress(SearchProgress(stage=stage, scanned=self._scanned, total_hint=None, found=found))
        if inspect.isawaitable(res):
            await res


def _failure(err: GraphError) -> SearchStatus:
    """What a Graph error that ended the search means for its result."""
    if err.status == 403 and err.code == NOT_LICENSED_CODE:
        return "not_licensed"
    if isinstance(err, PermissionDeniedError):
        return "not_permitted"
    return "failed"


__all__ = [
    "NOT_LICENSED_CODE",
    "OwnerSearch",
    "ProgressCallback",
    "SearchProgress",
    "SearchResult",
    "SearchStatus",
    "portal_link",
    "profile_forms",
]

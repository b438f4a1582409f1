"""Set, update or remove a user's mobile phone MFA method: the one workflow every surface uses.

The workflow takes plain values, talks to Graph through the GraphClient/Directory, and returns an ``Outcome``.
It never prints and never raises for a Graph refusal: every refusal becomes an outcome with what to do next.

A failed write is never judged by its error alone: Graph can apply a write and still answer 503 (or lose the
answer), and a refusal of a repeated write says nothing about the first one. After any failed write the phone
methods are read back, and the state decides (see `_Run._after_failed_write` and docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from graph.client import BatchItem, BatchResult, RetryPolicy
from graph.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GraphError,
    GraphUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TokenError,
    TransportError,
)
from graph.numbers import InvalidNumber, ParsedNumber, mask, number_key, parse_number
from graph.outcome import (
    NextStep,
    Notification,
    NotificationReason,
    NotificationStatus,
    Outcome,
    OutcomeKind,
    OutcomeWarning,
    PhoneMethod,
    PhoneState,
    TargetUser,
    WarningCode,
)
from graph.owner_search import OwnerSearch, ProgressCallback, SearchProgress, SearchResult
from graph.permissions import missing_permission

MOBILE_METHOD_ID = "3179e48a-750b-4051-897c-87b9720928f7"

ALTERNATE_FIRST = "remove the alternate mobile number first, or set a new mobile number instead"
DEFAULT_METHOD_FIRST = (
    "the user must change the default sign-in method first (My Sign-Ins: https://mysignins.microsoft.com), "
    "then remove the number again"
)

__all__ = [
    "ALTERNATE_FIRST",
    "DEFAULT_METHOD_FIRST",
    "PhoneMfaWorkflow",
    "SearchProgress",
    "WorkflowRequest",
    "WorkflowSettings",
    "required_permission",
]


@dataclass(frozen=True)
class WorkflowSettings:
    mail_sender: str | None = None
    service_desk: Any = None  # graph.notify.ServiceDesk (passed through to the notifier)
    default_region: str | None = None
    # After a 409 phoneNumberNotUnique the phone methods are read until the number shows (Graph may store it
    # despite the 409, and a write becomes visible to reads only after a while) or this many seconds have
    # passed: waits start at conflict_poll_first_delay and double up to conflict_poll_max_delay.
    conflict_poll_timeout: float = 8.0
    search_concurrency: int = 8
    portal_base: str = "https://entra.microsoft.com"
    conflict_poll_first_delay: float = 0.1
    conflict_poll_max_delay: float = 0.5  # the answer comes at most this long after the number shows
    # A write Graph answered with 502/503/504 is sent again only after reading the state back shows it was not
    # applied; at most this many sends in all, waiting Retry-After (or the client's backoff) in between.
    write_attempts: int = 3

    @classmethod
    def from_graph_settings(cls, settings: Any, **overrides: Any) -> WorkflowSettings:
        """Build from GraphSettings (duck-typed so this module does not depend on its optional fields)."""
        values: dict[str, Any] = {
            "mail_sender": getattr(settings, "mail_sender", None),
            "service_desk": getattr(settings, "service_desk", None),
            "default_region": getattr(settings, "phone_default_region", None)
            or getattr(settings, "default_region", None),
        }
        if getattr(settings, "conflict_readback_seconds", None) is not None:
            values["conflict_poll_timeout"] = settings.conflict_readback_seconds  # CONFLICT_READBACK_SECONDS
        for name in ("conflict_poll_timeout", "search_concurrency", "portal_base"):
            if getattr(settings, name, None) is not None:
                values[name] = getattr(settings, name)
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class WorkflowRequest:
    action: Literal["set", "remove"]
    user_ref: str
    number: str | None
    notify: bool = False
    language: str = "auto"
    ticket_url: str | None = None
    caller: str | None = None
    owner_search: bool = True


UNKNOWN_PERMISSION = (
    "the permission Microsoft Graph documents for this call (see the README's permission table)"
)


def required_permission(method: str | None, url: str | None) -> str:
    """What to grant when Graph answered a call with 403, by endpoint (graph/permissions.py): the narrowest
    permission first, then the broader ones that work too. A call outside the table says so instead of guessing."""
    return missing_permission(method, url) or UNKNOWN_PERMISSION


def e164(graph_number: str | None) -> str | None:
    if not graph_number:
        return None
    d = number_key(graph_number)  # a kept trunk zero ("+49 0170 ...") is not part of the E.164 form
    return "+" + d if d else None


class _Recorder:
    """Wraps the GraphClient for one run and keeps every Graph request-id it sees."""

    def __init__(self, client: Any, ids: list[str]) -> None:
        self._client = client
        self.ids = ids

    def keep(self, request_id: str | None) -> None:
        if request_id and request_id not in self.ids:
            self.ids.append(request_id)

    async def request(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        try:
            resp = await self._client.request(method, path_or_url, **kwargs)
        except GraphError as err:
            self.keep(err.request_id)
            raise
        self.keep(getattr(resp, "request_id", None))
        return resp

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self.request("DELETE", path, **kwargs)

    def pages(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self._client.pages(path, params=params)

    def paginate(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self._client.paginate(path, params=params)

    async def batch(self, requests: list[Any]) -> list[Any]:
        try:
            return list(await self._client.batch(requests))
        except GraphError as err:
            self.keep(err.request_id)
            raise

    def __getattr__(self, name: str) -> Any:  # anything else the directory may use
        return getattr(self._client, name)


class PhoneMfaWorkflow:
    def __init__(
        self,
        client: Any,
        directory: Any,
        settings: WorkflowSettings,
        *,
        notifier: Any | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._directory = directory
        self._settings = settings
        self._notifier = notifier
        self._sleep = sleep
        self._clock = clock

    # -- public ------------------------------------------------------------------------------------------
    async def show(self, user_ref: str) -> Outcome:
        run = _Run(self, Outcome(kind=OutcomeKind.SHOWN, action="show"))
        return await run.show(user_ref)

    def prepare(self, req: WorkflowRequest) -> PreparedRun:
        """Start the reads `req` begins with (the user and their phone methods; what a mail needs) now, while the
        caller still decides whether to run it: `run(req, prepared=...)` goes on from their answers, so they cost
        no round trip of their own. Only reads: nothing is written before `run`. A prepared run that is not run
        must be discarded (`await prepared.discard()`)."""
        action = req.action if req.action in ("set", "remove") else "set"
        run = _Run(self, Outcome(kind=OutcomeKind.INVALID_REQUEST, action=action))
        if req.action in ("set", "remove"):
            run.reads = asyncio.ensure_future(run._read_target(req.user_ref, for_mail=req.notify))
        return PreparedRun(req, run)

    async def run(
        self,
        req: WorkflowRequest,
        progress: ProgressCallback | None = None,
        *,
        prepared: PreparedRun | None = None,
    ) -> Outcome:
        action = req.action if req.action in ("set", "remove") else "set"
        if prepared is not None and prepared.req != req:
            await prepared.discard()
            prepared = None
        run = (
            prepared.take()
            if prepared is not None
            else _Run(self, Outcome(kind=OutcomeKind.INVALID_REQUEST, action=action))
        )
        if req.action not in ("set", "remove"):
            return run.finish(
                OutcomeKind.INVALID_REQUEST,
                f"Unknown action {req.action!r}: use set or remove.",
                next_step="Choose set or remove.",
            )
        return await run.execute(req, progress)

    def _owner_search(self, client: Any) -> OwnerSearch:
        return OwnerSearch(
            client, concurrency=self._settings.search_concurrency, portal_base=self._settings.portal_base
        )

    async def find_holder(
        self, number: str, *, exclude_user_id: str, progress: ProgressCallback | None = None
    ) -> SearchResult:
        """Who holds `number` for SMS sign-in: the owner search a blocked change runs, for a caller that runs it
        after the outcome (a number stored for MFA but refused for SMS sign-in). Every Graph request-id it saw is
        in the result's request_ids; a refused read names the permission to grant."""
        ids: list[str] = []
        result = await self._owner_search(_Recorder(self._client, ids)).find(
            number, exclude_user_id=exclude_user_id, progress=progress
        )
        result.request_ids = [*ids, *(r for r in result.request_ids if r not in ids)]
        if result.status == "not_permitted" and result.error is not None:
            result.missing_permission = required_permission(result.error.method, result.error.url)
        return result

    async def sms_sign_in_state(
        self, user_id: str, method_id: str = MOBILE_METHOD_ID
    ) -> tuple[str | None, str | None]:
        """The smsSignInState of a user's phone method and the Graph request-id of the read; (None, request-id)
        when the method is gone. Raises GraphError when Graph does not answer.

        GET /users/{id}/authentication/phoneMethods/{id} answers the phoneAuthenticationMethod with its
        smsSignInState (https://learn.microsoft.com/graph/api/phoneauthenticationmethod-get; application
        permission UserAuthenticationMethod.Read.All, https://learn.microsoft.com/graph/api/resources/
        phoneauthenticationmethod). The update of a method answers 204 with no body
        (https://learn.microsoft.com/graph/api/phoneauthenticationmethod-update), so this read is how an update
        learns it."""
        path = f"{_Run._methods_path(user_id)}/{quote(method_id, safe='')}"
        try:
            resp = await self._client.request("GET", path)
        except NotFoundError as err:
            return None, err.request_id
        body = resp.json if isinstance(resp.json, dict) else {}
        state = body.get("smsSignInState")
        return (str(state) if state else None), getattr(resp, "request_id", None)


class PreparedRun:
    """A set/remove whose first reads are under way (PhoneMfaWorkflow.prepare)."""

    def __init__(self, req: WorkflowRequest, run: _Run) -> None:
        self.req = req
        self._run: _Run | None = run

    def take(self) -> _Run:
        run, self._run = self._run, None
        if run is None:
            raise RuntimeError("a prepared run runs once")
        return run

    async def discard(self) -> None:
        """Cancel the reads if the run did not take them (no-op after run); their errors are of no interest."""
        run, self._run = self._run, None
        reads = run.reads if run is not None else None
        if reads is None:
            return
        reads.cancel()
        try:
            await reads
        except asyncio.CancelledError:
            if not reads.cancelled():
                raise
        except Exception:  # noqa: BLE001,S110 - the answers were not wanted
            pass


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class _Run:
    """The state of one show/set/remove: the outcome being built and the request-ids seen."""

    def __init__(self, wf: PhoneMfaWorkflow, out: Outcome) -> None:
        self.wf = wf
        self.out = out
        self.reads: asyncio.Future[tuple[TargetUser | None, PhoneState | None]] | None = None
        self.ids: list[str] = []
        self.out.graph_request_ids = self.ids
        self.client = _Recorder(wf._client, self.ids)
        self.directory = self._directory_on(self.client)
        self.search_result: SearchResult | None = None
        self.mail: Notification | None = None  # what became of the mail when it went out with the write

    def _directory_on(self, client: _Recorder) -> Any:
        """The same kind of Directory, but on the recording client, so its request-ids are kept too."""
        directory = self.wf._directory
        try:
            from graph.directory import Directory
        except ImportError:  # pragma: no cover - the directory module is part of the package
            return directory
        if type(directory) is Directory:
            return Directory(client)  # type: ignore[arg-type]
        return directory

    def finish(
        self,
        kind: OutcomeKind,
        message: str,
        *,
        next_step: str | None = None,
        next_step_code: NextStep | None = None,
    ) -> Outcome:
        self.out.kind = kind
        self.out.message = message
        self.out.next_step = next_step
        self.out.next_step_code = next_step_code.value if next_step_code else None
        return self.out

    # -- show --------------------------------------------------------------------------------------------
    async def show(self, user_ref: str) -> Outcome:
        try:
            user = await self._find_user(user_ref)
            if user is None:
                return self._not_found(user_ref)
            state = await self._phone_state(user.id)
        except GraphError as err:
            return self._from_error(err)
        self._describe_state(state)
        mobile = state.mobile
        if mobile is None:
            return self.finish(OutcomeKind.SHOWN, f"{user.display_name} has no mobile phone MFA method.")
        return self.finish(
            OutcomeKind.SHOWN,
            f"{user.display_name} has the mobile phone MFA method {e164(mobile.phone_number)} "
            f"(smsSignInState {mobile.sms_sign_in_state}).",
        )

    # -- set / remove ------------------------------------------------------------------------------------
    async def execute(self, req: WorkflowRequest, progress: ProgressCallback | None) -> Outcome:
        settings = self.wf._settings
        if req.number is None or not req.number.strip():
            return self.finish(
                OutcomeKind.INVALID_NUMBER,
                "A phone number is required.",
                next_step="Give the number in international form, e.g. +49 170 1234567.",
            )
        try:
            parsed = parse_number(req.number, settings.default_region)
        except InvalidNumber as exc:
            return self.finish(
                OutcomeKind.INVALID_NUMBER,
                f"The number is not valid: {exc}",
                next_step="Give the number in international form, e.g. +49 170 1234567.",
            )
        self.out.number = parsed.e164
        self.out.warnings.extend(OutcomeWarning(WarningCode.NOT_MOBILE, w) for w in parsed.warnings)
        if req.notify and not settings.mail_sender:
            return self.finish(
                OutcomeKind.INVALID_REQUEST,
                "A notification was asked for, but no sender mailbox is configured (MAIL_SENDER); nothing was changed.",
                next_step="Configure MAIL_SENDER, or run without the notification.",
            )
        try:
            reads, self.reads = self.reads, None
            user, found = await (
                reads if reads is not None else self._read_target(req.user_ref, for_mail=req.notify)
            )
            if user is None or found is None:
                return self._not_found(req.user_ref)
            state = found
        except GraphError as err:
            return self._from_error(err)
        self._describe_state(state)
        if req.action == "set":
            outcome = await self._set(user, state, parsed, progress, req)
        else:
            outcome = await self._remove(user, state, parsed, req)
        return await self._notify(outcome, req)

    async def _set(
        self,
        user: TargetUser,
        state: PhoneState,
        parsed: ParsedNumber,
        progress: ProgressCallback | None,
        req: WorkflowRequest,
    ) -> Outcome:
        mobile = state.mobile
        target = number_key(parsed.e164)
        if mobile is not None and number_key(mobile.phone_number) == target:
            return self.finish(
                OutcomeKind.UNCHANGED,
                f"{user.display_name} already has {parsed.e164} as mobile phone MFA method; nothing was changed.",
            )
        kind = OutcomeKind.UPDATED if mobile is not None else OutcomeKind.ADDED
        base = self._methods_path(user.id)
        body = {"phoneNumber": parsed.graph, "phoneType": "mobile"}
        attempt = 0
        while True:
            attempt += 1
            try:
                if mobile is not None:
                    await self._write("PATCH", f"{base}/{mobile.id}", body, user, kind, req, attempt)
                    new = PhoneMethod(mobile.id, "mobile", parsed.graph, None)
                else:
                    answer = await self._write("POST", base, body, user, kind, req, attempt)
                    created = answer if isinstance(answer, dict) else {}
                    new = PhoneMethod(
                        str(created.get("id") or MOBILE_METHOD_ID),
                        "mobile",
                        str(created.get("phoneNumber") or parsed.graph),
                        created.get("smsSignInState"),
                    )
            except GraphError as err:
                if isinstance(err, ConflictError) and _is_sms_conflict(err):
                    # read back with polling: stored despite the 409, or not
                    return await self._after_conflict(user, parsed, kind, err, progress, req)
                # any other refusal, another 409 too (a Graph rule with its own words): read back, then decide
                decided = await self._after_failed_write(user, state, parsed, kind, err, attempt)
                if decided is None:
                    continue  # not applied, and Graph's 5xx allows sending it again
                return decided
            break
        self._apply(state, new)
        verb = "updated to" if kind is OutcomeKind.UPDATED else "set to"
        return self.finish(
            kind, f"The mobile phone MFA method of {user.display_name} was {verb} {parsed.e164}."
        )

    async def _remove(
        self, user: TargetUser, state: PhoneState, parsed: ParsedNumber, req: WorkflowRequest
    ) -> Outcome:
        mobile = state.mobile
        if mobile is None:
            return self.finish(
                OutcomeKind.NOTHING_TO_REMOVE,
                f"{user.display_name} has no mobile phone MFA method; nothing was removed.",
            )
        if number_key(mobile.phone_number) != number_key(parsed.e164):
            return self.finish(
                OutcomeKind.NUMBER_MISMATCH,
                f"The mobile phone MFA method of {user.display_name} holds {mask(mobile.phone_number)}, "
                f"not {parsed.e164}; nothing was removed.",
                next_step="Check the number with the user; remove only the number the method holds.",
            )
        if state.alternate_mobile is not None:
            return self.finish(
                OutcomeKind.BLOCKED_BY_GRAPH_RULE,
                f"{user.display_name} also has an alternate mobile number, and Graph does not allow removing the "
                "mobile number while an alternate mobile number exists; nothing was removed.",
                next_step=ALTERNATE_FIRST[0].upper() + ALTERNATE_FIRST[1:] + ".",
                next_step_code=NextStep.REMOVE_ALTERNATE_FIRST,
            )
        attempt = 0
        while True:
            attempt += 1
            try:
                path = f"{self._methods_path(user.id)}/{mobile.id}"
                await self._write("DELETE", path, None, user, OutcomeKind.REMOVED, req, attempt)
            except GraphError as err:
                decided = await self._after_failed_write(
                    user, state, parsed, OutcomeKind.REMOVED, err, attempt
                )
                if decided is None:
                    continue
                return decided
            break
        self._apply(state, None)
        return self.finish(
            OutcomeKind.REMOVED,
            f"The mobile phone MFA method {parsed.e164} of {user.display_name} was removed.",
        )

    async def _write(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        user: TargetUser,
        kind: OutcomeKind,
        req: WorkflowRequest,
        attempt: int,
    ) -> Any:
        """Send the write; Graph's JSON answer to it (None for none). A failure raises the GraphError the write
        alone would raise.

        On the first attempt of a change the user is to be told about, the write and the notification mail go in
        one $batch, the mail depending on the write: Graph sends the mail only when the write succeeded and
        answers it 424 otherwise (https://learn.microsoft.com/graph/json-batching, "Sequencing requests with the
        dependsOn property"; sendMail is a request like any other there), so the outcome waits for one round
        trip after the checks, not two. The mail says nothing the write's answer could change (the number's last
        digits, who, when, the tenant's name), so it is rendered before. When the write failed the mail was not
        sent: the outcome is decided as without the batch (read-back and all) and `_notify` sends the mail
        afterwards if it still calls for one."""
        mail = await self._mail_with_write(user, kind, req) if attempt == 1 else None
        if mail is None:
            response = await self.client.request(method, path, json=body)
            return response.json
        written, mailed = await self.client.batch(
            [
                BatchItem("write", method, path, body=body),
                BatchItem("mail", "POST", mail.path, body=mail.body, depends_on=("write",)),
            ]
        )
        self.client.keep(written.request_id)
        if not written.ok:
            raise written.request_error()
        self.mail = self._mail_answer(mail, mailed)
        return written.body

    async def _mail_with_write(self, user: TargetUser, kind: OutcomeKind, req: WorkflowRequest) -> Any:
        """The notification mail to send with the write (graph.notify.PreparedMail), or None to send it, if at
        all, after the outcome (as when the notifier or client cannot batch, or no mail is to be sent)."""
        notifier = self.wf._notifier
        prepare = getattr(notifier, "prepare", None)
        if not req.notify or not user.mail or not callable(prepare):
            return None
        if not callable(getattr(self.wf._client, "batch", None)):
            return None
        try:
            prepared = await prepare(
                user, kind, self.out.number, req.caller, req.ticket_url, req.language, client=self.client
            )
        except Exception:  # noqa: BLE001 - the mail is then sent the usual way, which reports what is wrong
            return None
        return prepared if hasattr(prepared, "path") and hasattr(prepared, "body") else None

    def _mail_answer(self, mail: Any, mailed: BatchResult) -> Notification | None:
        """What became of the mail sent with a write that succeeded; None when Graph did not run it (424, or left
        out of the answer), so it is sent afterwards."""
        self.client.keep(mailed.request_id)
        notifier: Any = self.wf._notifier
        if mailed.status in (0, 424):
            return None
        if mailed.ok:
            note: Notification = notifier.answered(mail, mailed.status, mailed.request_id)
            return note
        failed: Notification = notifier.failed(mail, mailed.request_error())
        return failed

    async def _after_conflict(
        self,
        user: TargetUser,
        parsed: ParsedNumber,
        kind: OutcomeKind,
        err: ConflictError,
        progress: ProgressCallback | None,
        req: WorkflowRequest,
    ) -> Outcome:
        self._keep_error(err)
        self.out.graph_error_code, self.out.graph_message = err.code, err.message
        stored = await self._poll_for(user.id, number_key(parsed.e164), until_present=True)
        if isinstance(stored, GraphError):
            return self._from_error(stored)
        if stored is not None:
            self.out.sms_sign_in_conflict = True
            self.out.sms_sign_in_state = stored.sms_sign_in_state
            self.out.warnings.append(
                OutcomeWarning(
                    WarningCode.SMS_SIGN_IN_UNAVAILABLE,
                    "SMS sign-in is not available with this number: another user holds it for SMS sign-in.",
                )
            )
            verb = "updated to" if kind is OutcomeKind.UPDATED else "set to"
            return self.finish(
                kind,
                f"The mobile phone MFA method of {user.display_name} was {verb} {parsed.e164} for MFA, but not "
                f"for SMS sign-in: Graph said: {err.message}",
                next_step="MFA by SMS and voice works. If the user needs SMS sign-in, the other holder must "
                "release the number first.",
            )
        self.out.kind = OutcomeKind.CONFLICT_UNRESOLVED
        if req.owner_search:
            search = self.wf._owner_search(self.client)
            result = await search.find(parsed.graph, exclude_user_id=user.id, progress=progress)
            self._take_search(result)
        detail = f" {self._search_text()}" if req.owner_search else ""
        return self.finish(
            OutcomeKind.CONFLICT_UNRESOLVED,
            f"Graph refused {parsed.e164} for {user.display_name} because another user holds it for SMS sign-in "
            f"({err.message}); nothing was changed.{detail}",
            next_step="Ask the holder to release the number (or remove it from the holder), then try again.",
        )

    def _take_search(self, result: SearchResult) -> None:
        for rid in result.request_ids:
            if rid not in self.ids:
                self.ids.append(rid)
        self.out.holder = result.holder
        self.out.holder_search = result.status
        if result.status == "not_permitted" and result.error is not None:
            result.missing_permission = required_permission(result.error.method, result.error.url)
            self.out.missing_permission = result.missing_permission
        self.search_result = result

    def _search_text(self) -> str:
        return self.search_result.message if self.search_result else ""

    async def _after_failed_write(
        self,
        user: TargetUser,
        before: PhoneState,
        parsed: ParsedNumber,
        kind: OutcomeKind,
        err: GraphError,
        attempt: int,
    ) -> Outcome | None:
        """A write failed: read the state back and decide from it, never from the error alone.

        Graph's answer to a write is not always the truth about it (a POST it applied can be answered 503, and a
        lost connection says nothing). Returns the outcome, or None when the state shows the write was not applied
        and Graph's 502/503/504 allows sending it once more (the caller does, at most `write_attempts` times).
        """
        self._keep_error(err)
        want = number_key(parsed.e164)
        if isinstance(err, TokenError) or (isinstance(err, TransportError) and not err.write_outcome_unknown):
            # Nothing reached Graph (no token, no connection): there is nothing to read back.
            return self._from_error(err)
        try:
            state = await self._phone_state(user.id)
        except GraphError as read_err:
            self._keep_error(read_err)
            if isinstance(err, PermissionDeniedError):
                return self._from_error(err)
            if isinstance(err, NotFoundError) and isinstance(read_err, NotFoundError):
                # The write and the read-back both say the user is gone (deleted after its methods were read):
                # there is no one left to change.
                return self._from_error(read_err)
            return self._error_finish(
                err,
                OutcomeKind.GRAPH_UNAVAILABLE,
                f"Graph {self._answer(err)} to the change, and the state could not be read back "
                f"({read_err.code or read_err.status}): whether the change was made is unknown",
                next_step="Run `show` for the user in a few minutes before trying again.",
            )
        self._describe_state(state, keep_previous=True)
        mobile = state.mobile
        if kind is OutcomeKind.REMOVED:
            applied = mobile is None or number_key(mobile.phone_number) != want
        else:
            applied = mobile is not None and number_key(mobile.phone_number) == want
        if applied:
            done = {OutcomeKind.REMOVED: "removed", OutcomeKind.UPDATED: "updated", OutcomeKind.ADDED: "set"}[
                kind
            ]
            rid = f", Graph request-id {err.request_id}" if err.request_id else ""
            self.out.warnings.append(
                OutcomeWarning(
                    WarningCode.CHANGE_IN_PLACE_AFTER_ERROR,
                    f"Graph {self._answer(err)} to the change ({err.code or err.status}{rid}), but reading the "
                    "state back shows the change is in place.",
                    {"status": str(err.status or err.code or ""), "request_id": err.request_id or ""},
                )
            )
            return self.finish(
                kind,
                f"The mobile phone MFA method {parsed.e164} of {user.display_name} was {done} "
                f"(confirmed by reading it back after Graph {self._answer(err)}).",
            )
        before_mobile = before.mobile
        unchanged = (mobile is None and before_mobile is None) or (
            mobile is not None
            and before_mobile is not None
            and number_key(mobile.phone_number) == number_key(before_mobile.phone_number)
        )
        retryable = isinstance(err, TransportError) and err.status in (502, 503, 504)
        if retryable and unchanged and attempt < max(1, self.wf._settings.write_attempts):
            await self.wf._sleep(self._write_retry_delay(err, attempt))
            return None
        if isinstance(err, TransportError):
            said = (
                "did not answer the change" if err.status is None else f"answered {err.status} to the change"
            )
            return self._error_finish(
                err,
                OutcomeKind.GRAPH_UNAVAILABLE,
                f"Graph {said} ({err.code or err.status}: {err.message}); reading the state back shows that "
                f"{'nothing changed' if unchanged else 'the change is not in place'}",
                next_step="Try again in a few minutes; quote the request-id if it persists.",
            )
        if isinstance(err, BadRequestError | ConflictError):
            return self._refused_write(user, parsed, kind, err, unchanged)
        return self._from_error(err)

    def _refused_write(
        self,
        user: TargetUser,
        parsed: ParsedNumber,
        kind: OutcomeKind,
        err: BadRequestError | ConflictError,
        unchanged: bool,
    ) -> Outcome:
        """A 400 (or a 409 that is not the SMS sign-in conflict) to a write that the read-back confirms was not
        applied: a Graph rule, said in Graph's words."""
        if kind is OutcomeKind.REMOVED:
            if "default" in (err.message or "").lower():
                return self._error_finish(
                    err,
                    OutcomeKind.BLOCKED_BY_GRAPH_RULE,
                    f"Graph refused to remove the mobile number of {user.display_name}, because it is the default "
                    f"sign-in method: {err.message}",
                    next_step=DEFAULT_METHOD_FIRST[0].upper() + DEFAULT_METHOD_FIRST[1:] + ".",
                    next_step_code=NextStep.CHANGE_DEFAULT_METHOD_FIRST,
                )
        elif unchanged and _says_number_invalid(err.message):
            return self._error_finish(
                err,
                OutcomeKind.INVALID_NUMBER,
                f"Graph refused the number {parsed.e164}: {err.message}",
                next_step="Check the number and try again.",
            )
        return self._error_finish(
            err,
            OutcomeKind.BLOCKED_BY_GRAPH_RULE,
            f"Graph refused the change for {user.display_name} ({err.code}: {err.message}); reading the state back "
            f"shows that {'nothing changed' if unchanged else 'the change is not in place'}",
            next_step="Check the user's phone methods with `show`, then try again; quote the request-id if it "
            "persists.",
        )

    def _error_finish(
        self,
        err: GraphError,
        kind: OutcomeKind,
        message: str,
        *,
        next_step: str | None = None,
        next_step_code: NextStep | None = None,
    ) -> Outcome:
        self.out.graph_error_code = err.code or None
        self.out.graph_message = err.message or None
        rid = f" (Graph request-id {err.request_id})" if err.request_id else ""
        return self.finish(kind, f"{message}{rid}.", next_step=next_step, next_step_code=next_step_code)

    @staticmethod
    def _answer(err: GraphError) -> str:
        if isinstance(err, TransportError) and err.status is None:
            return "gave no answer"
        return f"answered {err.status}" if err.status else "answered with an error"

    def _write_retry_delay(self, err: GraphError, attempt: int) -> float:
        if err.retry_after is not None:
            return err.retry_after
        policy = getattr(self.wf._client, "retry", None)
        if isinstance(policy, RetryPolicy):
            return policy.backoff(attempt, random.random())
        return min(2.0, 0.2 * 2 ** (attempt - 1))

    async def _poll_for(
        self, user_id: str, want: str, *, until_present: bool
    ) -> PhoneMethod | GraphError | None:
        settings = self.wf._settings
        deadline = self.wf._clock() + settings.conflict_poll_timeout
        delay = 0.0
        while True:
            if delay:
                await self.wf._sleep(delay)
            try:
                state = await self._phone_state(user_id)
            except GraphError as err:
                return err
            mobile = state.mobile
            if mobile is not None and number_key(mobile.phone_number) == want:
                self._describe_state(state, keep_previous=True)
                return mobile
            remaining = deadline - self.wf._clock()
            if remaining <= 0:
                self._describe_state(state, keep_previous=True)
                return None
            delay = (
                settings.conflict_poll_first_delay
                if delay == 0
                else min(delay * 2, settings.conflict_poll_max_delay)
            )
            delay = min(delay, remaining)

    # -- notification --------------------------------------------------------------------------------------
    async def _notify(self, outcome: Outcome, req: WorkflowRequest) -> Outcome:
        if not req.notify:
            outcome.notification = Notification(NotificationStatus.DISABLED)
            return outcome
        if not outcome.kind.changed:
            outcome.notification = Notification(
                NotificationStatus.NOT_ATTEMPTED, detail="nothing changed, so there is nothing to tell"
            )
            return outcome
        user = outcome.user
        if user is None or not user.mail:
            outcome.notification = Notification(
                NotificationStatus.SKIPPED_NO_MAIL, detail="the user has no mail address"
            )
            outcome.warnings.append(
                OutcomeWarning(
                    WarningCode.NOTIFICATION_NO_MAIL,
                    "No notification was sent: the user has no mail address.",
                )
            )
            return outcome
        notifier = self.wf._notifier
        if notifier is None:
            outcome.notification = Notification(
                NotificationStatus.FAILED,
                recipient=user.mail,
                detail="no notifier is configured",
                reason=NotificationReason.NOT_CONFIGURED,
            )
            return outcome
        if self.mail is not None:  # sent with the write (`_write`), which succeeded
            note = self.mail
        else:
            note = await self._send_mail(notifier, user, outcome, req)
        outcome.notification = note
        if note.status is NotificationStatus.FAILED:
            outcome.warnings.append(
                OutcomeWarning(
                    WarningCode.NOTIFICATION_FAILED,
                    f"The change was made, but the notification e-mail failed: {note.detail}",
                )
            )
        return outcome

    async def _send_mail(
        self, notifier: Any, user: TargetUser, outcome: Outcome, req: WorkflowRequest
    ) -> Notification:
        try:
            note = await notifier.notify(
                client=self.client,
                user=user,
                outcome=outcome,
                language=req.language,
                ticket_url=req.ticket_url,
                caller=req.caller,
            )
        except GraphError as err:  # a failed mail never turns a done change into a failure
            self._keep_error(err)
            note = Notification(
                NotificationStatus.FAILED,
                recipient=user.mail,
                detail=f"{err.code}: {err.message}",
                reason=NotificationReason.ERROR,
            )
        except Exception as exc:  # noqa: BLE001 - a rendering or transport fault must not undo the outcome
            note = Notification(
                NotificationStatus.FAILED,
                recipient=user.mail,
                detail=str(exc) or type(exc).__name__,
                reason=NotificationReason.ERROR,
            )
        return note

    # -- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def _methods_path(user_id: str) -> str:
        return f"/users/{quote(user_id, safe='')}/authentication/phoneMethods"

    async def _find_user(self, ref: str) -> TargetUser | None:
        ref = (ref or "").strip()
        if not ref:
            return None
        try:
            user: TargetUser | None = await self.directory.find_user(ref)
        except (NotFoundError, BadRequestError):  # Graph cannot even parse it as a user reference
            return None
        if user is not None:
            self.out.user = user
        return user

    async def _read_target(self, ref: str, *, for_mail: bool) -> tuple[TargetUser | None, PhoneState | None]:
        """The user and their phone methods; (None, None) when no user matches. An object id needs no answer
        to ask for both, so they are read at the same time (with the tenant's name a mail needs, when one is to
        be sent); a UPN or mail address is resolved first."""
        notifier = self.wf._notifier
        prefetch = getattr(notifier, "prefetch", None) if for_mail else None
        mail_ready = asyncio.ensure_future(prefetch(self.client)) if callable(prefetch) else None
        try:
            found = await self._user_and_phones((ref or "").strip())
        except BaseException:
            if mail_ready is not None:
                mail_ready.cancel()
            raise
        if mail_ready is not None:
            with contextlib.suppress(Exception):  # the mail falls back to "your organization"
                await mail_ready
        return found

    async def _user_and_phones(self, ref: str) -> tuple[TargetUser | None, PhoneState | None]:
        if not _GUID.match(ref):
            user = await self._find_user(ref)
            return (user, await self._phone_state(user.id)) if user is not None else (None, None)
        phones = asyncio.ensure_future(self._phone_state(ref))
        try:
            user = await self._find_user(ref)
        except BaseException:
            phones.cancel()
            raise
        if user is None:
            phones.cancel()
            with contextlib.suppress(asyncio.CancelledError, GraphError):
                await phones  # no such user: its phones answer 404, which says nothing new
            return None, None
        return user, await phones

    async def _phone_state(self, user_id: str) -> PhoneState:
        resp = await self.client.request("GET", self._methods_path(user_id))
        body = resp.json if isinstance(resp.json, dict) else {}
        methods = tuple(
            PhoneMethod(
                id=str(m.get("id") or ""),
                phone_type=str(m.get("phoneType") or ""),
                phone_number=str(m.get("phoneNumber") or ""),
                sms_sign_in_state=m.get("smsSignInState"),
            )
            for m in body.get("value", []) or []
        )
        return PhoneState(methods=methods)

    def _describe_state(self, state: PhoneState, *, keep_previous: bool = False) -> None:
        self.out.phones = state
        mobile = state.mobile
        if not keep_previous:
            self.out.previous_number = e164(mobile.phone_number) if mobile else None
        self.out.sms_sign_in_state = mobile.sms_sign_in_state if mobile else None
        if self.out.action == "show":
            self.out.number = e164(mobile.phone_number) if mobile else None

    def _apply(self, state: PhoneState, new: PhoneMethod | None) -> None:
        others = tuple(m for m in state.methods if m.phone_type != "mobile")
        methods = (new, *others) if new is not None else others
        self.out.phones = PhoneState(methods=methods)
        self.out.sms_sign_in_state = new.sms_sign_in_state if new else None

    def _keep_error(self, err: GraphError) -> None:
        if err.request_id and err.request_id not in self.ids:
            self.ids.append(err.request_id)

    def _not_found(self, ref: str) -> Outcome:
        return self.finish(
            OutcomeKind.USER_NOT_FOUND,
            f"No user matches {ref.strip()!r} (object id, user principal name or mail address).",
            next_step="Check the spelling; guests are found by their mail address or #EXT# user principal name.",
        )

    def _from_error(
        self,
        err: GraphError,
        *,
        kind: OutcomeKind | None = None,
        message: str | None = None,
        next_step: str | None = None,
    ) -> Outcome:
        self._keep_error(err)
        self.out.graph_error_code = err.code or None
        self.out.graph_message = err.message or None
        rid = f" (Graph request-id {err.request_id})" if err.request_id else ""
        if kind is not None:
            return self.finish(kind, (message or err.message) + rid, next_step=next_step)
        if isinstance(err, PermissionDeniedError):
            perm = required_permission(err.method, err.url)
            self.out.missing_permission = perm
            return self.finish(
                OutcomeKind.PERMISSION_DENIED,
                f"Graph refused {err.method or 'the call'} {_path_of(err.url)}: the application lacks the "
                f"permission {perm}{rid}.",
                next_step=f"Grant the application permission {perm} (admin consent), then try again.",
            )
        if isinstance(err, TokenError) and err.transient:
            # msal replays a failed token answer from memory for its Retry-After (5 s by default), so the very
            # next attempt may fail the same way without asking again.
            return self.finish(
                OutcomeKind.GRAPH_UNAVAILABLE,
                f"Microsoft sign-in did not answer ({err.code}: {err.message}){rid}; nothing was changed.",
                next_step="Try again in a few seconds; if it keeps failing, in a few minutes.",
            )
        if isinstance(err, TokenError):
            self.out.missing_permission = None
            return self.finish(
                OutcomeKind.PERMISSION_DENIED,
                f"Microsoft Entra refused to give the application a token: {err.problem} "
                f"({err.aadsts or err.code}: {err.message}){rid}; nothing was changed.",
                next_step="Fix the application's configuration (GRAPH_TENANT_ID, GRAPH_CLIENT_ID, the client "
                "secret or certificate, admin consent), then try again; trying again as it is will not help.",
            )
        if isinstance(err, AuthenticationError):
            return self.finish(
                OutcomeKind.PERMISSION_DENIED,
                f"Microsoft Graph refused the application's token ({err.code}: {err.message}){rid}.",
                next_step="Check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and the client secret or certificate.",
            )
        if isinstance(err, GraphUnavailableError | TransportError | ThrottledError):
            return self.finish(
                OutcomeKind.GRAPH_UNAVAILABLE,
                f"Microsoft Graph is unavailable ({err.code or err.status}: {err.message}){rid}; nothing was changed.",
                next_step="Try again in a few minutes; quote the request-id if it persists.",
            )
        if isinstance(err, NotFoundError):
            return self.finish(
                OutcomeKind.USER_NOT_FOUND,
                f"Graph no longer finds the user ({err.message}){rid}.",
                next_step="Check that the user still exists.",
            )
        return self.finish(
            OutcomeKind.GRAPH_UNAVAILABLE,
            f"Graph refused the request ({err.status} {err.code}: {err.message}){rid}; nothing was changed.",
            next_step="Try again; quote the request-id if it persists.",
        )


_INVALID_NUMBER = re.compile(
    r"\b(invalid|not (a )?valid|malformed)\W+(\w+\W+){0,3}?(phone ?number|number)\b"
    r"|\b(phone ?number|number)\W+(\w+\W+){0,4}?(invalid|not (a )?valid|malformed)\b",
    re.IGNORECASE,
)


SMS_CONFLICT_CODE = "phoneNumberNotUnique"


def _is_sms_conflict(err: ConflictError) -> bool:
    """The 409 Graph gives when another user holds the number for SMS sign-in (the method may be stored anyway).
    Any other 409 is a rule of its own; its code and message are what the agent sees."""
    return (err.code or "").lower() == SMS_CONFLICT_CODE.lower()


def _says_number_invalid(message: str | None) -> bool:
    """True when Graph's message says the number itself is what it refuses (not, e.g., that a method exists)."""
    return bool(message) and _INVALID_NUMBER.search(message or "") is not None


def _path_of(url: str | None) -> str:
    if not url:
        return ""
    from urllib.parse import urlsplit

    path = urlsplit(url).path
    marker = "/v1.0"
    return path.split(marker, 1)[1] if marker in path else path

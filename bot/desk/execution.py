"""Runs an approved request through the Graph workflow, exactly once, after the card action has been answered.

The step that starts a change decides it on facts read at that moment, never on what was true when the request was
confirmed or approved: the requester's groups and the target's privilege are read from Graph without the cache
(a requester who left the helpdesk, or a target who became privileged without a privileged approval, ends the
request as cancelled; Graph not answering leaves it approved and the sweeper tries again), and the abuse limits
are counted in the same transaction as APPROVED→EXECUTING (store.start_execution). That move is a conditional
update on (id, revision): a second click, a Teams retry or a second instance loses that race and does nothing.
Every copy of the card shows progress, then the outcome; the requester is told when someone else's decision ran
the change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.persistence.models import CardRef, ChangeRequest, Person, RequestState
from bot.views import cards, texts
from graph.errors import GraphError
from graph.numbers import mask
from graph.outcome import Notification, NotificationStatus, Outcome, OutcomeKind, TargetUser

log = logging.getLogger(__name__)
_T = TypeVar("_T")

PROGRESS_UPDATE_INTERVAL = 1.0  # seconds between owner-search progress updates of the card
# A state change the database could not take right now ("database is locked", connection lost) is tried again
# with a growing pause, for at most this long: the start of a run, and above all its result, must not be lost.
STORE_RETRY_SECONDS = 60.0
STORE_RETRY_FIRST_DELAY = 0.05
STORE_RETRY_MAX_DELAY = 2.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class Executor:
    def __init__(
        self,
        *,
        store: Any,
        workflow: Any,
        updater: Any,
        settings: Any,
        policy: Any,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._policy = policy
        self._workflow = workflow
        self._updater = updater
        self._settings = settings
        self._clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -------------------------------------------------------------------------------------- background tasks
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run coro in the background, tracked so a graceful shutdown can wait for it."""
        if self._closed:
            coro.close()
            log.warning("background work refused: the bot is shutting down")
            return
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(coro: Awaitable[Any]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background work failed")

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109
        """Stop taking new work and wait (bounded) for what runs; what is still running then is cancelled."""
        self._closed = True
        tasks = [t for t in self._tasks if not t.done()]
        if not tasks:
            return
        log.info("waiting up to %.0fs for %d running change(s)", timeout, len(tasks))
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)

    # -------------------------------------------------------------------------------------- execution
    async def execute(self, req: ChangeRequest, *, actor: Person) -> ChangeRequest | None:
        """Run `req` (APPROVED) once. None when another instance or click started it first. A request the checks
        or the limits refuse comes back CANCELLED; one whose checks Graph could not answer comes back FAILED
        (graph_unavailable: nothing ran, try again).

        The workflow's first reads (the target and its phone methods) go out with the facts, so they cost no
        round trip of their own; they are only reads, and the change itself waits for the facts, the holds and
        the limits as before."""
        prepare = getattr(self._workflow, "prepare", None)
        prepared = prepare(_workflow_request(req)) if callable(prepare) else None
        try:
            return await self._execute(req, actor=actor, prepared=prepared)
        finally:
            if prepared is not None:
                await prepared.discard()  # nothing to do once the workflow ran on it

    async def _execute(self, req: ChangeRequest, *, actor: Person, prepared: Any) -> ChangeRequest | None:
        from bot.desk.policy import hold_for, read_facts
        from bot.persistence.store import InvalidTransition, LimitHit, StaleRevision

        approved = req
        try:
            facts = await read_facts(self._policy, approved)
        except GraphError as exc:
            return await self._fail_unchecked(approved, actor, exc)
        hold = hold_for(approved, facts, self._settings, starting=True)
        if hold is not None:
            return await self._cancel_at_start(approved, actor, hold.key, hold.params)
        # a user who said "No, I did not ask" (bot/desk/verification.py) is locked for changes through the bot
        target_lock = getattr(self._store, "target_lock", None)
        locked_until = await target_lock(approved.target_id, self._clock()) if target_lock else None
        if locked_until is not None:
            until = locked_until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            return await self._cancel_at_start(approved, actor, "hold.target_locked", {"until": until})

        def refusal_text(hit: LimitHit) -> str:
            return texts.t(texts.lang_from_locale(approved.locale), hit.key, **_limit_params(approved, hit))

        try:
            req, hit = await self._retrying(
                "starting",
                req.id,
                lambda: self._store.start_execution(
                    approved.id,
                    approved.revision,
                    actor=actor,
                    max_per_hour=int(getattr(self._settings, "max_changes_per_requester_per_hour", 0) or 0),
                    cooldown_minutes=float(getattr(self._settings, "target_cooldown_minutes", 0) or 0),
                    refusal_text=refusal_text,
                ),
            )
        except (StaleRevision, InvalidTransition):
            log.info("request %s is already being handled elsewhere", req.id)
            return None
        if hit is not None:
            log.info("request %s was not started: %s", req.id, hit.key)
            await self._after_cancel(req)
            return req
        lang = texts.lang_from_locale(req.locale)
        refs = await self._store.card_refs(req.id)
        progress = cards.progress_card(lang, req, texts.t(lang, "progress.changing"))
        await asyncio.gather(*(self._updater.update_card(ref, progress) for ref in refs))

        due = _Every(PROGRESS_UPDATE_INTERVAL)

        async def on_progress(p: Any) -> None:
            if due():
                await self._update_all(refs, cards.progress_card(lang, req, search_progress_text(lang, p)))

        outcome = await self._run_workflow(req, on_progress, prepared)
        final = (
            RequestState.FAILED if outcome.kind is OutcomeKind.GRAPH_UNAVAILABLE else RequestState.COMPLETED
        )
        details = {
            "outcome": outcome.kind.value,
            "old_number": outcome.previous_number or req.previous_number,
            "new_number": outcome.number if req.action == "set" else None,
            "graph_request_ids": list(outcome.graph_request_ids),
            "notification": outcome.notification.status.value,
            "sms_sign_in_conflict": outcome.sms_sign_in_conflict,
        }
        executing = req
        try:
            req = await self._retrying(
                "recording the outcome of",
                req.id,
                lambda: self._store.transition(
                    executing.id,
                    executing.revision,
                    final,
                    actor=actor,
                    event="completed" if final is RequestState.COMPLETED else "failed",
                    details=details,
                    outcome=outcome.to_json(),
                ),
            )
        except Exception:
            # A retry may have met its own earlier attempt (committed, but the answer was lost): read it back.
            stored = await self._read_back(req.id)
            if stored is not None and stored.state.is_final and stored.outcome is not None:
                req = stored
            else:
                # The change ran; the state could not be written (crash recovery closes it as interrupted).
                # Keep the outcome visible on the card regardless.
                log.exception("recording the outcome of request %s failed", req.id)
                req = replace(req, state=final, outcome=outcome.to_json())
        log.info(
            "request %s %s: %s (target %s, number %s)",
            req.id,
            final.value,
            outcome.kind.value,
            req.target_id,
            mask(outcome.number or req.number),
        )
        follow_up = self._follow_up_for(outcome)
        refs = await self._publish(req, outcome, actor, refs, lang, pending=_pending_text(lang, follow_up))
        if follow_up == "holder":
            self.spawn(self._name_holder(req, outcome, refs, lang))
        elif follow_up == "sms_state":
            self.spawn(self._read_sms_state(req, outcome, refs, lang))
        return req

    async def _update_all(self, refs: Any, card: cards.Card) -> None:
        await asyncio.gather(*(self._updater.update_card(ref, card) for ref in refs))

    async def _publish(
        self,
        req: ChangeRequest,
        outcome: Outcome,
        actor: Person,
        refs: Any,
        lang: str,
        *,
        pending: str | None = None,
    ) -> list[CardRef]:
        """The outcome on every copy of the card; the requester told when someone else's decision ran it.
        Returns every copy of the outcome card (the one sent to the requester too), for the updates after it."""
        card = cards.outcome_card(lang, req, outcome, pending=pending)
        copies = list(refs)
        await self._update_all(refs, card)
        if actor.aad_object_id != req.requester.aad_object_id:
            reference = await self._store.conversation_reference(f"user:{req.requester.aad_object_id}")
            if reference is not None and not any(r.role == "requester" for r in refs):
                activity_id = await self._updater.send_card(reference, card)
                if activity_id:
                    copies.append(CardRef("requester", reference, activity_id))
            elif reference is not None:
                title = texts.t(lang, f"outcome.{outcome.kind.value}.title")
                named = texts.t(lang, "common.request_id", id=cards.ref_of(req))
                await self._updater.send_text(reference, f"{named}, {req.target_display_name}: {title}")
        return copies

    # -------------------------------------------------------------------------------------- after the outcome
    def _follow_up_for(self, outcome: Outcome) -> str | None:
        """What the outcome card still lacks and is read after it is posted, so the agent waits for no more round
        trips than the change itself: "holder" (who holds a number Graph stored for MFA but refused for SMS
        sign-in) or "sms_state" (the SMS sign-in state of a number set or updated, when the write's answer did not
        carry it: an update is answered 204 without a body)."""
        if (
            self._closed
            or outcome.user is None
            or outcome.kind not in (OutcomeKind.ADDED, OutcomeKind.UPDATED)
        ):
            return None
        if outcome.sms_sign_in_conflict:
            if (
                outcome.holder_search == "not_run"
                and outcome.number
                and callable(getattr(self._workflow, "find_holder", None))
            ):
                return "holder"
            return None
        if outcome.sms_sign_in_state is None and callable(getattr(self._workflow, "sms_sign_in_state", None)):
            return "sms_state"
        return None

    async def _name_holder(
        self, req: ChangeRequest, outcome: Outcome, refs: list[CardRef], lang: str
    ) -> None:
        """The owner search a blocked change runs, here after the outcome: every copy of the outcome card shows
        its progress, then who holds the number for SMS sign-in (or that nobody was found, or why it could not be
        searched); the result is audited."""
        assert outcome.user is not None and outcome.number is not None
        due = _Every(PROGRESS_UPDATE_INTERVAL)

        async def on_progress(p: Any) -> None:
            if due():
                text = search_progress_text(lang, p)
                await self._update_all(refs, cards.outcome_card(lang, req, outcome, pending=text))

        error: str | None = None
        try:
            result = await self._workflow.find_holder(
                outcome.number, exclude_user_id=outcome.user.id, progress=on_progress
            )
        except Exception as exc:  # noqa: BLE001 - the outcome stands; the card says the search did not finish
            log.exception("request %s: the search for the holder of the number failed", req.id)
            outcome.holder_search, error = "failed", type(exc).__name__
        else:
            outcome.holder, outcome.holder_search = result.holder, result.status
            if result.status == "not_permitted":
                outcome.missing_permission = result.missing_permission
            if result.error is not None:
                error = f"{result.error.code or result.error.status}: {result.error.message}"
            outcome.graph_request_ids.extend(
                r for r in result.request_ids if r not in outcome.graph_request_ids
            )
        holder = outcome.holder
        log.info("request %s: holder of the number for SMS sign-in: %s", req.id, outcome.holder_search)
        try:
            await self._retrying(
                "auditing the holder search of",
                req.id,
                lambda: self._store.audit(
                    "holder_search",
                    actor=None,
                    request_id=req.id,
                    target_id=req.target_id,
                    target_upn=req.target_upn,
                    details={
                        "holder_search": outcome.holder_search,
                        "holder_id": holder.id if holder else None,
                        "holder_upn": holder.user_principal_name if holder else None,
                        "holder_account_enabled": holder.account_enabled if holder else None,
                        "missing_permission": outcome.missing_permission
                        if outcome.holder_search == "not_permitted"
                        else None,
                        "error": error,
                        "graph_request_ids": list(outcome.graph_request_ids),
                    },
                ),
            )
        except Exception:
            log.exception("request %s: auditing the holder search failed", req.id)
        await self._update_all(refs, cards.outcome_card(lang, req, outcome))

    async def _read_sms_state(
        self, req: ChangeRequest, outcome: Outcome, refs: list[CardRef], lang: str
    ) -> None:
        """The SMS sign-in state of the number just set, read after the outcome card is posted; every copy of the
        card is updated with it (or says it could not be read)."""
        assert outcome.user is not None
        mobile = outcome.phones.mobile if outcome.phones is not None else None
        unread = False
        try:
            if mobile is not None and mobile.id:
                state, rid = await self._workflow.sms_sign_in_state(outcome.user.id, mobile.id)
            else:
                state, rid = await self._workflow.sms_sign_in_state(outcome.user.id)
        except GraphError as err:
            log.warning(
                "request %s: the SMS sign-in state could not be read (%s %s, request-id %s)",
                req.id,
                type(err).__name__,
                err.status,
                err.request_id,
            )
            state, rid, unread = None, err.request_id, True
        except Exception:
            log.exception("request %s: reading the SMS sign-in state failed", req.id)
            state, rid, unread = None, None, True
        outcome.sms_sign_in_state = state
        if rid and rid not in outcome.graph_request_ids:
            outcome.graph_request_ids.append(rid)
        await self._update_all(refs, cards.outcome_card(lang, req, outcome, sms_unread=unread))

    async def _fail_unchecked(
        self, req: ChangeRequest, actor: Person, error: GraphError
    ) -> ChangeRequest | None:
        """Graph could not answer the checks made just before the change (the requester's groups, the target's
        privilege): nothing runs. APPROVED → FAILED with a graph_unavailable outcome, audited; every card shows
        it (try again)."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        log.warning(
            "request %s: the checks before the change could not be read (%s %s, request-id %s); nothing ran",
            req.id,
            type(error).__name__,
            error.status,
            error.request_id,
        )
        from graph.errors import AuthenticationError, PermissionDeniedError, TokenError
        from graph.workflow import required_permission

        kind = OutcomeKind.GRAPH_UNAVAILABLE
        missing: str | None = None
        checks = "the checks made just before the change (the requester's groups, the user's privilege)"
        if isinstance(error, TokenError) and error.transient:
            message = (
                f"Microsoft sign-in did not answer ({error.code}: {error.message}); nothing was changed."
            )
            next_step = "Try again in a few seconds; if it keeps failing, in a few minutes."
        elif isinstance(error, PermissionDeniedError):
            kind, missing = OutcomeKind.PERMISSION_DENIED, required_permission(error.method, error.url)
            message = f"Graph refused {checks}: the application lacks the permission {missing}; nothing was changed."
            next_step = f"Grant the application permission {missing} (admin consent), then try again."
        elif isinstance(error, TokenError | AuthenticationError):
            kind = OutcomeKind.PERMISSION_DENIED
            message = f"Microsoft sign-in refused the bot's credentials ({error.code}); nothing was changed."
            next_step = "An administrator must fix the bot's Graph credentials, then try again."
        else:
            message = f"Microsoft Graph did not answer {checks}; nothing was changed."
            next_step = "Try again in a few minutes."
        outcome = outcome_without_run(
            req,
            kind=kind,
            message=message,
            next_step=next_step,
            graph_request_ids=[error.request_id] if error.request_id else [],
            missing_permission=missing,
        )
        try:
            failed = await self._retrying(
                "recording the unchecked start of",
                req.id,
                lambda: self._store.transition(
                    req.id,
                    req.revision,
                    RequestState.FAILED,
                    actor=actor,
                    event="failed",
                    details={
                        "outcome": outcome.kind.value,
                        "reason": "checks_unavailable",
                        "graph_request_ids": list(outcome.graph_request_ids),
                        "old_number": req.previous_number,
                        "new_number": req.number if req.action == "set" else None,
                    },
                    outcome=outcome.to_json(),
                ),
            )
        except (StaleRevision, InvalidTransition):
            return None
        lang = texts.lang_from_locale(failed.locale)
        refs = await self._store.card_refs(failed.id)
        await self._publish(failed, outcome, actor, refs, lang)
        return failed

    async def _cancel_at_start(
        self, req: ChangeRequest, actor: Person, key: str, params: dict[str, Any]
    ) -> ChangeRequest | None:
        """APPROVED → CANCELLED because the facts re-read at the start forbid the change; every card says why."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        lang = texts.lang_from_locale(req.locale)
        try:
            cancelled = await self._retrying(
                "cancelling",
                req.id,
                lambda: self._store.transition(
                    req.id,
                    req.revision,
                    RequestState.CANCELLED,
                    actor=None,
                    event="cancelled",
                    details={
                        "decision": RequestState.CANCELLED.value,
                        "reason": key,
                        "checked_for": actor.name,
                    },
                    decided_at=self._clock(),
                    decision_reason=texts.t(lang, key, **params),
                ),
            )
        except (StaleRevision, InvalidTransition):
            return None
        log.warning("request %s was cancelled at its start: %s", req.id, key)
        await self._after_cancel(cancelled)
        return cancelled

    async def _after_cancel(self, req: ChangeRequest) -> None:
        """Every copy of the card shows the cancelled request with its reason; the requester is told."""
        try:
            refs = await self._store.card_refs(req.id)
            await asyncio.gather(
                *(
                    self._updater.update_card(
                        ref, cards.decision_card(_ref_lang(ref.conversation_reference, req), req)
                    )
                    for ref in refs
                    if ref.activity_id
                )
            )
            reference = await self._store.conversation_reference(f"user:{req.requester.aad_object_id}")
            if reference is not None:
                lang = texts.lang_from_locale(req.locale)
                await self._updater.send_text(
                    reference,
                    texts.t(
                        lang,
                        "hold.requester_told",
                        id=cards.ref_of(req),
                        target=req.target_display_name,
                        reason=req.decision_reason or "",
                    ),
                )
        except Exception:
            log.exception("request %s: telling everyone about the cancellation failed", req.id)

    async def _retrying(self, what: str, request_id: str, operation: Callable[[], Awaitable[_T]]) -> _T:
        """operation(), tried again on StoreUnavailable with a growing pause for at most STORE_RETRY_SECONDS."""
        from bot.persistence.store import StoreUnavailable

        deadline = time.monotonic() + STORE_RETRY_SECONDS
        delay = STORE_RETRY_FIRST_DELAY
        attempt = 1
        while True:
            try:
                return await operation()
            except StoreUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "%s request %s: the database is unavailable (attempt %d); trying again in %.2fs",
                    what,
                    request_id,
                    attempt,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_RETRY_MAX_DELAY)
            attempt += 1

    async def _read_back(self, request_id: str) -> ChangeRequest | None:
        try:
            stored: ChangeRequest | None = await self._store.get_request(request_id)
        except Exception:  # noqa: BLE001  (still unavailable: the caller keeps what it has)
            return None
        return stored

    async def _run_workflow(
        self, req: ChangeRequest, progress: Callable[[Any], Awaitable[None]], prepared: Any = None
    ) -> Outcome:
        wf_req = _workflow_request(req)

        def on_progress(p: Any) -> Any:
            return progress(p)

        try:
            if prepared is not None:
                return await self._workflow.run(wf_req, progress=on_progress, prepared=prepared)
            return await self._workflow.run(wf_req, progress=on_progress)
        except Exception as exc:
            log.exception("the workflow failed for request %s", req.id)
            return outcome_without_run(
                req,
                message=f"The change could not be finished ({type(exc).__name__}).",
                next_step="Check the user's methods in Entra and try again.",
                previous_number=None,
            )


class _Every:
    """True at the first call, then at most once per `interval` seconds (card updates while a search runs)."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: float | None = None

    def __call__(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self._interval:
            return False
        self._last = now
        return True


def search_progress_text(lang: str, p: Any) -> str:
    """How far the owner search is (graph.owner_search.SearchProgress), in `lang`."""
    stage = getattr(p, "stage", "scan")
    total = getattr(p, "total_hint", None)
    if stage == "profile":
        return texts.t(lang, "progress.search_profile")
    if total:
        return texts.t(lang, "progress.search_scan_total", scanned=getattr(p, "scanned", 0), total=total)
    return texts.t(lang, "progress.search_scan", scanned=getattr(p, "scanned", 0))


def _pending_text(lang: str, follow_up: str | None) -> str | None:
    if follow_up == "holder":
        return texts.t(lang, "progress.search_profile")
    if follow_up == "sms_state":
        return texts.t(lang, "outcome.sms_state.reading")
    return None


def outcome_without_run(
    req: ChangeRequest,
    *,
    message: str,
    next_step: str,
    kind: OutcomeKind = OutcomeKind.GRAPH_UNAVAILABLE,
    notification_detail: str | None = None,
    **fields: Any,
) -> Outcome:
    """The outcome of a request whose change did not run to its end (its checks could not be read, the workflow
    broke, the run was cut off): the request's own facts, the notification not attempted."""
    values: dict[str, Any] = {"previous_number": req.previous_number, **fields}
    return Outcome(
        kind=kind,
        action=req.action,
        user=TargetUser(
            id=req.target_id, user_principal_name=req.target_upn, display_name=req.target_display_name
        ),
        number=req.number,
        notification=Notification(
            NotificationStatus.NOT_ATTEMPTED if req.notify else NotificationStatus.DISABLED,
            detail=notification_detail if req.notify else None,
        ),
        message=message,
        next_step=next_step,
        **values,
    )


def _workflow_request(req: ChangeRequest) -> Any:
    from graph.workflow import WorkflowRequest

    return WorkflowRequest(
        action=req.action,
        user_ref=req.target_id,
        number=req.number,
        notify=req.notify,
        language=req.language,
        ticket_url=req.ticket,
        caller=req.requester.name,
    )


def _ref_lang(ref: dict[str, Any], req: ChangeRequest) -> str:
    return texts.lang_from_locale(ref.get("locale") or req.locale)


def _limit_params(req: ChangeRequest, hit: Any) -> dict[str, Any]:
    """The refusal text's parameters for a limit hit at the start of a run (the window is always one hour)."""
    window = "1 Std." if texts.lang_from_locale(req.locale) == "de" else "1 h"
    return {"window": window, **hit.params}

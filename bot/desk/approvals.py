"""Four-eyes approvals: a change request that policy wants approved waits for an allowed approver's decision.

The request's state lives in the database (bot/persistence/store.py); every move is a conditional update on (id, revision)
with its audit row in the same transaction, so a decision is taken exactly once even when two approvers click at
the same moment, Teams retries an invoke, or two bot instances receive the same click. The cards carry only the
request id and revision; what they show is read from the database when they are rendered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.desk.limits import check_limits
from bot.desk.policy import Facts, Hold, hold_for, read_facts
from bot.persistence.models import CardRef, ChangeRequest, Person, RequestState
from bot.persistence.store import InvalidTransition, StaleRevision
from bot.views import cards, texts
from graph.errors import GraphError

log = logging.getLogger(__name__)

VERB_APPROVE = "mfa.approve"
VERB_REJECT = "mfa.reject"
VERB_REFRESH = "mfa.refresh"
VERB_CANCEL = "mfa.cancel"
VERBS = frozenset({VERB_APPROVE, VERB_REJECT, VERB_REFRESH, VERB_CANCEL})

MAX_REFRESH_USER_IDS = 60  # Teams refreshes the card automatically for at most 60 user MRIs
MAX_REASON_CHARS = cards.MAX_REASON_CHARS
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_DM_CONCURRENCY = 4

# Events written to the audit trail by this module (the decision events are the ones the state machine counts).
EVENT_SUBMITTED = "submitted_for_approval"
EVENT_APPROVED = "approved"
EVENT_REJECTED = "rejected"
EVENT_CANCELLED = "cancelled"
EVENT_EXPIRED = "expired"
EVENT_REFUSED = "approval_refused"
EVENT_UNAVAILABLE = "approval_unavailable"
EVENT_UNDELIVERED = "approval_undelivered"


def say(lang: str, key: str, **params: Any) -> str:
    """bot/views/texts.py's text for `key`; a policy refusal's `group_key` parameter becomes the group's name."""
    if "group_key" in params and "group" not in params:
        params["group"] = texts.t(lang, str(params["group_key"]))
    return texts.t(lang, key, **params)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ApprovalError(Exception):
    """A request cannot be put up for approval; `key`/`params` name the text the requester sees."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def text(self, lang: str) -> str:
        return say(lang, self.key, **self.params)


# Stored conversation references of the approvers' conversations. Ordinary requests go to APPROVERS_CHANNEL,
# requests that a privileged approver must decide to PRIVILEGED_APPROVERS_CHANNEL: only a privileged approver (or
# the installation in the configured APPROVER_CONVERSATION_ID) sets the latter, so an ordinary approver cannot
# redirect the privileged cards. A database from before this split has only "approvers", whose registrant is
# unknown: it is not trusted for privileged requests until a privileged approver registers again.
APPROVERS_CHANNEL = "approvers"
PRIVILEGED_APPROVERS_CHANNEL = "approvers:privileged"


def approvers_channel_for(req: ChangeRequest) -> str:
    """The stored reference the approval card of `req` is posted to."""
    if req.approver_group == "privileged" or req.target_privileged:
        return PRIVILEGED_APPROVERS_CHANNEL
    return APPROVERS_CHANNEL


class NoApproversChannel(ApprovalError):
    """No approvers' channel or group chat has been registered (for privileged requests: none by a privileged
    approver), so nobody could see the request."""

    def __init__(self, privileged: bool = False) -> None:
        super().__init__(
            "approval.no_privileged_approvers_channel" if privileged else "approval.no_approvers_channel"
        )


class _Refusal(Exception):
    """A click that is not allowed: nothing changes; the clicker keeps the card of that request (its current state,
    read from the database) with the reason on top, or a refusal card when there is no request to show."""

    def __init__(self, key: str, audit: bool = True, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.audit = audit
        self.params = params
        self.request_id: str | None = None  # set once the click named a request that exists


class ApprovalService:
    def __init__(
        self,
        *,
        store: Any,
        policy: Any,
        executor: Any,
        updater: Any,
        settings: Any,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._policy = policy
        self._executor = executor
        self._updater = updater
        self._settings = settings
        self._clock = clock

    # ------------------------------------------------------------------ settings

    @property
    def expiry(self) -> timedelta:
        return timedelta(hours=float(self._settings.approval_expiry_hours))

    @property
    def approver_dm(self) -> bool:
        return bool(self._settings.approver_dm)

    # ------------------------------------------------------------------ submit

    async def submit(self, req: ChangeRequest, *, actor: Person) -> ChangeRequest:
        """DRAFT → AWAITING_APPROVAL and put the approval card in front of the approvers.

        Raises ApprovalError (the request stays a draft) when there is nowhere to post the card.
        """
        if req.state is RequestState.AWAITING_APPROVAL:
            return req
        channel = approvers_channel_for(req)
        approvers_ref = await self._store.conversation_reference(channel)
        if approvers_ref is None:
            await self._store.audit(
                EVENT_UNAVAILABLE,
                actor=actor,
                request_id=req.id,
                target_id=req.target_id,
                target_upn=req.target_upn,
                details={"reason": "no_approvers_channel", "channel": channel},
            )
            raise NoApproversChannel(privileged=channel == PRIVILEGED_APPROVERS_CHANNEL)

        expires_at = self._clock() + self.expiry
        try:
            pending = await self._store.transition(
                req.id,
                req.revision,
                RequestState.AWAITING_APPROVAL,
                actor=actor,
                event=EVENT_SUBMITTED,
                details={"approver_group": req.approver_group, "expires_at": expires_at.isoformat()},
                expires_at=expires_at,
            )
        except (StaleRevision, InvalidTransition):
            current = await self._store.get_request(req.id)
            if current is not None and current.state is RequestState.AWAITING_APPROVAL:
                return current  # a repeated confirm: it is already waiting, cards are already out
            raise ApprovalError("approval.not_draft", id=cards.ref_of(req)) from None

        activity_id = await self._updater.send_card(
            approvers_ref, self._approval_card(_ref_lang(approvers_ref, pending), pending, None, True)
        )
        if activity_id is None:
            # Nobody can see it: do not leave a request waiting for a decision nobody can take.
            try:
                await self._store.transition(
                    pending.id,
                    pending.revision,
                    RequestState.CANCELLED,
                    actor=None,
                    event=EVENT_UNDELIVERED,
                    details={"reason": "approvers_channel_unreachable"},
                )
            except (StaleRevision, InvalidTransition):
                pass
            raise ApprovalError("approval.undelivered")
        channel_ref = CardRef(role="approvers", conversation_reference=approvers_ref, activity_id=activity_id)
        await self._store.add_card_ref(pending.id, channel_ref)
        self._spawn(self._reach_approvers(pending, channel_ref))
        return pending

    async def _reach_approvers(
        self, req: ChangeRequest, channel_ref: CardRef, *, notice_key: str | None = None
    ) -> None:
        """After submit, in the background: find the approvers who have the app, DM them the card, and give the
        channel card their Teams ids for the user-specific view. `notice_key`: a sentence on top of the channel
        card (after an escalation: a privileged approver is now needed)."""
        try:
            approvers = await self.eligible_approvers(req)
            teams_ids = [ref["user"]["id"] for _, ref in approvers if _user_mri(ref)][:MAX_REFRESH_USER_IDS]
            if teams_ids or notice_key:
                current = await self._store.get_request(req.id) or req
                if current.state is RequestState.AWAITING_APPROVAL:
                    lang = _ref_lang(channel_ref.conversation_reference, current)
                    card = self._approval_card(lang, current, teams_ids, True)
                    if notice_key:
                        card = cards.with_notice(card, texts.t(lang, notice_key), color="Warning")
                    await self._updater.update_card(channel_ref, card)
            if not self.approver_dm:
                return
            sem = asyncio.Semaphore(_DM_CONCURRENCY)

            async def dm(person: Person, ref: dict[str, Any]) -> None:
                async with sem:
                    card = self._approval_card(_ref_lang(ref, req), req, _ids(person), True)
                    activity_id = await self._updater.send_card(ref, card)
                    if activity_id is None:
                        return
                    card_ref = CardRef(
                        role="approver_dm", conversation_reference=ref, activity_id=activity_id
                    )
                    await self._store.add_card_ref(req.id, card_ref)
                    # A decision may have been taken while this copy was on its way: bring it up to date.
                    current = await self._store.get_request(req.id)
                    if current is not None and current.state is not RequestState.AWAITING_APPROVAL:
                        await self._updater.update_card(
                            card_ref, self._final_view(_ref_lang(ref, current), current)
                        )

            await asyncio.gather(*(dm(p, r) for p, r in approvers))
        except Exception:
            log.exception("approval %s: reaching approvers failed", req.id)

    async def eligible_approvers(self, req: ChangeRequest) -> list[tuple[Person, dict[str, Any]]]:
        """The people who have talked to the bot (a stored "user:<aadObjectId>" reference) and may be asked to
        approve `req`: the approver groups' members, listed once (Policy.approver_candidates, cached), intersected
        with the stored references, not one membership check per stored user. Candidates only: every click is
        checked again on the server."""
        try:
            candidates = await self._policy.approver_candidates(req)
        except GraphError as exc:
            log.warning(
                "approval %s: the approver groups could not be listed (%s %s, request-id %s): no 1:1 copies",
                req.id,
                exc.status,
                exc.code,
                exc.request_id,
            )
            return []
        refs = await self._user_references()
        found: list[tuple[Person, dict[str, Any]]] = []
        for key, ref in refs.items():
            aad = key.removeprefix("user:")
            if aad.lower() not in candidates:
                continue
            if aad.lower() in (req.requester.aad_object_id.lower(), req.target_id.lower()):
                continue
            user = ref.get("user") or {}
            person = Person(aad_object_id=aad, name=str(user.get("name") or ""), teams_id=_user_mri(ref))
            found.append((person, ref))
        return found

    async def _user_references(self) -> dict[str, dict[str, Any]]:
        """Every stored "user:<aadObjectId>" conversation reference (people who have talked to the bot)."""
        return dict(await self._store.conversation_references("user:"))

    # ------------------------------------------------------------------ clicks

    async def on_action(
        self, verb: str, data: dict[str, Any], actor: Person, activity: Any
    ) -> dict[str, Any]:
        """Handle an approval card action; returns the card the clicker sees (the invoke response)."""
        lang = texts.lang_from_locale(getattr(activity, "locale", None))
        try:
            return await self._on_action(verb, data, actor, lang)
        except _Refusal as refusal:
            return await self._refused_view(lang, refusal, actor)
        except GraphError as exc:
            return await self._graph_failed_view(lang, data, actor, exc)
        except Exception:
            log.exception("approval action %s failed", verb if verb in VERBS else "?")
            return cards.refusal_card(
                lang, texts.t(lang, "refusal.title"), texts.t(lang, "refusal.internal_error")
            )

    async def _on_action(self, verb: str, data: dict[str, Any], actor: Person, lang: str) -> dict[str, Any]:
        if verb not in VERBS:
            raise _Refusal("refusal.unknown_action", audit=False)
        request_id, rev = _parse_ids(data)
        req = await self._store.get_request(request_id)
        if req is None:
            await self._audit_refusal(actor, None, verb, "approval.not_found", request_id=request_id)
            raise _Refusal("approval.not_found", audit=False)
        try:
            if verb == VERB_REFRESH:
                return await self._view_for(lang, req, actor)
            if verb == VERB_CANCEL:
                return await self._cancel(lang, req, rev, actor)
            reason: str | None = None
            if verb == VERB_REJECT:
                reason = _parse_reason(data)
            return await self._decide(lang, req, rev, actor, approve=verb == VERB_APPROVE, reason=reason)
        except _Refusal as refusal:
            if refusal.audit:
                await self._audit_refusal(actor, req, verb, refusal.key)
            refusal.request_id = req.id
            raise

    async def _decide(
        self, lang: str, req: ChangeRequest, rev: int, actor: Person, *, approve: bool, reason: str | None
    ) -> dict[str, Any]:
        wanted = RequestState.APPROVED if approve else RequestState.REJECTED
        repeat = self._repeat_answer(lang, req, actor, wanted)
        if repeat is not None:
            return repeat
        self._check_waiting(req, rev)
        fields: dict[str, Any] = {}
        if approve:
            # The clicker first (their groups read now): someone who may not decide changes nothing, not even a
            # cancellation. Then the facts that decide the change, read now, not taken from the request or the
            # cache: the requester's groups and the target's privilege (GraphError: nothing decided).
            await self._check_approver(req, actor, fresh=True)
            facts = await read_facts(self._policy, req)
            hold = hold_for(req, facts, self._settings, starting=False)
            if hold is not None:
                return await self._cancel_on_facts(lang, req, rev, actor, hold)
            if facts.target_privileged:
                fields = {
                    "target_privileged": True,
                    "privilege_reasons": facts.privilege_reasons,
                    "approver_group": "privileged",
                }
                if req.approver_group != "privileged" or not req.target_privileged:
                    # the clicker's groups were read a moment ago (the cache holds them unless it is off)
                    decision = await self._policy.check_approver(actor, req, privileged=True)
                    if not decision.allowed:
                        await self._escalate(req, facts, actor)
                        raise _Refusal("approval.now_privileged", roles=", ".join(facts.privilege_reasons))
            limited = await check_limits(
                self._store, self._settings, req.requester, req.target_id, self._clock(), lang=lang
            )
            if limited is not None:
                raise _Refusal(limited.reason_key or "refusal.rate_limit", **limited.params)
        else:
            await self._check_approver(req, actor)
        now = self._clock()
        details: dict[str, Any] = {"decision": wanted.value}
        if reason:
            details["reason"] = reason
        if fields and req.approver_group != "privileged":
            details["escalated"] = "target became privileged"
        try:
            decided = await self._store.transition(
                req.id,
                rev,
                wanted,
                actor=actor,
                event=EVENT_APPROVED if approve else EVENT_REJECTED,
                details=details,
                decided_by=actor,
                decided_at=now,
                decision_reason=reason,
                **fields,
            )
        except (StaleRevision, InvalidTransition):
            # Someone (or this same click, on another instance) got there first.
            current = await self._store.get_request(req.id)
            if current is None:
                raise _Refusal("approval.not_found") from None
            repeat = self._repeat_answer(lang, current, actor, wanted)
            if repeat is not None:
                return repeat
            raise self._not_waiting(current) from None

        if approve:
            self._spawn(self._after_approval(decided, actor))
        else:
            self._spawn(self._after_final(decided, tell_requester=True))
        return cards.decision_card(lang, decided)

    async def _cancel(self, lang: str, req: ChangeRequest, rev: int, actor: Person) -> dict[str, Any]:
        if actor.aad_object_id.lower() != req.requester.aad_object_id.lower():
            raise _Refusal("approval.cancel_not_requester")
        repeat = self._repeat_answer(lang, req, actor, RequestState.CANCELLED)
        if repeat is not None:
            return repeat
        self._check_waiting(req, rev, allow_expired=True)
        try:
            cancelled = await self._store.transition(
                req.id,
                rev,
                RequestState.CANCELLED,
                actor=actor,
                event=EVENT_CANCELLED,
                details={"decision": RequestState.CANCELLED.value},
                decided_by=actor,
                decided_at=self._clock(),
            )
        except (StaleRevision, InvalidTransition):
            current = await self._store.get_request(req.id)
            if current is None:
                raise _Refusal("approval.not_found") from None
            repeat = self._repeat_answer(lang, current, actor, RequestState.CANCELLED)
            if repeat is not None:
                return repeat
            raise self._not_waiting(current) from None
        self._spawn(self._after_final(cancelled, tell_requester=False))
        return cards.decision_card(lang, cancelled)

    async def _cancel_on_facts(
        self, lang: str, req: ChangeRequest, rev: int, actor: Person, hold: Hold
    ) -> dict[str, Any]:
        """An approver's click found that the request may no longer go ahead (the requester left the helpdesk,
        or a target who became privileged was asked for by someone who may not ask for them): the request is
        cancelled, every card says why, the requester is told; the clicker sees the cancelled request."""
        reason = texts.t(texts.lang_from_locale(req.locale), hold.key, **hold.params)
        try:
            cancelled = await self._store.transition(
                req.id,
                rev,
                RequestState.CANCELLED,
                actor=None,
                event=EVENT_CANCELLED,
                details={
                    "decision": RequestState.CANCELLED.value,
                    "reason": hold.key,
                    "noticed_at_click_of": actor.aad_object_id,
                },
                decided_at=self._clock(),
                decision_reason=reason,
            )
        except (StaleRevision, InvalidTransition):
            current = await self._store.get_request(req.id)
            if current is None:
                raise _Refusal("approval.not_found") from None
            raise self._not_waiting(current) from None
        log.warning("approval %s: cancelled at a click: %s", req.id, hold.key)
        self._spawn(self._after_final(cancelled, tell_requester=True))
        return cards.decision_card(lang, cancelled)

    async def _escalate(self, req: ChangeRequest, facts: Facts, actor: Person) -> None:
        """The target became privileged while the request waited: from now on only a privileged approver may
        approve. The request keeps waiting with that rule (audited), its cards say so, and the privileged
        approvers who have the app get a copy."""
        try:
            escalated = await self._store.update_waiting(
                req.id,
                req.revision,
                RequestState.AWAITING_APPROVAL,
                actor=None,
                event="approval_escalated",
                details={
                    "reason": "target_privileged",
                    "roles": ", ".join(facts.privilege_reasons)[:200],
                    "noticed_at_click_of": actor.aad_object_id,
                },
                target_privileged=True,
                privilege_reasons=facts.privilege_reasons,
                approver_group="privileged",
            )
        except (StaleRevision, InvalidTransition):
            return  # someone else moved it first; their move shows on the cards
        log.warning("approval %s: the target became privileged; a privileged approver must approve", req.id)
        self._spawn(self._after_escalation(escalated))

    async def _after_escalation(self, req: ChangeRequest) -> None:
        try:
            refs: list[CardRef] = await self._store.card_refs(req.id)
            for ref in refs:
                if not ref.activity_id or ref.role == "approvers":
                    continue
                lang = _ref_lang(ref.conversation_reference, req)
                card = (
                    cards.awaiting_card(lang, req)
                    if ref.role == "requester"
                    else self._approval_card(lang, req, None, True)
                )
                await self._updater.update_card(
                    ref, cards.with_notice(card, texts.t(lang, "approval.escalated"), color="Warning")
                )
            channel = next((r for r in refs if r.role == "approvers"), None)
            # The card also goes to the privileged approvers' conversation when that is another one (only a
            # privileged approver registers it), so that the people who may now decide see it.
            privileged_ref = await self._store.conversation_reference(PRIVILEGED_APPROVERS_CHANNEL)
            if privileged_ref is not None and (
                channel is None
                or _conversation_id(privileged_ref) != _conversation_id(channel.conversation_reference)
            ):
                lang = _ref_lang(privileged_ref, req)
                card = cards.with_notice(
                    self._approval_card(lang, req, None, True),
                    texts.t(lang, "approval.escalated"),
                    color="Warning",
                )
                activity_id = await self._updater.send_card(privileged_ref, card)
                if activity_id is not None:
                    posted = CardRef(
                        role="approvers", conversation_reference=privileged_ref, activity_id=activity_id
                    )
                    await self._store.add_card_ref(req.id, posted)
                    if channel is not None:
                        await self._updater.update_card(
                            channel,
                            cards.with_notice(
                                self._approval_card(
                                    _ref_lang(channel.conversation_reference, req), req, None, False
                                ),
                                texts.t(_ref_lang(channel.conversation_reference, req), "approval.escalated"),
                                color="Warning",
                            ),
                        )
                    channel = posted
            if channel is not None:
                # the channel card with the privileged approvers' Teams ids and the notice; their 1:1 copies
                await self._reach_approvers(req, channel, notice_key="approval.escalated")
        except Exception:
            log.exception("approval %s: updating cards after the escalation failed", req.id)

    def _repeat_answer(
        self, lang: str, req: ChangeRequest, actor: Person, wanted: RequestState
    ) -> dict[str, Any] | None:
        """The same person's same decision again (a double click, a Teams retry, the other instance): the same
        answer as the first time, and nothing runs again."""
        if req.decided_by is None or req.decided_by.aad_object_id.lower() != actor.aad_object_id.lower():
            return None
        reached = {
            RequestState.APPROVED: {
                RequestState.APPROVED,
                RequestState.EXECUTING,
                RequestState.COMPLETED,
                RequestState.FAILED,
            },
            RequestState.REJECTED: {RequestState.REJECTED},
            RequestState.CANCELLED: {RequestState.CANCELLED},
        }[wanted]
        if req.state in reached:
            return cards.decision_card(lang, req)
        return None

    def _check_waiting(self, req: ChangeRequest, rev: int, *, allow_expired: bool = False) -> None:
        if req.state is not RequestState.AWAITING_APPROVAL:
            raise self._not_waiting(req)
        if rev != req.revision:
            raise _Refusal("refusal.stale")
        if not allow_expired and req.expires_at is not None and self._clock() >= req.expires_at:
            # Due: expire it now rather than wait for the sweeper, and tell this clicker.
            self._spawn(self.expire(req))
            raise _Refusal("approval.expired", time=_when(req.expires_at))

    def _not_waiting(self, req: ChangeRequest) -> _Refusal:
        if req.state is RequestState.DRAFT:
            return _Refusal("approval.not_submitted")
        if req.state is RequestState.EXPIRED:
            return _Refusal("approval.expired", time=_when(req.expires_at))
        if req.state is RequestState.CANCELLED:
            return _Refusal("approval.already_cancelled")
        who = req.decided_by.name if req.decided_by else "?"
        when = _when(req.decided_at)
        if req.state is RequestState.REJECTED:
            return _Refusal("approval.already_rejected", name=who, time=when)
        return _Refusal("approval.already_approved", name=who, time=when)

    async def _check_approver(
        self, req: ChangeRequest, actor: Person, *, fresh: bool = False, privileged: bool | None = None
    ) -> None:
        # Four eyes, checked here as well as in the policy: never the requester, never the target.
        if actor.aad_object_id.lower() == req.requester.aad_object_id.lower():
            raise _Refusal("refusal.approver_is_requester")
        if actor.aad_object_id.lower() == req.target_id.lower():
            raise _Refusal("refusal.approver_is_target")
        decision = await self._policy.check_approver(actor, req, fresh=fresh, privileged=privileged)
        if not decision.allowed:
            raise _Refusal(decision.reason_key or "refusal.not_approver", **(decision.params or {}))

    # ------------------------------------------------------------------ views

    async def _view_for(self, lang: str, req: ChangeRequest, actor: Person) -> dict[str, Any]:
        """mfa.refresh: the user-specific view. Approvers get the buttons, the requester Cancel, others read-only."""
        if req.state is RequestState.AWAITING_APPROVAL:
            ids = _ids(actor)
            if actor.aad_object_id.lower() == req.requester.aad_object_id.lower():
                return cards.awaiting_card(lang, req)
            expired = req.expires_at is not None and self._clock() >= req.expires_at
            allowed = False
            if not expired and actor.aad_object_id.lower() != req.target_id.lower():
                try:
                    allowed = bool((await self._policy.check_approver(actor, req)).allowed)
                except Exception:
                    log.exception("approval %s: approver check failed on refresh", req.id)
            return self._approval_card(lang, req, ids, allowed)
        if req.state is RequestState.DRAFT:
            raise _Refusal("approval.not_submitted", audit=False)
        return self._final_view(lang, req)

    def _final_view(self, lang: str, req: ChangeRequest) -> dict[str, Any]:
        return cards.decision_card(lang, req)

    def _approval_card(
        self, lang: str, req: ChangeRequest, teams_ids: list[str] | None, actionable: bool
    ) -> dict[str, Any]:
        return cards.approval_card(
            lang, req, phones=None, approver_teams_ids=teams_ids or None, actionable=actionable
        )

    def _refusal(self, lang: str, refusal: _Refusal) -> dict[str, Any]:
        return cards.refusal_card(
            lang, texts.t(lang, "refusal.title"), say(lang, refusal.key, **refusal.params)
        )

    async def _graph_failed_view(
        self, lang: str, data: Any, actor: Person, error: GraphError
    ) -> dict[str, Any]:
        """Sign-in or Graph failed while the click was checked (the approver's groups, the manager): nothing was
        decided. The clicker keeps the request's card with the clear words on top and, while it waits, the
        buttons to try again (the next click is checked again)."""
        problem = texts.graph_problem(error)
        assert problem is not None
        title, key, params = problem
        log.warning(
            "approval click: Graph failed: %s (%s %s, request-id %s)",
            type(error).__name__,
            error.status,
            error.code,
            error.request_id,
        )
        text = texts.t(lang, key, **params)
        fallback = cards.refusal_card(lang, texts.t(lang, title), text)
        try:
            request_id, _ = _parse_ids(data)
            current = await self._store.get_request(request_id)
        except Exception:  # noqa: BLE001  (forged ids or the database: the plain card says it)
            return fallback
        if current is None or current.state is RequestState.DRAFT:
            return fallback
        aad = actor.aad_object_id.lower()
        if current.state is not RequestState.AWAITING_APPROVAL:
            card = self._final_view(lang, current)
        elif aad == current.requester.aad_object_id.lower():
            card = cards.awaiting_card(lang, current)
        else:
            card = self._approval_card(lang, current, _ids(actor), aad != current.target_id.lower())
        return cards.with_notice(card, text)

    async def _refused_view(self, lang: str, refusal: _Refusal, actor: Person) -> dict[str, Any]:
        """The answer to a refused click: the clicker keeps the request's card as it is now (read from the database:
        the approval card, with the buttons only when this person may decide; the decision card once decided) with
        the reason on top. Without a request to show (forged ids, a draft) it is the refusal card."""
        if refusal.request_id is None:
            return self._refusal(lang, refusal)
        try:
            current = await self._store.get_request(refusal.request_id)
            if current is None or current.state is RequestState.DRAFT:
                return self._refusal(lang, refusal)
            if (
                current.state is RequestState.AWAITING_APPROVAL
                and current.expires_at is not None
                and self._clock() >= current.expires_at
            ):
                # past its time, the sweeper (or this click) is expiring it: show it as it is about to be
                current = dataclasses.replace(current, state=RequestState.EXPIRED)
            card = (
                await self._view_for(lang, current, actor)
                if current.state is RequestState.AWAITING_APPROVAL
                else self._final_view(lang, current)
            )
        except Exception:
            log.exception(
                "approval %s: reading the current card after a refused click failed", refusal.request_id
            )
            return self._refusal(lang, refusal)
        reason = say(lang, refusal.key, **refusal.params)
        return cards.with_notice(card, texts.t(lang, "notice.refused", reason=reason))

    async def _audit_refusal(
        self, actor: Person, req: ChangeRequest | None, verb: str, key: str, *, request_id: str | None = None
    ) -> None:
        try:
            await self._store.audit(
                EVENT_REFUSED,
                actor=actor,
                request_id=req.id if req else None,
                target_id=req.target_id if req else None,
                target_upn=req.target_upn if req else None,
                details={"verb": verb, "reason": key, **({"asked_for": request_id} if request_id else {})},
            )
        except Exception:
            log.exception("audit of a refused approval action failed")

    # ------------------------------------------------------------------ after a decision

    async def _after_approval(self, req: ChangeRequest, actor: Person) -> None:
        """Show everyone who approved, tell the requester, then run the change (the Executor moves APPROVED →
        EXECUTING conditionally, so it runs once) and it shows the outcome on every card."""
        try:
            await self._show_everywhere(req)
            await self.tell_requester(req, "approval.requester.approved")
        except Exception:
            log.exception("approval %s: updating cards after approval failed", req.id)
        await self._executor.execute(req, actor=actor)

    async def _after_final(self, req: ChangeRequest, *, tell_requester: bool) -> None:
        try:
            await self._show_everywhere(req)
            if tell_requester:
                key = {
                    RequestState.REJECTED: (
                        "approval.requester.rejected_reason"
                        if req.decision_reason
                        else "approval.requester.rejected"
                    ),
                    RequestState.EXPIRED: "approval.requester.expired",
                    RequestState.CANCELLED: "hold.requester_told" if req.decided_by is None else None,
                }.get(req.state)
                if key:
                    await self.tell_requester(req, key)
        except Exception:
            log.exception("approval %s: updating cards after the decision failed", req.id)

    async def _show_everywhere(self, req: ChangeRequest) -> None:
        refs: list[CardRef] = await self._store.card_refs(req.id)
        await asyncio.gather(
            *(
                self._updater.update_card(
                    ref, self._final_view(_ref_lang(ref.conversation_reference, req), req)
                )
                for ref in refs
                if ref.activity_id
            )
        )

    async def tell_requester(self, req: ChangeRequest, key: str) -> None:
        """Send the requester the text `key` about `req` in their language (their 1:1 conversation, else the one
        their request card is in); also used by bot/desk/recovery.py."""
        ref = await self._store.conversation_reference(f"user:{req.requester.aad_object_id}")
        if ref is None:
            refs: list[CardRef] = await self._store.card_refs(req.id)
            ref = next((r.conversation_reference for r in refs if r.role == "requester"), None)
        if ref is None:
            log.warning("approval %s: no conversation with the requester to tell them", req.id)
            return
        lang = texts.lang_from_locale(req.locale)
        who = req.decided_by.name if req.decided_by else ""
        await self._updater.send_text(
            ref,
            say(
                lang,
                key,
                target=req.target_display_name,
                upn=req.target_upn,
                name=who,
                reason=req.decision_reason or "",
                time=_when(req.decided_at or req.expires_at),
                id=cards.ref_of(req),
            ),
        )

    # ------------------------------------------------------------------ expiry

    async def expire(self, req: ChangeRequest) -> ChangeRequest | None:
        """AWAITING_APPROVAL → EXPIRED, every card updated, the requester told; None when it was decided,
        cancelled or expired elsewhere first. A click past the time and the sweep (bot/desk/recovery.py) call it."""
        try:
            expired = await self._store.transition(
                req.id,
                req.revision,
                RequestState.EXPIRED,
                actor=None,
                event=EVENT_EXPIRED,
                details={"decision": RequestState.EXPIRED.value, "expires_at": _iso(req.expires_at)},
            )
        except (StaleRevision, InvalidTransition):
            return None  # decided, cancelled or expired elsewhere in the meantime
        await self._after_final(expired, tell_requester=True)
        return expired

    # ------------------------------------------------------------------ helpers

    def _spawn(self, coro: Awaitable[Any]) -> None:
        self._executor.spawn(coro)


def _parse_ids(data: Any) -> tuple[str, int]:
    if not isinstance(data, dict):
        raise _Refusal("refusal.bad_input", audit=False)
    request_id = data.get("requestId")
    rev = data.get("rev")
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise _Refusal("refusal.bad_input", audit=False)
    if isinstance(rev, str) and rev.isdigit() and len(rev) <= 9:
        rev = int(rev)
    if not isinstance(rev, int) or isinstance(rev, bool) or not 0 < rev < 1_000_000_000:
        raise _Refusal("refusal.bad_input", audit=False)
    return request_id, rev


def _parse_reason(data: dict[str, Any]) -> str | None:
    reason = data.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise _Refusal("refusal.bad_input", audit=False)
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON_CHARS:
        raise _Refusal("approval.reason_too_long", audit=False, limit=MAX_REASON_CHARS)
    return reason or None


def _conversation_id(ref: dict[str, Any]) -> str:
    return str((ref.get("conversation") or {}).get("id") or "")


def _user_mri(ref: dict[str, Any]) -> str | None:
    user = ref.get("user") or {}
    mri = user.get("id")
    return mri if isinstance(mri, str) and mri else None


def _ids(person: Person) -> list[str] | None:
    return [person.teams_id] if person.teams_id else None


def _ref_lang(ref: dict[str, Any], req: ChangeRequest) -> str:
    return texts.lang_from_locale(ref.get("locale") or req.locale)


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "?"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


__all__ = [
    "ApprovalError",
    "ApprovalService",
    "APPROVERS_CHANNEL",
    "PRIVILEGED_APPROVERS_CHANNEL",
    "NoApproversChannel",
    "utcnow",
]

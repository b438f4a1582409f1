"""What every use case of the desk shares: who acts (Caller), a refusal (Refused), and the Desk: the store, the
Graph side, the policy and the other services, with the checks and answers every use case gives the same way.

Every card action and command is checked on the server: the tenant, the requester's roles, the target, the
request's owner, state and revision, and the rate limits. Card data is untrusted input: only the request id,
the revision and the form fields are read from it, each validated. Every refusal is audited and answered with
words from bot/views/texts.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.desk.policy import Policy
from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.views import cards, texts
from graph.errors import GraphError
from graph.outcome import TargetUser

if TYPE_CHECKING:
    from bot.desk.approvals import ApprovalService
    from bot.desk.graph_services import GraphServices
    from bot.desk.verification import Reacher

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_TARGET_CHARS = 256
MAX_NUMBER_CHARS = 64
MAX_TICKET_CHARS = 500
FORM_FIELDS = (
    "targetUserId",
    "targetUserText",
    "number",
    "action",
    "notify",
    "language",
    "ticket",
    "verification",
)

VERB_REVIEW = "mfa.review"
VERB_CONFIRM = "mfa.confirm"
VERB_EDIT = "mfa.edit"
VERB_CANCEL = "mfa.cancel"
APPROVAL_VERBS = frozenset({"mfa.approve", "mfa.reject", "mfa.refresh"})
VERB_VERIFY_YES = "mfa.verify.yes"  # the target (or their manager) answers the verification card
VERB_VERIFY_NO = "mfa.verify.no"
VERB_VERIFY_CODE = "mfa.verify.code"  # the agent types the one-time code the caller reads back
ANSWER_VERBS = frozenset({VERB_VERIFY_YES, VERB_VERIFY_NO})
VERBS = (
    frozenset({VERB_REVIEW, VERB_CONFIRM, VERB_EDIT, VERB_CANCEL, VERB_VERIFY_CODE})
    | APPROVAL_VERBS
    | ANSWER_VERBS
)


def say(lang: str, key: str, **params: Any) -> str:
    return texts.t(lang, key, **params)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Caller:
    """Who acts, from the activity (never from card data), and where the answer goes."""

    person: Person
    tenant_id: str | None
    locale: str | None
    conversation_reference: dict[str, Any]
    reply_to_id: str | None = None  # the message holding the card that was clicked
    personal: bool = True
    defer: Callable[[Coroutine[Any, Any, Any]], None] | None = None  # run after the answer is sent
    open_request: str | None = None  # set when an action leaves the caller with an open request
    # keeps open_request for the `cancel` command when the action ends after its turn (a deferred Review)
    remember_open_request: Callable[[str], Awaitable[None]] | None = None
    lang: str = field(init=False)

    def __post_init__(self) -> None:
        self.lang = texts.lang_from_locale(self.locale)


class Refused(Exception):
    def __init__(self, key: str, *, audit: bool = True, request: ChangeRequest | None = None, **params: Any):
        super().__init__(key)
        self.key = key
        self.audit = audit
        self.request = request
        self.params = params


class Desk:
    """The desk's dependencies and what every use case does the same way: refuse (audited), say that Graph failed,
    check the requester, read the caller's own request from card data, show the request form, count the limits."""

    def __init__(
        self,
        *,
        store: Any,
        graph: GraphServices,
        policy: Policy,
        executor: Any,
        updater: Any,
        settings: Any,
        approvals: ApprovalService,
        clock: Callable[[], datetime] = utcnow,
        reacher: Reacher | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.policy = policy
        self.executor = executor
        self.updater = updater
        self.settings = settings
        self.approvals = approvals
        self.clock = clock
        # delivers the caller-verification card to a person in Teams (bot/teams/reach.py); None: not available
        self.reacher = reacher
        self.tenant_report: Any = (
            None  # graph.doctor.Report of the start-up tenant check (app.py), once it ends
        )

    @property
    def directory(self) -> Any:
        return self.graph.directory

    def refusal_card(self, lang: str, key: str, **params: Any) -> dict[str, Any]:
        return cards.refusal_card(lang, texts.t(lang, "refusal.title"), say(lang, key, **params))

    async def refuse(
        self,
        caller: Caller,
        key: str,
        *,
        verb: str | None = None,
        req: ChangeRequest | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        await self.audit_refusal(caller, key, verb=verb, req=req, params=params)
        return self.refusal_card(caller.lang, key, **params)

    async def audit_refusal(
        self,
        caller: Caller,
        key: str,
        *,
        verb: str | None,
        req: ChangeRequest | None,
        params: dict[str, Any] | None = None,
        request_id: str | None = None,
        target: TargetUser | None = None,
    ) -> None:
        details: dict[str, Any] = {"reason": key}
        if verb:
            details["verb"] = verb[:40]
        if caller.tenant_id:
            details["tenant_id"] = caller.tenant_id[:64]
        for name, value in (params or {}).items():
            if isinstance(value, str | int | float):
                details[name] = str(value)[:200]
        try:
            await self.store.audit(
                "refused",
                actor=caller.person,
                request_id=req.id if req else request_id,
                target_id=req.target_id if req else (target.id if target else None),
                target_upn=req.target_upn if req else (target.user_principal_name if target else None),
                details=details,
            )
        except Exception:
            log.exception("writing the audit record of a refusal failed")

    def graph_problem_card(self, caller: Caller, error: GraphError, *, during: str) -> dict[str, Any]:
        """Microsoft sign-in or Graph failed while reading the directory: say which, and that nothing changed."""
        title, key, params = self.graph_problem(caller, error, during=during)
        return cards.refusal_card(
            caller.lang, texts.t(caller.lang, title), texts.t(caller.lang, key, **params)
        )

    def graph_problem(
        self, caller: Caller, error: GraphError, *, during: str
    ) -> tuple[str, str, dict[str, Any]]:
        problem = texts.graph_problem(error)
        assert problem is not None  # error is a GraphError
        log.warning(
            "Graph failed during %s: %s (%s %s, request-id %s)",
            during[:40],
            type(error).__name__,
            error.status,
            error.code,
            error.request_id,
        )
        return problem

    async def check_requester(self, caller: Caller, *, verb: str | None = None) -> dict[str, Any] | None:
        """None when the caller may use the bot as a requester; else the refusal card (audited), or the card saying
        Microsoft sign-in/Graph failed while the roles were read."""
        try:
            return await self.requester_refusal(caller, verb=verb)
        except GraphError as exc:
            return self.graph_problem_card(caller, exc, during=verb or "message")

    async def requester_refusal(self, caller: Caller, *, verb: str | None = None) -> dict[str, Any] | None:
        decision = await self.policy.check_requester(caller.person, caller.tenant_id)
        if decision.allowed:
            return None
        return await self.refuse(
            caller, decision.reason_key or "refusal.not_helpdesk", verb=verb, **decision.params
        )

    def request_form(
        self,
        caller: Caller,
        *,
        values: dict[str, Any] | None = None,
        errors: Mapping[str, str | tuple[str, Mapping[str, object]]] | None = None,
        draft: ChangeRequest | None = None,
    ) -> dict[str, Any]:
        return cards.request_card(
            caller.lang,
            values=values,
            errors=errors,
            notify_default=self.settings.notify_default,
            people_picker=caller.personal,
            draft=draft,
            verification_methods=self.verification_methods(),
        )

    async def refuse_form(
        self,
        caller: Caller,
        key: str,
        *,
        verb: str,
        target: TargetUser | ChangeRequest,
        values: dict[str, Any] | None = None,
        draft: ChangeRequest | None = None,
        params: dict[str, Any] | None = None,
        said: str | None = None,
    ) -> dict[str, Any]:
        """A refusal of the request form, audited: names the user it is about and offers Edit (the form again,
        with `values` as typed, or the draft's values) and Cancel, so the agent need not start again. `said`: the
        reason already in words (when its parameters are not for the audit row, e.g. a number in full)."""
        params = dict(params or {})
        if isinstance(target, ChangeRequest):
            await self.audit_refusal(caller, key, verb=verb, req=target, params=params)
            name, upn = target.target_display_name, target.target_upn
        else:
            await self.audit_refusal(caller, key, verb=verb, req=None, params=params, target=target)
            name, upn = target.display_name, target.user_principal_name
        user = f"{name} ({upn})" if name and upn and name != upn else (name or upn or "")
        return cards.form_refusal_card(
            caller.lang, user, said or say(caller.lang, key, **params), values=values, draft=draft
        )

    @property
    def verification_policy(self) -> Any:
        """VERIFICATION_POLICY (bot.settings.VerificationPolicy); None when caller verification is off."""
        policy = getattr(self.settings, "verification_policy", None)
        return policy if policy is not None and policy.enabled else None

    def verification_methods(self) -> list[str] | None:
        """The ways to verify the caller the form offers (any the policy accepts), None when it is off."""
        policy = self.verification_policy
        if policy is None:
            return None
        return list(dict.fromkeys([*policy.ordinary, *policy.privileged]))

    async def check_not_locked(
        self, target_id: str, name: str, *, request: ChangeRequest | None = None
    ) -> None:
        """Refused while the target is locked (they said "No, I did not ask"; lifted by `unlock`)."""
        lock = getattr(self.store, "target_lock", None)
        if lock is None:
            return
        until = await lock(target_id, self.clock())
        if until is not None:
            raise Refused(
                "refusal.target_locked",
                request=request,
                name=name,
                until=until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            )

    async def refused_card(self, caller: Caller, verb: str, refused: Refused) -> dict[str, Any]:
        if refused.audit:
            await self.audit_refusal(
                caller, refused.key, verb=verb, req=refused.request, params=refused.params
            )
        return self.refusal_card(caller.lang, refused.key, **refused.params)

    async def graph_failed(
        self, caller: Caller, verb: str, data: dict[str, Any], error: GraphError
    ) -> dict[str, Any]:
        """Sign-in or Graph failed during a card action: nothing was changed. The person keeps the card they
        clicked, with the clear words on top: the request form with their values after Review, the confirmation
        card of their draft after Confirm/Edit/Cancel."""
        lang = caller.lang
        title, key, params = self.graph_problem(caller, error, during=verb)
        draft = await self.draft_of(caller, data)
        if verb == VERB_REVIEW:
            values, _, _ = self.form_values(data)
            return self.request_form(caller, values=values, errors={"_form": (key, params)}, draft=draft)
        if draft is not None:
            card = cards.confirmation_card(lang, draft, None, warnings=[])
            return cards.with_notice(card, texts.t(lang, key, **params))
        return cards.refusal_card(lang, texts.t(lang, title), texts.t(lang, key, **params))

    async def draft_of(self, caller: Caller, data: dict[str, Any]) -> ChangeRequest | None:
        """The caller's own draft named by the card data, or None (no Graph call: the database only)."""
        request_id = data.get("requestId")
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            return None
        try:
            req = await self.store.get_request(request_id)
        except Exception:
            log.exception("reading the draft after a Graph failure failed")
            return None
        if req is None or req.state is not RequestState.DRAFT:
            return None
        if req.requester.aad_object_id.lower() != caller.person.aad_object_id.lower():
            return None
        return req

    async def is_awaiting(self, data: dict[str, Any]) -> bool:
        request_id = data.get("requestId")
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            return False
        req = await self.store.get_request(request_id)
        return req is not None and req.state is RequestState.AWAITING_APPROVAL

    async def own_request(
        self, caller: Caller, data: dict[str, Any], *, need_rev: bool = True
    ) -> tuple[ChangeRequest, int]:
        request_id = data.get("requestId")
        rev = data.get("rev")
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            raise Refused("refusal.bad_input")
        if isinstance(rev, str) and rev.isdigit() and len(rev) < 10:
            rev = int(rev)
        if need_rev and (not isinstance(rev, int) or isinstance(rev, bool) or rev < 0):
            raise Refused("refusal.bad_input")
        req = await self.store.get_request(request_id)
        if req is None:
            await self.audit_refusal(caller, "refusal.not_found", verb=None, req=None, request_id=request_id)
            raise Refused("refusal.not_found", audit=False)
        if req.requester.aad_object_id.lower() != caller.person.aad_object_id.lower():
            raise Refused("refusal.not_found", request=req)
        return req, int(rev) if isinstance(rev, int) else req.revision

    def form_values(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
        """Validate the form fields' types and sizes; returns (values to show again, errors by field, lang)."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name in FORM_FIELDS:
            value = data.get(name)
            if value is None:
                continue
            if name == "notify" and isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str):
                errors[name] = (
                    "error.choice.invalid"
                    if name in ("action", "notify", "language", "verification")
                    else "error.field.too_long"
                )
                continue
            limit = {"number": MAX_NUMBER_CHARS, "ticket": MAX_TICKET_CHARS}.get(name, MAX_TARGET_CHARS)
            if len(value) > limit:
                errors[name] = "error.ticket.too_long" if name == "ticket" else "error.field.too_long"
                values[name] = ""
                continue
            values[name] = value.strip()
        return values, errors, ""

    async def check_limits(self, caller: Caller, target: TargetUser | ChangeRequest) -> None:
        """The abuse limits (bot/desk/limits.py): changes per requester per hour, cool-down per target."""
        from bot.desk.limits import check_limits

        target_id = target.target_id if isinstance(target, ChangeRequest) else target.id
        decision = await check_limits(
            self.store, self.settings, caller.person, target_id, self.clock(), lang=caller.lang
        )
        if decision is not None:
            raise Refused(decision.reason_key or "refusal.rate_limit", **decision.params)

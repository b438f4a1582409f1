"""What the bot does for a person in Teams, independent of how the activity arrived (invoke or message).

Every card action and command is checked here on the server: the tenant, the requester's roles, the target, the
request's owner, state and revision, and the rate limits. Card data is untrusted input: only the request id,
the revision and the form fields are read from it, each validated. Every refusal is audited and answered with
words from bot/views/texts.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.desk.approvals import APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL
from bot.desk.policy import Decision, Policy
from bot.persistence.models import CardRef, ChangeRequest, Person, RequestState
from bot.views import cards, texts
from graph.errors import GraphError
from graph.numbers import InvalidNumber, parse_number
from graph.outcome import PhoneState, TargetUser

if TYPE_CHECKING:
    from bot.desk.approvals import ApprovalService

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_TARGET_CHARS = 256
MAX_NUMBER_CHARS = 64
MAX_TICKET_CHARS = 500
FORM_FIELDS = ("targetUserId", "targetUserText", "number", "action", "notify", "language", "ticket")

VERB_REVIEW = "mfa.review"
VERB_CONFIRM = "mfa.confirm"
VERB_EDIT = "mfa.edit"
VERB_CANCEL = "mfa.cancel"
APPROVAL_VERBS = frozenset({"mfa.approve", "mfa.reject", "mfa.refresh"})
VERBS = frozenset({VERB_REVIEW, VERB_CONFIRM, VERB_EDIT, VERB_CANCEL}) | APPROVAL_VERBS


def say(lang: str, key: str, **params: Any) -> str:
    return texts.t(lang, key, **params)


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- Graph wiring


@dataclass
class GraphServices:
    """The Graph side the bot uses, built once at start-up (or passed in by tests and demo mode)."""

    client: Any
    directory: Any
    workflow: Any
    tokens: Any
    _close: Callable[[], Awaitable[None]] | None = None

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
        return cls(client=client, directory=directory, workflow=workflow, tokens=tokens, _close=close)

    async def close(self) -> None:
        if self._close is not None:
            await self._close()


# ---------------------------------------------------------------------------------------------- context


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


# ---------------------------------------------------------------------------------------------- service


class MfaService:
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
    ) -> None:
        self.store = store
        self.graph = graph
        self.policy = policy
        self.executor = executor
        self.updater = updater
        self.settings = settings
        self.approvals = approvals
        self._clock = clock
        self.tenant_report: Any = (
            None  # graph.doctor.Report of the start-up tenant check (app.py), once it ends
        )

    @property
    def directory(self) -> Any:
        return self.graph.directory

    # ------------------------------------------------------------------------------------ refusals
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
        await self._audit_refusal(caller, key, verb=verb, req=req, params=params)
        return self.refusal_card(caller.lang, key, **params)

    async def _audit_refusal(
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
            return await self._requester_refusal(caller, verb=verb)
        except GraphError as exc:
            return self.graph_problem_card(caller, exc, during=verb or "message")

    async def _requester_refusal(self, caller: Caller, *, verb: str | None = None) -> dict[str, Any] | None:
        decision = await self.policy.check_requester(caller.person, caller.tenant_id)
        if decision.allowed:
            return None
        return await self.refuse(
            caller, decision.reason_key or "refusal.not_helpdesk", verb=verb, **decision.params
        )

    # ------------------------------------------------------------------------------------ forms
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
        )

    async def help_card(self, caller: Caller) -> dict[str, Any]:
        """The commands; for approvers and privileged approvers also the start-up tenant check in one line."""
        report = self.tenant_report
        if report is None:
            return cards.help_card(caller.lang)
        try:
            roles = await self.policy.roles(caller.person.aad_object_id)
        except Exception:  # noqa: BLE001 - the help card never fails on the line it adds
            return cards.help_card(caller.lang)
        if not (roles.approver or roles.privileged):
            return cards.help_card(caller.lang)
        return cards.help_card(caller.lang, tenant=report)

    # ------------------------------------------------------------------------------------ card actions
    async def on_card_action(self, caller: Caller, verb: Any, data: Any, activity: Any) -> dict[str, Any]:
        """One card action (Action.Execute or Action.Submit); returns the card that replaces the clicked one."""
        if not isinstance(verb, str) or verb not in VERBS:
            return await self.refuse(caller, "refusal.unknown_action", verb="?")
        if not isinstance(data, dict):
            return await self.refuse(caller, "refusal.bad_input", verb=verb)
        if verb in APPROVAL_VERBS or (verb == VERB_CANCEL and await self._is_awaiting(data)):
            tenant = self.policy.check_tenant(caller.tenant_id)
            if not tenant.allowed:
                return await self.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb=verb)
            return await self.approvals.on_action(verb, data, caller.person, activity)
        try:
            if verb == VERB_REVIEW and self._answers_first(caller):
                return await self._review_answer_first(caller, data)
            refusal = await self._requester_refusal(caller, verb=verb)
            if refusal is not None:
                return refusal
            if verb == VERB_REVIEW:
                return await self.review(caller, data)
            if verb == VERB_CONFIRM:
                return await self.confirm(caller, data)
            if verb == VERB_EDIT:
                return await self.edit(caller, data)
            return await self.cancel_draft(caller, data)
        except Refused as refused:
            return await self._refused_card(caller, verb, refused)
        except GraphError as exc:
            return await self._graph_failed(caller, verb, data, exc)

    async def _refused_card(self, caller: Caller, verb: str, refused: Refused) -> dict[str, Any]:
        if refused.audit:
            await self._audit_refusal(
                caller, refused.key, verb=verb, req=refused.request, params=refused.params
            )
        return self.refusal_card(caller.lang, refused.key, **refused.params)

    async def _graph_failed(
        self, caller: Caller, verb: str, data: dict[str, Any], error: GraphError
    ) -> dict[str, Any]:
        """Sign-in or Graph failed during a card action: nothing was changed. The person keeps the card they
        clicked, with the clear words on top: the request form with their values after Review, the confirmation
        card of their draft after Confirm/Edit/Cancel."""
        lang = caller.lang
        title, key, params = self.graph_problem(caller, error, during=verb)
        draft = await self._draft_of(caller, data)
        if verb == VERB_REVIEW:
            values, _, _ = self._form_values(data)
            return self.request_form(caller, values=values, errors={"_form": (key, params)}, draft=draft)
        if draft is not None:
            card = cards.confirmation_card(lang, draft, None, rules=[], warnings=[])
            return cards.with_notice(card, texts.t(lang, key, **params))
        return cards.refusal_card(lang, texts.t(lang, title), texts.t(lang, key, **params))

    async def _draft_of(self, caller: Caller, data: dict[str, Any]) -> ChangeRequest | None:
        """The caller's own draft named by the card data, or None (no Graph call: the database only)."""
        request_id = data.get("requestId")
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
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

    async def _is_awaiting(self, data: dict[str, Any]) -> bool:
        request_id = data.get("requestId")
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            return False
        req = await self.store.get_request(request_id)
        return req is not None and req.state is RequestState.AWAITING_APPROVAL

    async def _own_request(
        self, caller: Caller, data: dict[str, Any], *, need_rev: bool = True
    ) -> tuple[ChangeRequest, int]:
        request_id = data.get("requestId")
        rev = data.get("rev")
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            raise Refused("refusal.bad_input")
        if isinstance(rev, str) and rev.isdigit() and len(rev) < 10:
            rev = int(rev)
        if need_rev and (not isinstance(rev, int) or isinstance(rev, bool) or rev < 0):
            raise Refused("refusal.bad_input")
        req = await self.store.get_request(request_id)
        if req is None:
            await self._audit_refusal(caller, "refusal.not_found", verb=None, req=None, request_id=request_id)
            raise Refused("refusal.not_found", audit=False)
        if req.requester.aad_object_id.lower() != caller.person.aad_object_id.lower():
            raise Refused("refusal.not_found", request=req)
        return req, int(rev) if isinstance(rev, int) else req.revision

    # ------------------------------------------------------------------------------------ review
    def _form_values(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
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
                    if name in ("action", "notify", "language")
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

    async def review(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        """Review with everything in the answer (no card to update later): validate, look up, make the draft."""
        form = await self._review_form(caller, data)
        if form.errors:
            return self.request_form(caller, values=form.values, errors=form.errors, draft=form.draft)
        return await self._review_lookup(caller, form)

    def _answers_first(self, caller: Caller) -> bool:
        """Whether the Graph work of a Review can run after the answer: there is a card to update in place (the
        activity id of the clicked card) and the HTTP answer is written before deferred work starts."""
        return caller.defer is not None and bool(caller.reply_to_id)

    async def _review_answer_first(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        """Review answered at once: what needs no Graph is checked now (tenant, roles when cached, the form's
        fields and sizes, the draft it edits); the look-up, the rules and the draft run after the answer and
        replace the card in place. The answer says who is being looked up and keeps the values for Edit."""
        checked = False
        tenant = self.policy.check_tenant(caller.tenant_id)
        if (
            not tenant.allowed
            or not caller.person.aad_object_id
            or self.policy.roles_cached(caller.person.aad_object_id)
        ):
            refusal = await self._requester_refusal(caller, verb=VERB_REVIEW)  # no Graph call here
            if refusal is not None:
                return refusal
            checked = True
        form = await self._review_form(caller, data)
        if form.errors:
            if not checked:
                refusal = await self._requester_refusal(caller, verb=VERB_REVIEW)
                if refusal is not None:
                    return refusal
            return self.request_form(caller, values=form.values, errors=form.errors, draft=form.draft)
        assert caller.defer is not None
        caller.defer(self._review_after_answer(caller, data, form, requester_checked=checked))
        who = form.values.get("targetUserText") or form.values.get("targetUserId") or ""
        text = texts.t(caller.lang, "progress.looking_up", user=who[:80])
        return cards.lookup_card(caller.lang, text, form.values, form.draft)

    async def _review_after_answer(
        self, caller: Caller, data: dict[str, Any], form: _ReviewForm, *, requester_checked: bool
    ) -> None:
        """The Graph part of a Review after its answer: the card the person clicked becomes the confirmation
        card, or the form with the error beside the field, or the refusal; each audited as in review()."""
        try:
            card = await self._guarded_review_lookup(caller, data, form, requester_checked=requester_checked)
        except Exception:
            log.exception("review failed after the answer")
            card = self.refusal_card(caller.lang, "refusal.internal_error")
        # kept before the card changes: the person can say `cancel` as soon as they see the confirmation card
        if caller.open_request is not None and caller.remember_open_request is not None:
            try:
                await caller.remember_open_request(caller.open_request)
            except Exception:  # noqa: BLE001  (only the `cancel` command's shortcut is lost)
                log.warning("remembering the open request failed", exc_info=True)
        ref = CardRef(
            role="requester",
            conversation_reference=caller.conversation_reference,
            activity_id=caller.reply_to_id,
        )
        await self.updater.update_card(ref, card)

    async def _guarded_review_lookup(
        self, caller: Caller, data: dict[str, Any], form: _ReviewForm, *, requester_checked: bool
    ) -> dict[str, Any]:
        try:
            if not requester_checked:
                refusal = await self._requester_refusal(caller, verb=VERB_REVIEW)
                if refusal is not None:
                    return refusal
            return await self._review_lookup(caller, form)
        except Refused as refused:
            return await self._refused_card(caller, VERB_REVIEW, refused)
        except GraphError as exc:
            return await self._graph_failed(caller, VERB_REVIEW, data, exc)

    async def _review_form(self, caller: Caller, data: dict[str, Any]) -> _ReviewForm:
        """The Review form checked without Graph: types, sizes, choices, the number, the target's shape, and
        the caller's own draft it edits (database). Errors by field; Refused for a draft not theirs/decided."""
        lang = caller.lang
        values, error_keys, _ = self._form_values(data)
        # errors: input id -> (bot.views.texts key, params); the card renders them beside the field
        errors: dict[str, Any] = {}
        for name, key in error_keys.items():
            limit = (
                MAX_TICKET_CHARS
                if name == "ticket"
                else (MAX_NUMBER_CHARS if name == "number" else MAX_TARGET_CHARS)
            )
            errors[name] = (key, {"max": limit})

        action = values.get("action") or "set"
        if action not in ("set", "remove"):
            errors["action"] = ("error.choice.invalid", {})
            action = "set"
        notify_raw = values.get("notify")
        if notify_raw in (None, ""):
            notify = bool(self.settings.notify_default)
        elif notify_raw in ("true", "false"):
            notify = notify_raw == "true"
        else:
            errors["notify"] = ("error.choice.invalid", {})
            notify = False
        language = values.get("language") or "auto"
        if language not in ("auto", "de", "en"):
            errors["language"] = ("error.choice.invalid", {})
            language = "auto"
        ticket = values.get("ticket") or None

        parsed = None
        number_text = values.get("number") or ""
        if "number" not in errors:
            if number_text:
                try:
                    parsed = parse_number(
                        number_text, self.settings.graph.default_region if self.settings.graph else None
                    )
                except InvalidNumber as exc:
                    errors["number"] = (texts.number_error_key(exc.code), dict(exc.details or {}))
            elif action == "set":
                errors["number"] = ("error.number.required_for_set", {})

        if "targetUserId" not in errors and "targetUserText" not in errors:
            target_error = _target_shape_error(values.get("targetUserId"), values.get("targetUserText"))
            if target_error:
                errors["targetUserText"] = target_error

        draft: ChangeRequest | None = None
        if isinstance(data.get("requestId"), str) and data.get("requestId"):
            draft, _ = await self._own_request(caller, data, need_rev=False)
            if draft.state is not RequestState.DRAFT:
                raise Refused(
                    "refusal.already_decided",
                    request=draft,
                    audit=False,
                    state=texts.t(lang, f"state.{draft.state.value}"),
                )
        return _ReviewForm(
            values=values,
            errors=errors,
            action=action,
            notify=notify,
            language=language,
            ticket=ticket,
            parsed=parsed,
            draft=draft,
        )

    async def _review_lookup(self, caller: Caller, form: _ReviewForm) -> dict[str, Any]:
        """The Graph part of Review: find the user, the rules and the phones, the limits; make the draft."""
        lang = caller.lang
        values, draft, action, parsed = form.values, form.draft, form.action, form.parsed
        picked = values.get("targetUserId")
        # A user from the people picker comes with the object id, and the rules and the phones need nothing else:
        # they are read while the user is (one round trip, not two), and count only for the user found by that id.
        early: asyncio.Future[tuple[Decision, PhoneState]] | None = None
        if picked and _GUID.match(picked):
            early = asyncio.ensure_future(self._rules_and_phones(caller, TargetUser(picked, "", "")))
        try:
            target, target_error = await self._resolve_target(lang, picked, values.get("targetUserText"))
        except BaseException:
            await _discard(early)
            raise
        if early is not None and (target is None or target.id.lower() != (picked or "").lower()):
            await _discard(early)
            early = None
        if target_error:
            errors: dict[str, Any] = {"targetUserText": target_error}
            return self.request_form(caller, values=values, errors=errors, draft=draft)
        assert target is not None
        decision, phones = await (early if early is not None else self._rules_and_phones(caller, target))
        if not decision.allowed:
            await self._audit_refusal(
                caller,
                decision.reason_key or "refusal.bad_input",
                verb=VERB_REVIEW,
                req=None,
                params=decision.params,
                target=target,
            )
            return self.refusal_card(lang, decision.reason_key or "refusal.bad_input", **decision.params)
        await self._check_limits(caller, target)

        previous = _e164(phones.mobile.phone_number) if phones.mobile else None
        number = parsed.e164 if parsed else None
        if action == "remove" and number is None:
            if previous is None:
                errors = {"number": ("outcome.nothing_to_remove.title", {})}
                return self.request_form(caller, values=values, errors=errors, draft=draft)
            number = previous  # "remove" without a number: the mobile number shown on the confirmation card
        fields = {
            "action": action,
            "target_id": target.id,
            "target_upn": target.user_principal_name,
            "target_display_name": target.display_name,
            "target_is_guest": target.is_guest,
            "target_privileged": decision.privileged,
            "privilege_reasons": decision.privilege_reasons,
            "number": number,
            "previous_number": previous,
            "notify": form.notify,
            "language": form.language,
            "ticket": form.ticket,
            "approval_required": decision.approval_required,
            "approver_group": decision.approver_group,
            "locale": caller.locale or "en-US",
        }
        if draft is not None:
            try:
                req = await self.store.update_draft(draft.id, draft.revision, actor=caller.person, **fields)
            except Exception as exc:
                if type(exc).__name__ in ("StaleRevision", "InvalidTransition"):
                    raise Refused("refusal.stale", request=draft) from None
                raise
        else:
            from bot.persistence.store import new_request_id

            req = ChangeRequest(
                id=new_request_id(),
                revision=1,
                state=RequestState.DRAFT,
                requester=caller.person,
                **fields,  # type: ignore[arg-type]
            )
            # the draft, its audit row and the card that shows it: one transaction
            req = await self.store.create_request(
                req,
                actor=caller.person,
                details={"new_number": req.number, "old_number": previous, "action": action},
                card_ref=CardRef(
                    role="requester",
                    conversation_reference=caller.conversation_reference,
                    activity_id=caller.reply_to_id,
                ),
            )
        caller.open_request = req.id
        # text keys; the card puts them into words (a sentence given here would first be looked up as a key)
        warnings: list[str | tuple[str, dict[str, Any]]] = (
            ["warning.not_mobile"] if parsed and parsed.is_mobile is False else []
        )
        if action == "set" and phones.mobile and (phones.mobile.sms_sign_in_state or "").lower() == "ready":
            warnings.append("warning.sms_sign_in_lost")
        if action == "remove" and phones.alternate_mobile is not None:
            # Graph's rule (graph.workflow.ALTERNATE_FIRST): the mobile cannot go while an alternate mobile exists.
            # Whether the mobile is the default sign-in method is not in phoneMethods, so no warning for that.
            alternate = cards.masked(phones.alternate_mobile.phone_number)
            warnings.append(("warning.remove_alternate_first", {"alternate": alternate}))
        return cards.confirmation_card(
            lang, req, phones, rules=self.rule_texts(lang, decision), warnings=warnings
        )

    async def _rules_and_phones(self, caller: Caller, target: TargetUser) -> tuple[Decision, PhoneState]:
        """The rules for the target and its current phones: independent reads, asked of Graph at once."""
        decision, phones = await asyncio.gather(
            self.policy.check_target(caller.person, target), self._phones_unless_self(caller, target)
        )
        return decision, phones

    async def _phones_unless_self(self, caller: Caller, target: TargetUser) -> PhoneState:
        if target.id.lower() == caller.person.aad_object_id.lower():
            return PhoneState()  # refused anyway; do not read the caller's own methods
        result: PhoneState = await self.directory.phone_state(target.id)
        return result

    def rule_texts(self, lang: str, decision: Decision) -> list[str]:
        roles = ", ".join(decision.privilege_reasons)
        group = texts.t(lang, f"approval.group.{decision.approver_group or 'approver'}")
        return [texts.t(lang, key, roles=roles, group=group) for key in decision.rules]

    async def _resolve_target(
        self, lang: str, picked: str | None, typed: str | None
    ) -> tuple[TargetUser | None, tuple[str, dict[str, Any]] | None]:
        shape_error = _target_shape_error(picked, typed)
        if shape_error:
            return None, shape_error

        async def find(ref: str | None) -> TargetUser | None:
            return await self.directory.find_user(ref) if ref else None

        found_pick, found_typed = await asyncio.gather(find(picked), find(typed))  # both at once
        if picked and found_pick is None:
            return None, ("error.target.not_found", {"ref": picked[:80]})
        if typed and found_typed is None:
            return None, ("error.target.not_found", {"ref": typed[:80]})
        if found_pick and found_typed and found_pick.id.lower() != found_typed.id.lower():
            return None, ("error.target.both", {})
        return found_pick or found_typed, None

    async def _check_limits(self, caller: Caller, target: TargetUser | ChangeRequest) -> None:
        """The abuse limits (bot/desk/limits.py): changes per requester per hour, cool-down per target."""
        from bot.desk.limits import check_limits

        target_id = target.target_id if isinstance(target, ChangeRequest) else target.id
        decision = await check_limits(
            self.store, self.settings, caller.person, target_id, self._clock(), lang=caller.lang
        )
        if decision is not None:
            raise Refused(decision.reason_key or "refusal.rate_limit", **decision.params)

    # ------------------------------------------------------------------------------------ confirm
    async def confirm(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        lang = caller.lang
        req, rev = await self._own_request(caller, data)
        if req.state is not RequestState.DRAFT:
            if req.state in (RequestState.CANCELLED, RequestState.EXPIRED, RequestState.REJECTED):
                raise Refused(
                    "refusal.already_decided", request=req, state=texts.t(lang, f"state.{req.state.value}")
                )
            # A repeated click or a retried invoke: show where the request stands; nothing runs again.
            return cards.decision_card(lang, req)
        if rev != req.revision:
            raise Refused("refusal.stale", request=req)
        # The target is fixed by its object id in the draft; a user deleted since then is the workflow's
        # "user not found". Roles and privilege come from the policy (cached for ROLE_CACHE_SECONDS), so the
        # answer stays fast while Graph is slow.
        target = TargetUser(
            id=req.target_id,
            user_principal_name=req.target_upn,
            display_name=req.target_display_name,
            user_type="Guest" if req.target_is_guest else "Member",
        )
        decision = await self.policy.check_target(caller.person, target)
        if not decision.allowed:
            raise Refused(decision.reason_key or "refusal.bad_input", request=req, **decision.params)
        await self._check_limits(caller, req)
        fields = {
            "target_privileged": decision.privileged,
            "privilege_reasons": decision.privilege_reasons,
            "approval_required": decision.approval_required,
            "approver_group": decision.approver_group,
        }
        if decision.approval_required:
            from bot.persistence.store import InvalidTransition, StaleRevision

            try:
                req = await self.store.update_draft(req.id, req.revision, actor=caller.person, **fields)
            except (StaleRevision, InvalidTransition):
                raise Refused("refusal.stale", request=req) from None
            try:
                pending = await self.approvals.submit(req, actor=caller.person)
            except Exception as exc:
                text = getattr(exc, "text", None)
                if callable(text):
                    return cards.refusal_card(lang, texts.t(lang, "refusal.title"), text(lang))
                raise
            return cards.awaiting_card(lang, pending)
        from bot.persistence.store import InvalidTransition, StaleRevision

        try:
            approved = await self.store.transition(
                req.id,
                req.revision,
                RequestState.APPROVED,
                actor=caller.person,
                event="confirmed",
                details={"old_number": req.previous_number, "new_number": req.number, "action": req.action},
                **fields,
            )
        except (StaleRevision, InvalidTransition):
            current = await self.store.get_request(req.id)
            if current is not None and current.state is not RequestState.DRAFT:
                return cards.decision_card(lang, current)
            raise Refused("refusal.stale", request=req) from None
        work = self.executor.execute(approved, actor=caller.person)
        if caller.defer is not None:
            caller.defer(work)
        else:
            self.executor.spawn(work)
        key = "progress.removing" if approved.action == "remove" else "progress.changing"
        return cards.progress_card(lang, approved, texts.t(lang, key))

    # ------------------------------------------------------------------------------------ edit / cancel
    async def edit(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        if any(name in data for name in FORM_FIELDS):
            # Edit on the card shown while a Review looks the user up: the form again, with the values as typed
            values, _, _ = self._form_values(data)
            draft: ChangeRequest | None = None
            if isinstance(data.get("requestId"), str) and data.get("requestId"):
                draft, _ = await self._own_request(caller, data, need_rev=False)
                if draft.state is not RequestState.DRAFT:
                    return cards.decision_card(caller.lang, draft)
            return self.request_form(caller, values=values, draft=draft)
        req, rev = await self._own_request(caller, data)
        if req.state is not RequestState.DRAFT:
            return cards.decision_card(caller.lang, req)
        values = {
            "targetUserId": req.target_id,
            "targetUserText": req.target_upn,
            "number": req.number or "",
            "action": req.action,
            "notify": "true" if req.notify else "false",
            "language": req.language,
            "ticket": req.ticket or "",
        }
        return self.request_form(caller, values=values, draft=req)

    async def cancel_draft(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("requestId"):
            # Cancel on a request form that was never submitted: nothing to record.
            return cards.refusal_card(
                caller.lang, texts.t(caller.lang, "state.cancelled"), texts.t(caller.lang, "cancel.done")
            )
        req, rev = await self._own_request(caller, data)
        return await self._cancel(caller, req, rev)

    async def _cancel(self, caller: Caller, req: ChangeRequest, rev: int) -> dict[str, Any]:
        from bot.persistence.store import InvalidTransition, StaleRevision

        if req.state is RequestState.AWAITING_APPROVAL:
            return await self.approvals.on_action(
                VERB_CANCEL, {"requestId": req.id, "rev": rev}, caller.person, _Locale(caller.locale)
            )
        if req.state is not RequestState.DRAFT:
            return cards.decision_card(caller.lang, req)
        if rev != req.revision:
            raise Refused("refusal.stale", request=req)
        try:
            cancelled = await self.store.transition(
                req.id,
                req.revision,
                RequestState.CANCELLED,
                actor=caller.person,
                event="cancelled",
                details={"decision": "cancelled"},
            )
        except (StaleRevision, InvalidTransition):
            current = await self.store.get_request(req.id)
            return cards.decision_card(caller.lang, current or req)
        return cards.decision_card(caller.lang, cancelled)

    async def cancel_open(self, caller: Caller, request_id: str | None) -> str:
        """The `cancel` command: cancels the caller's open request (draft or awaiting approval)."""
        if not request_id:
            return texts.t(caller.lang, "cancel.nothing")
        req = await self.store.get_request(request_id)
        if req is None or req.requester.aad_object_id.lower() != caller.person.aad_object_id.lower():
            return texts.t(caller.lang, "cancel.nothing")
        if req.state not in (RequestState.DRAFT, RequestState.AWAITING_APPROVAL):
            return texts.t(caller.lang, "cancel.nothing")
        await self._cancel(caller, req, req.revision)
        current = await self.store.get_request(req.id)
        if current is not None and current.state is RequestState.CANCELLED:
            for ref in await self.store.card_refs(req.id):
                await self.updater.update_card(
                    ref, cards.decision_card(texts.lang_from_locale(req.locale), current)
                )
            return texts.t(caller.lang, "cancel.done")
        return texts.t(caller.lang, "cancel.nothing")

    # ------------------------------------------------------------------------------------ history / status
    async def history(self, caller: Caller, ref: str) -> dict[str, Any]:
        try:
            return await self._history(caller, ref)
        except GraphError as exc:
            return self.graph_problem_card(caller, exc, during="history")

    async def _history(self, caller: Caller, ref: str) -> dict[str, Any]:
        lang = caller.lang
        tenant = self.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            return await self.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb="history")
        roles = await self.policy.roles(caller.person.aad_object_id)
        if not (roles.helpdesk or roles.approver or roles.privileged):
            return await self.refuse(caller, "refusal.not_helpdesk", verb="history")
        ref = ref.strip()
        if not ref or len(ref) > MAX_TARGET_CHARS or any(c.isspace() for c in ref):
            return self.refusal_card(lang, "error.target.invalid")
        target = await self.directory.find_user(ref)
        if target is None:
            return self.refusal_card(lang, "error.target.not_found", ref=ref)
        entries = await self.store.history(target.id, limit=20)
        await self.store.audit(
            "history_viewed", actor=caller.person, target_id=target.id, target_upn=target.user_principal_name
        )
        label = f"{target.display_name} ({target.user_principal_name})"
        return cards.history_card(lang, label, entries)

    async def status(self, caller: Caller, request_id: str) -> dict[str, Any]:
        try:
            return await self._status(caller, request_id)
        except GraphError as exc:
            return self.graph_problem_card(caller, exc, during="status")

    async def _status(self, caller: Caller, request_id: str) -> dict[str, Any]:
        lang = caller.lang
        tenant = self.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            return await self.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb="status")
        request_id = request_id.strip()
        # the short reference people type ("MFA-7K3Q9", "mfa 7k3q9", "7K3Q9"), else the full request id
        req = await self.store.get_request_by_ref(request_id)
        if req is None:
            if not _REQUEST_ID.match(request_id):
                return self.refusal_card(lang, "refusal.not_found")
            req = await self.store.get_request(request_id)
        allowed = False
        if req is not None:
            if req.requester.aad_object_id.lower() == caller.person.aad_object_id.lower():
                allowed = True
            else:
                roles = await self.policy.roles(caller.person.aad_object_id)
                allowed = roles.approver or roles.privileged
        if req is None or not allowed:
            return await self.refuse(caller, "refusal.not_found", verb="status", req=req)
        return cards.status_card(lang, req, await self.store.request_audit(req.id))

    # ------------------------------------------------------------------------------------ approvers' channel
    async def register_approvers(self, caller: Caller) -> str:
        try:
            return await self._register_approvers(caller)
        except GraphError as exc:
            _, key, params = self.graph_problem(caller, exc, during="register approvals")
            return say(caller.lang, key, **params)

    async def _register_approvers(self, caller: Caller) -> str:
        tenant = self.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            await self._audit_refusal(caller, "refusal.other_tenant", verb="register approvals", req=None)
            return say(caller.lang, "refusal.other_tenant")
        # Read now, not from the cache: this decides where the approval cards of privileged targets go.
        roles = await self.policy.roles(caller.person.aad_object_id, fresh=True)
        if not (roles.approver or roles.privileged):
            await self._audit_refusal(caller, "approvers.not_allowed", verb="register approvals", req=None)
            return say(caller.lang, "approvers.not_allowed")
        # Only a privileged approver sets where the privileged requests go; an ordinary approver moves only the
        # ordinary ones (an approver could otherwise send the privileged cards to a chat of their choosing).
        channels = (
            [APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL] if roles.privileged else [APPROVERS_CHANNEL]
        )
        for channel in channels:
            await self.store.save_conversation_reference(channel, caller.conversation_reference)
        await self.store.audit(
            "approvers_registered",
            actor=caller.person,
            details={
                "conversation_id": str(caller.conversation_reference.get("conversation", {}).get("id", ""))[
                    :200
                ],
                "channels": channels,
            },
        )
        if roles.privileged:
            return say(caller.lang, "approvers.registered")
        if await self.store.conversation_reference(PRIVILEGED_APPROVERS_CHANNEL) is None:
            return say(caller.lang, "approvers.registered_ordinary_no_privileged")
        return say(caller.lang, "approvers.registered_ordinary")


@dataclass
class _Locale:
    locale: str | None


def _e164(graph_number: str | None) -> str | None:
    if not graph_number:
        return None
    return "+" + "".join(c for c in graph_number if c.isdigit())


@dataclass
class _ReviewForm:
    """A Review's form after the checks that need no Graph."""

    values: dict[str, Any]
    errors: dict[str, Any]
    action: str
    notify: bool
    language: str
    ticket: str | None
    parsed: Any
    draft: ChangeRequest | None


async def _discard(future: asyncio.Future[Any] | None) -> None:
    """Cancel reads whose answer is no longer wanted, and wait for them (their errors are of no interest)."""
    if future is None:
        return
    future.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await future


def _target_shape_error(picked: str | None, typed: str | None) -> tuple[str, dict[str, Any]] | None:
    """What is wrong with the target fields before any look-up (a picked id that is no object id, nothing given,
    spaces or control characters in the typed name)."""
    if picked and not _GUID.match(picked):
        return "error.target.invalid", {}
    if not picked and not typed:
        return "error.target.required", {}
    if typed and (any(c.isspace() for c in typed) or any(ord(c) < 32 for c in typed)):
        return "error.target.invalid", {}
    return None

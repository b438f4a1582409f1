"""Review: the request form submitted. Checks what needs no Graph at once, then finds the user, reads the rules
and the current phones, counts the limits and makes (or updates) the draft, answered by the confirmation card.

With a card to update in place, the Graph part runs after the HTTP answer and replaces the clicked card.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from bot.desk.context import (
    MAX_NUMBER_CHARS,
    MAX_TARGET_CHARS,
    MAX_TICKET_CHARS,
    VERB_REVIEW,
    Caller,
    Desk,
    Refused,
)
from bot.desk.policy import Decision
from bot.desk.verification import VERIFICATION_METHODS, method_names
from bot.persistence.models import CardRef, ChangeRequest, RequestState
from bot.views import cards, texts
from graph.errors import GraphError
from graph.numbers import InvalidNumber, parse_number, same_number
from graph.outcome import PhoneState, TargetUser

log = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class Review:
    """The agent's Review of the request form."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def review(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        """Review with everything in the answer (no card to update later): validate, look up, make the draft."""
        form = await self._review_form(caller, data)
        if form.errors:
            return self.desk.request_form(caller, values=form.values, errors=form.errors, draft=form.draft)
        return await self._review_lookup(caller, form)

    def answers_first(self, caller: Caller) -> bool:
        """Whether the Graph work of a Review can run after the answer: there is a card to update in place (the
        activity id of the clicked card) and the HTTP answer is written before deferred work starts."""
        return caller.defer is not None and bool(caller.reply_to_id)

    async def answer_first(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        """Review answered at once: what needs no Graph is checked now (tenant, roles when cached, the form's
        fields and sizes, the draft it edits); the look-up, the rules and the draft run after the answer and
        replace the card in place. The answer says who is being looked up and keeps the values for Edit."""
        checked = False
        tenant = self.desk.policy.check_tenant(caller.tenant_id)
        if (
            not tenant.allowed
            or not caller.person.aad_object_id
            or self.desk.policy.roles_cached(caller.person.aad_object_id)
        ):
            refusal = await self.desk.requester_refusal(caller, verb=VERB_REVIEW)  # no Graph call here
            if refusal is not None:
                return refusal
            checked = True
        form = await self._review_form(caller, data)
        if form.errors:
            if not checked:
                refusal = await self.desk.requester_refusal(caller, verb=VERB_REVIEW)
                if refusal is not None:
                    return refusal
            return self.desk.request_form(caller, values=form.values, errors=form.errors, draft=form.draft)
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
            card = self.desk.refusal_card(caller.lang, "refusal.internal_error")
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
        await self.desk.updater.update_card(ref, card)

    async def _guarded_review_lookup(
        self, caller: Caller, data: dict[str, Any], form: _ReviewForm, *, requester_checked: bool
    ) -> dict[str, Any]:
        try:
            if not requester_checked:
                refusal = await self.desk.requester_refusal(caller, verb=VERB_REVIEW)
                if refusal is not None:
                    return refusal
            return await self._review_lookup(caller, form)
        except Refused as refused:
            return await self.desk.refused_card(caller, VERB_REVIEW, refused)
        except GraphError as exc:
            return await self.desk.graph_failed(caller, VERB_REVIEW, data, exc)

    async def _review_form(self, caller: Caller, data: dict[str, Any]) -> _ReviewForm:
        """The Review form checked without Graph: types, sizes, choices, the number, the target's shape, and
        the caller's own draft it edits (database). Errors by field; Refused for a draft not theirs/decided."""
        lang = caller.lang
        values, error_keys, _ = self.desk.form_values(data)
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
            notify = bool(self.desk.settings.notify_default)
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
        verification: str | None = None
        offered = self.desk.verification_methods()
        if offered is not None and "verification" not in errors:
            chosen = values.get("verification") or ""
            if not chosen:
                errors["verification"] = ("error.verification.required", {})
            elif chosen not in VERIFICATION_METHODS:
                errors["verification"] = ("error.verification.invalid", {})
            elif chosen not in offered:
                errors["verification"] = (
                    "error.verification.not_accepted",
                    {"methods": method_names(lang, offered)},
                )
            else:
                verification = chosen

        parsed = None
        number_text = values.get("number") or ""
        if "number" not in errors:
            if number_text:
                try:
                    parsed = parse_number(
                        number_text,
                        self.desk.settings.graph.default_region if self.desk.settings.graph else None,
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
            draft, _ = await self.desk.own_request(caller, data, need_rev=False)
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
            verification=verification,
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
            early = asyncio.ensure_future(
                self._rules_and_phones(caller, TargetUser(picked, "", ""), form.verification)
            )
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
            return self.desk.request_form(caller, values=values, errors=errors, draft=draft)
        assert target is not None
        decision, phones = await (
            early if early is not None else self._rules_and_phones(caller, target, form.verification)
        )
        if not decision.allowed:
            return await self.desk.refuse_form(
                caller,
                decision.reason_key or "refusal.bad_input",
                verb=VERB_REVIEW,
                target=target,
                values=values,
                draft=draft,
                params=decision.params,
            )
        try:
            await self.desk.check_not_locked(target.id, target.display_name)
            await self.desk.check_limits(caller, target)
        except Refused as refused:
            return await self.desk.refuse_form(
                caller,
                refused.key,
                verb=VERB_REVIEW,
                target=target,
                values=values,
                draft=draft,
                params=refused.params,
            )
        checks = self.desk.verification_policy
        if checks is not None and form.verification not in checks.accepted(decision.privileged):
            # known only now: whether the target is privileged decides which ways of verifying are accepted
            accepted = method_names(lang, checks.accepted(decision.privileged))
            errors = {"verification": ("error.verification.not_accepted", {"methods": accepted})}
            return self.desk.request_form(caller, values=values, errors=errors, draft=draft)

        previous = _e164(phones.mobile.phone_number) if phones.mobile else None
        number = parsed.e164 if parsed else None
        if action == "remove" and number is None:
            if previous is None:
                errors = {"number": ("outcome.nothing_to_remove.title", {})}
                return self.desk.request_form(caller, values=values, errors=errors, draft=draft)
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
            "verification": form.verification,
        }
        if draft is not None:
            try:
                req = await self.desk.store.update_draft(
                    draft.id, draft.revision, actor=caller.person, **fields
                )
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
            req = await self.desk.store.create_request(
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
        mismatch = remove_mismatch(lang, req)
        if mismatch is not None:
            # Graph would change nothing (the workflow's "number mismatch"): said now, and no Confirm offered
            return cards.confirmation_card(lang, req, phones, warnings=[], blocked=mismatch[1])
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
        return cards.confirmation_card(lang, req, phones, warnings=warnings)

    async def _rules_and_phones(
        self, caller: Caller, target: TargetUser, verification: str | None
    ) -> tuple[Decision, PhoneState]:
        """The rules for the target and its current phones: independent reads, asked of Graph at once."""
        decision, phones = await asyncio.gather(
            self.desk.policy.check_target(caller.person, target, verification=verification),
            self._phones_unless_self(caller, target),
        )
        return decision, phones

    async def _phones_unless_self(self, caller: Caller, target: TargetUser) -> PhoneState:
        if target.id.lower() == caller.person.aad_object_id.lower():
            return PhoneState()  # refused anyway; do not read the caller's own methods
        result: PhoneState = await self.desk.directory.phone_state(target.id)
        return result

    async def _resolve_target(
        self, lang: str, picked: str | None, typed: str | None
    ) -> tuple[TargetUser | None, tuple[str, dict[str, Any]] | None]:
        shape_error = _target_shape_error(picked, typed)
        if shape_error:
            return None, shape_error

        async def find(ref: str | None) -> TargetUser | None:
            return await self.desk.directory.find_user(ref) if ref else None

        found_pick, found_typed = await asyncio.gather(find(picked), find(typed))  # both at once
        if picked and found_pick is None:
            return None, ("error.target.not_found", {"ref": picked[:80]})
        if typed and found_typed is None:
            return None, ("error.target.not_found", {"ref": typed[:80]})
        if found_pick and found_typed and found_pick.id.lower() != found_typed.id.lower():
            return None, ("error.target.both", {})
        return found_pick or found_typed, None


def remove_mismatch(lang: str, req: ChangeRequest) -> tuple[str, str] | None:
    """A remove whose number is not the user's mobile number as read at Review (compared as Graph stores
    numbers: graph.numbers.same_number), or a remove for a user without one: Graph would change nothing. Returns
    (text key, the sentence in `lang`), or None. A remove without a typed number took the current mobile number
    at Review, so it always matches."""
    if req.action != "remove" or not req.number:
        return None
    if req.previous_number and same_number(req.number, req.previous_number):
        return None
    try:
        typed = parse_number(req.number).graph  # the agent's own number, in full, as Graph would store it
    except InvalidNumber:
        typed = req.number
    key = "refusal.remove_mismatch" if req.previous_number else "refusal.remove_no_mobile"
    name = req.target_display_name or req.target_upn
    return key, texts.t(lang, key, typed=typed, name=name, current=cards.masked(req.previous_number))


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
    verification: str | None = None  # how the caller was verified; None when VERIFICATION_POLICY=none


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

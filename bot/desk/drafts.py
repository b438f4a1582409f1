"""What a requester does with their draft: Confirm (to an approver, or straight to the run), Edit (the form
again), Cancel; and the `cancel` command for the open request."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.desk.context import FORM_FIELDS, VERB_CANCEL, VERB_CONFIRM, Caller, Desk, Refused
from bot.desk.review import remove_mismatch
from bot.desk.verification import ASKED, EVENT_ATTESTED, CallerVerification, method_names
from bot.persistence.models import ChangeRequest, RequestState
from bot.views import cards, texts
from graph.outcome import TargetUser

log = logging.getLogger(__name__)


class Drafts:
    """Confirm, Edit and Cancel of the caller's own draft."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.verification = CallerVerification(desk)

    async def confirm(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        lang = caller.lang
        req, rev = await self.desk.own_request(caller, data)
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
        mismatch = remove_mismatch(lang, req)
        if mismatch is not None:
            # the confirmation card offered no Confirm: a forged or replayed one changes nothing either
            key, sentence = mismatch
            return await self.desk.refuse_form(
                caller, key, verb=VERB_CONFIRM, target=req, draft=req, said=sentence
            )
        checks = self.desk.verification_policy
        method = req.verification if checks is not None else None
        decision = await self.desk.policy.check_target(caller.person, target, verification=method)
        if not decision.allowed:
            return await self.desk.refuse_form(
                caller,
                decision.reason_key or "refusal.bad_input",
                verb=VERB_CONFIRM,
                target=req,
                draft=req,
                params=decision.params,
            )
        try:
            await self.desk.check_not_locked(req.target_id, req.target_display_name, request=req)
            await self.desk.check_limits(caller, req)
        except Refused as refused:
            return await self.desk.refuse_form(
                caller, refused.key, verb=VERB_CONFIRM, target=req, draft=req, params=refused.params
            )
        if checks is not None and method not in checks.accepted(decision.privileged):
            # the target's privilege, read again now, decides which ways of verifying the caller are accepted
            return await self.verification.draft_with_notice(
                caller,
                req,
                "refusal.verification_not_accepted",
                methods=method_names(lang, checks.accepted(decision.privileged)),
            )
        fields: dict[str, Any] = {
            "target_privileged": decision.privileged,
            "privilege_reasons": decision.privilege_reasons,
            "approval_required": decision.approval_required,
            "approver_group": decision.approver_group,
        }
        if method in ASKED:
            return await self.verification.start(caller, req, fields)
        if method == "in_person":
            # the agent attests that they checked the caller's ID in person; an approver must approve it
            fields["verified_by"] = caller.person
            fields["verified_at"] = self.desk.clock()
        if decision.approval_required:
            from bot.persistence.store import InvalidTransition, StaleRevision

            try:
                req = await self.desk.store.update_draft(req.id, req.revision, actor=caller.person, **fields)
            except (StaleRevision, InvalidTransition):
                raise Refused("refusal.stale", request=req) from None
            if method == "in_person":
                await self.desk.store.audit(
                    EVENT_ATTESTED,
                    actor=caller.person,
                    request_id=req.id,
                    target_id=req.target_id,
                    target_upn=req.target_upn,
                    details={"method": "in_person", "attested_at": fields["verified_at"].isoformat()},
                )
            try:
                pending = await self.desk.approvals.submit(req, actor=caller.person)
            except Exception as exc:
                text = getattr(exc, "text", None)
                if callable(text):
                    return cards.refusal_card(lang, texts.t(lang, "refusal.title"), text(lang))
                raise
            return cards.awaiting_card(lang, pending)
        from bot.persistence.store import InvalidTransition, StaleRevision

        try:
            approved = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.APPROVED,
                actor=caller.person,
                event="confirmed",
                details={"old_number": req.previous_number, "new_number": req.number, "action": req.action},
                **fields,
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(req.id)
            if current is not None and current.state is not RequestState.DRAFT:
                return cards.decision_card(lang, current)
            raise Refused("refusal.stale", request=req) from None
        work = self.desk.executor.execute(approved, actor=caller.person)
        if caller.defer is not None:
            caller.defer(work)
        else:
            self.desk.executor.spawn(work)
        key = "progress.removing" if approved.action == "remove" else "progress.changing"
        return cards.progress_card(lang, approved, texts.t(lang, key))

    async def edit(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        if any(name in data for name in FORM_FIELDS):
            # Edit on the card shown while a Review looks the user up: the form again, with the values as typed
            values, _, _ = self.desk.form_values(data)
            draft: ChangeRequest | None = None
            if isinstance(data.get("requestId"), str) and data.get("requestId"):
                draft, _ = await self.desk.own_request(caller, data, need_rev=False)
                if draft.state is not RequestState.DRAFT:
                    return cards.decision_card(caller.lang, draft)
            return self.desk.request_form(caller, values=values, draft=draft)
        req, rev = await self.desk.own_request(caller, data)
        if req.state is not RequestState.DRAFT:
            return cards.decision_card(caller.lang, req)
        values = {
            "targetUserId": req.target_id,
            "targetUserText": req.target_upn,
            # a remove without a typed number holds the current mobile, which the agent did not type: not shown
            "number": ""
            if req.action == "remove" and req.number == req.previous_number
            else req.number or "",
            "action": req.action,
            "notify": "true" if req.notify else "false",
            "language": req.language,
            "ticket": req.ticket or "",
            "verification": req.verification or "",
        }
        return self.desk.request_form(caller, values=values, draft=req)

    async def cancel_draft(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("requestId"):
            # Cancel on a request form that was never submitted: nothing to record.
            return cards.refusal_card(
                caller.lang, texts.t(caller.lang, "state.cancelled"), texts.t(caller.lang, "cancel.done")
            )
        req, rev = await self.desk.own_request(caller, data)
        return await self.cancel(caller, req, rev)

    async def cancel(self, caller: Caller, req: ChangeRequest, rev: int) -> dict[str, Any]:
        from bot.persistence.store import InvalidTransition, StaleRevision

        if req.state is RequestState.AWAITING_APPROVAL:
            return await self.desk.approvals.on_action(
                VERB_CANCEL, {"requestId": req.id, "rev": rev}, caller.person, _Locale(caller.locale)
            )
        if req.state is RequestState.AWAITING_VERIFICATION:
            return await self.verification.cancel(caller, req, rev)
        if req.state is not RequestState.DRAFT:
            return cards.decision_card(caller.lang, req)
        if rev != req.revision:
            raise Refused("refusal.stale", request=req)
        try:
            cancelled = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.CANCELLED,
                actor=caller.person,
                event="cancelled",
                details={"decision": "cancelled"},
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(req.id)
            return cards.decision_card(caller.lang, current or req)
        return cards.decision_card(caller.lang, cancelled)

    async def cancel_open(self, caller: Caller, request_id: str | None) -> str:
        """The `cancel` command: cancels the caller's open request (draft or awaiting approval)."""
        if not request_id:
            return texts.t(caller.lang, "cancel.nothing")
        req = await self.desk.store.get_request(request_id)
        if req is None or req.requester.aad_object_id.lower() != caller.person.aad_object_id.lower():
            return texts.t(caller.lang, "cancel.nothing")
        if req.state not in (
            RequestState.DRAFT,
            RequestState.AWAITING_VERIFICATION,
            RequestState.AWAITING_APPROVAL,
        ):
            return texts.t(caller.lang, "cancel.nothing")
        await self.cancel(caller, req, req.revision)
        current = await self.desk.store.get_request(req.id)
        if current is not None and current.state is RequestState.CANCELLED:
            for ref in await self.desk.store.card_refs(req.id):
                await self.desk.updater.update_card(
                    ref, cards.decision_card(texts.lang_from_locale(req.locale), current)
                )
            return texts.t(caller.lang, "cancel.done")
        return texts.t(caller.lang, "cancel.nothing")


@dataclass
class _Locale:
    locale: str | None

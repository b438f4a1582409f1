"""The request flow, the dialog the product is built around: collect (the request form) → review (the
confirmation card) → confirm → verify the caller → wait for approval → outcome. Each step is a card action
(Action.Execute, or Action.Submit on older clients) routed here to the desk's use case that answers it.

Why not a botbuilder WaterfallDialog: the steps of one request are taken by different people (the agent, then an
approver), from cards that can be clicked minutes or days later, on any instance. So the flow's state is the
request in the database (bot/persistence: draft → awaiting approval → approved → executing → completed, each move
a conditional update), not a dialog stack in one conversation. The commands' dialog is beside it
(dialogs/main_dialog.py).
"""

from __future__ import annotations

from typing import Any

from bot.desk.context import (
    ANSWER_VERBS,
    APPROVAL_VERBS,
    VERB_CANCEL,
    VERB_CONFIRM,
    VERB_EDIT,
    VERB_REVIEW,
    VERB_VERIFY_CODE,
    VERBS,
    Caller,
    Desk,
    Refused,
)
from bot.desk.drafts import Drafts
from bot.desk.review import Review
from graph.errors import GraphError


class RequestFlow:
    """Routes each card action of a request to its step; returns the card that replaces the clicked one."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.reviewing = Review(desk)
        self.drafts = Drafts(desk)

    def collect(self, caller: Caller, *, action: str = "set") -> dict[str, Any]:
        """The first step: the request form."""
        return self.desk.request_form(caller, values={"action": action})

    async def on_card_action(self, caller: Caller, verb: Any, data: Any, activity: Any) -> dict[str, Any]:
        """One card action (Action.Execute or Action.Submit); returns the card that replaces the clicked one."""
        if not isinstance(verb, str) or verb not in VERBS:
            return await self.desk.refuse(caller, "refusal.unknown_action", verb="?")
        if not isinstance(data, dict):
            return await self.desk.refuse(caller, "refusal.bad_input", verb=verb)
        if verb in ANSWER_VERBS:
            # the target (or their manager) answers the verification card: not a helpdesk agent, so no requester
            # check; the desk checks that it is the person asked, the tenant, the expiry and the revision
            try:
                return await self.drafts.verification.answer(caller, verb, data)
            except Refused as refused:
                return await self.desk.refused_card(caller, verb, refused)
            except GraphError as exc:
                return self.desk.graph_problem_card(caller, exc, during=verb)
        if verb in APPROVAL_VERBS or (verb == VERB_CANCEL and await self.desk.is_awaiting(data)):
            tenant = self.desk.policy.check_tenant(caller.tenant_id)
            if not tenant.allowed:
                return await self.desk.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb=verb)
            return await self.desk.approvals.on_action(verb, data, caller.person, activity)
        try:
            if verb == VERB_REVIEW and self.reviewing.answers_first(caller):
                return await self.reviewing.answer_first(caller, data)
            refusal = await self.desk.requester_refusal(caller, verb=verb)
            if refusal is not None:
                return refusal
            if verb == VERB_REVIEW:
                return await self.reviewing.review(caller, data)
            if verb == VERB_CONFIRM:
                return await self.drafts.confirm(caller, data)
            if verb == VERB_EDIT:
                return await self.drafts.edit(caller, data)
            if verb == VERB_VERIFY_CODE:
                return await self.drafts.verification.check_code(caller, data)
            return await self.drafts.cancel_draft(caller, data)
        except Refused as refused:
            return await self.desk.refused_card(caller, verb, refused)
        except GraphError as exc:
            return await self.desk.graph_failed(caller, verb, data, exc)

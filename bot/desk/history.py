"""What happened: `history <user>` (the changes of one user) and `status <request>` (one request's audit trail)."""

from __future__ import annotations

from typing import Any

from bot.desk.context import MAX_TARGET_CHARS, REQUEST_ID, Caller, Desk
from bot.views import cards
from graph.errors import GraphError


class History:
    """The `history` and `status` commands."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def history(self, caller: Caller, ref: str) -> dict[str, Any]:
        try:
            return await self._history(caller, ref)
        except GraphError as exc:
            return self.desk.graph_problem_card(caller, exc, during="history")

    async def _history(self, caller: Caller, ref: str) -> dict[str, Any]:
        lang = caller.lang
        tenant = self.desk.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            return await self.desk.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb="history")
        roles = await self.desk.policy.roles(caller.person.aad_object_id)
        if not (roles.helpdesk or roles.approver or roles.privileged):
            return await self.desk.refuse(caller, "refusal.not_helpdesk", verb="history")
        ref = ref.strip()
        if not ref or len(ref) > MAX_TARGET_CHARS or any(c.isspace() for c in ref):
            return self.desk.refusal_card(lang, "error.target.invalid")
        target = await self.desk.directory.find_user(ref)
        if target is None:
            return self.desk.refusal_card(lang, "error.target.not_found", ref=ref)
        entries = await self.desk.store.history(target.id, limit=20)
        await self.desk.store.audit(
            "history_viewed", actor=caller.person, target_id=target.id, target_upn=target.user_principal_name
        )
        label = f"{target.display_name} ({target.user_principal_name})"
        return cards.history_card(lang, label, entries)

    async def status(self, caller: Caller, request_id: str) -> dict[str, Any]:
        try:
            return await self._status(caller, request_id)
        except GraphError as exc:
            return self.desk.graph_problem_card(caller, exc, during="status")

    async def _status(self, caller: Caller, request_id: str) -> dict[str, Any]:
        lang = caller.lang
        tenant = self.desk.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            return await self.desk.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb="status")
        request_id = request_id.strip()
        # the short reference people type ("MFA-7K3Q9", "mfa 7k3q9", "7K3Q9"), else the full request id
        req = await self.desk.store.get_request_by_ref(request_id)
        if req is None:
            if not REQUEST_ID.match(request_id):
                return self.desk.refusal_card(lang, "refusal.not_found")
            req = await self.desk.store.get_request(request_id)
        allowed = False
        if req is not None:
            if req.requester.aad_object_id.lower() == caller.person.aad_object_id.lower():
                allowed = True
            else:
                roles = await self.desk.policy.roles(caller.person.aad_object_id)
                allowed = roles.approver or roles.privileged
        if req is None or not allowed:
            return await self.desk.refuse(caller, "refusal.not_found", verb="status", req=req)
        return cards.status_card(lang, req, await self.desk.store.request_audit(req.id))

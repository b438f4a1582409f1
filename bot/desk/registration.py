"""`register approvals`: a conversation becomes where approval cards go (the privileged ones only when a
privileged approver says so)."""

from __future__ import annotations

from bot.desk.approvals import APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL
from bot.desk.context import Caller, Desk, say
from graph.errors import GraphError


class ApproverRegistration:
    """The `register approvals` command."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def register(self, caller: Caller) -> str:
        try:
            return await self._register(caller)
        except GraphError as exc:
            _, key, params = self.desk.graph_problem(caller, exc, during="register approvals")
            return say(caller.lang, key, **params)

    async def _register(self, caller: Caller) -> str:
        tenant = self.desk.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            await self.desk.audit_refusal(caller, "refusal.other_tenant", verb="register approvals", req=None)
            return say(caller.lang, "refusal.other_tenant")
        # Read now, not from the cache: this decides where the approval cards of privileged targets go.
        roles = await self.desk.policy.roles(caller.person.aad_object_id, fresh=True)
        if not (roles.approver or roles.privileged):
            await self.desk.audit_refusal(
                caller, "approvers.not_allowed", verb="register approvals", req=None
            )
            return say(caller.lang, "approvers.not_allowed")
        # Only a privileged approver sets where the privileged requests go; an ordinary approver moves only the
        # ordinary ones (an approver could otherwise send the privileged cards to a chat of their choosing).
        channels = (
            [APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL] if roles.privileged else [APPROVERS_CHANNEL]
        )
        for channel in channels:
            await self.desk.store.save_conversation_reference(channel, caller.conversation_reference)
        await self.desk.store.audit(
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
        if await self.desk.store.conversation_reference(PRIVILEGED_APPROVERS_CHANNEL) is None:
            return say(caller.lang, "approvers.registered_ordinary_no_privileged")
        return say(caller.lang, "approvers.registered_ordinary")

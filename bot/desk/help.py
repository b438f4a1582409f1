"""`help`: the commands, and for approvers the start-up tenant check in one line."""

from __future__ import annotations

from typing import Any

from bot.desk.context import Caller, Desk
from bot.views import cards


class Help:
    """The `help` command."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def card(self, caller: Caller) -> dict[str, Any]:
        """The commands; for approvers and privileged approvers also the start-up tenant check in one line."""
        report = self.desk.tenant_report
        if report is None:
            return cards.help_card(caller.lang)
        try:
            roles = await self.desk.policy.roles(caller.person.aad_object_id)
        except Exception:  # noqa: BLE001 - the help card never fails on the line it adds
            return cards.help_card(caller.lang)
        if not (roles.approver or roles.privileged):
            return cards.help_card(caller.lang)
        return cards.help_card(caller.lang, tenant=report)

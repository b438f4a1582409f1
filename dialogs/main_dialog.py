"""The commands' dialog: reads a command typed in chat and answers it with one card or line (thin: the desk's use
cases decide). The request itself runs through the request flow beside it (dialogs/request_flow.py).

The dialog's state lives in the bot's ConversationState/UserState on the store's botbuilder Storage, so a restart
or a second instance carries on where the first left off.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import CardFactory, MessageFactory, StatePropertyAccessor, TurnContext
from botbuilder.dialogs import ComponentDialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from bot.desk.context import Desk
from bot.desk.help import Help
from bot.desk.history import History
from bot.desk.registration import ApproverRegistration
from bot.views import texts
from dialogs.commands import parse_command
from dialogs.request_flow import RequestFlow

CALLER_KEY = "mfa.caller"  # turn_state key under which the handler puts the bot.desk.context.Caller


class MainDialog(ComponentDialog):
    def __init__(
        self, desk: Desk, flow: RequestFlow, open_request: StatePropertyAccessor, seen: StatePropertyAccessor
    ) -> None:
        super().__init__(MainDialog.__name__)
        self.desk = desk
        self.flow = flow
        self.history = History(desk)
        self.registration = ApproverRegistration(desk)
        self.help = Help(desk)
        self.open_request = open_request
        self.seen = seen
        self.add_dialog(WaterfallDialog("main", [self.dispatch_step]))
        self.initial_dialog_id = "main"

    async def dispatch_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        context = step.context
        caller = context.turn_state[CALLER_KEY]
        text = context.activity.text
        command = parse_command(text)
        first = not await self.seen.get(context, lambda: False)
        await self.seen.set(context, True)

        if not caller.personal:
            if command.name == "register_approvals":
                await context.send_activity(await self.registration.register(caller))
            elif command.name == "help":
                await _send_card(context, await self.help.card(caller))
            else:
                await _send_card(context, self.desk.refusal_card(caller.lang, "refusal.not_in_personal_chat"))
            return await step.end_dialog()

        if command.name == "history":
            await _send_card(context, await self.history.history(caller, command.argument))
        elif command.name == "status":
            await _send_card(context, await self.history.status(caller, command.argument))
        elif command.name == "unlock":
            await context.send_activity(await self.flow.drafts.verification.unlock(caller, command.argument))
        elif command.name == "cancel":
            open_id = await self.open_request.get(context, lambda: None)
            await context.send_activity(await self.flow.drafts.cancel_open(caller, open_id))
            await self.open_request.set(context, None)
        elif command.name == "register_approvals":
            await _send_card(context, self.desk.refusal_card(caller.lang, "refusal.not_in_personal_chat"))
        else:
            refusal = await self.desk.check_requester(caller, verb=command.name)
            if refusal is not None:
                await _send_card(context, refusal)
                return await step.end_dialog()
            if command.name == "help":
                await _send_card(context, await self.help.card(caller))
            elif command.name == "unknown" and not first:
                await context.send_activity(_text(caller.lang, command.argument))
            action = "remove" if command.name == "remove" else "set"
            await _send_card(context, self.flow.collect(caller, action=action))
        return await step.end_dialog()


def _text(lang: str, typed: str) -> str:
    return texts.t(lang, "refusal.unknown_command", text=typed)


async def _send_card(context: TurnContext, card: dict[str, Any]) -> None:
    await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))

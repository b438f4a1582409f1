"""The conversation in chat: reads a command and answers it with one card or line (thin: the service decides).

The dialog's state lives in the bot's ConversationState/UserState on the store's botbuilder Storage, so a restart
or a second instance carries on where the first left off.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import CardFactory, MessageFactory, StatePropertyAccessor, TurnContext
from botbuilder.dialogs import ComponentDialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from dialogs.commands import parse_command

CALLER_KEY = "mfa.caller"  # turn_state key under which the handler puts the bot.desk.service.Caller


class MainDialog(ComponentDialog):
    def __init__(
        self, service: Any, open_request: StatePropertyAccessor, seen: StatePropertyAccessor
    ) -> None:
        super().__init__(MainDialog.__name__)
        self.service = service
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
                await context.send_activity(await self.service.register_approvers(caller))
            elif command.name == "help":
                await _send_card(context, await self.service.help_card(caller))
            else:
                await _send_card(
                    context, self.service.refusal_card(caller.lang, "refusal.not_in_personal_chat")
                )
            return await step.end_dialog()

        if command.name == "history":
            await _send_card(context, await self.service.history(caller, command.argument))
        elif command.name == "status":
            await _send_card(context, await self.service.status(caller, command.argument))
        elif command.name == "cancel":
            open_id = await self.open_request.get(context, lambda: None)
            await context.send_activity(await self.service.cancel_open(caller, open_id))
            await self.open_request.set(context, None)
        elif command.name == "register_approvals":
            await _send_card(context, self.service.refusal_card(caller.lang, "refusal.not_in_personal_chat"))
        else:
            refusal = await self.service.check_requester(caller, verb=command.name)
            if refusal is not None:
                await _send_card(context, refusal)
                return await step.end_dialog()
            if command.name == "help":
                await _send_card(context, await self.service.help_card(caller))
            elif command.name == "unknown" and not first:
                await context.send_activity(_text(caller.lang, command.argument))
            values = {"action": "remove"} if command.name == "remove" else {"action": "set"}
            await _send_card(context, self.service.request_form(caller, values=values))
        return await step.end_dialog()


def _text(lang: str, typed: str) -> str:
    from bot.views import texts

    return texts.t(lang, "refusal.unknown_command", text=typed)


async def _send_card(context: TurnContext, card: dict[str, Any]) -> None:
    await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))

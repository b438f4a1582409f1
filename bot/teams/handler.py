"""The Teams edge: turns activities into calls on the request flow and the commands' dialog (dialogs/), and
answers them.

`adaptiveCard/action` invokes are answered here with `InvokeResponse(status=200, body=AdaptiveCardInvokeResponse)`
(a model, serialized once by CloudAdapter: botbuilder 4.17.1's own on_adaptive_card_invoke path serializes twice
and fails with a 500). Action.Submit arrives as a message with `value` and gets the same treatment, answered by
updating the clicked card in place. Graph work runs after the answer (bot/desk/execution.py).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any

from botbuilder.core import (
    ActivityHandler,
    CardFactory,
    ConversationState,
    InvokeResponse,
    MessageFactory,
    Middleware,
    TurnContext,
    UserState,
)
from botbuilder.dialogs import DialogSet, DialogTurnStatus
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse, ChannelAccount

from bot.desk.approvals import APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL
from bot.desk.context import Caller, Desk
from bot.desk.policy import activity_tenant_id
from bot.persistence.models import Person
from bot.teams.state_storage import DatabaseStorage
from bot.views import cards, markdown, texts
from dialogs.main_dialog import CALLER_KEY, MainDialog
from dialogs.request_flow import RequestFlow

log = logging.getLogger(__name__)

ADAPTIVE_CARD_TYPE = "application/vnd.microsoft.card.adaptive"
ERROR_TYPE = "application/vnd.microsoft.error"
REMEMBERED_USERS = 10_000  # conversation references this process knows to be stored already

# Work to start once the HTTP answer has gone out (set by app.py around adapter.process). Without it (unit tests
# on botbuilder's TestAdapter) the work starts at once.
AFTER_RESPONSE: ContextVar[list[Coroutine[Any, Any, Any]] | None] = ContextVar("after_response", default=None)


class MfaBot(ActivityHandler):
    def __init__(self, *, desk: Desk, store: Any, settings: Any) -> None:
        self.desk = desk
        self.flow = RequestFlow(desk)
        self.settings = settings
        storage = DatabaseStorage(store)
        self._storage = storage
        self.conversation_state = ConversationState(storage)
        self.user_state = UserState(storage)
        self.open_request = self.user_state.create_property("open_request")
        self.seen = self.user_state.create_property("seen")
        self.dialog_state = self.conversation_state.create_property("DialogState")
        self.dialogs = DialogSet(self.dialog_state)
        self.dialogs.add(MainDialog(desk, self.flow, self.open_request, self.seen))
        # key -> the reference last stored by this process (without the activity id, which changes every turn):
        # the row is written again only when the reference changed, not on every turn
        self._remembered: OrderedDict[str, str] = OrderedDict()

    # ------------------------------------------------------------------------------------ turn
    async def on_turn(self, turn_context: TurnContext) -> None:
        await super().on_turn(turn_context)
        for state in (self.conversation_state, self.user_state):
            try:
                await state.save_changes(turn_context)
            except Exception as exc:  # noqa: BLE001  (an eTag conflict: the other writer's state wins)
                log.warning("saving %s failed: %s", type(state).__name__, type(exc).__name__)

    async def on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        """The adapter's last resort: log it, tell the person in plain words, never a stack trace."""
        log.error("turn failed: %s", type(error).__name__, exc_info=error)
        if turn_context.activity.type == "message":
            lang = texts.lang_from_locale(turn_context.activity.locale)
            try:
                await turn_context.send_activity(texts.t(lang, "refusal.internal_error"))
            except Exception:  # noqa: BLE001
                log.warning("could not tell the user about the failure")

    def caller(self, turn_context: TurnContext) -> Caller:
        activity = turn_context.activity
        sender = activity.from_property or ChannelAccount()
        aad = sender.aad_object_id if isinstance(sender.aad_object_id, str) else ""
        person = Person(
            aad_object_id=aad[:64],
            name=str(sender.name or "")[:200],
            teams_id=str(sender.id or "")[:200] or None,
        )
        conversation = activity.conversation
        conversation_type = getattr(conversation, "conversation_type", None)
        reference = TurnContext.get_conversation_reference(activity).serialize()
        pending = AFTER_RESPONSE.get()
        return Caller(
            person=person,
            tenant_id=activity_tenant_id(activity),
            locale=activity.locale if isinstance(activity.locale, str) else None,
            conversation_reference=reference,
            reply_to_id=activity.reply_to_id if isinstance(activity.reply_to_id, str) else None,
            personal=conversation_type in (None, "personal"),
            defer=pending.append if pending is not None else None,
            remember_open_request=self._open_request_keeper(activity),
        )

    def _open_request_keeper(self, activity: Activity) -> Callable[[str], Awaitable[None]] | None:
        """Writes `open_request` into this user's state (the `cancel` command reads it) after the turn has ended,
        as a Review whose Graph work runs after its answer needs: the same storage key as UserState, eTag-safe."""
        channel = activity.channel_id
        user = getattr(activity.from_property, "id", None)
        if not isinstance(channel, str) or not channel or not isinstance(user, str) or not user:
            return None
        key = f"{channel}/users/{user}"
        storage = self._storage

        async def remember(request_id: str) -> None:
            for _ in range(3):
                items = await storage.read([key])
                state = dict(items.get(key) or {})
                state["open_request"] = request_id
                try:
                    await storage.write({key: state})
                    return
                except KeyError:  # ETagConflict: another turn saved this user's state meanwhile; read again
                    continue
            log.info("keeping the open request for the cancel command failed (eTag conflicts)")

        return remember

    async def _remember_user(self, caller: Caller) -> None:
        """Keep the conversation reference of everyone who talks to the bot 1:1 (proactive messages later)."""
        if not caller.personal or not caller.person.aad_object_id:
            return
        if not self.desk.policy.check_tenant(caller.tenant_id).allowed:
            return
        key = f"user:{caller.person.aad_object_id}"
        stable = {k: v for k, v in caller.conversation_reference.items() if k != "activityId"}
        fingerprint = json.dumps(stable, sort_keys=True, default=str)
        if self._remembered.get(key) == fingerprint:
            self._remembered.move_to_end(key)
            return
        try:
            await self.desk.store.save_conversation_reference(key, caller.conversation_reference)
        except Exception:
            log.exception("saving the conversation reference failed")
            return
        self._remembered[key] = fingerprint
        self._remembered.move_to_end(key)
        while len(self._remembered) > REMEMBERED_USERS:
            self._remembered.popitem(last=False)

    # ------------------------------------------------------------------------------------ messages
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        caller = self.caller(turn_context)
        await self._remember_user(caller)
        value = turn_context.activity.value
        if value is not None and not turn_context.activity.text:
            await self._on_submit(turn_context, caller, value)
            return
        turn_context.turn_state[CALLER_KEY] = caller
        dialog_context = await self.dialogs.create_context(turn_context)
        result = await dialog_context.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dialog_context.begin_dialog(MainDialog.__name__)

    async def _on_submit(self, turn_context: TurnContext, caller: Caller, value: Any) -> None:
        """Action.Submit (clients without Universal Actions): the card's data arrives as the message's value."""
        verb = value.get("verb") if isinstance(value, dict) else None
        card = await self._card_for_action(turn_context, caller, verb, value)
        activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
        if caller.reply_to_id:
            activity.id = caller.reply_to_id
            try:
                await turn_context.update_activity(activity)
                return
            except Exception as exc:  # noqa: BLE001  (the client cannot update: answer with a new card)
                log.info("updating the submitted card failed (%s); sending a new one", type(exc).__name__)
                activity.id = None
        await turn_context.send_activity(activity)

    async def _card_for_action(
        self, turn_context: TurnContext, caller: Caller, verb: Any, data: Any
    ) -> dict[str, Any]:
        try:
            card = await self.flow.on_card_action(caller, verb, data, turn_context.activity)
        except Exception:
            log.exception("card action failed")
            return self.desk.refusal_card(caller.lang, "refusal.internal_error")
        if caller.open_request is not None:
            await self.open_request.set(turn_context, caller.open_request)
        return card

    # ------------------------------------------------------------------------------------ invokes
    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        caller = self.caller(turn_context)
        await self._remember_user(caller)
        value: dict[str, Any] = activity.value if isinstance(activity.value, dict) else {}
        raw_action = value.get("action")
        action: dict[str, Any] = raw_action if isinstance(raw_action, dict) else {}
        verb = action.get("verb")
        data = action.get("data", {})
        if data is None:
            data = {}
        card = await self._card_for_action(turn_context, caller, verb, data)
        return InvokeResponse(
            status=200,
            body=AdaptiveCardInvokeResponse(status_code=200, type=ADAPTIVE_CARD_TYPE, value=card),
        )

    # ------------------------------------------------------------------------------------ installation
    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        await self._on_added(turn_context, turn_context.activity.members_added or [])

    async def on_installation_update_activity(self, turn_context: TurnContext) -> None:
        if (turn_context.activity.action or "").startswith("add"):
            await self._on_added(turn_context, [turn_context.activity.recipient])

    async def _on_added(self, turn_context: TurnContext, members: list[Any]) -> None:
        activity: Activity = turn_context.activity
        recipient_id = activity.recipient.id if activity.recipient else None
        bot_added = any(m is not None and m.id == recipient_id for m in members)
        caller = self.caller(turn_context)
        if caller.personal:
            if caller.person.aad_object_id:
                await self._remember_user(caller)
            return
        conversation_id = activity.conversation.id if activity.conversation else None
        wanted = self.settings.approver_conversation_id
        if bot_added and wanted and conversation_id == wanted:
            if not self.desk.policy.check_tenant(caller.tenant_id).allowed:
                log.warning("the approvers' conversation was added from another tenant; ignored")
                return
            # The administrator chose this conversation (APPROVER_CONVERSATION_ID), whoever added the app there:
            # it receives the privileged requests too.
            channels = [APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL]
            for channel in channels:
                await self.desk.store.save_conversation_reference(channel, caller.conversation_reference)
            await self.desk.store.audit(
                "approvers_registered",
                actor=None,
                details={"conversation_id": conversation_id[:200], "by": "install", "channels": channels},
            )
            log.info("approvers' conversation registered on installation")


class InertText(Middleware):
    """The text of every message the bot sends or updates goes out as `bot.views.markdown.chat_text`: markdown escaped,
    web addresses defanged. Registered first on the adapter (app.py), so it covers turn replies and proactive
    messages alike (continue_conversation runs the same middleware), and whatever the text was built from (display
    names, UPNs, approvers' reasons, Graph's messages, what a person typed) cannot become a link or formatting."""

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[Any]]) -> None:
        context.on_send_activities(self._on_send)
        context.on_update_activity(self._on_update)
        await logic()

    async def _on_send(
        self, context: TurnContext, activities: list[Activity], next_send: Callable[[], Awaitable[Any]]
    ) -> Any:
        for activity in activities:
            _make_text_inert(activity)
        return await next_send()

    async def _on_update(
        self, context: TurnContext, activity: Activity, next_update: Callable[[], Awaitable[Any]]
    ) -> Any:
        _make_text_inert(activity)
        return await next_update()


def _make_text_inert(activity: Activity) -> None:
    if activity.type == "message" and isinstance(activity.text, str) and activity.text:
        activity.text = markdown.chat_text(activity.text)


class DemoBanner(Middleware):
    """Demo mode: everything the bot puts in front of a person says it is a simulation.

    Registered once on the adapter (app.py), so it sees every way a card leaves the bot: the answer to an
    `adaptiveCard/action` invoke, messages sent in a turn, cards updated in place, and the proactive sends and
    updates (continue_conversation runs the same middleware). Every Adaptive Card gets the banner of
    `bot.views.cards.with_demo_banner` on top (once); a plain text message starts with the words of "demo.text".
    """

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[Any]]) -> None:
        context.on_send_activities(self._on_send)
        context.on_update_activity(self._on_update)
        await logic()

    async def _on_send(
        self, context: TurnContext, activities: list[Activity], next_send: Callable[[], Awaitable[Any]]
    ) -> Any:
        lang = _turn_lang(context)
        for activity in activities:
            mark_simulation(activity, lang)
        return await next_send()

    async def _on_update(
        self, context: TurnContext, activity: Activity, next_update: Callable[[], Awaitable[Any]]
    ) -> Any:
        mark_simulation(activity, _turn_lang(context))
        return await next_update()


def _turn_lang(context: TurnContext) -> str:
    activity = context.activity
    locale = getattr(activity, "locale", None)
    if not isinstance(locale, str) or not locale:
        # a proactive turn (continue_conversation): the stored reference's locale
        locale = getattr(getattr(activity, "relates_to", None), "locale", None)
    return texts.lang_from_locale(locale if isinstance(locale, str) else None)


def mark_simulation(activity: Activity, lang: str) -> None:
    """Put the demo banner on every Adaptive Card of `activity` and the simulation prefix on its text (in place:
    TurnContext.update_activity has already bound this object to the connector call)."""
    if activity.type == "invokeResponse":
        body = getattr(activity.value, "body", None)
        if isinstance(body, AdaptiveCardInvokeResponse) and isinstance(body.value, dict):
            body.value = _bannered(body.value, lang)
        return
    if activity.type != "message":
        return
    for attachment in activity.attachments or []:
        if attachment.content_type == ADAPTIVE_CARD_TYPE and isinstance(attachment.content, dict):
            attachment.content = _bannered(attachment.content, lang)
    if isinstance(activity.text, str) and activity.text.strip():
        prefix = texts.t(lang, "demo.text", text="")
        if not activity.text.startswith(prefix):
            activity.text = texts.t(lang, "demo.text", text=activity.text)


def _bannered(card: dict[str, Any], lang: str) -> dict[str, Any]:
    if cards.has_demo_banner(card):
        return card
    return cards.with_demo_banner(card, lang)

"""Messages and card updates outside the user's own turn: through the adapter's continue_conversation, so the
credentials are the adapter's (SingleTenant, certificate, UserAssignedMSI or none in local mode)."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import BotAdapter, CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes, ConversationReference

from bot.persistence.models import CardRef

log = logging.getLogger(__name__)


def card_activity(card: dict[str, Any]) -> Activity:
    return MessageFactory.attachment(CardFactory.adaptive_card(card))


def reference_to_dict(ref: ConversationReference) -> dict[str, Any]:
    return ref.serialize()


def reference_from_dict(data: dict[str, Any]) -> ConversationReference:
    return ConversationReference().deserialize(data)


class CardUpdater:
    def __init__(self, adapter: BotAdapter, bot_app_id: str | None) -> None:
        self._adapter = adapter
        self._bot_app_id = bot_app_id or None

    async def _continue(self, conversation_reference: dict[str, Any], logic: Any) -> None:
        reference = reference_from_dict(conversation_reference)
        await self._adapter.continue_conversation(reference, logic, self._bot_app_id)

    async def update_card(self, ref: CardRef, card: dict[str, Any]) -> None:
        """Replace the card of ref.activity_id in place. Errors are logged, never raised: a card that cannot be
        updated (deleted message, app removed) must not stop the work that produced the update."""
        if not ref.activity_id:
            log.info("card update skipped: no activity id stored for this card (%s)", ref.role)
            return
        activity_id = ref.activity_id

        async def logic(context: TurnContext) -> None:
            activity = card_activity(card)
            activity.id = activity_id
            await context.update_activity(activity)

        try:
            await self._continue(ref.conversation_reference, logic)
        except Exception as exc:  # noqa: BLE001  (any connector failure is logged and survived)
            log.warning("card update failed (%s, %s): %s", ref.role, type(exc).__name__, _short(exc))

    async def send_card(self, conversation_reference: dict[str, Any], card: dict[str, Any]) -> str | None:
        """Post a new card; returns its activity id (None when the post failed; the failure is logged)."""
        sent: list[str | None] = []

        async def logic(context: TurnContext) -> None:
            response = await context.send_activity(card_activity(card))
            sent.append(response.id if response else None)

        try:
            await self._continue(conversation_reference, logic)
        except Exception as exc:  # noqa: BLE001
            log.warning("sending a card failed (%s): %s", type(exc).__name__, _short(exc))
            return None
        return sent[0] if sent else None

    async def send_text(self, conversation_reference: dict[str, Any], text: str) -> None:
        async def logic(context: TurnContext) -> None:
            await context.send_activity(Activity(type=ActivityTypes.message, text=text))

        try:
            await self._continue(conversation_reference, logic)
        except Exception as exc:  # noqa: BLE001
            log.warning("sending a message failed (%s): %s", type(exc).__name__, _short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text[:200]

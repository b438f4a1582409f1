"""A Reacher for tests (bot/desk/verification.py's seam to Teams): it posts the card to the person's 1:1
conversation on the fake Bot Connector, the way bot/teams/reach.py sends it through the real connector, and
answers with the CardRef of the sent card; or, with `fail_with`, answers that the person could not be reached."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.desk.verification import Delivery, Recipient
from bot.persistence.models import CardRef
from tests.bot.fake_connector import FakeConnector

BOT_ID = "28:mfa-phone-bot"
TENANT_ID = "8f3c2a51-0d6e-4b7a-9c1f-2e4d6b8a0c11"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


class FakeReacher:
    def __init__(self, connector: FakeConnector, *, fail_with: str | None = None) -> None:
        self.connector = connector
        self.fail_with = fail_with  # a Delivery.reason, e.g. "blocked_by_policy"
        self.sent: list[tuple[Recipient, dict[str, Any]]] = []  # every card it was given

    async def send_card(self, recipient: Recipient, card: dict[str, Any]) -> Delivery:
        self.sent.append((recipient, card))
        if self.fail_with is not None:
            return Delivery(delivered=False, reason=self.fail_with, detail="test reacher")
        conversation_id = f"a:personal-{recipient.aad_object_id}"
        reference = {
            "user": {
                "id": f"29:{recipient.aad_object_id}",
                "name": recipient.display_name,
                "aadObjectId": recipient.aad_object_id,
            },
            "bot": {"id": BOT_ID, "name": "MFA phone bot"},
            "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": TENANT_ID},
            "channelId": "msteams",
            "serviceUrl": self.connector.service_url,
            "locale": "en-US",
        }
        activity = {
            "type": "message",
            "from": reference["bot"],
            "recipient": reference["user"],
            "conversation": reference["conversation"],
            "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}],
        }
        url = f"{self.connector.service_url}v3/conversations/{conversation_id}/activities"
        async with aiohttp.ClientSession() as http, http.post(url, json=activity) as response:
            if response.status >= 300:
                return Delivery(delivered=False, reason="send_failed", detail=str(response.status))
            activity_id = (await response.json())["id"]
        return Delivery(delivered=True, card_ref=CardRef("verifier", reference, activity_id))

"""Putting a card in front of one person in Teams, 1:1, whether or not they ever wrote to the bot (the desk's
`Reacher`, bot/desk/verification.py).

1. A conversation reference stored from the person's own 1:1 turn (``user:<aadObjectId>``, bot/teams/handler.py
   keeps them) is used first: a new card goes there through the adapter's continue_conversation.
2. Otherwise (or when that conversation no longer takes messages, e.g. the person removed the app), the app is
   installed for the person through Graph and the 1:1 chat read (graph/teams_apps.py, Microsoft's "Send proactive
   installation messages"); the card is sent to that chat id through the Bot Framework connector and the new
   reference is stored under ``user:<aadObjectId>`` for the next time.

The service URL of that new reference. Teams answers a bot through a regional connector (``serviceUrl`` of the
activities it receives), and a chat created through Graph comes with none. Microsoft's guidance: prefer a service
URL the bot has received from a real conversation of the tenant ("users in the same tenant might have different
service URLs ... using the original serviceURL (group chat/team) will continue to work",
https://devblogs.microsoft.com/microsoft365dev/updates-for-microsoft-teams-bots-in-multi-geo-environments/), and
use the well-known public endpoint ``https://smba.trafficmanager.net/teams/`` only when none is known
(TeamsProactiveServiceEndpoints.publicGlobal, "use these only if the incoming request serviceUrl is unavailable",
https://learn.microsoft.com/dotnet/api/microsoft.agents.extensions.teams.teamsproactiveserviceendpoints). So the
new reference is modelled on a stored one of this tenant (the approvers' conversation, else any person's 1:1):
its serviceUrl, bot account and channel; only without any stored reference does BOT_SERVICE_URL (default that
global endpoint; a sovereign cloud sets its own) apply. The person's own serviceUrl replaces it as soon as they
write to the bot (the handler stores their reference again).

`send_card` never raises: every failure is a Delivery with delivered False and a reason the desk turns into words
("not_configured", "app_not_in_catalog", "blocked_by_policy", "permission_missing", "graph_error",
"send_failed"); the detail goes to the log (object ids, reasons, Graph request ids; no tokens, no card content).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

from bot.desk.approvals import APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL
from bot.desk.verification import Delivery, Recipient
from bot.persistence.models import CardRef
from bot.teams.proactive import card_activity, reference_from_dict

log = logging.getLogger(__name__)

PUBLIC_GLOBAL_SERVICE_URL: Final = "https://smba.trafficmanager.net/teams/"
TEAMS_CHANNEL: Final = "msteams"
VERIFIER_ROLE: Final = "verifier"


def user_key(aad_object_id: str) -> str:
    """The key under which bot/teams/handler.py stores a person's 1:1 conversation reference."""
    return f"user:{aad_object_id}"


class _SendFailed(Exception):
    """The connector did not take the card (any error of continue_conversation / send_activity)."""


class TeamsReacher:
    """The desk's Reacher for Microsoft Teams (see the module's docstring)."""

    def __init__(
        self,
        adapter: BotAdapter,
        app_id: str | None,
        store: Any,
        teams_apps: Any | None,
        *,
        tenant_id: str | None = None,
        service_url: str | None = None,
    ) -> None:
        self._adapter = adapter
        self._app_id = app_id or None
        self._store = store
        self._teams_apps = teams_apps
        self._tenant_id = tenant_id
        self._service_url = service_url or PUBLIC_GLOBAL_SERVICE_URL
        # a stored reference of this tenant the new 1:1 references are modelled on, once found (its serviceUrl
        # keeps working for the tenant even where a person's own differs, see the module's docstring)
        self._template: dict[str, Any] | None = None

    async def send_card(self, recipient: Recipient, card: dict[str, Any]) -> Delivery:
        try:
            return await self._send_card(recipient, card)
        except Exception as exc:  # noqa: BLE001  (the desk gets an answer whatever failed)
            log.exception("reaching a person in Teams failed", extra={"user_id": recipient.aad_object_id})
            return Delivery(False, reason="send_failed", detail=f"unexpected {type(exc).__name__}")

    async def _send_card(self, recipient: Recipient, card: dict[str, Any]) -> Delivery:
        user_id = recipient.aad_object_id
        key = user_key(user_id)
        stale = ""
        stored = await self._stored(key)
        if stored is not None:
            try:
                activity_id = await self._send(stored, card)
            except _SendFailed as exc:
                # e.g. the person removed the app: installing it again (below) gives a chat that works
                stale = f"the stored conversation did not take the card ({exc})"
                log.info("sending to the stored conversation failed: %s", exc, extra={"user_id": user_id})
            else:
                log.info("verification card sent to the stored 1:1 conversation", extra={"user_id": user_id})
                return Delivery(True, card_ref=CardRef(VERIFIER_ROLE, stored, activity_id))
        if self._teams_apps is None:
            reason = "send_failed" if stale else "not_configured"
            detail = stale or "no stored conversation with this person and no TEAMS_APP_ID to install the app"
            log.warning("cannot reach the person in Teams: %s", detail, extra={"user_id": user_id})
            return Delivery(False, reason=reason, detail=detail)
        reach = await self._teams_apps.reach(user_id)
        if not reach.reachable or not reach.chat_id:
            # graph/teams_apps.py logged Graph's side (reason, permission, request id)
            return Delivery(False, reason=reach.reason or "graph_error", detail=reach.detail)
        reference = await self._new_reference(recipient, reach.chat_id)
        try:
            activity_id = await self._send(reference, card)
        except _SendFailed as exc:
            detail = f"the chat from Graph did not take the card ({exc})"
            log.warning("cannot reach the person in Teams: %s", detail, extra={"user_id": user_id})
            return Delivery(False, reason="send_failed", detail=detail)
        try:
            await self._store.save_conversation_reference(key, reference)
        except Exception as exc:  # noqa: BLE001  (the card went out; next time Graph is asked again)
            log.warning("storing the new 1:1 conversation failed (%s)", type(exc).__name__)
        log.info(
            "verification card sent to the 1:1 chat from Graph",
            extra={"user_id": user_id, "newly_installed": reach.newly_installed},
        )
        return Delivery(True, card_ref=CardRef(VERIFIER_ROLE, reference, activity_id))

    # ---- steps
    async def _stored(self, key: str) -> dict[str, Any] | None:
        try:
            ref = await self._store.conversation_reference(key)
        except Exception as exc:  # noqa: BLE001  (then the Graph way, which stores it again)
            log.warning("reading the stored 1:1 conversation failed (%s)", type(exc).__name__)
            return None
        if not isinstance(ref, dict) or not _conversation_id(ref) or not ref.get("serviceUrl"):
            return None
        return ref

    async def _send(self, reference: dict[str, Any], card: dict[str, Any]) -> str | None:
        """Posts the card as a new message; its activity id (for in-place updates)."""
        sent: list[str | None] = []
        failed: list[BaseException] = []

        async def logic(context: TurnContext) -> None:
            # caught here: the adapter hands an error of the turn to on_turn_error and does not raise it
            try:
                response = await context.send_activity(card_activity(card))
            except Exception as exc:  # noqa: BLE001  (msrest/aiohttp errors of the connector call)
                failed.append(exc)
                return
            sent.append(response.id if response else None)

        try:
            await self._adapter.continue_conversation(reference_from_dict(reference), logic, self._app_id)
        except Exception as exc:  # noqa: BLE001  (e.g. no credentials for the connector)
            failed.append(exc)
        if failed:
            raise _SendFailed(_describe(failed[0]))
        if not sent:
            raise _SendFailed("the connector answered without the message")
        return sent[0]

    async def _new_reference(self, recipient: Recipient, chat_id: str) -> dict[str, Any]:
        template = await self._tenant_template()
        tenant_id = _tenant_of(template) or self._tenant_id
        bot = template.get("bot") if isinstance(template.get("bot"), dict) else None
        reference = ConversationReference(
            channel_id=str(template.get("channelId") or TEAMS_CHANNEL),
            service_url=str(template.get("serviceUrl") or self._service_url),
            bot=ChannelAccount().deserialize(bot)
            if bot
            else ChannelAccount(id=f"28:{self._app_id}" if self._app_id else None),
            conversation=ConversationAccount(
                id=chat_id, conversation_type="personal", is_group=False, tenant_id=tenant_id
            ),
            user=ChannelAccount(aad_object_id=recipient.aad_object_id, name=recipient.display_name),
        )
        return reference.serialize()

    async def _tenant_template(self) -> dict[str, Any]:
        """A stored reference of this tenant with a serviceUrl (cached once found); {} when there is none."""
        if self._template is not None:
            return self._template
        try:
            for key in (APPROVERS_CHANNEL, PRIVILEGED_APPROVERS_CHANNEL):
                if self._fits(ref := await self._store.conversation_reference(key)):
                    self._template = ref
                    return ref
            for ref in (await self._store.conversation_references("user:")).values():
                if self._fits(ref):
                    self._template = ref
                    return ref
        except Exception as exc:  # noqa: BLE001
            log.warning("reading the stored conversations failed (%s)", type(exc).__name__)
        return {}

    def _fits(self, ref: Any) -> bool:
        return isinstance(ref, dict) and bool(ref.get("serviceUrl")) and self._same_tenant(ref)

    def _same_tenant(self, ref: dict[str, Any]) -> bool:
        tenant = _tenant_of(ref)
        return not self._tenant_id or not tenant or str(tenant).lower() == self._tenant_id.lower()


def _tenant_of(ref: dict[str, Any]) -> str | None:
    """The tenant of a stored reference: botbuilder serializes ConversationAccount.tenant_id as "tenantID", Teams
    sends "tenantId"; either is read."""
    conversation = ref.get("conversation")
    if not isinstance(conversation, dict):
        return None
    tenant = conversation.get("tenantID") or conversation.get("tenantId")
    return str(tenant) if tenant else None


def _conversation_id(ref: dict[str, Any]) -> str | None:
    conversation = ref.get("conversation")
    return conversation.get("id") if isinstance(conversation, dict) else None


def _describe(exc: BaseException) -> str:
    """The error's type and HTTP status where there is one (no bodies: they may echo what was sent)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "status", None)
    return f"{type(exc).__name__}{f' {status}' if status else ''}"

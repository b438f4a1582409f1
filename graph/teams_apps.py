"""Reaching a user in Teams who never wrote to the bot: install the bot's Teams app for them and read the 1:1 chat.

Microsoft's way ("Send proactive installation messages",
https://learn.microsoft.com/microsoftteams/platform/graph-api/proactive-bots-and-messages/graph-proactive-bots-and-messages):

1. the app's id in the tenant app catalog, from the manifest id (`TEAMS_APP_ID`):
   ``GET /appCatalogs/teamsApps?$filter=externalId eq '{manifest id}'`` (AppCatalog.Read.All). The catalog id does
   not change once the app is published, so it is read once a process (a miss is read again next time);
2. install the app for the user: ``POST /users/{id}/teamwork/installedApps`` with
   ``{"teamsApp@odata.bind": ".../appCatalogs/teamsApps/{catalog id}"}``: 201, or 409 when it is installed already
   (TeamsAppInstallation.ReadWriteSelfForUser.All);
3. the installation's id: ``GET /users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '…'``;
4. the chat: ``GET /users/{id}/teamwork/installedApps/{installation id}/chat``; its ``id`` (``19:…@unq.gbl.spaces``)
   is the conversation the bot sends its card to through the Bot Framework connector (not done here).

`TeamsApps.reach` never raises for what Graph answers: a user it cannot reach is a `Reach` with `reachable` False
and a reason code the caller turns into words (bot texts, EN and DE): ``app_not_in_catalog``,
``blocked_by_policy``, ``permission_missing`` (with the permission to grant) or ``graph_error`` (with Graph's
request-id). Logs carry the user's object id, the reason and the request-id; no token, no chat content.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote

from graph.directory import user_path
from graph.errors import GraphError, PermissionDeniedError
from graph.permissions import missing_permission

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

UnreachableReason = Literal["app_not_in_catalog", "blocked_by_policy", "permission_missing", "graph_error"]
APP_NOT_IN_CATALOG: Final = "app_not_in_catalog"
BLOCKED_BY_POLICY: Final = "blocked_by_policy"
PERMISSION_MISSING: Final = "permission_missing"
GRAPH_ERROR: Final = "graph_error"
REASONS: Final = (APP_NOT_IN_CATALOG, BLOCKED_BY_POLICY, PERMISSION_MISSING, GRAPH_ERROR)

# Graph's answer when an app permission policy blocks the app for the user. Microsoft documents none; this is the
# text production clients log (403 Forbidden, innerError AccessDenied; OfficeDev/microsoft-teams-apps-company-
# communicator issues #889 and #1537).
_BLOCKED_TEXT: Final = "blocked by app permission policy"

__all__ = [
    "APP_NOT_IN_CATALOG",
    "BLOCKED_BY_POLICY",
    "GRAPH_ERROR",
    "PERMISSION_MISSING",
    "REASONS",
    "Reach",
    "TeamsApps",
    "UnreachableReason",
]


@dataclass(frozen=True)
class Reach:
    """Whether the bot can reach a user in Teams, and where.

    reachable: `chat_id` (the 1:1 chat with the bot, ``19:…@unq.gbl.spaces``), `installation_id` and
    `newly_installed` (True when this call installed the app, False when it was installed before).
    Not reachable: `reason` (one of REASONS), `missing_permission` for ``permission_missing`` ("least (or
    broader)"), `request_id` (Graph's, when it answered) and `detail`, an English sentence for the log and the
    administrator, never for the user."""

    reachable: bool
    chat_id: str | None = None
    installation_id: str | None = None
    newly_installed: bool = False
    reason: UnreachableReason | None = None
    missing_permission: str | None = None
    request_id: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "chat_id": self.chat_id,
            "installation_id": self.installation_id,
            "newly_installed": self.newly_installed,
            "reason": self.reason,
            "missing_permission": self.missing_permission,
            "request_id": self.request_id,
            "detail": self.detail,
        }


class _Unreachable(Exception):
    def __init__(self, reach: Reach) -> None:
        super().__init__(reach.detail)
        self.reach = reach


class TeamsApps:
    """The bot's own Teams app, named by its manifest id (`external_id`, the setting TEAMS_APP_ID)."""

    def __init__(self, client: GraphClient, external_id: str) -> None:
        self._client = client
        self.external_id = external_id.strip().lower()
        self._catalog_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, client: GraphClient) -> TeamsApps | None:
        """From GraphSettings.teams_app_id; None when it is not set (the bot then reaches nobody this way)."""
        external_id = getattr(settings, "teams_app_id", None)
        return cls(client, external_id) if external_id else None

    @property
    def catalog_id(self) -> str | None:
        """The app's id in the tenant app catalog, once read."""
        return self._catalog_id

    async def reach(self, user_id: str) -> Reach:
        """Install the app for `user_id` (object id) where it is not installed yet, and read the chat with it.
        Never raises for a Graph answer or a Graph that cannot be reached."""
        try:
            app_id = await self._app_id()
            newly = await self._install(user_id, app_id)
            installation_id = await self._installation_id(user_id, app_id)
            chat_id = await self._chat_id(user_id, installation_id)
        except _Unreachable as unreachable:
            reach = unreachable.reach
            log.warning(
                "cannot reach the user in Teams: %s (request-id %s)",
                reach.reason,
                reach.request_id,
                extra={
                    "user_id": user_id,
                    "reason": reach.reason,
                    "missing_permission": reach.missing_permission,
                    "request_id": reach.request_id,
                },
            )
            return reach
        log.info(
            "reached the user in Teams",
            extra={"user_id": user_id, "newly_installed": newly, "installation_id": installation_id},
        )
        return Reach(True, chat_id=chat_id, installation_id=installation_id, newly_installed=newly)

    # ---- the steps
    async def _app_id(self) -> str:
        if self._catalog_id:
            return self._catalog_id
        value = _quoted(self.external_id)
        try:
            response = await self._client.get(
                "/appCatalogs/teamsApps",
                params={"$filter": f"externalId eq '{value}'", "$select": "id,externalId,displayName"},
            )
        except GraphError as exc:
            raise _Unreachable(_from_error(exc, "reading the tenant app catalog")) from None
        values = (response.json or {}).get("value") if isinstance(response.json, dict) else None
        found = next(
            (
                str(app["id"])
                for app in values or []
                if isinstance(app, dict)
                and app.get("id")
                and str(app.get("externalId") or "").lower() == self.external_id
            ),
            None,
        )
        if found is None:
            raise _Unreachable(
                Reach(
                    False,
                    reason=APP_NOT_IN_CATALOG,
                    request_id=response.request_id,
                    detail=f"no app with the manifest id {self.external_id} (TEAMS_APP_ID) in the tenant app "
                    "catalog: upload the app package to the organization's app store (Teams admin center)",
                )
            )
        self._catalog_id = found
        return found

    async def _install(self, user_id: str, app_id: str) -> bool:
        """True when installed now (201), False when it was installed already (409)."""
        bind = f"{self._client.base_url}/appCatalogs/teamsApps/{app_id}"
        try:
            await self._client.post(
                f"{user_path(user_id)}/teamwork/installedApps", json={"teamsApp@odata.bind": bind}
            )
        except GraphError as exc:
            if exc.status == 409:
                return False
            if exc.status == 403 and _BLOCKED_TEXT in (exc.message or "").lower():
                raise _Unreachable(
                    Reach(
                        False,
                        reason=BLOCKED_BY_POLICY,
                        request_id=exc.request_id,
                        detail="an app permission policy blocks the app for this user: allow it in the Teams "
                        f"admin center (Graph: {exc.code}: {exc.message})",
                    )
                ) from None
            if exc.status == 404:
                self._catalog_id = (
                    None  # removed from the catalog (or the user is gone): read it again next time
                )
            raise _Unreachable(_from_error(exc, "installing the app for the user")) from None
        return True

    async def _installation_id(self, user_id: str, app_id: str) -> str:
        try:
            response = await self._client.get(
                f"{user_path(user_id)}/teamwork/installedApps",
                params={"$expand": "teamsApp", "$filter": f"teamsApp/id eq '{_quoted(app_id)}'"},
            )
        except GraphError as exc:
            raise _Unreachable(_from_error(exc, "reading the app's installation for the user")) from None
        values = (response.json or {}).get("value") if isinstance(response.json, dict) else None
        found = next((str(i["id"]) for i in values or [] if isinstance(i, dict) and i.get("id")), None)
        if found is None:
            # With TeamsAppInstallation.ReadWriteSelfForUser.All the list is empty unless the manifest's
            # webApplicationInfo.id is the application that asks (https://learn.microsoft.com/graph/api/
            # userteamwork-list-installedapps, note on that permission).
            raise _Unreachable(
                Reach(
                    False,
                    reason=GRAPH_ERROR,
                    request_id=response.request_id,
                    detail="Graph lists no installation of the app for the user although it is installed: the "
                    "app package's webApplicationInfo.id must be the Graph application (GRAPH_CLIENT_ID)",
                )
            )
        return found

    async def _chat_id(self, user_id: str, installation_id: str) -> str:
        try:
            response = await self._client.get(
                f"{user_path(user_id)}/teamwork/installedApps/{quote(installation_id, safe='')}/chat"
            )
        except GraphError as exc:
            raise _Unreachable(_from_error(exc, "reading the chat between the user and the bot")) from None
        body = response.json if isinstance(response.json, dict) else {}
        chat_id = body.get("id")
        if not isinstance(chat_id, str) or not chat_id:
            raise _Unreachable(
                Reach(
                    False,
                    reason=GRAPH_ERROR,
                    request_id=response.request_id,
                    detail="Graph answered the chat without an id",
                )
            )
        return chat_id


def _quoted(value: str) -> str:
    """A value inside an OData string literal: a quote is doubled."""
    return value.replace("'", "''")


def _from_error(exc: GraphError, doing: str) -> Reach:
    if isinstance(exc, PermissionDeniedError):
        permission = missing_permission(exc.method, exc.url)
        return Reach(
            False,
            reason=PERMISSION_MISSING,
            missing_permission=permission,
            request_id=exc.request_id,
            detail=f"Graph refused {doing}: grant {permission or 'the permission it needs'} "
            f"({exc.code}: {exc.message})",
        )
    return Reach(
        False,
        reason=GRAPH_ERROR,
        request_id=exc.request_id,
        detail=f"Graph failed {doing}: {exc}",
    )

"""Directory look-ups: the target user, their phone methods, group membership, privilege, manager, tenant name."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from graph.client import GraphClient
from graph.errors import (
    AuthenticationError,
    GraphError,
    GraphUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TokenError,
    TransportError,
)
from graph.outcome import PhoneMethod, PhoneState, TargetUser
from graph.permissions import missing_permission

log = logging.getLogger("graph.directory")

USER_SELECT = "id,userPrincipalName,displayName,mail,userType,usageLocation,accountEnabled"
CHECK_MEMBER_GROUPS_LIMIT = 20
GROUP_MEMBER_SELECT = "id,userType,accountEnabled"
GROUP_MEMBERS_PAGE = 999  # the largest page transitiveMembers gives
# What Graph answers for PIM reads on a tenant without Entra ID P2: nobody there can be eligible for a role.
PIM_NOT_LICENSED = "AadPremiumLicenseRequired"
ELIGIBILITY_UNREADABLE = "role eligibility could not be read"
GROUP_ELIGIBILITY_UNREADABLE = "group eligibility (PIM for Groups) could not be read"
# Whoever owns the bot's Graph application or its service principal can add a credential to it and act with its
# permissions (change anyone's MFA phone): they count as privileged targets.
APP_OWNER = "owner of this bot's application"
SERVICE_PRINCIPAL_OWNER = "owner of this bot's service principal"
OWNERS_UNREADABLE = "the owners of this bot's application could not be read"
OWNERS_PERMISSION = "Application.Read.All"
OWNERS_CACHE_SECONDS = 600.0  # owners change rarely; a new owner counts after at most this long
OWNERS_RETRY_SECONDS = 30.0  # an owners read that failed is tried again after this long
# Owners of role-assignable groups are read from the groups' side (ownedObjects is not available to applications)
# and cached like the owners of the bot's application.
GROUP_OWNERS_UNREADABLE = "the owners of role-assignable groups could not be read"
GROUP_OWNER_READS = 8  # the owners of this many groups are read at the same time
GROUP_MEMBERSHIPS_UNREADABLE = "the target's groups could not be read (limited information)"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MAX_REF = 320  # longer than any UPN or mail address Entra accepts

# Directory roles an Authentication Administrator may still act on (graph-behaviour.md §3): holding only these
# does not make a user privileged. Keyed by role template id.
HARMLESS_ROLES: dict[str, str] = {
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "95e79109-95c0-4d8e-aee3-d01accf2d47b": "Guest Inviter",
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b": "Message Center Reader",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "4a5d8f65-41da-4de4-8968-e035b65339cf": "Reports Reader",
    "27460883-1df1-4691-b032-3b79643e5e63": "User Experience Success Manager",
    "75934031-6c7e-415a-99d7-48dbd49e875e": "Usage Summary Reports Reader",
}

# Names for role template ids seen in role assignments (which carry only the id).
KNOWN_ROLES: dict[str, str] = {
    **HARMLESS_ROLES,
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "fdd7a751-b60b-444a-984c-02652fe8fa1c": "Groups Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
}


@dataclass(frozen=True)
class Privilege:
    roles: list[str] = field(default_factory=list)  # display names of the roles that are not harmless
    role_assignable_groups: list[str] = field(default_factory=list)  # "Name (member)" / "Name (owner)"
    is_privileged: bool = False
    harmless_roles: list[str] = field(default_factory=list)  # for display: roles that do not count
    # APP_OWNER / SERVICE_PRINCIPAL_OWNER, or OWNERS_UNREADABLE
    ownerships: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Every reason the user counts as privileged, for the cards and the audit."""
        return [*self.roles, *self.role_assignable_groups, *self.ownerships]


@dataclass(frozen=True)
class BotOwners:
    """The direct owners (object ids, lower case) of this bot's Graph application and of its service principal.
    `error` is set when they could not be read (then nobody is known to be an owner, and every target counts as
    privileged); `missing_permission` names the permission when Graph refused it (403)."""

    application: frozenset[str] = frozenset()
    service_principal: frozenset[str] = frozenset()
    error: str | None = None
    missing_permission: str | None = None
    failure: GraphError | None = field(default=None, compare=False, repr=False)

    def reasons(self, user_id: str) -> list[str]:
        """Why `user_id` counts as privileged through these owners (empty: it does not)."""
        if self.error is not None:
            return [OWNERS_UNREADABLE]
        uid = user_id.lower()
        return [
            reason
            for reason, ids in (
                (APP_OWNER, self.application),
                (SERVICE_PRINCIPAL_OWNER, self.service_principal),
            )
            if uid in ids
        ]


@dataclass(frozen=True)
class GroupOwners:
    """The owners of the tenant's role-assignable groups: owner object id (lower case) -> the names of the groups
    they own. `error` is set when they could not be read (then every target counts as privileged);
    `missing_permission` names the permission when Graph refused it (403)."""

    by_owner: dict[str, tuple[str, ...]] = field(default_factory=dict)
    error: str | None = None
    missing_permission: str | None = None
    failure: GraphError | None = field(default=None, compare=False, repr=False)

    def reasons(self, user_id: str) -> list[str]:
        """ "Name (owner)" for each role-assignable group `user_id` owns; the unreadable reason when unknown."""
        if self.error is not None:
            return [GROUP_OWNERS_UNREADABLE]
        return [f"{name} (owner)" for name in self.by_owner.get(user_id.lower(), ())]


def user_path(ref: str) -> str:
    """The /users/{...} path segment for an object id or a UPN.

    A UPN is URL-encoded (a guest's `#EXT#` would otherwise start a URL fragment); a UPN starting with `$`
    uses Graph's `/users('$...')` form.
    """
    if ref.startswith("$"):
        return "/users('" + quote(ref.replace("'", "''"), safe="@$") + "')"
    return "/users/" + quote(ref, safe="@")


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _target(data: dict[str, Any]) -> TargetUser:
    return TargetUser(
        id=str(data.get("id") or ""),
        user_principal_name=str(data.get("userPrincipalName") or ""),
        display_name=str(data.get("displayName") or data.get("userPrincipalName") or ""),
        mail=data.get("mail") or None,
        user_type=str(data.get("userType") or "Member"),
        usage_location=data.get("usageLocation") or None,
        account_enabled=bool(data.get("accountEnabled", True)),
    )


def refused_this_read(exc: GraphError) -> bool:
    """Graph answered this one read with a refusal of its own (403, 400, 404 …): a fail-safe reason may stand in
    for the answer. Sign-in failing, a token refused, 5xx after the retries, no answer or throttling are not that:
    they propagate, so the caller says "try again" and nothing runs on a guess (a guess of "privileged" would
    cancel a waiting request that is fine)."""
    return not isinstance(
        exc, TokenError | AuthenticationError | GraphUnavailableError | TransportError | ThrottledError
    )


class Directory:
    def __init__(
        self,
        client: GraphClient,
        *,
        app_id: str | None = None,
        owners_cache_seconds: float = OWNERS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`app_id`: the client id of this bot's Graph application; its owners (and those of its service
        principal) count as privileged targets. Without it nobody is checked as an owner."""
        self._client = client
        self._app_id = app_id
        self._owners_cache_seconds = owners_cache_seconds
        self._clock = clock
        self._owners: tuple[float, BotOwners] | None = None
        self._owners_lock = asyncio.Lock()
        self._group_owners: tuple[float, GroupOwners] | None = None
        self._group_owners_lock = asyncio.Lock()

    async def find_user(self, ref: str) -> TargetUser | None:
        """Find the target by object id, UPN (guests too) or mail address. None when nobody matches."""
        ref = (ref or "").strip()
        if not ref or len(ref) > _MAX_REF or any(c.isspace() or ord(c) < 32 for c in ref):
            return None
        if _GUID.match(ref):
            return await self._get_user(ref)
        if "@" not in ref:
            return None
        user = await self._get_user(ref)
        if user is not None:
            return user
        response = await self._client.get(
            "/users",
            params={"$filter": f"mail eq {odata_string(ref)}", "$select": USER_SELECT},
        )
        values = (response.json or {}).get("value") or []
        if len(values) == 1:
            return _target(values[0])
        if len(values) > 1:
            log.warning("mail address matches several users", extra={"count": len(values)})
        return None

    async def _get_user(self, ref: str) -> TargetUser | None:
        try:
            response = await self._client.get(user_path(ref), params={"$select": USER_SELECT})
        except NotFoundError:
            return None
        if not isinstance(response.json, dict):
            return None
        return _target(response.json)

    async def phone_state(self, user_id: str) -> PhoneState:
        """All phone methods of the user (filtered on the client side; the endpoint takes no query options)."""
        response = await self._client.get(f"{user_path(user_id)}/authentication/phoneMethods")
        methods = []
        for item in (response.json or {}).get("value") or []:
            if not isinstance(item, dict):
                continue
            methods.append(
                PhoneMethod(
                    id=str(item.get("id") or ""),
                    phone_type=str(item.get("phoneType") or ""),
                    phone_number=str(item.get("phoneNumber") or ""),
                    sms_sign_in_state=item.get("smsSignInState"),
                )
            )
        return PhoneState(methods=tuple(methods))

    async def member_groups(
        self, user_id: str, group_ids: list[str] | set[str] | tuple[str, ...]
    ) -> set[str]:
        """Which of `group_ids` the user is a member of, transitively (checkMemberGroups, 20 ids a call)."""
        wanted: dict[str, str] = {}
        for gid in group_ids:
            if gid and gid.lower() not in wanted:
                wanted[gid.lower()] = gid
        canonical = list(wanted)  # object ids are GUIDs; send them in their canonical lower case
        found: set[str] = set()
        for start in range(0, len(canonical), CHECK_MEMBER_GROUPS_LIMIT):
            chunk = canonical[start : start + CHECK_MEMBER_GROUPS_LIMIT]
            response = await self._client.post(
                f"{user_path(user_id)}/checkMemberGroups", json={"groupIds": chunk}, idempotent=True
            )
            for gid in (response.json or {}).get("value") or []:
                original = wanted.get(str(gid).lower())
                if original is not None:
                    found.add(original)
        return found

    async def group_members(self, group_id: str) -> set[str]:
        """Object ids (lower case) of the enabled member users of a group, directly or through nested groups;
        guests (userType other than Member) are left out.

        `GET /groups/{id}/transitiveMembers/microsoft.graph.user` (application permission GroupMember.Read.All;
        https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers). The OData cast is an
        advanced query: `ConsistencyLevel: eventual` and `$count=true`. Paged with `@odata.nextLink` ($top 999,
        the largest page). A user whose userType or accountEnabled did not come back (the app may not read
        users: "limited information") does not count.
        """
        found: set[str] = set()
        limited = 0
        async for item in self._client.paginate(
            f"/groups/{quote(group_id.lower(), safe='')}/transitiveMembers/microsoft.graph.user",
            {"$select": GROUP_MEMBER_SELECT, "$count": "true", "$top": str(GROUP_MEMBERS_PAGE)},
            headers={"ConsistencyLevel": "eventual"},
        ):
            uid = str(item.get("id") or "")
            if not uid:
                continue
            if item.get("userType") is None or item.get("accountEnabled") is None:
                limited += 1
                continue
            if str(item["userType"]).lower() == "member" and item["accountEnabled"] is True:
                found.add(uid.lower())
        if limited:
            log.warning(
                "group members came back without userType/accountEnabled (User.Read.All missing?): not counted",
                extra={"count": limited},
            )
        return found

    async def privilege(self, user_id: str) -> Privilege:
        """Whether the user holds a role (other than the harmless ones) or a role-assignable group, or owns this
        bot's application.

        Sources, read at the same time: transitiveMemberOf (directory roles, also through role-assignable groups,
        and the groups themselves), the owners of the tenant's role-assignable groups (cached, see
        role_assignable_group_owners: ownedObjects is not available to applications), the active role assignments
        with the user as principal (administrative-unit scoped ones too), the PIM-eligible roles
        (roleEligibilityScheduleInstances, named "… (eligible)"), the PIM for Groups eligible memberships and
        ownerships of role-assignable groups ("Name (eligible member)" / "Name (eligible owner)"): an eligible user
        can activate them at any time; and the owners of this bot's application and service principal (cached,
        see bot_owners). Errors of the active sources propagate: a caller that cannot tell must treat the user as
        privileged. When Graph refuses to give an eligibility or the owners (403 and the like; not PIM on a tenant
        without Entra ID P2, where nobody is eligible), the user is privileged with that as the reason; when it
        does not answer (sign-in, 5xx after the retries, no connection, throttled) the error propagates like the
        active sources' (see refused_this_read).
        """
        active = asyncio.ensure_future(self._active_privilege(user_id))
        roles_task = asyncio.ensure_future(self._eligible_roles(user_id))
        groups_task = asyncio.ensure_future(self._eligible_groups(user_id))
        owners_task = asyncio.ensure_future(self.bot_owners())
        group_owners_task = asyncio.ensure_future(self.role_assignable_group_owners())
        tasks: list[asyncio.Future[Any]] = [active, roles_task, groups_task, owners_task, group_owners_task]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        role_ids, groups = active.result()
        eligible, eligible_groups, owners = roles_task.result(), groups_task.result(), owners_task.result()
        if owners.failure is not None and not refused_this_read(owners.failure):
            raise owners.failure
        group_owners = group_owners_task.result()
        if group_owners.failure is not None and not refused_this_read(group_owners.failure):
            raise group_owners.failure

        for template, name in (eligible or {}).items():
            role_ids.setdefault(template, name)  # an active assignment of the same role says more

        roles = sorted({name for tid, name in role_ids.items() if tid not in HARMLESS_ROLES})
        harmless = sorted({name for tid, name in role_ids.items() if tid in HARMLESS_ROLES})
        if eligible is None:
            roles.append(ELIGIBILITY_UNREADABLE)
        owned = group_owners.reasons(user_id) if group_owners.error is None else []
        unique_groups = sorted(set(groups) | set(eligible_groups or ()) | set(owned))
        if eligible_groups is None:
            unique_groups.append(GROUP_ELIGIBILITY_UNREADABLE)
        if group_owners.error is not None:
            unique_groups.append(GROUP_OWNERS_UNREADABLE)
        ownerships = owners.reasons(user_id)
        return Privilege(
            roles=roles,
            role_assignable_groups=unique_groups,
            is_privileged=bool(roles or unique_groups or ownerships),
            harmless_roles=harmless,
            ownerships=ownerships,
        )

    async def _active_privilege(self, user_id: str) -> tuple[dict[str, str], list[str]]:
        """Active roles (template id -> display name) and role-assignable groups ("Name (member)").

        A group that comes back with `isAssignableToRole` null ("limited information": the app may not read
        groups, https://learn.microsoft.com/graph/api/user-list-transitivememberof) cannot be told apart: the
        target counts as privileged (GROUP_MEMBERSHIPS_UNREADABLE).

        The two sources do not depend on each other, so they are read at the same time: one round trip on the
        critical path of Review and Confirm, not two (a failure of one cancels the other)."""
        role_ids: dict[str, str] = {}  # template id -> display name
        groups: list[str] = []
        assigned: dict[str, str] = {}  # template id -> name, from the role assignments

        async def member_of() -> None:
            async for item in self._client.paginate(f"{user_path(user_id)}/transitiveMemberOf"):
                kind = str(item.get("@odata.type") or "")
                if kind == "#microsoft.graph.directoryRole":
                    template = str(item.get("roleTemplateId") or item.get("id") or "").lower()
                    role_ids[template] = str(item.get("displayName") or KNOWN_ROLES.get(template) or template)
                elif kind == "#microsoft.graph.group" and item.get("isAssignableToRole"):
                    groups.append(f"{item.get('displayName') or item.get('id')} (member)")
                elif kind == "#microsoft.graph.group" and "isAssignableToRole" in item:
                    if item["isAssignableToRole"] is None and GROUP_MEMBERSHIPS_UNREADABLE not in groups:
                        groups.append(GROUP_MEMBERSHIPS_UNREADABLE)

        async def assignments() -> None:
            async for item in self._client.paginate(
                "/roleManagement/directory/roleAssignments",
                {"$filter": f"principalId eq {odata_string(user_id)}"},
            ):
                template = str(item.get("roleDefinitionId") or "").lower()
                if not template or template in assigned:
                    continue
                name = KNOWN_ROLES.get(template) or f"Role {template}"  # a custom role counts as privileged
                scope = str(item.get("directoryScopeId") or "/")
                if scope != "/":
                    name = f"{name} (scope {scope})"
                assigned[template] = name

        tasks = [asyncio.ensure_future(member_of()), asyncio.ensure_future(assignments())]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        for template, name in assigned.items():
            role_ids.setdefault(
                template, name
            )  # the directory role's own name (transitiveMemberOf) comes first
        return role_ids, groups

    async def _eligible_roles(self, user_id: str) -> dict[str, str] | None:
        """PIM-eligible roles of the user (template id -> "Name (eligible)"), None when they cannot be read."""
        found: dict[str, str] = {}
        try:
            async for item in self._client.paginate(
                "/roleManagement/directory/roleEligibilityScheduleInstances",
                {"$filter": f"principalId eq {odata_string(user_id)}"},
            ):
                template = str(item.get("roleDefinitionId") or "").lower()
                if not template or template in found:
                    continue
                name = KNOWN_ROLES.get(template) or f"Role {template}"
                scope = str(item.get("directoryScopeId") or "/")
                if scope != "/":
                    name = f"{name} (scope {scope})"
                found[template] = f"{name} (eligible)"
        except GraphError as exc:
            if exc.code == PIM_NOT_LICENSED:
                return {}
            if not refused_this_read(exc):
                raise
            log.warning(
                "role eligibility could not be read; the target counts as privileged",
                extra={"status": exc.status, "code": exc.code, "request_id": exc.request_id},
            )
            return None
        return found

    async def _eligible_groups(self, user_id: str) -> list[str] | None:
        """Role-assignable groups the user is eligible to join or own through PIM for Groups ("Name (eligible
        member)" / "Name (eligible owner)"), None when they cannot be read.

        `GET /identityGovernance/privilegedAccess/group/eligibilityScheduleInstances?$filter=principalId eq '…'`
        (https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityscheduleinstances: the
        $filter on principalId or groupId is required; application permission
        PrivilegedEligibilitySchedule.Read.AzureADGroup; accessId member | owner). The group is expanded to tell
        whether it is role-assignable; an instance without the expanded group counts (it cannot be told apart), one
        whose group is gone (null) does not. No Entra ID P2 (AadPremiumLicenseRequired): nobody is eligible.
        """
        found: list[str] = []
        try:
            async for item in self._client.paginate(
                "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
                {
                    "$filter": f"principalId eq {odata_string(user_id)}",
                    "$expand": "group($select=id,displayName,isAssignableToRole)",
                },
            ):
                group = item.get("group")
                if isinstance(group, dict) and group.get("isAssignableToRole") is False:
                    continue
                if group is None and "group" in item:
                    continue  # the group is gone: nothing to activate
                name = (group or {}).get("displayName") or item.get("groupId") or "?"
                access = "owner" if str(item.get("accessId") or "").lower() == "owner" else "member"
                found.append(f"{name} (eligible {access})")
        except GraphError as exc:
            if exc.code == PIM_NOT_LICENSED:
                return []
            if not refused_this_read(exc):
                raise
            log.warning(
                "group eligibility could not be read; the target counts as privileged",
                extra={"status": exc.status, "code": exc.code, "request_id": exc.request_id},
            )
            return None
        return found

    async def role_assignable_group_owners(self) -> GroupOwners:
        """The owners of the tenant's role-assignable groups, cached like bot_owners (a 403 OWNERS_RETRY_SECONDS,
        any other failure not at all). Never raises for a Graph failure: `error` and `failure` say what went
        wrong."""
        owners: GroupOwners = await self._cached_owners(
            "_group_owners", self._group_owners_lock, self._read_group_owners
        )
        return owners

    async def _cached_owners(self, slot: str, lock: asyncio.Lock, read: Callable[[], Awaitable[Any]]) -> Any:
        """A tenant-wide owner list (GroupOwners, BotOwners) from the cache in attribute `slot`, else read once
        (the others wait for its answer) and kept OWNERS_CACHE_SECONDS: a missing permission OWNERS_RETRY_SECONDS,
        any other failure not at all."""
        cached = getattr(self, slot)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        async with lock:
            cached = getattr(self, slot)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
            owners = await read()
            ttl = self._owners_cache_seconds
            if owners.error is not None:
                # a missing permission stays missing for a while; any other failure is asked again next time
                ttl = min(ttl, OWNERS_RETRY_SECONDS) if owners.missing_permission else 0.0
            setattr(self, slot, (self._clock() + ttl, owners) if ttl > 0 else None)
            return owners

    async def _read_group_owners(self) -> GroupOwners:
        """`GET /groups?$filter=isAssignableToRole eq true&$select=id,displayName`, then `GET /groups/{id}/owners`
        of each, GROUP_OWNER_READS at a time (https://learn.microsoft.com/graph/api/group-list,
        https://learn.microsoft.com/graph/api/group-list-owners: application permission GroupMember.Read.All).
        `eq` on isAssignableToRole works without the advanced query headers
        (https://learn.microsoft.com/graph/api/resources/group: "Supports $filter (eq, ne, not)"; only ne/not need
        ConsistencyLevel: eventual), so the list is not eventually consistent. A group deleted between the two
        reads (404) has no owners. This replaces `GET /users/{id}/ownedObjects`, which Microsoft's page lists as
        "Application: Not supported" (https://learn.microsoft.com/graph/api/user-list-ownedobjects)."""
        try:
            groups = [
                (str(item["id"]), str(item.get("displayName") or item["id"]))
                async for item in self._client.paginate(
                    "/groups",
                    {
                        "$filter": "isAssignableToRole eq true",
                        "$select": "id,displayName",
                        "$top": str(GROUP_MEMBERS_PAGE),
                    },
                )
                if isinstance(item, dict) and item.get("id")
            ]
            limit = asyncio.Semaphore(GROUP_OWNER_READS)

            async def owners_of(group_id: str) -> frozenset[str]:
                async with limit:
                    return await self._owner_ids(
                        f"/groups/{quote(group_id.lower(), safe='')}/owners", missing_ok=True
                    )

            found = await asyncio.gather(*(owners_of(gid) for gid, _ in groups))
        except GraphError as exc:
            missing = (
                missing_permission(exc.method, exc.url) or "GroupMember.Read.All"
                if isinstance(exc, PermissionDeniedError)
                else None
            )
            log.warning(
                "the owners of role-assignable groups could not be read; every target counts as privileged",
                extra={
                    "status": exc.status,
                    "code": exc.code,
                    "request_id": exc.request_id,
                    "missing_permission": missing,
                },
            )
            return GroupOwners(
                error=f"{exc.status or ''} {exc.code}".strip() or type(exc).__name__,
                missing_permission=missing,
                failure=exc,
            )
        by_owner: dict[str, list[str]] = {}
        for (_, name), owner_ids in zip(groups, found, strict=True):
            for owner in owner_ids:
                by_owner.setdefault(owner, []).append(name)
        return GroupOwners(by_owner={owner: tuple(sorted(names)) for owner, names in by_owner.items()})

    async def bot_owners(self) -> BotOwners:
        """The owners of this bot's application and of its service principal, cached OWNERS_CACHE_SECONDS (a 403
        OWNERS_RETRY_SECONDS, any other failure not at all). Never raises for a Graph failure: `error` says what
        went wrong."""
        app_id = self._app_id
        if not app_id:
            return BotOwners()
        owners: BotOwners = await self._cached_owners(
            "_owners", self._owners_lock, lambda: self._read_bot_owners(app_id)
        )
        return owners

    async def _read_bot_owners(self, app_id: str) -> BotOwners:
        """`GET /applications(appId='…')/owners` and `GET /servicePrincipals(appId='…')/owners`
        (https://learn.microsoft.com/graph/api/application-list-owners,
        https://learn.microsoft.com/graph/api/serviceprincipal-list-owners: application permission
        Application.Read.All). An application registered in another tenant has no registration here (404): only
        its service principal's owners are in this directory."""
        key = f"(appId={odata_string(app_id)})"
        try:
            application, service_principal = await asyncio.gather(
                self._owner_ids(f"/applications{key}/owners", missing_ok=True),
                self._owner_ids(f"/servicePrincipals{key}/owners", missing_ok=False),
            )
        except GraphError as exc:
            missing = OWNERS_PERMISSION if isinstance(exc, PermissionDeniedError) else None
            log.warning(
                "the owners of this bot's application could not be read; every target counts as privileged",
                extra={
                    "status": exc.status,
                    "code": exc.code,
                    "request_id": exc.request_id,
                    "missing_permission": missing,
                },
            )
            return BotOwners(
                error=f"{exc.status or ''} {exc.code}".strip() or type(exc).__name__,
                missing_permission=missing,
                failure=exc,
            )
        return BotOwners(application=application, service_principal=service_principal)

    async def _owner_ids(self, path: str, *, missing_ok: bool) -> frozenset[str]:
        found: set[str] = set()
        try:
            async for item in self._client.paginate(path, {"$select": "id"}):
                if isinstance(item, dict) and item.get("id"):
                    found.add(str(item["id"]).lower())
        except NotFoundError:
            if not missing_ok:
                raise
        return frozenset(found)

    async def manager(self, user_id: str) -> TargetUser | None:
        try:
            response = await self._client.get(
                f"{user_path(user_id)}/manager", params={"$select": USER_SELECT}
            )
        except NotFoundError:
            return None
        if not isinstance(response.json, dict) or not response.json.get("id"):
            return None
        return _target(response.json)

    async def organization_name(self) -> str | None:
        """The tenant's display name, or None when Graph does not tell (the caller has a fallback)."""
        try:
            response = await self._client.get("/organization", params={"$select": "id,displayName"})
        except GraphError as exc:
            log.warning(
                "organization name unavailable",
                extra={"status": exc.status, "code": exc.code, "request_id": exc.request_id},
            )
            return None
        values = (response.json or {}).get("value") or []
        if values and isinstance(values[0], dict) and values[0].get("displayName"):
            return str(values[0]["displayName"])
        return None

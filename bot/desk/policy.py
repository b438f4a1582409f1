"""Who may ask for a change, whose MFA may be changed, and who may approve: decided on the server from the
activity's identity and Microsoft Graph, never from card data.

Rules:
- the activity comes from the configured tenant (channelData.tenant.id / conversation.tenantId);
- the requester is a transitive member of HELPDESK_GROUP_ID;
- nobody changes their own MFA through the bot;
- privileged targets (directory roles except the harmless ones, active or PIM-eligible; members/owners of
  role-assignable groups, also PIM-eligible ones; owners of this bot's Graph application or service principal)
  only by a transitive member of PRIVILEGED_GROUP_ID;
- guests (Entra userType Guest) neither ask for changes nor approve them;
- approval is required by APPROVAL_POLICY (always | privileged | never); privileged targets are approved by the
  privileged group, the rest by APPROVER_GROUP_ID (or the target's manager when MANAGER_APPROVAL is on);
- an approver is never the requester or the target.
Group memberships are cached for ROLE_CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.persistence.models import ChangeRequest, Person
from graph.outcome import TargetUser


@dataclass(frozen=True)
class Roles:
    """What a person may do. A guest (Entra userType Guest, read from Graph) holds no role, whatever their
    groups: guests neither ask for changes nor decide them."""

    helpdesk: bool
    approver: bool
    privileged: bool
    guest: bool = False


@dataclass
class Decision:
    allowed: bool
    reason_key: str | None = None  # bot/views/texts.py key explaining a refusal
    params: dict[str, Any] = field(default_factory=dict)
    # The facts below are recorded on the request; the confirmation card puts them into words, one line per
    # rule (bot.views.cards.confirmation_rules).
    privileged: bool = False
    privilege_reasons: list[str] = field(default_factory=list)
    approval_required: bool = False
    approver_group: Literal["approver", "privileged"] | None = None


def refuse(reason_key: str, **params: Any) -> Decision:
    return Decision(allowed=False, reason_key=reason_key, params=params)


def activity_tenant_id(activity: Any) -> str | None:
    """The tenant of an activity: channelData.tenant.id, else conversation.tenantId."""
    channel_data = getattr(activity, "channel_data", None)
    if isinstance(channel_data, dict):
        tenant = channel_data.get("tenant")
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and tenant["id"]:
            return tenant["id"]
    conversation = getattr(activity, "conversation", None)
    tenant_id = getattr(conversation, "tenant_id", None)
    return tenant_id if isinstance(tenant_id, str) and tenant_id else None


class Policy:
    def __init__(self, directory: Any, settings: Any, *, clock: Callable[[], Any] | None = None) -> None:
        self._directory = directory
        self._settings = settings
        self._monotonic = time.monotonic
        self._cache: dict[str, tuple[float, Roles]] = {}
        self._privilege_cache: dict[str, tuple[float, Any]] = {}
        self._members_cache: dict[str, tuple[float, frozenset[str]]] = {}  # group id -> member user ids
        self._locks: dict[str, asyncio.Lock] = {}
        self._clock = clock

    # ---------------------------------------------------------------------------------------------- roles
    async def roles(self, aad_object_id: str, *, fresh: bool = False) -> Roles:
        """The person's roles from their group memberships; `fresh` reads Graph now (and renews the cache): the
        facts that decide a change are re-read at the moment of the change."""
        key = aad_object_id.lower()
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now and not fresh:
            return cached[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached and cached[0] > self._monotonic() and not fresh:
                return cached[1]
            s = self._settings
            groups = [g for g in (s.helpdesk_group_id, s.approver_group_id, s.privileged_group_id) if g]
            # the groups and the account's userType, read at the same time
            found, user = await asyncio.gather(
                self._directory.member_groups(aad_object_id, groups),
                self._directory.find_user(aad_object_id),
            )
            member_of = {g.lower() for g in found}
            guest = user is None or user.user_type.lower() == "guest"
            roles = Roles(
                helpdesk=not guest and bool(s.helpdesk_group_id) and s.helpdesk_group_id.lower() in member_of,
                approver=not guest and bool(s.approver_group_id) and s.approver_group_id.lower() in member_of,
                privileged=not guest
                and bool(s.privileged_group_id)
                and s.privileged_group_id.lower() in member_of,
                guest=guest,
            )
            if s.role_cache_seconds > 0:
                self._cache[key] = (self._monotonic() + s.role_cache_seconds, roles)
            return roles

    def roles_cached(self, aad_object_id: str) -> bool:
        """Whether roles() would answer from the cache now (no Graph call)."""
        cached = self._cache.get(aad_object_id.lower())
        return bool(cached and cached[0] > self._monotonic())

    async def privilege(self, user_id: str, *, fresh: bool = False) -> Any:
        """The target's privilege (directory roles, role-assignable groups), cached like memberships; `fresh`
        reads Graph now (and renews the cache)."""
        key = user_id.lower()
        cached = self._privilege_cache.get(key)
        if cached and cached[0] > self._monotonic() and not fresh:
            return cached[1]
        # one lookup per target at a time: concurrent reviews of the same user wait for it instead of each
        # asking Graph (memberOf and role assignments, several pages) on their own
        lock = self._locks.setdefault(f"privilege:{key}", asyncio.Lock())
        async with lock:
            cached = self._privilege_cache.get(key)
            if cached and cached[0] > self._monotonic() and not fresh:
                return cached[1]
            privilege = await self._directory.privilege(user_id)
            if self._settings.role_cache_seconds > 0:
                self._privilege_cache[key] = (
                    self._monotonic() + self._settings.role_cache_seconds,
                    privilege,
                )
            return privilege

    async def group_members(self, group_id: str) -> frozenset[str]:
        """The enabled member users (object ids, lower case, no guests) of a group, transitively: one paged
        listing per group, cached like memberships (ROLE_CACHE_SECONDS)."""
        key = group_id.lower()
        cached = self._members_cache.get(key)
        if cached and cached[0] > self._monotonic():
            return cached[1]
        # one listing per group at a time: concurrent submissions wait for it instead of each paging the group
        lock = self._locks.setdefault(f"members:{key}", asyncio.Lock())
        async with lock:
            cached = self._members_cache.get(key)
            if cached and cached[0] > self._monotonic():
                return cached[1]
            members = frozenset(m.lower() for m in await self._directory.group_members(group_id))
            if self._settings.role_cache_seconds > 0:
                self._members_cache[key] = (self._monotonic() + self._settings.role_cache_seconds, members)
            return members

    async def approver_candidates(self, req: ChangeRequest) -> frozenset[str]:
        """Who may be asked to decide `req` (object ids, lower case): the privileged group's members for a
        privileged request, else the approver and privileged groups' members (and the target's manager when
        MANAGER_APPROVAL is on); never the requester or the target, never a guest. A few Graph calls however many
        people use the bot; only candidates: the click itself is checked again (check_approver)."""
        s = self._settings
        if req.target_privileged or req.approver_group == "privileged":
            groups = [s.privileged_group_id]
        else:
            groups = [s.approver_group_id, s.privileged_group_id]
        found: set[str] = set()
        for gid in groups:
            if gid:
                found |= await self.group_members(gid)
        if s.manager_approval and not (req.target_privileged or req.approver_group == "privileged"):
            manager = await self._directory.manager(req.target_id)
            if manager is not None and manager.account_enabled and manager.user_type.lower() == "member":
                found.add(manager.id.lower())
        found.discard(req.requester.aad_object_id.lower())
        found.discard(req.target_id.lower())
        return frozenset(found)

    def forget(self, aad_object_id: str | None = None) -> None:
        if aad_object_id is None:
            self._cache.clear()
            self._privilege_cache.clear()
            self._members_cache.clear()
        else:
            self._cache.pop(aad_object_id.lower(), None)
            self._privilege_cache.pop(aad_object_id.lower(), None)

    # ---------------------------------------------------------------------------------------------- checks
    def check_tenant(self, tenant_id: str | None) -> Decision:
        expected = self._settings.tenant_id
        if expected is None:
            return Decision(allowed=True)
        if not tenant_id or tenant_id.strip().lower() != expected.lower():
            return refuse("refusal.other_tenant")
        return Decision(allowed=True)

    async def check_requester(self, person: Person, tenant_id: str | None) -> Decision:
        tenant = self.check_tenant(tenant_id)
        if not tenant.allowed:
            return tenant
        if not person.aad_object_id:
            return refuse("refusal.bad_input")
        roles = await self.roles(person.aad_object_id)
        if roles.guest:
            return refuse("refusal.guest")
        if not roles.helpdesk:
            return refuse("refusal.not_helpdesk")
        return Decision(allowed=True)

    async def check_target(
        self, person: Person, target: TargetUser, *, verification: str | None = None
    ) -> Decision:
        """May `person` ask for a change of `target`, and what follows (privilege, approval). `verification`: how
        the caller was verified; in person, or a target for whom VERIFICATION_POLICY says so, needs an approver
        whatever APPROVAL_POLICY says."""
        if target.id.lower() == person.aad_object_id.lower():
            return refuse("refusal.own_account")
        privilege = await self.privilege(target.id)
        reasons = list(privilege.reasons)  # roles, role-assignable groups, ownership of this bot's app
        privileged = bool(privilege.is_privileged)
        if privileged:
            roles = await self.roles(person.aad_object_id)
            if not roles.privileged:
                return Decision(
                    allowed=False,
                    reason_key="refusal.target_privileged",
                    params={"roles": ", ".join(reasons)},
                    privileged=True,
                    privilege_reasons=reasons,
                )
        policy = self._settings.approval_policy
        approval_required = policy == "always" or (policy == "privileged" and privileged)
        approver_group: Literal["approver", "privileged"] | None = None
        if approval_required:
            approver_group = "privileged" if privileged else "approver"
        checks = getattr(self._settings, "verification_policy", None)
        if checks is not None and checks.enabled and verification and not approval_required:
            # in person, or a target the verification policy says so for: an approver, whatever APPROVAL_POLICY says
            if verification == "in_person" or checks.approval(privileged):
                approval_required = True
                approver_group = "privileged" if privileged else "approver"
        return Decision(
            allowed=True,
            privileged=privileged,
            privilege_reasons=reasons,
            approval_required=approval_required,
            approver_group=approver_group,
        )

    async def check_approver(
        self, person: Person, req: ChangeRequest, *, fresh: bool = False, privileged: bool | None = None
    ) -> Decision:
        """May `person` decide `req`? `fresh` re-reads the approver's groups (a click that decides); `privileged`
        overrides what the request says about its target (the target's privilege re-read at the click)."""
        aad = person.aad_object_id.lower()
        if not aad:
            return refuse("refusal.bad_input")
        if aad == req.requester.aad_object_id.lower():
            return refuse("refusal.approver_is_requester")
        if aad == req.target_id.lower():
            return refuse("refusal.approver_is_target")
        roles = await self.roles(person.aad_object_id, fresh=fresh)
        if roles.guest:
            return refuse("refusal.guest_approver")
        if privileged is None:
            privileged = req.target_privileged or req.approver_group == "privileged"
        if privileged:
            if roles.privileged:
                return Decision(allowed=True, privileged=True)
            return refuse("refusal.not_approver", group_key="approval.group.privileged")
        if roles.approver or roles.privileged:
            return Decision(allowed=True)
        if self._settings.manager_approval:
            manager = await self._directory.manager(req.target_id)
            if manager is not None and manager.id.lower() == aad:
                return Decision(allowed=True)
        return refuse("refusal.not_approver", group_key="approval.group.approver")


# ---------------------------------------------------------------------------------------------- re-checks


@dataclass(frozen=True)
class Facts:
    """The facts that decide a change, read from Graph without the cache at the moment they decide it: at an
    approver's click and in the step that starts the change."""

    requester_helpdesk: bool
    requester_privileged: bool
    target_privileged: bool
    privilege_reasons: list[str]


@dataclass(frozen=True)
class Hold:
    """Why a request may not go ahead now. `cancel`: it ends (cancelled, every card says why); otherwise only the
    click is refused and the request keeps waiting (for a privileged approver)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    cancel: bool = True


async def read_facts(policy: Policy, req: ChangeRequest) -> Facts:
    """The requester's groups and the target's privilege, both read from Graph now (GraphError propagates:
    nothing may run on facts that could not be read)."""
    roles, privilege = await asyncio.gather(
        policy.roles(req.requester.aad_object_id, fresh=True),
        policy.privilege(req.target_id, fresh=True),
    )
    return Facts(
        requester_helpdesk=roles.helpdesk,
        requester_privileged=roles.privileged,
        target_privileged=bool(privilege.is_privileged),
        privilege_reasons=list(privilege.reasons),
    )


def needs_privileged_approval(settings: Any, facts: Facts) -> bool:
    return facts.target_privileged and settings.approval_policy in ("always", "privileged")


def hold_for(req: ChangeRequest, facts: Facts, settings: Any, *, starting: bool) -> Hold | None:
    """What the re-read facts forbid. At a click (`starting` False) a target that has become privileged only
    asks for a privileged approver; when the change starts, a request that was not approved by one ends."""
    if not facts.requester_helpdesk:
        return Hold("hold.requester_not_helpdesk", {"name": req.requester.name})
    if facts.target_privileged and not facts.requester_privileged:
        return Hold("hold.target_now_privileged", {"roles": ", ".join(facts.privilege_reasons)})
    if starting and needs_privileged_approval(settings, facts):
        approved_by_privileged = (
            req.decided_by is not None and req.approval_required and req.approver_group == "privileged"
        )
        if not approved_by_privileged:
            return Hold("hold.needs_privileged_approval", {"roles": ", ".join(facts.privilege_reasons)})
    return None

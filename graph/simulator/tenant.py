"""The simulated tenant: users, phone methods, groups, role assignments and eligibilities, and applications.

Compact by design: one slotted object per user, phone methods as small immutable records shared copy-on-write,
and indexes (UPN, mail, SMS sign-in holders) so that no request walks the whole directory unless it has to.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .phones import METHOD_IDS, PHONE_TYPES, digits

_EMPTY: dict[str, Phone] = {}


@dataclass(frozen=True, slots=True)
class Phone:
    type: str
    number: str
    sms: str  # smsSignInState

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": METHOD_IDS[self.type],
            "phoneNumber": self.number,
            "phoneType": self.type,
            "smsSignInState": self.sms,
        }


def default_sms_state(phone_type: str, sms_policy: bool) -> str:
    """smsSignInState of a phone method the tenant data (or a test) gives without one."""
    if phone_type != "mobile":
        return "notSupported"
    return "ready" if sms_policy else "notAllowedByPolicy"


class User:
    __slots__ = (
        "id",
        "upn",
        "display_name",
        "given_name",
        "surname",
        "mail",
        "user_type",
        "usage_location",
        "account_enabled",
        "mobile_phone",
        "business_phones",
        "job_title",
        "manager_id",
        "sms_policy",
        "default_method",
        "has_mailbox",
        "other_methods",
        "phones",
        "visible",
        "pending",
    )

    def __init__(self, data: dict[str, Any]) -> None:
        self.id: str = str(data["id"])
        self.upn: str = str(data["userPrincipalName"])
        self.display_name: str = data.get("displayName") or self.upn
        self.given_name: str | None = data.get("givenName")
        self.surname: str | None = data.get("surname")
        self.mail: str | None = data.get("mail")
        self.user_type: str = sys.intern(data.get("userType") or "Member")
        location = data.get("usageLocation")
        self.usage_location: str | None = sys.intern(location) if isinstance(location, str) else None
        self.account_enabled: bool = bool(data.get("accountEnabled", True))
        self.mobile_phone: str | None = data.get("mobilePhone")
        self.business_phones: tuple[str, ...] = tuple(data.get("businessPhones") or ())
        self.job_title: str | None = data.get("jobTitle")
        self.manager_id: str | None = data.get("managerId")
        self.sms_policy: bool = bool(data.get("smsSignInEnabledByPolicy", True))
        self.default_method: str | None = data.get("defaultMethod")
        self.has_mailbox: bool = bool(data.get("hasMailbox", self.mail is not None))
        self.other_methods: tuple[str, ...] = tuple(data.get("otherMethods") or ())
        phones: dict[str, Phone] = {}
        for item in data.get("phoneMethods") or ():
            ptype = item["phoneType"]
            if ptype not in PHONE_TYPES:
                raise ValueError(f"user {self.id}: unknown phoneType {ptype!r}")
            sms = sys.intern(str(item.get("smsSignInState") or default_sms_state(ptype, self.sms_policy)))
            phones[ptype] = Phone(sys.intern(ptype), item["phoneNumber"], sms)
        self.phones: dict[str, Phone] = phones or _EMPTY
        self.visible: dict[str, Phone] = self.phones
        self.pending: list[tuple[float, dict[str, Phone]]] | None = None

    def visible_phones(self, now: float | None = None) -> dict[str, Phone]:
        """Phone methods as reads see them (writes may become visible later)."""
        if self.pending:
            now = time.monotonic() if now is None else now
            while self.pending and self.pending[0][0] <= now:
                self.visible = self.pending.pop(0)[1]
            if not self.pending:
                self.pending = None
        return self.visible

    def _profile(self) -> dict[str, Any]:
        """The user's profile properties: the start of both the Graph view and the saved form."""
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.display_name,
            "givenName": self.given_name,
            "surname": self.surname,
            "mail": self.mail,
            "userType": self.user_type,
            "usageLocation": self.usage_location,
            "accountEnabled": self.account_enabled,
            "mobilePhone": self.mobile_phone,
            "businessPhones": list(self.business_phones),
            "jobTitle": self.job_title,
        }

    def graph_properties(self) -> dict[str, Any]:
        return {**self._profile(), "officeLocation": None, "preferredLanguage": None}

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._profile(),
            "managerId": self.manager_id,
            "smsSignInEnabledByPolicy": self.sms_policy,
            "defaultMethod": self.default_method,
            "hasMailbox": self.has_mailbox,
            "otherMethods": list(self.other_methods),
            "phoneMethods": [
                {"phoneType": p.type, "phoneNumber": p.number, "smsSignInState": p.sms}
                for p in self.phones.values()
            ],
        }


def _derived_id(client_id: str, kind: str) -> str:
    """A stable object id for an application's registration or service principal the tenant data leaves out."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim/{kind}/{client_id}"))


@dataclass
class Application:
    """An app registration and its service principal in this tenant. `owners` are the object ids of the
    registration's owners, `service_principal_owners` those of the service principal's (either may add a
    credential to the app and act with its application permissions). `exchange_mail_send`: the mailboxes (addresses)
    the app may send as through the Exchange Online role "Application Mail.Send" in a management scope (Role Based
    Access Control for Applications), without `Mail.Send` in `roles`."""

    client_id: str
    client_secret: str | None = None
    certificate_thumbprint: str | None = None
    certificate_pem: str | None = None
    roles: list[str] = field(default_factory=list)
    display_name: str = "MFA Phone Bot"
    object_id: str = ""
    service_principal_id: str = ""
    owners: list[str] = field(default_factory=list)
    service_principal_owners: list[str] = field(default_factory=list)
    exchange_mail_send: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.object_id = self.object_id or _derived_id(self.client_id, "application")
        self.service_principal_id = self.service_principal_id or _derived_id(
            self.client_id, "servicePrincipal"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Application:
        return cls(
            client_id=str(data["clientId"]),
            client_secret=data.get("clientSecret"),
            certificate_thumbprint=data.get("certificateThumbprint"),
            certificate_pem=data.get("certificatePem"),
            roles=list(data.get("roles") or []),
            display_name=data.get("displayName") or "MFA Phone Bot",
            object_id=str(data.get("objectId") or ""),
            service_principal_id=str(data.get("servicePrincipalId") or ""),
            owners=[str(o) for o in data.get("owners") or []],
            service_principal_owners=[str(o) for o in data.get("servicePrincipalOwners") or []],
            exchange_mail_send=[str(a) for a in data.get("exchangeMailSend") or []],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "certificateThumbprint": self.certificate_thumbprint,
            "certificatePem": self.certificate_pem,
            "roles": list(self.roles),
            "displayName": self.display_name,
            "objectId": self.object_id,
            "servicePrincipalId": self.service_principal_id,
            "owners": list(self.owners),
            "servicePrincipalOwners": list(self.service_principal_owners),
            "exchangeMailSend": list(self.exchange_mail_send),
        }


# The manifest id (Teams app id) of the bot's app in the tenant app catalog when the tenant data names no catalog:
# the value TEAMS_APP_ID must have for a bot that talks to the simulator (the demo and the tests set it).
DEFAULT_TEAMS_APP_EXTERNAL_ID = "7c0e3b8a-4d51-4f2a-9e66-0b9f2d4c1a57"
DEFAULT_TEAMS_APP_ID = (
    "b1c5353a-7aca-41b3-830f-27d5218fe0e5"  # the catalog's own id for it (server-generated)
)
DEFAULT_TEAMS_BOT_ID = "28:5d1e7c3b-2a4f-4e6d-9b8c-0a1b2c3d4e5f"


@dataclass
class TeamsApp:
    """An app of the tenant app catalog (teamsApp, https://learn.microsoft.com/graph/api/resources/teamsapp):
    `id` is generated by the catalog, `external_id` is the id of the app's manifest. `bot_id` is the bot's id in
    Teams, part of each 1:1 chat id with it. `web_application_id` is the manifest's webApplicationInfo.id (None:
    the manifest has none)."""

    id: str
    external_id: str
    display_name: str = "MFA Phone Helpdesk"
    distribution_method: str = "organization"
    bot_id: str = DEFAULT_TEAMS_BOT_ID
    web_application_id: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TeamsApp:
        return cls(
            id=str(data["id"]),
            external_id=str(data["externalId"]),
            display_name=data.get("displayName") or "MFA Phone Helpdesk",
            distribution_method=data.get("distributionMethod") or "organization",
            bot_id=data.get("botId") or DEFAULT_TEAMS_BOT_ID,
            web_application_id=data.get("webApplicationId"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "externalId": self.external_id,
            "displayName": self.display_name,
            "distributionMethod": self.distribution_method,
            "botId": self.bot_id,
            "webApplicationId": self.web_application_id,
        }

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "externalId": self.external_id,
            "displayName": self.display_name,
            "distributionMethod": self.distribution_method,
        }


@dataclass
class TeamsAppInstallation:
    """A catalog app installed in a user's personal scope, and the 1:1 chat between the user and its bot."""

    user_id: str
    teams_app_id: str
    chat_id: str
    created: str = ""

    @property
    def id(self) -> str:
        # The shape of Microsoft's examples: base64 of "{user id}##{teams app id}", without padding
        # (https://learn.microsoft.com/graph/api/userteamwork-get-installedapps).
        raw = f"{self.user_id}##{self.teams_app_id}".encode()
        return base64.b64encode(raw).decode().rstrip("=")

    def to_dict(self) -> dict[str, Any]:
        return {
            "userId": self.user_id,
            "teamsAppId": self.teams_app_id,
            "chatId": self.chat_id,
            "created": self.created,
        }


def one_on_one_chat_id(user_id: str, bot_id: str) -> str:
    """The id Teams gives the 1:1 chat between a user and a bot: ``19:{user id}_{bot id}@unq.gbl.spaces``."""
    return f"19:{user_id}_{bot_id.removeprefix('28:')}@unq.gbl.spaces"


@dataclass
class Group:
    id: str
    display_name: str
    is_assignable_to_role: bool = False
    members: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Group:
        return cls(
            id=str(data["id"]),
            display_name=data.get("displayName") or data["id"],
            is_assignable_to_role=bool(data.get("isAssignableToRole", False)),
            members=list(data.get("members") or []),
            owners=list(data.get("owners") or []),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "isAssignableToRole": self.is_assignable_to_role,
            "members": list(self.members),
            "owners": list(self.owners),
        }


@dataclass
class RoleAssignment:
    role_template_id: str
    display_name: str
    principal_id: str
    directory_scope_id: str = "/"

    @property
    def id(self) -> str:
        return f"{self.role_template_id[:8]}-{self.principal_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "roleTemplateId": self.role_template_id,
            "displayName": self.display_name,
            "principalId": self.principal_id,
            "directoryScopeId": self.directory_scope_id,
        }


@dataclass
class RoleEligibility(RoleAssignment):
    """A PIM-eligible role (roleEligibilityScheduleInstances): the principal may activate it at any time."""

    start_date_time: str | None = None
    end_date_time: str | None = None  # None: permanently eligible

    @property
    def id(self) -> str:
        return f"{self.role_template_id[:8]}-{self.principal_id}-eligible"

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "startDateTime": self.start_date_time,
            "endDateTime": self.end_date_time,
        }


@dataclass
class GroupEligibility:
    """A membership or ownership of a group that the principal may activate through PIM for Groups
    (privilegedAccessGroupEligibilityScheduleInstance)."""

    group_id: str
    principal_id: str
    access_id: str = "member"  # member | owner
    start_date_time: str | None = None
    end_date_time: str | None = None  # None: permanently eligible

    @property
    def id(self) -> str:
        return f"{self.group_id}_{self.access_id}_{self.principal_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "groupId": self.group_id,
            "principalId": self.principal_id,
            "accessId": self.access_id,
            "startDateTime": self.start_date_time,
            "endDateTime": self.end_date_time,
        }


class Tenant:
    """Live tenant state. Tests may arrange it directly (``add_user``, ``set_phone``, attributes)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.tenant_id: str = str(data["tenantId"])
        self.display_name: str = data.get("displayName") or "Contoso"
        self.default_domain: str = data.get("defaultDomain") or "contoso.example"
        self.applications: list[Application] = [
            Application.from_dict(a) for a in data.get("applications") or []
        ]
        self.groups: dict[str, Group] = {}
        for g in data.get("groups") or []:
            group = Group.from_dict(g)
            self.groups[group.id] = group
        self.role_assignments: list[RoleAssignment] = [
            RoleAssignment(
                role_template_id=str(r["roleTemplateId"]),
                display_name=r.get("displayName") or r["roleTemplateId"],
                principal_id=str(r["principalId"]),
                directory_scope_id=r.get("directoryScopeId") or "/",
            )
            for r in data.get("roleAssignments") or []
        ]
        self.role_eligibilities: list[RoleEligibility] = [
            RoleEligibility(
                role_template_id=str(r["roleTemplateId"]),
                display_name=r.get("displayName") or r["roleTemplateId"],
                principal_id=str(r["principalId"]),
                directory_scope_id=r.get("directoryScopeId") or "/",
                start_date_time=r.get("startDateTime"),
                end_date_time=r.get("endDateTime"),
            )
            for r in data.get("roleEligibilities") or []
        ]
        self.group_eligibilities: list[GroupEligibility] = []
        for e in data.get("groupEligibilities") or []:
            access = str(e.get("accessId") or "member")
            if access not in ("member", "owner"):
                raise ValueError(f"group eligibility of {e.get('principalId')}: unknown accessId {access!r}")
            self.group_eligibilities.append(
                GroupEligibility(
                    group_id=str(e["groupId"]),
                    principal_id=str(e["principalId"]),
                    access_id=access,
                    start_date_time=e.get("startDateTime"),
                    end_date_time=e.get("endDateTime"),
                )
            )
        catalog = data.get("teamsApps")
        if catalog is None:  # a tenant that says nothing about Teams apps has the bot's app published, its
            # manifest's webApplicationInfo naming the tenant's first application (the bot's Graph app)
            first = (data.get("applications") or [{}])[0].get("clientId")
            catalog = [
                {
                    "id": DEFAULT_TEAMS_APP_ID,
                    "externalId": DEFAULT_TEAMS_APP_EXTERNAL_ID,
                    "webApplicationId": first,
                }
            ]
        self.teams_apps: list[TeamsApp] = [TeamsApp.from_dict(a) for a in catalog]
        self.teams_app_installations: list[TeamsAppInstallation] = [
            TeamsAppInstallation(
                str(i["userId"]), str(i["teamsAppId"]), str(i["chatId"]), str(i.get("created") or "")
            )
            for i in data.get("teamsAppInstallations") or []
        ]
        self.users: dict[str, User] = {}
        self.order: list[str] = []  # stable listing order for paging
        self._by_upn: dict[str, str] = {}
        self._by_mail: dict[str, str] = {}
        self._sms_holders: dict[str, set[str]] = {}  # digits -> users whose mobile holds it with state ready
        for u in data.get("users") or []:
            self.add_user(u)

    # ----- loading -------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, source: str | os.PathLike[str] | dict[str, Any] | Tenant) -> Tenant:
        if isinstance(source, Tenant):
            return cls(source.to_dict())
        if isinstance(source, dict):
            return cls(source)  # fields are copied into the model, the dict is not kept
        with open(Path(source), encoding="utf-8") as fh:
            return cls(json.load(fh))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "displayName": self.display_name,
            "defaultDomain": self.default_domain,
            "applications": [a.to_dict() for a in self.applications],
            "users": [self.users[i].to_dict() for i in self.order],
            "groups": [g.to_dict() for g in self.groups.values()],
            "roleAssignments": [r.to_dict() for r in self.role_assignments],
            "roleEligibilities": [r.to_dict() for r in self.role_eligibilities],
            "groupEligibilities": [e.to_dict() for e in self.group_eligibilities],
            "teamsApps": [a.to_dict() for a in self.teams_apps],
            "teamsAppInstallations": [i.to_dict() for i in self.teams_app_installations],
        }

    # ----- users ---------------------------------------------------------------------------------------------
    def add_user(self, data: dict[str, Any]) -> User:
        user = User(data)
        if user.id in self.users:
            raise ValueError(f"duplicate user id {user.id}")
        self.users[user.id] = user
        self.order.append(user.id)
        self._by_upn[user.upn.lower()] = user.id
        if user.mail:
            self._by_mail[user.mail.lower()] = user.id
        self._index_phones(user, _EMPTY, user.phones)
        return user

    def remove_user(self, user_id: str) -> None:
        user = self.users.pop(user_id)
        self.order.remove(user_id)
        self._by_upn.pop(user.upn.lower(), None)
        if user.mail:
            self._by_mail.pop(user.mail.lower(), None)
        self._index_phones(user, user.phones, _EMPTY)

    def user(self, ref: str) -> User | None:
        """Resolve a path segment the way Graph does: object id or userPrincipalName (case-insensitive)."""
        found = self.users.get(ref)
        if found is not None:
            return found
        uid = self._by_upn.get(ref.lower())
        return self.users.get(uid) if uid else None

    def user_by_address(self, address: str) -> User | None:
        uid = self._by_mail.get(address.lower()) or self._by_upn.get(address.lower())
        return self.users.get(uid) if uid else None

    def iter_users(self, start: int = 0) -> Iterator[tuple[int, User]]:
        order, users = self.order, self.users
        for index in range(start, len(order)):
            yield index, users[order[index]]

    def app(self, client_id: str) -> Application | None:
        for app in self.applications:
            if app.client_id == client_id:
                return app
        return None

    def app_by_object_id(self, object_id: str, *, service_principal: bool = False) -> Application | None:
        """The application whose registration (or, with `service_principal`, service principal) has this id."""
        for app in self.applications:
            if (app.service_principal_id if service_principal else app.object_id) == object_id:
                return app
        return None

    # ----- Teams apps ----------------------------------------------------------------------------------------
    def teams_app(self, teams_app_id: str) -> TeamsApp | None:
        return next((a for a in self.teams_apps if a.id == teams_app_id), None)

    def installations_of(self, user_id: str) -> list[TeamsAppInstallation]:
        return [i for i in self.teams_app_installations if i.user_id == user_id]

    def install_teams_app(self, user_id: str, app: TeamsApp, created: str = "") -> TeamsAppInstallation:
        installation = TeamsAppInstallation(user_id, app.id, one_on_one_chat_id(user_id, app.bot_id), created)
        self.teams_app_installations.append(installation)
        return installation

    # ----- phone methods -------------------------------------------------------------------------------------
    def commit_phones(self, user: User, phones: dict[str, Phone], visible_after_s: float = 0.0) -> None:
        """Replace a user's phone methods (authoritative at once, visible to reads after ``visible_after_s``)."""
        old = user.phones
        new = dict(phones) or _EMPTY
        user.phones = new
        self._index_phones(user, old, new)
        if visible_after_s > 0:
            if user.pending is None:
                user.pending = []
            user.pending.append((time.monotonic() + visible_after_s, new))
        else:
            user.visible = new
            user.pending = None

    def set_phone(self, user_id: str, phone_type: str, number: str | None, sms: str | None = None) -> None:
        """Arrange state for a test: set (or, with ``number=None``, remove) one phone method, visible at once."""
        user = self.users[user_id]
        phones = dict(user.phones)
        if number is None:
            phones.pop(phone_type, None)
        else:
            if sms is None:
                sms = default_sms_state(phone_type, user.sms_policy)
            phones[phone_type] = Phone(phone_type, number, sms)
        self.commit_phones(user, phones)

    def sms_holders(self, number: str) -> set[str]:
        """Users whose mobile method holds ``number`` with smsSignInState ready."""
        return self._sms_holders.get(digits(number), set())

    def _index_phones(self, user: User, old: dict[str, Phone], new: dict[str, Phone]) -> None:
        before, after = old.get("mobile"), new.get("mobile")
        if before == after:
            return
        if before is not None and before.sms == "ready":
            holders = self._sms_holders.get(digits(before.number))
            if holders is not None:
                holders.discard(user.id)
                if not holders:
                    del self._sms_holders[digits(before.number)]
        if after is not None and after.sms == "ready":
            self._sms_holders.setdefault(digits(after.number), set()).add(user.id)

    # ----- groups and roles ----------------------------------------------------------------------------------
    def transitive_groups(self, principal_id: str) -> list[Group]:
        """Groups that contain ``principal_id`` directly or through nested groups."""
        result: dict[str, Group] = {}
        frontier = [principal_id]
        while frontier:
            current = frontier.pop()
            for group in self.groups.values():
                if current in group.members and group.id not in result:
                    result[group.id] = group
                    frontier.append(group.id)
        return list(result.values())

    def transitive_members(self, group_id: str) -> tuple[list[str], list[str]]:
        """(user ids, nested group ids) of a group, directly or through nested groups, in the tenant's user
        order (stable across the pages of a listing)."""
        users: set[str] = set()
        groups: list[str] = []
        seen = {group_id}
        frontier = [group_id]
        while frontier:
            group = self.groups.get(frontier.pop())
            if group is None:
                continue
            for member in group.members:
                if member in self.groups:
                    if member not in seen:
                        seen.add(member)
                        groups.append(member)
                        frontier.append(member)
                elif member in self.users:
                    users.add(member)
        return [uid for uid in self.order if uid in users], groups

    def owned_groups(self, user_id: str) -> list[Group]:
        return [g for g in self.groups.values() if user_id in g.owners]

    def roles_of(self, user_id: str) -> list[RoleAssignment]:
        """Active role assignments that apply to a user: direct or through a role-assignable group."""
        principals = {user_id} | {g.id for g in self.transitive_groups(user_id) if g.is_assignable_to_role}
        return [r for r in self.role_assignments if r.principal_id in principals]

    def admin_user_ids(self) -> set[str]:
        admins: set[str] = set()
        for assignment in self.role_assignments:
            if assignment.principal_id in self.users:
                admins.add(assignment.principal_id)
            elif assignment.principal_id in self.groups:
                admins.update(self._members_transitive(assignment.principal_id))
        return admins

    def _members_transitive(self, group_id: str) -> set[str]:
        seen: set[str] = set()
        users: set[str] = set()
        frontier = [group_id]
        while frontier:
            group = self.groups.get(frontier.pop())
            if group is None or group.id in seen:
                continue
            seen.add(group.id)
            for member in group.members:
                if member in self.groups:
                    frontier.append(member)
                else:
                    users.add(member)
        return users

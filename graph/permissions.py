"""The application permission each Graph call of the bot needs: one table, from Microsoft's permission tables.

The simulator refuses a call whose token holds none of the accepted permission sets (graph/simulator/server.py);
the client names `least` (and the usual broader one) when Graph refuses one with 403 (`missing_permission`);
README's permission table lists the same rows. Each row cites the Microsoft page its permissions come from (the "Application" row of the page's
permission table, read 2026-12).

`accepted` lists alternatives: a token may make the call when it holds every permission of one of them. `least`
is the permission to grant: the narrowest one that works. Where Microsoft's generated table calls the broader
permission "least privileged" (the phone-method writes list UserAuthenticationMethod.ReadWrite.All, which covers
every authentication method, before UserAuthMethod-Phone.ReadWrite.All, which covers phone methods only), `least`
is the one narrower in what it allows, and the row says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = [
    "ENDPOINTS",
    "Requirement",
    "missing_permission",
    "requirement_for",
]


@dataclass(frozen=True)
class Requirement:
    key: str
    feature: str  # what the bot uses the call for (README's table)
    least: str  # the permission to grant ("A and B" when Graph wants two together)
    broader: str | None  # the broader permission that also works, named next to `least` on a 403
    accepted: tuple[
        frozenset[str], ...
    ]  # any one set, all of its permissions (empty: applications cannot call it)
    doc: str  # Microsoft's page
    method: str = "GET"
    path: str = ""  # regex over the path after /v1.0, without the query

    def allows(self, roles: frozenset[str] | set[str]) -> bool:
        """Whether a token with these application permissions (the `roles` claim) may make the call."""
        return any(alternative <= roles for alternative in self.accepted)

    def describe(self) -> str:
        """What to grant, for a message: "least (or broader)"."""
        return f"{self.least} (or {self.broader})" if self.broader else self.least


def _any(*names: str) -> tuple[frozenset[str], ...]:
    return tuple(frozenset({name}) for name in names)


_USER = r"/users(?:/[^/]+|\('[^/]*'\))"  # /users/{id or UPN} or /users('{UPN starting with $}')
_PHONE = rf"{_USER}/authentication/phoneMethods"
_LEARN = "https://learn.microsoft.com/graph/api/"

USER_READ = Requirement(
    "user_read",
    "finding the target user and the manager; the profile-phone pre-check of the owner search",
    "User.Read.All",
    "Directory.Read.All",
    _any("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    _LEARN + "user-get",  # also user-list, user-list-manager (the same Application row)
    "GET",
    rf"/users|{_USER}|{_USER}/manager",
)
PHONE_READ = Requirement(
    "phone_read",
    "reading a user's phone methods (every request; the owner search's $batch)",
    "UserAuthMethod-Phone.Read.All",
    "UserAuthenticationMethod.Read.All",
    _any(
        "UserAuthMethod-Phone.Read.All",
        "UserAuthMethod-Phone.ReadWrite.All",
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    ),
    _LEARN + "authentication-list-phonemethods",  # also phoneauthenticationmethod-get
    "GET",
    rf"{_PHONE}(?:/[^/]+)?",
)
# Microsoft's table for create/update/delete lists UserAuthenticationMethod.ReadWrite.All as least privileged and
# UserAuthMethod-Phone.ReadWrite.All as higher; enable/disableSmsSignIn list them the other way round. The phone
# permission allows phone methods only (not passwords, Temporary Access Passes or FIDO2 keys): it is the one to grant.
PHONE_WRITE = Requirement(
    "phone_write",
    "adding, changing and removing the mobile number",
    "UserAuthMethod-Phone.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
    _any("UserAuthMethod-Phone.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"),
    _LEARN
    + "phoneauthenticationmethod-update",  # also authentication-post-phonemethods, -delete, -enablesmssignin
    "POST|PATCH|DELETE|PUT",
    rf"{_PHONE}(?:/[^/]+(?:/(?:enableSmsSignIn|disableSmsSignIn))?)?",
)
REPORT_READ = Requirement(
    "report_read",
    "the owner search over userRegistrationDetails after an unresolved 409 (Entra ID P1/P2)",
    "AuditLog.Read.All",
    None,
    _any("AuditLog.Read.All"),
    _LEARN + "authenticationmethodsroot-list-userregistrationdetails",
    "GET",
    r"/reports/authenticationMethods/userRegistrationDetails(?:/[^/]+)?",
)
MAIL_SEND = Requirement(
    "mail_send",
    "the notification e-mail (scope it to the sender mailbox, see below)",
    "Mail.Send",
    None,
    _any("Mail.Send"),
    _LEARN + "user-sendmail",
    "POST",
    rf"{_USER}/sendMail",
)
ORGANIZATION_READ = Requirement(
    "organization_read",
    'the tenant name in the e-mail (falls back to "your organization")',
    "Organization.Read.All",
    "Directory.Read.All",
    _any(
        "Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"
    ),
    _LEARN + "organization-list",
    "GET",
    r"/organization",
)
# "Group memberships for other users", Application: two permissions together.
CHECK_MEMBER_GROUPS = Requirement(
    "check_member_groups",
    "helpdesk / approver / privileged group checks (checkMemberGroups)",
    "GroupMember.Read.All and User.Read.All",
    "Directory.Read.All",
    (
        frozenset({"User.Read.All", "GroupMember.Read.All"}),
        frozenset({"User.Read.All", "Group.Read.All"}),
        frozenset({"Directory.Read.All"}),
    ),
    _LEARN + "user-checkmembergroups",
    "POST",
    rf"{_USER}/checkMemberGroups",
)
# The page's least privileged is User.Read.All, but with it alone the groups come back with "limited information"
# (id and @odata.type, every other property null, as the page says): isAssignableToRole would be lost. The bot
# needs a permission that reads groups.
TRANSITIVE_MEMBER_OF = Requirement(
    "transitive_member_of",
    "protecting privileged targets: directory roles and role-assignable groups of the target",
    "GroupMember.Read.All",
    "Directory.Read.All",
    _any(
        "User.Read.All",
        "GroupMember.Read.All",
        "Group.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    _LEARN + "user-list-transitivememberof",
    "GET",
    rf"{_USER}/transitiveMemberOf(?:/microsoft\.graph\.(?:group|directoryRole))?",
)
_GROUP_MEMBERS = _any(
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
GROUP_TRANSITIVE_MEMBERS = Requirement(
    "group_transitive_members",
    "the approver groups' members for the 1:1 approval cards",
    "GroupMember.Read.All",
    "Group.Read.All",
    _GROUP_MEMBERS,
    _LEARN + "group-list-transitivemembers",
    "GET",
    r"/groups/[^/]+/transitiveMembers(?:/microsoft\.graph\.user)?",
)
GROUPS_LIST = Requirement(
    "groups_list",
    "protecting privileged targets: the tenant's role-assignable groups (their owners are privileged)",
    "GroupMember.Read.All",
    "Group.Read.All",
    _GROUP_MEMBERS,
    _LEARN + "group-list",
    "GET",
    r"/groups",
)
GROUP_GET = Requirement(
    "group_get",
    "checking that the groups named in the settings exist (python -m graph doctor)",
    "GroupMember.Read.All",
    "Group.Read.All",
    _GROUP_MEMBERS,
    _LEARN + "group-get",
    "GET",
    r"/groups/[^/]+",
)
GROUP_OWNERS = Requirement(
    "group_owners",
    "protecting privileged targets: the owners of the role-assignable groups",
    "GroupMember.Read.All",
    "Group.Read.All",
    _GROUP_MEMBERS,
    _LEARN + "group-list-owners",
    "GET",
    r"/groups/[^/]+/owners",
)
ROLE_ASSIGNMENTS = Requirement(
    "role_assignments",
    "protecting privileged targets: active role assignments (administrative-unit scoped ones too)",
    "RoleManagement.Read.Directory",
    "Directory.Read.All",
    _any(
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    _LEARN + "rbacapplication-list-roleassignments",
    "GET",
    r"/roleManagement/directory/roleAssignments",
)
ROLE_ELIGIBILITY = Requirement(
    "role_eligibility",
    "protecting privileged targets: PIM-eligible roles (without Entra ID P2 nobody is eligible)",
    "RoleEligibilitySchedule.Read.Directory",
    "RoleManagement.Read.Directory",
    _any(
        "RoleEligibilitySchedule.Read.Directory",
        "RoleEligibilitySchedule.ReadWrite.Directory",
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
    ),
    _LEARN + "rbacapplication-list-roleeligibilityscheduleinstances",
    "GET",
    r"/roleManagement/directory/roleEligibilityScheduleInstances",
)
GROUP_ELIGIBILITY = Requirement(
    "group_eligibility",
    "protecting privileged targets: PIM for Groups eligible members and owners of role-assignable groups",
    "PrivilegedEligibilitySchedule.Read.AzureADGroup",
    None,
    _any(
        "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        "PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup",
    ),
    _LEARN + "privilegedaccessgroup-list-eligibilityscheduleinstances",
    "GET",
    r"/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
)
# The application page lists Application.ReadWrite.OwnedBy first, but that one reads only the applications the
# bot's own service principal owns, which does not include the bot's own registration.
APP_OWNERS = Requirement(
    "app_owners",
    "protecting the owners of the bot's own Graph application and service principal",
    "Application.Read.All",
    "Directory.Read.All",
    _any(
        "Application.Read.All",
        "Application.ReadWrite.OwnedBy",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    _LEARN + "serviceprincipal-list-owners",  # also application-list-owners
    "GET",
    r"/(?:applications|servicePrincipals)(?:/[^/()]+|\(appId='[^'/]*'\))/owners",
)
# "Application: Not supported." (the delegated User.Read covers the signed-in user's own objects only). The bot
# does not call it; the row is here so that the simulator refuses it as Graph does.
OWNED_OBJECTS = Requirement(
    "owned_objects",
    "not used: applications cannot list a user's owned objects",
    "(not available to applications)",
    None,
    (),
    _LEARN + "user-list-ownedobjects",
    "GET",
    rf"{_USER}/ownedObjects",
)

# The Teams app's own installation for a user, so the bot can start a 1:1 chat with someone who never wrote to it
# ("Send proactive installation messages", https://learn.microsoft.com/microsoftteams/platform/graph-api/
# proactive-bots-and-messages/graph-proactive-bots-and-messages). The catalog read has its own permission.
TEAMS_APP_CATALOG = Requirement(
    "teams_app_catalog",
    "finding the bot's Teams app in the tenant app catalog (caller verification in Teams)",
    "AppCatalog.Read.All",
    "AppCatalog.ReadWrite.All",
    _any("AppCatalog.Read.All", "AppCatalog.ReadWrite.All"),
    _LEARN + "appcatalogs-list-teamsapps",
    "GET",
    r"/appCatalogs/teamsApps",
)
# "Self" lets the app install, read and remove only itself, for any user; every other accepted permission reaches
# other apps as well. The page lists the same Application row for the install; the page's higher ones follow.
_INSTALL_SELF = "TeamsAppInstallation.ReadWriteSelfForUser.All"
_INSTALL_OTHERS = (
    "TeamsAppInstallation.ManageSelectedForUser.All",
    "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
    "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All",
    "TeamsAppInstallation.ReadWriteForUser.All",
    "TeamsAppInstallation.ReadWriteSelectedForUser.All",
)
_INSTALLED = rf"{_USER}/teamwork/installedApps"
TEAMS_APP_INSTALL = Requirement(
    "teams_app_install",
    "installing the bot's Teams app for a user it must reach in Teams (caller verification)",
    _INSTALL_SELF,
    "TeamsAppInstallation.ReadWriteForUser.All",
    _any(_INSTALL_SELF, *_INSTALL_OTHERS),
    _LEARN + "userteamwork-post-installedapps",
    "POST",
    _INSTALLED,
)
# The list and the chat read name TeamsAppInstallation.ReadForUser.All as least privileged, but it reads every app
# of every user; the bot holds ReadWriteSelfForUser.All for the install anyway, and that one reads only itself.
TEAMS_APP_INSTALLED = Requirement(
    "teams_app_installed",
    "finding the bot's installation for a user after Graph said it is already installed (409)",
    _INSTALL_SELF,
    "TeamsAppInstallation.ReadForUser.All",
    _any(_INSTALL_SELF, "TeamsAppInstallation.ReadForUser.All", *_INSTALL_OTHERS),
    _LEARN + "userteamwork-list-installedapps",
    "GET",
    rf"{_INSTALLED}(?:/[^/]+)?",
)
TEAMS_APP_CHAT = Requirement(
    "teams_app_chat",
    "reading the 1:1 chat between a user and the bot, where the confirmation card goes",
    _INSTALL_SELF,
    "TeamsAppInstallation.ReadForUser.All",
    _any(
        _INSTALL_SELF,
        "TeamsAppInstallation.ReadForUser.All",
        "TeamsAppInstallation.ReadWriteForUser.All",
        "TeamsAppInstallation.ReadWriteSelectedForUser.All",
    ),
    _LEARN + "userscopeteamsappinstallation-get-chat",
    "GET",
    rf"{_INSTALLED}/[^/]+/chat",
)

ENDPOINTS: tuple[Requirement, ...] = (
    PHONE_READ,
    PHONE_WRITE,
    REPORT_READ,
    MAIL_SEND,
    ORGANIZATION_READ,
    CHECK_MEMBER_GROUPS,
    TRANSITIVE_MEMBER_OF,
    GROUP_TRANSITIVE_MEMBERS,
    GROUP_OWNERS,
    GROUPS_LIST,
    GROUP_GET,
    ROLE_ASSIGNMENTS,
    ROLE_ELIGIBILITY,
    GROUP_ELIGIBILITY,
    APP_OWNERS,
    OWNED_OBJECTS,
    TEAMS_APP_CATALOG,
    TEAMS_APP_INSTALL,
    TEAMS_APP_CHAT,
    TEAMS_APP_INSTALLED,
    USER_READ,  # last: its /users/{id} would also match the longer paths above if it came first
)

_COMPILED = [(row, re.compile(row.method), re.compile(row.path, re.IGNORECASE)) for row in ENDPOINTS]


def requirement_for(method: str | None, url: str | None) -> Requirement | None:
    """The row for a call: `url` is a full Graph URL or a path (with or without /v1.0, with or without a query);
    None for a call the table does not know."""
    if not url:
        return None
    path = unquote(urlsplit(url).path) if "://" in url else url.split("?", 1)[0]
    for marker in ("/v1.0", "/beta"):
        if path.startswith(marker + "/"):
            path = path[len(marker) :]
            break
    path = "/" + path.strip("/")
    verb = (method or "GET").upper()
    for row, methods, pattern in _COMPILED:
        if methods.fullmatch(verb) and pattern.fullmatch(path):
            return row
    return None


def missing_permission(method: str | None, url: str | None) -> str | None:
    """What to grant when Graph refused this call with 403: "least (or broader)"; None for a call the table does
    not know."""
    row = requirement_for(method, url)
    return row.describe() if row is not None else None

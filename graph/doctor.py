"""``python -m graph doctor``: a read-only preflight of a tenant before the first change.

Every check makes the cheapest harmless call of the feature that needs a permission (a read with ``$top=1`` or a
filter on one user) and turns Graph's answer into a status:

    ok              the call worked
    missing         Graph refused it (403), or a setting names something the tenant does not have
    not licensed    the tenant lacks the licence the feature needs (Entra ID P1 for the registration report,
                    P2 for PIM); nobody can fix that with a permission
    failed          Graph could not be reached or answered something else; the detail says what
    not configured  the feature is switched off in the settings
    not checked     it cannot be checked without a change (a write, a mail) or an earlier check failed

Nothing is written. Three permissions can only be proven by using them, which would change something: writing a
phone method, installing the Teams app for a user (read from the token like the first) and sending mail. For writing phone methods the doctor reads the application permissions from the ``roles``
claim of the access token the application was just issued (https://learn.microsoft.com/entra/identity-platform/
access-token-claims-reference: app-only tokens carry the granted application permissions there), and says that
it did not use them. Sending mail is granted in Exchange Online (a scoped role, not in the token), so it is
"not checked" unless the broad Entra ID Mail.Send is in the token.

The permission a check names comes from graph/permissions.py, the same table the simulator and 403 answers use.
The checks run concurrently. `Report.exit_code`: 0 every required check is ok (licences and unconfigured features
do not count), 2 something required is missing or refused, 1 Graph or the sign-in service could not be reached.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from graph import permissions as p
from graph.errors import (
    GraphError,
    GraphUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TokenError,
    TransportError,
)
from graph.settings import GUID, GraphSettings, env_getter

OK = "ok"
MISSING = "missing"
NOT_LICENSED = "not licensed"
FAILED = "failed"
NOT_CONFIGURED = "not configured"
NOT_CHECKED = "not checked"
STATUSES = (OK, MISSING, NOT_LICENSED, FAILED, NOT_CONFIGURED, NOT_CHECKED)
# statuses that need no action for the check to pass: a tenant fact, a switched-off feature, an unprovable write
_PASSING = frozenset({OK, NOT_LICENSED, NOT_CONFIGURED, NOT_CHECKED})

EXCHANGE_MAIL_SEND = "Application Mail.Send (Exchange Online role) scoped to MAIL_SENDER"
# The bot's settings that name Entra groups (bot/settings.py reads the same variables).
GROUP_SETTINGS = ("HELPDESK_GROUP_ID", "APPROVER_GROUP_ID", "PRIVILEGED_GROUP_ID")

# Graph's answers for a tenant without the licence a feature needs.
_P1_MISSING = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"  # usage and insights reports: P1 or P2
_P2_MISSING = "AadPremiumLicenseRequired"  # PIM: P2
_NO_ONE = "00000000-0000-0000-0000-000000000000"  # a filter value that matches nobody: a harmless query
_SETTING = re.compile(r"\b(?:GRAPH_[A-Z_]+|SSL_CERT_FILE|REQUESTS_CA_BUNDLE)\b")
_CREDENTIALS = "GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE"


@dataclass(frozen=True)
class Check:
    name: str  # stable identifier (JSON)
    feature: str  # what it is for, in words (table)
    status: str
    permission: str | None = None  # the permission to grant or the setting to fix
    detail: str = ""
    request_id: str | None = None
    required: bool = True
    unreachable: bool = False  # Graph or the sign-in service did not answer

    @property
    def passing(self) -> bool:
        return self.status in _PASSING or not self.required

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "permission": self.permission,
            "detail": self.detail,
            "request_id": self.request_id,
        }


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def reachable(self) -> bool:
        return not any(c.unreachable for c in self.checks)

    @property
    def ok(self) -> bool:
        return self.reachable and all(c.passing for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        """The checks that need an administrator (not the licences or the features switched off)."""
        return [c for c in self.checks if not c.passing]

    @property
    def signed_in(self) -> bool:
        return any(c.name == "sign_in" and c.status == OK for c in self.checks)

    @property
    def exit_code(self) -> int:
        if not self.reachable:
            return 1
        return 0 if self.ok else 2

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}


def group_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The group ids the bot's settings name, read from the environment: {variable: id} for those set."""
    get = env_getter(environ)
    return {name: value for name in GROUP_SETTINGS if (value := get(name))}


def token_roles(token: str) -> frozenset[str] | None:
    """The application permissions in an access token's `roles` claim; None when the token cannot be read.

    The claims are decoded, not verified: the token was just issued to this process over TLS and is read only to
    describe itself, never to decide access."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None
    if not isinstance(claims, dict):
        return None
    roles = claims.get("roles") or []  # a token granted nothing has no roles claim at all
    return frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else None


# ------------------------------------------------------------------------------------------------------ running


class _Doctor:
    def __init__(
        self,
        client: Any,
        *,
        settings: GraphSettings,
        user: str | None,
        groups: Mapping[str, str],
        roles: frozenset[str] | None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.user = user
        self.groups = dict(groups)
        self.roles = roles

    async def run(self) -> list[Check]:
        independent: list[Awaitable[Check | list[Check]]] = [
            self._user_chain(),
            self._role_assignments(),
            self._role_eligibility(),
            self._group_eligibility(),
            self._role_assignable_groups(),
            self._app_owners(),
            self._report(),
            self._mail_sender(),
            self._teams_app_catalog(),
            *(self._group(name, group_id) for name, group_id in self.groups.items()),
        ]
        found: list[Check] = []
        for result in await asyncio.gather(*independent):
            found.extend(result if isinstance(result, list) else [result])
        found.append(
            self._from_roles("phone_write", "writing phone methods", p.PHONE_WRITE, "a phone method")
        )
        found.append(self._mail_send())
        found.append(self._teams_app_installation())
        return found

    # ---- helpers
    async def _read(
        self,
        name: str,
        feature: str,
        requirement: p.Requirement,
        call: Callable[[], Awaitable[Any]],
        *,
        ok: Callable[[Any], tuple[str, str | None, str]] | None = None,
        licence: tuple[str, str, str] | None = None,
        not_found: tuple[str, str] | None = None,
        required: bool = True,
    ) -> Check:
        """Make one read; map Graph's answer to a Check. `licence`: (Graph error code, the licence, what its
        absence means) for "not licensed"; `not_found`: (setting, detail) when a 404 means a setting names nothing."""
        try:
            response = await call()
        except GraphError as exc:
            return self._refused(name, feature, requirement, exc, licence, not_found, required)
        status, fix, detail = ok(response) if ok is not None else (OK, None, "")
        return Check(
            name,
            feature,
            status,
            fix if status != OK else None,
            detail,
            _request_id(response),
            required,
        )

    def _refused(
        self,
        name: str,
        feature: str,
        requirement: p.Requirement,
        exc: GraphError,
        licence: tuple[str, str, str] | None,
        not_found: tuple[str, str] | None,
        required: bool,
    ) -> Check:
        rid = exc.request_id
        if licence is not None and exc.code == licence[0]:
            detail = f"{licence[2]} ({_graph_says(exc)})"
            return Check(name, feature, NOT_LICENSED, licence[1], detail, rid, required=False)
        if isinstance(exc, PermissionDeniedError):
            return Check(
                name,
                feature,
                MISSING,
                requirement.describe(),
                f"Graph refused: {_graph_says(exc)}",
                rid,
                required,
            )
        if isinstance(exc, NotFoundError) and not_found is not None:
            return Check(name, feature, MISSING, not_found[0], not_found[1], rid, required)
        unreachable = isinstance(exc, TransportError | GraphUnavailableError | ThrottledError)
        return Check(name, feature, FAILED, None, _graph_says(exc), rid, required, unreachable=unreachable)

    def _from_roles(self, name: str, feature: str, requirement: p.Requirement, what: str) -> Check:
        """A permission that only a change would prove: read from the token's roles."""
        if self.roles is None:
            return Check(
                name,
                feature,
                NOT_CHECKED,
                requirement.describe(),
                f"not checkable without a change (it would write {what}); the token's roles could not be read",
            )
        if requirement.allows(self.roles):
            return Check(
                name,
                feature,
                OK,
                None,
                "granted (the access token's roles); not used: that would be a change",
            )
        return Check(name, feature, MISSING, requirement.describe(), "not among the access token's roles")

    # ---- the checks
    async def _user_chain(self) -> list[Check]:
        """Users read (the --user or the first user), then with that user: phone methods read and group membership."""
        name, feature = "users_read", "finding users (the target, the manager, the mail sender)"

        def first_id(response: Any) -> tuple[str, str | None, str]:
            body = response.json if isinstance(response.json, dict) else {}
            if "value" in body:
                value = body.get("value")
                body = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}
            return OK, None, str(body.get("id") or "")  # the id travels in the detail until the checks below

        if self.user:
            target = self.user
            users = await self._read(
                name,
                feature,
                p.USER_READ,
                lambda: self.client.get(_user_path(target), params={"$select": "id,userPrincipalName"}),
                ok=first_id,
                not_found=("--user", f"no user '{target}' in the tenant"),
            )
        else:
            users = await self._read(
                name,
                feature,
                p.USER_READ,
                lambda: self.client.get("/users", params={"$top": "1", "$select": "id,userPrincipalName"}),
                ok=first_id,
            )
        user_id = users.detail if users.status == OK else None
        if users.status == OK:
            users = Check(users.name, users.feature, OK, None, "", users.request_id)
        dependent = [
            ("phone_read", "reading a user's phone methods", p.PHONE_READ),
            ("group_membership", "helpdesk, approver and privileged group checks", p.CHECK_MEMBER_GROUPS),
        ]
        if not user_id:
            why = "no user to check with: " + (
                "reading users failed" if users.status != OK else "the tenant has no user"
            )
            return [users, *(Check(n, f, NOT_CHECKED, r.describe(), why) for n, f, r in dependent)]
        group_ids = list(self.groups.values())[:20] or [_NO_ONE]
        path = _user_path(user_id)
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: self.client.get(f"{path}/authentication/phoneMethods"),
            lambda: self.client.post(
                f"{path}/checkMemberGroups", json={"groupIds": group_ids}, idempotent=True
            ),
        ]
        checks = await asyncio.gather(
            *(self._read(n, f, r, call) for (n, f, r), call in zip(dependent, calls, strict=True))
        )
        return [users, *checks]

    async def _role_assignments(self) -> Check:
        return await self._read(
            "role_assignments",
            "protecting privileged targets: active directory roles",
            p.ROLE_ASSIGNMENTS,
            lambda: self.client.get(
                "/roleManagement/directory/roleAssignments", params={"$filter": f"principalId eq '{_NO_ONE}'"}
            ),
        )

    async def _role_eligibility(self) -> Check:
        return await self._read(
            "role_eligibility",
            "protecting privileged targets: PIM-eligible directory roles",
            p.ROLE_ELIGIBILITY,
            lambda: self.client.get(
                "/roleManagement/directory/roleEligibilityScheduleInstances",
                params={"$filter": f"principalId eq '{_NO_ONE}'"},
            ),
            licence=(
                _P2_MISSING,
                "Microsoft Entra ID P2",
                "without PIM nobody is eligible for a directory role",
            ),
        )

    async def _group_eligibility(self) -> Check:
        return await self._read(
            "group_eligibility",
            "protecting privileged targets: PIM for Groups eligibility",
            p.GROUP_ELIGIBILITY,
            lambda: self.client.get(
                "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
                params={"$filter": f"principalId eq '{_NO_ONE}'"},
            ),
            licence=(
                _P2_MISSING,
                "Microsoft Entra ID P2",
                "without PIM for Groups nobody is eligible for a group",
            ),
        )

    async def _role_assignable_groups(self) -> Check:
        return await self._read(
            "role_assignable_groups",
            "protecting privileged targets: the role-assignable groups",
            p.GROUPS_LIST,
            lambda: self.client.get(
                "/groups", params={"$filter": "isAssignableToRole eq true", "$top": "1", "$select": "id"}
            ),
        )

    async def _app_owners(self) -> Check:
        app_id = self.settings.client_id
        return await self._read(
            "app_owners",
            "protecting the owners of the bot's own application",
            p.APP_OWNERS,
            lambda: self.client.get(f"/servicePrincipals(appId='{app_id}')/owners", params={"$select": "id"}),
            not_found=("GRAPH_CLIENT_ID", f"no service principal of the application {app_id} in the tenant"),
        )

    async def _report(self) -> Check:
        return await self._read(
            "registration_report",
            "finding who holds a number (the owner search over userRegistrationDetails)",
            p.REPORT_READ,
            lambda: self.client.get(
                "/reports/authenticationMethods/userRegistrationDetails",
                params={"$top": "1", "$select": "id"},
            ),
            licence=(
                _P1_MISSING,
                "Microsoft Entra ID P1 or P2",
                "without it the holder of a number cannot be searched in this tenant",
            ),
        )

    async def _mail_sender(self) -> Check:
        name, feature = "mail_sender", "the notification mail's sender mailbox (MAIL_SENDER)"
        sender = self.settings.mail_sender
        if not sender:
            return Check(name, feature, NOT_CONFIGURED, "MAIL_SENDER", "no notification mail", required=False)

        def has_mail(response: Any) -> tuple[str, str | None, str]:
            body = response.json if isinstance(response.json, dict) else {}
            if body.get("mail"):
                return OK, None, ""
            return MISSING, "MAIL_SENDER", f"{sender} has no mail address: it has no mailbox to send from"

        return await self._read(
            name,
            feature,
            p.USER_READ,
            lambda: self.client.get(_user_path(sender), params={"$select": "id,mail,userPrincipalName"}),
            ok=has_mail,
            not_found=("MAIL_SENDER", f"no user {sender} in the tenant"),
        )

    def _mail_send(self) -> Check:
        if not self.settings.mail_sender:
            return Check(
                "mail_send", "sending the notification mail", NOT_CONFIGURED, "MAIL_SENDER", required=False
            )
        name, feature, sender = "mail_send", "sending the notification mail", self.settings.mail_sender
        # The grant README asks for, the Exchange Online role "Application Mail.Send" scoped to the sender (Role
        # Based Access Control for Applications, https://learn.microsoft.com/exchange/permissions-exo/application-rbac),
        # is checked by Exchange at the call and is not in the token: only sending would prove it.
        if self.roles is not None and p.MAIL_SEND.allows(self.roles):
            return Check(
                name,
                feature,
                OK,
                None,
                "Mail.Send is granted in Entra ID: the application can send as every mailbox; replace it with the "
                f"Exchange Online role Application Mail.Send scoped to {sender}",
            )
        return Check(
            name,
            feature,
            NOT_CHECKED,
            EXCHANGE_MAIL_SEND,
            "not checkable without sending a mail; in Exchange Online PowerShell, "
            f"Test-ServicePrincipalAuthorization -Identity <service principal> -Resource {sender} shows it",
        )

    async def _teams_app_catalog(self) -> Check:
        """The bot's Teams app in the tenant app catalog, by its manifest id (TEAMS_APP_ID): the first step of
        reaching a user in Teams who never wrote to the bot (graph/teams_apps.py)."""
        name, feature = "teams_app_catalog", "the bot's Teams app in the tenant app catalog (TEAMS_APP_ID)"
        external_id = self.settings.teams_app_id
        if not external_id:
            return Check(
                name, feature, NOT_CONFIGURED, "TEAMS_APP_ID", "the bot installs no Teams app", required=False
            )

        def listed(response: Any) -> tuple[str, str | None, str]:
            body = response.json if isinstance(response.json, dict) else {}
            apps = [a for a in body.get("value") or [] if isinstance(a, dict) and a.get("id")]
            if apps:
                return OK, None, f"{apps[0].get('displayName') or ''} (catalog id {apps[0]['id']})".strip()
            return (
                MISSING,
                "TEAMS_APP_ID",
                f"no app with the manifest id {external_id} in the tenant app catalog: upload the app package to "
                "the organization's app store (Microsoft says a new app may take 24-48 hours to be listed)",
            )

        return await self._read(
            name,
            feature,
            p.TEAMS_APP_CATALOG,
            lambda: self.client.get(
                "/appCatalogs/teamsApps",
                params={"$filter": f"externalId eq '{external_id}'", "$select": "id,externalId,displayName"},
            ),
            ok=listed,
        )

    def _teams_app_installation(self) -> Check:
        """Installing the app for a user is a change: read from the token's roles, like writing phone methods."""
        name, feature = (
            "teams_app_installation",
            "installing the bot's Teams app for a user and reading its chat",
        )
        if not self.settings.teams_app_id:
            return Check(
                name, feature, NOT_CONFIGURED, "TEAMS_APP_ID", "the bot installs no Teams app", required=False
            )
        return self._from_roles(name, feature, p.TEAMS_APP_INSTALL, "a Teams app installation")

    async def _group(self, setting: str, group_id: str) -> Check:
        name, feature = f"group:{setting}", f"the group of {setting}"
        if not GUID.match(group_id):
            return Check(name, feature, MISSING, setting, f"'{group_id[:60]}' is not a group object id")

        def named(response: Any) -> tuple[str, str | None, str]:
            body = response.json if isinstance(response.json, dict) else {}
            return OK, None, str(body.get("displayName") or "")

        return await self._read(
            name,
            feature,
            p.GROUP_GET,
            lambda: self.client.get(f"/groups/{group_id}", params={"$select": "id,displayName"}),
            ok=named,
            not_found=(setting, f"no group {group_id} in the tenant"),
        )


async def run_checks(
    client: Any,
    tokens: Any,
    settings: GraphSettings,
    *,
    user: str | None = None,
    groups: Mapping[str, str] | None = None,
) -> Report:
    """Sign in with `tokens`, then run every check with `client` (graph.client.GraphClient) concurrently."""
    sign_in = "sign_in"
    feature = "signing in to Microsoft Entra with the configured credentials"
    try:
        token = await tokens.token()
    except TokenError as exc:
        return Report((sign_in_failure(exc), *_skipped(groups or {})))
    doctor = _Doctor(
        client,
        settings=settings,
        user=user,
        groups=groups or {},
        roles=token_roles(token),
    )
    checks = await doctor.run()
    return Report((Check(sign_in, feature, OK), *checks))


def sign_in_failure(exc: TokenError) -> Check:
    feature = "signing in to Microsoft Entra with the configured credentials"
    if exc.transient:
        return Check(
            "sign_in",
            feature,
            FAILED,
            "GRAPH_AUTHORITY_HOST",
            f"Microsoft sign-in did not answer: {exc.message}",
            exc.request_id,
            unreachable=True,
        )
    problem = exc.problem
    if exc.code == "tls_untrusted":
        fix = "SSL_CERT_FILE"
    elif exc.aadsts == "AADSTS65001":
        fix = "admin consent for the application's permissions"
    else:
        fix = ", ".join(dict.fromkeys(_SETTING.findall(problem))) or _CREDENTIALS
    return Check(
        "sign_in",
        feature,
        FAILED,
        fix,
        f"{problem} ({exc.aadsts or exc.code}: {exc.message})",
        exc.request_id,
    )


def _skipped(groups: Mapping[str, str]) -> list[Check]:
    names = [
        "users_read",
        "phone_read",
        "group_membership",
        "role_assignments",
        "role_eligibility",
        "group_eligibility",
        "role_assignable_groups",
        "app_owners",
        "registration_report",
        "mail_sender",
        "teams_app_catalog",
        *(f"group:{name}" for name in groups),
        "phone_write",
        "mail_send",
        "teams_app_installation",
    ]
    return [Check(n, n.replace("_", " "), NOT_CHECKED, None, "sign-in failed") for n in names]


async def diagnose(
    settings: GraphSettings,
    *,
    user: str | None = None,
    groups: Mapping[str, str] | None = None,
) -> Report:
    """Build the token provider and the Graph client from `settings` (as the CLI and the bot do), run the checks,
    close everything. A sign-in service that cannot be reached is a failed sign-in check, not an exception."""
    from graph.auth import TokenProvider
    from graph.client import RetryPolicy, create_graph_client

    try:
        tokens = await TokenProvider.create(settings)
    except TokenError as exc:
        return Report((sign_in_failure(exc), *_skipped(groups or {})))
    # A preflight answers in seconds: a few quick retries, not the workflow's patience.
    client, close = await create_graph_client(
        settings, tokens=tokens, retry=RetryPolicy(max_attempts=3, deadline=15.0)
    )
    try:
        return await run_checks(client, tokens, settings, user=user, groups=groups)
    finally:
        await close()


# ------------------------------------------------------------------------------------------------------ output


def render_table(report: Report) -> str:
    """The administrator's view: one row per check, then what to do for each problem."""
    headers = ("Feature", "Status", "To fix (permission, setting or licence)", "Graph request-id")
    rows = [(c.name, c.status, c.permission or "", c.request_id or "") for c in report.checks]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [line.format(*headers).rstrip(), line.format(*("-" * w for w in widths)).rstrip()]
    out += [line.format(*row).rstrip() for row in rows]
    notes = [c for c in report.checks if c.status != OK and c.detail]
    if notes:
        out.append("")
        out += [f"{c.name} ({c.feature}): {c.detail}" for c in notes]
    out.append("")
    if report.ok:
        out.append("Result: every required check is ok.")
    elif not report.reachable:
        out.append("Result: Graph or the sign-in service could not be reached; try again.")
    else:
        out.append(f"Result: {len(report.problems)} problem(s) to fix before the first change.")
    return "\n".join(out)


def _user_path(ref: str) -> str:
    from graph.directory import user_path

    return user_path(ref)


def _request_id(response: Any) -> str | None:
    rid = getattr(response, "request_id", None)
    return str(rid) if rid else None


def _graph_says(exc: GraphError) -> str:
    head = " ".join(str(x) for x in (exc.status, exc.code) if x not in (None, ""))
    return f"{head}: {exc.message}" if head else exc.message


__all__ = [
    "GROUP_SETTINGS",
    "STATUSES",
    "Check",
    "Report",
    "diagnose",
    "group_settings",
    "render_table",
    "run_checks",
    "token_roles",
]


# ------------------------------------------------------------------------------------------------------ command


def main(argv: list[str], environ: Mapping[str, str], *, stdout: TextIO, stderr: TextIO) -> int:
    """``python -m graph doctor [--user UPN] [--json]``; exit 0 all required checks ok, 2 something to fix
    (or a settings or usage error), 1 Graph could not be reached."""
    import argparse

    from graph.settings import SettingsError

    parser = argparse.ArgumentParser(
        prog="python -m graph doctor",
        description="Check, without changing anything, that the configured application can do what the bot needs "
        "in this tenant: sign-in, each permission, the licences, the mail sender and the configured groups.",
        epilog="Exit codes: 0 every required check is ok; 2 something to fix; 1 Graph could not be reached.",
    )
    parser.add_argument(
        "--user", help="check the reads with this user (object id or UPN) instead of the first one"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        settings = GraphSettings.from_env(environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=stderr)
        return 2
    try:
        report = asyncio.run(diagnose(settings, user=args.user, groups=group_settings(environ)))
    except KeyboardInterrupt:
        print("error: interrupted; nothing was changed", file=stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a stack trace
        text = (str(exc).splitlines() or [type(exc).__name__])[0]
        report = Report(
            (
                Check(
                    "sign_in",
                    "signing in to Microsoft Entra with the configured credentials",
                    FAILED,
                    "GRAPH_AUTHORITY_HOST",
                    f"could not reach Microsoft Entra or Graph: {text}",
                    unreachable=True,
                ),
            )
        )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False), file=stdout)
    else:
        print(render_table(report), file=stdout)
    return report.exit_code

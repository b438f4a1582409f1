"""Plain data that the workflow returns and every surface (CLI text, CLI JSON, Teams cards, mail) renders.

Nothing here talks to the network; nothing here imports the Bot Framework.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

Action = Literal["set", "remove", "show"]


class OutcomeKind(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"
    UNCHANGED = "unchanged"
    NOTHING_TO_REMOVE = "nothing_to_remove"
    SHOWN = "shown"  # `show`: the current state was read, nothing changed
    NUMBER_MISMATCH = "number_mismatch"
    BLOCKED_BY_GRAPH_RULE = "blocked_by_graph_rule"
    CONFLICT_UNRESOLVED = "conflict_unresolved"
    USER_NOT_FOUND = "user_not_found"
    INVALID_NUMBER = "invalid_number"
    INVALID_REQUEST = "invalid_request"  # e.g. notification asked for with no sender configured
    PERMISSION_DENIED = "permission_denied"
    GRAPH_UNAVAILABLE = "graph_unavailable"

    @property
    def is_success(self) -> bool:
        return self in _SUCCESS

    @property
    def changed(self) -> bool:
        return self in (OutcomeKind.ADDED, OutcomeKind.UPDATED, OutcomeKind.REMOVED)

    @property
    def exit_code(self) -> int:
        if self in _SUCCESS:
            return 0
        if self in _USER_ERROR:
            return 2
        return 1


_SUCCESS = frozenset(
    {
        OutcomeKind.ADDED,
        OutcomeKind.UPDATED,
        OutcomeKind.REMOVED,
        OutcomeKind.UNCHANGED,
        OutcomeKind.NOTHING_TO_REMOVE,
        OutcomeKind.SHOWN,
    }
)
_USER_ERROR = frozenset(
    {
        OutcomeKind.INVALID_NUMBER,
        OutcomeKind.NUMBER_MISMATCH,
        OutcomeKind.USER_NOT_FOUND,
        OutcomeKind.INVALID_REQUEST,
    }
)


class NotificationStatus(StrEnum):
    SENT = "sent"
    DISABLED = "disabled"  # not asked for
    SKIPPED_NO_MAIL = "skipped_no_mail"  # asked for, target has no mail address
    FAILED = "failed"  # asked for, sendMail failed (reason in Notification.detail)
    NOT_ATTEMPTED = "not_attempted"  # asked for, but nothing changed, so nothing to tell


@dataclass(frozen=True)
class TargetUser:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    user_type: str = "Member"
    usage_location: str | None = None
    account_enabled: bool = True

    @property
    def is_guest(self) -> bool:
        return self.user_type.lower() == "guest" or "#EXT#" in self.user_principal_name.upper()


@dataclass(frozen=True)
class PhoneMethod:
    id: str
    phone_type: str  # mobile | alternateMobile | office
    phone_number: str  # as Graph returns it: "+49 1701234567"
    sms_sign_in_state: str | None = None


@dataclass(frozen=True)
class PhoneState:
    """All phone methods of one user, by type."""

    methods: tuple[PhoneMethod, ...] = ()

    def of_type(self, phone_type: str) -> PhoneMethod | None:
        return next((m for m in self.methods if m.phone_type == phone_type), None)

    @property
    def mobile(self) -> PhoneMethod | None:
        return self.of_type("mobile")

    @property
    def alternate_mobile(self) -> PhoneMethod | None:
        return self.of_type("alternateMobile")

    @property
    def office(self) -> PhoneMethod | None:
        return self.of_type("office")


@dataclass(frozen=True)
class Holder:
    """The user who holds a number for SMS sign-in (result of the owner search).

    ``account_enabled`` False: a disabled account (found by the search's own look at disabled accounts, since the
    registration report leaves them out); it keeps the number until it is removed from it or deleted."""

    id: str
    display_name: str
    user_principal_name: str
    phone_type: str
    sms_sign_in_state: str | None
    portal_url: str
    account_enabled: bool = True


@dataclass(frozen=True)
class Notification:
    status: NotificationStatus
    recipient: str | None = None
    language: str | None = None  # "de" | "en"
    detail: str | None = None  # reason when failed or skipped


@dataclass
class Outcome:
    kind: OutcomeKind
    action: Action
    user: TargetUser | None = None
    previous_number: str | None = None  # E.164, the mobile number before the run
    number: str | None = None  # E.164: the number set, or the number removed; None when not applicable
    sms_sign_in_state: str | None = None  # of the mobile method after the run
    sms_sign_in_conflict: bool = False
    holder: Holder | None = None
    # not_licensed: the tenant has no Entra ID P1/P2, so the registration report (and the holder among enabled
    # accounts) cannot be searched; not_permitted: a read of the search was refused, `missing_permission` names it.
    holder_search: Literal["not_run", "found", "not_found", "failed", "not_licensed", "not_permitted"] = (
        "not_run"
    )
    notification: Notification = field(default_factory=lambda: Notification(NotificationStatus.DISABLED))
    graph_request_ids: list[str] = field(default_factory=list)
    message: str = ""  # one plain English sentence for logs and the CLI
    next_step: str | None = None  # what a person should do now, when anything
    graph_error_code: str | None = None
    graph_message: str | None = None
    missing_permission: str | None = None
    warnings: list[str] = field(default_factory=list)
    phones: PhoneState | None = None  # state after the run (or the current state for show)

    @property
    def exit_code(self) -> int:
        return self.kind.exit_code

    def to_json(self) -> dict[str, Any]:
        """The CLI's --json object (stable keys; see README)."""
        user = asdict(self.user) if self.user else None
        if user is not None:
            user = {
                "id": user["id"],
                "userPrincipalName": user["user_principal_name"],
                "displayName": user["display_name"],
                "mail": user["mail"],
                "userType": user["user_type"],
                "usageLocation": user["usage_location"],
                "isGuest": self.user.is_guest if self.user else False,
            }
        holder = None
        if self.holder:
            holder = {
                "id": self.holder.id,
                "displayName": self.holder.display_name,
                "userPrincipalName": self.holder.user_principal_name,
                "phoneType": self.holder.phone_type,
                "smsSignInState": self.holder.sms_sign_in_state,
                "portalUrl": self.holder.portal_url,
                "accountEnabled": self.holder.account_enabled,
            }
        phones = None
        if self.phones is not None:
            phones = [
                {
                    "id": m.id,
                    "phoneType": m.phone_type,
                    "phoneNumber": m.phone_number,
                    "smsSignInState": m.sms_sign_in_state,
                }
                for m in self.phones.methods
            ]
        return {
            "outcome": self.kind.value,
            "action": self.action,
            "success": self.kind.is_success,
            "sms_sign_in_conflict": self.sms_sign_in_conflict,
            "sms_sign_in_state": self.sms_sign_in_state,
            "holder": holder,
            "holder_search": self.holder_search,
            "notification": self.notification.status.value,
            "notification_recipient": self.notification.recipient,
            "notification_language": self.notification.language,
            "notification_detail": self.notification.detail,
            "user": user,
            "previous_number": self.previous_number,
            "number": self.number,
            "phone_methods": phones,
            "graph_request_ids": list(self.graph_request_ids),
            "graph_error_code": self.graph_error_code,
            "graph_message": self.graph_message,
            "missing_permission": self.missing_permission,
            "message": self.message,
            "next_step": self.next_step,
            "warnings": list(self.warnings),
        }

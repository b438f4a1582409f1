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


class NotificationReason(StrEnum):
    """Why a notification asked for failed (Notification.reason; the bot's key ``notification.reason.<code>``).
    `Notification.detail` says the same in English, with Graph's own code and message, for logs and the CLI."""

    NOT_CONFIGURED = "not_configured"  # no sender mailbox (MAIL_SENDER) or no notifier
    RENDER_FAILED = "render_failed"  # the mail template could not be rendered
    MAILBOX_NOT_ENABLED = "mailbox_not_enabled"  # params: sender
    SENDER_NOT_FOUND = "sender_not_found"  # params: sender
    SEND_AS_DENIED = "send_as_denied"  # params: sender
    UNAVAILABLE_MAYBE_SENT = "unavailable_maybe_sent"  # params: status
    UNREACHABLE = "unreachable"
    UNREACHABLE_MAYBE_SENT = "unreachable_maybe_sent"
    BUSY_NOT_SENT = "busy_not_sent"
    REFUSED = "refused"
    UNEXPECTED_ANSWER = "unexpected_answer"  # params: status
    ERROR = "error"  # anything else (an unexpected fault while sending)


@dataclass(frozen=True)
class Notification:
    status: NotificationStatus
    recipient: str | None = None
    language: str | None = None  # "de" | "en"
    detail: str | None = None  # reason when failed or skipped, in English
    reason: str | None = (
        None  # NotificationReason when failed; None in outcomes stored before reasons had codes
    )
    reason_params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # plain str values, whatever was passed (a NotificationReason, numbers)
        if self.reason is not None:
            object.__setattr__(self, "reason", str(self.reason))
        object.__setattr__(self, "reason_params", _str_dict(self.reason_params))


class WarningCode(StrEnum):
    """What an outcome's warning is about. Every surface renders a warning from its code and params (the bot from
    its EN/DE texts, key ``warning.<code>``); `OutcomeWarning.text` is the English sentence for logs and the CLI."""

    NOT_MOBILE = "not_mobile"  # the number does not look like a mobile number
    SMS_SIGN_IN_UNAVAILABLE = "sms_sign_in_unavailable"  # set for MFA, another user holds it for SMS sign-in
    CHANGE_IN_PLACE_AFTER_ERROR = "change_in_place_after_error"  # params: status, request_id
    NOTIFICATION_NO_MAIL = "notification_no_mail"  # the user has no mail address
    NOTIFICATION_FAILED = "notification_failed"  # why: Notification.reason


class NextStep(StrEnum):
    """Advice of its own that an outcome's `next_step` gives (key ``outcome.next.<code>`` in the bot's texts);
    an outcome without one gets its kind's advice."""

    REMOVE_ALTERNATE_FIRST = "remove_alternate_first"  # graph.workflow.ALTERNATE_FIRST
    CHANGE_DEFAULT_METHOD_FIRST = "change_default_method_first"  # graph.workflow.DEFAULT_METHOD_FIRST


@dataclass(frozen=True)
class OutcomeWarning:
    """One warning of an outcome: a code, its parameters (plain strings) and the English sentence.

    ``code`` is empty for a warning read from an outcome stored before warnings had codes: then only ``text`` is
    known, and a surface shows that sentence as it was stored."""

    code: str
    text: str
    params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # plain str values, whatever was passed (a WarningCode, numbers)
        object.__setattr__(self, "code", str(self.code))
        object.__setattr__(self, "params", {str(k): str(v) for k, v in self.params.items()})

    def __str__(self) -> str:
        return self.text

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}

    @classmethod
    def from_json(cls, text: object, coded: object = None) -> OutcomeWarning:
        """The warning from the --json ``warnings`` sentence and its ``warning_codes`` entry (absent in outcomes
        stored before codes existed)."""
        sentence = text if isinstance(text, str) else ""
        if isinstance(coded, dict) and isinstance(coded.get("code"), str):
            return cls(code=coded["code"], text=sentence, params=_str_dict(coded.get("params")))
        return cls(code="", text=sentence)


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
    # which advice `next_step` is, when the bot has a text for it (key ``outcome.next.<code>``); None: the kind's
    # own advice
    next_step_code: str | None = None
    graph_error_code: str | None = None
    graph_message: str | None = None
    missing_permission: str | None = None
    warnings: list[OutcomeWarning] = field(default_factory=list)
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
            "notification_reason": self.notification.reason,
            "notification_reason_params": dict(self.notification.reason_params),
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
            "next_step_code": self.next_step_code,
            "warnings": [w.text for w in self.warnings],
            "warning_codes": [w.to_json() for w in self.warnings],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        """The outcome back from its `to_json` object (as a ChangeRequest stores it), also one stored before
        warnings had codes. Raises ValueError when ``outcome`` is not a known kind."""
        kind = OutcomeKind(str(data.get("outcome")))
        raw_user = data.get("user")
        user = None
        if isinstance(raw_user, dict):
            user = TargetUser(
                id=str(raw_user.get("id") or ""),
                user_principal_name=str(raw_user.get("userPrincipalName") or ""),
                display_name=str(raw_user.get("displayName") or ""),
                mail=raw_user.get("mail"),
                user_type=str(raw_user.get("userType") or "Member"),
                usage_location=raw_user.get("usageLocation"),
            )
        raw_holder = data.get("holder")
        holder = None
        if isinstance(raw_holder, dict):
            holder = Holder(
                id=str(raw_holder.get("id") or ""),
                display_name=str(raw_holder.get("displayName") or ""),
                user_principal_name=str(raw_holder.get("userPrincipalName") or ""),
                phone_type=str(raw_holder.get("phoneType") or ""),
                sms_sign_in_state=raw_holder.get("smsSignInState"),
                portal_url=str(raw_holder.get("portalUrl") or ""),
                account_enabled=bool(raw_holder.get("accountEnabled", True)),
            )
        raw_phones = data.get("phone_methods")
        phones = None
        if isinstance(raw_phones, list):
            phones = PhoneState(
                tuple(
                    PhoneMethod(
                        id=str(m.get("id") or ""),
                        phone_type=str(m.get("phoneType") or ""),
                        phone_number=str(m.get("phoneNumber") or ""),
                        sms_sign_in_state=m.get("smsSignInState"),
                    )
                    for m in raw_phones
                    if isinstance(m, dict)
                )
            )
        try:
            status = NotificationStatus(str(data.get("notification")))
        except ValueError:
            status = NotificationStatus.DISABLED
        action = data.get("action")
        return cls(
            kind=kind,
            action=action if action in ("set", "remove", "show") else "set",
            user=user,
            previous_number=data.get("previous_number"),
            number=data.get("number"),
            sms_sign_in_state=data.get("sms_sign_in_state"),
            sms_sign_in_conflict=bool(data.get("sms_sign_in_conflict")),
            holder=holder,
            holder_search=data.get("holder_search") or "not_run",
            notification=Notification(
                status,
                recipient=data.get("notification_recipient"),
                language=data.get("notification_language"),
                detail=data.get("notification_detail"),
                reason=data.get("notification_reason"),
                reason_params=_str_dict(data.get("notification_reason_params")),
            ),
            graph_request_ids=[str(r) for r in data.get("graph_request_ids") or []],
            message=str(data.get("message") or ""),
            next_step=data.get("next_step"),
            next_step_code=data.get("next_step_code"),
            graph_error_code=data.get("graph_error_code"),
            graph_message=data.get("graph_message"),
            missing_permission=data.get("missing_permission"),
            warnings=cls.warnings_from_json(data),
            phones=phones,
        )

    @staticmethod
    def warnings_from_json(data: Any) -> list[OutcomeWarning]:
        """The warnings of a stored `to_json` object; sentences without codes (stored before codes existed) come
        back with an empty code. Anything malformed is left out rather than raised."""
        if not isinstance(data, dict):
            return []
        texts = data.get("warnings")
        codes = data.get("warning_codes")
        texts = texts if isinstance(texts, list) else []
        codes = codes if isinstance(codes, list) else []
        found = [
            OutcomeWarning.from_json(text, codes[i] if i < len(codes) else None)
            for i, text in enumerate(texts)
        ]
        return [w for w in found if w.code or w.text]


def _str_dict(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

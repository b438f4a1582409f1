"""Every sentence the bot says, in English and German ("Sie" form), keyed.

`t(lang, key, **params)` looks a text up and fills its ``{placeholders}`` with `str.format`. Both languages have
the same keys and the same placeholders (a test holds that). Texts are plain: the card builders escape the
parameters (display names, reasons, ...) before they reach a TextBlock, so a text itself never carries markdown
except where a key says so.

A key that does not exist renders as ``⟦key⟧`` (and is logged) instead of failing: the user sees a gap, never a
stack trace, and the card tests look for that marker.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from typing import Final, Literal

Lang = Literal["en", "de"]
LANGUAGES: Final[tuple[Lang, ...]] = ("en", "de")
MISSING_MARKER: Final = "⟦"

_log = logging.getLogger(__name__)


def lang_from_locale(locale: str | None) -> Lang:
    """'de', 'de-DE', 'de-AT', 'de-CH' (any German locale, '_' or '-', any case) → 'de'; everything else → 'en'."""
    if not locale or not isinstance(locale, str):
        return "en"
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return "de" if primary == "de" else "en"


def t(lang: str, key: str, **params: object) -> str:
    """The text for `key` in `lang` ('en' when `lang` is anything else), with `params` filled in."""
    table = TEXTS.get(lang) or TEXTS["en"]
    template = table.get(key)
    if template is None:
        _log.warning("missing text key %r for language %r", key, lang)
        return f"⟦{key}⟧"
    try:
        return template.format_map(_Params(params, key))
    except (ValueError, IndexError):
        _log.warning("bad template for key %r", key)
        return f"⟦{key}⟧"


def has(lang: str, key: str) -> bool:
    return key in (TEXTS.get(lang) or TEXTS["en"])


def placeholders(template: str) -> set[str]:
    """The names of the ``{placeholders}`` in a template."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


class _Params(dict[str, object]):
    def __init__(self, params: Mapping[str, object], key: str) -> None:
        super().__init__(params)
        self._key = key

    def __missing__(self, name: str) -> str:
        _log.warning("text %r needs parameter %r", self._key, name)
        return f"⟦{name}⟧"


def graph_problem(error: BaseException) -> tuple[str, str, dict[str, object]] | None:
    """The words for a Microsoft sign-in or Graph failure met while the bot read the directory: (title key, text
    key, params), or None when `error` is not one. Sign-in/Graph not answering (TokenError.transient, 5xx after
    retries, no connection, throttled past the deadline) is "try again in a few seconds"; a configuration problem
    (a token refused, a permission missing, a token not accepted) says what an administrator must fix."""
    from graph.errors import (
        AuthenticationError,
        GraphError,
        GraphUnavailableError,
        PermissionDeniedError,
        ThrottledError,
        TokenError,
        TransportError,
    )

    if not isinstance(error, GraphError):
        return None
    if isinstance(error, TokenError):
        if error.transient:
            return _unavailable(error.request_id)
        code = error.aadsts or error.code or "?"
        return "graph.config.title", "graph.sign_in_refused", {"code": code, "problem": error.problem}
    if isinstance(error, GraphUnavailableError | TransportError | ThrottledError):
        return _unavailable(error.request_id)
    if isinstance(error, PermissionDeniedError):
        from graph.workflow import required_permission

        permission = required_permission(error.method, error.url)
        return "graph.config.title", "graph.permission_denied", {"permission": permission}
    if isinstance(error, AuthenticationError):
        return "graph.config.title", "graph.token_rejected", {"code": error.code or "401"}
    params: dict[str, object] = {
        "status": error.status or "?",
        "code": error.code or "",
        "id": error.request_id or "?",
    }
    return "refusal.title", "graph.refused", params


def _unavailable(request_id: str | None) -> tuple[str, str, dict[str, object]]:
    if request_id:
        return "graph.unavailable.title", "graph.unavailable.request_id", {"id": request_id}
    return "graph.unavailable.title", "graph.unavailable", {}


def number_error_key(code: str) -> str:
    """The text key for a graph.numbers.InvalidNumber code (unknown codes get the generic text)."""
    key = f"error.number.{code}"
    return key if key in EN else "error.number.not_a_number"


# ------------------------------------------------------------------------------------------------ English

EN: Final[dict[str, str]] = {
    # general
    "app.name": "MFA phone helpdesk",
    "demo.banner": "Simulation: changes go to a simulated tenant, not Microsoft Entra ID.",
    "demo.text": "[Simulation] {text}",
    "common.none": "none",
    "common.yes": "yes",
    "common.no": "no",
    "common.unknown": "unknown",
    "common.utc": "{time} UTC",
    "common.request_id": "Request {id}",
    "common.graph_request_ids": "Microsoft Graph request IDs: {ids}",
    "common.refresh": "Refresh",
    # help
    "help.title": "MFA phone helpdesk: what I can do",
    "help.intro": "I set, update or remove the mobile phone that a user has registered for multi-factor "
    "sign-in in Microsoft Entra ID. Only members of the helpdesk group can ask, and every change is audited.",
    "help.commands": "Commands",
    "help.cmd.help": "help: shows this card",
    "help.cmd.set": "set phone: opens the form to set or update a user's mobile number",
    "help.cmd.remove": "remove phone: opens the form to remove a user's mobile number",
    "help.cmd.history": "history <user>: the audit trail for a user (UPN, e-mail or object ID), newest first",
    "help.cmd.status": "status <reference>: the state of one request, by the reference on its card (such as "
    "MFA-7K3Q9; upper or lower case, with or without MFA-)",
    "help.cmd.cancel": "cancel: cancels your request that is still open",
    "help.rules": "Nobody can change their own MFA phone through me. Accounts with administrator roles need the "
    "privileged group, and some changes need an approver's confirmation.",
    "help.tenant.ok": "Tenant check: all ok.",
    "help.tenant.problems": "Tenant check: {problems}. Details: python -m graph doctor",
    "help.tenant.problem": "{check} {status} ({fix})",
    "help.tenant.status.missing": "missing",
    "help.tenant.status.failed": "failed",
    # request form
    "form.title": "Change a mobile phone MFA method",
    "form.intro": "Pick the user, or type their UPN, e-mail or object ID if the search is not available.",
    "form.target_picker.label": "User (search the directory)",
    "form.target_picker.placeholder": "Type a name",
    "form.target_text.label": "User: UPN, e-mail or object ID",
    "form.target_text.placeholder": "adele.vance@contoso.com",
    "form.action.label": "Action",
    "form.action.set": "Set or update the mobile number",
    "form.action.remove": "Remove the mobile number",
    "form.action.error": "Choose set or remove.",
    "form.number.label": "Mobile number",
    "form.number.placeholder": "+49 170 1234567",
    "form.number.hint": "Needed to set or update. To remove, it is optional: if you type it, it must match "
    "the user's current mobile number.",
    "form.notify.label": "Notification",
    "form.notify.title": "Tell the user by e-mail",
    "form.language.label": "E-mail language",
    "form.language.auto": "Automatic (from the user's location)",
    "form.language.de": "Deutsch",
    "form.language.en": "English",
    "form.ticket.label": "Ticket link or reason",
    "form.ticket.placeholder": "https://servicedesk.example.com/ticket/4711 or a short reason",
    "form.submit": "Review",
    "form.cancel": "Cancel",
    "form.has_errors": "Please correct the fields marked below.",
    # form errors
    "error.target.required": "Pick a user or type a UPN, e-mail or object ID.",
    "error.target.not_found": "No user was found for \u201c{ref}\u201d. Check the spelling or pick the user.",
    "error.target.both": "Pick a user or type one, not both with different users.",
    "error.target.invalid": "This is not a UPN, e-mail or object ID.",
    "error.number.required_for_set": "Type the new mobile number.",
    "error.number.empty": "No phone number was given.",
    "error.number.letters": "The number contains the letter \u201c{character}\u201d. Type only digits, "
    "with spaces, + ( ) - . / if you like.",
    "error.number.too_short": "The number is too short: some digits are missing.",
    "error.number.too_long": "The number is too long: a phone number has at most 15 digits including "
    "the country code.",
    "error.number.no_country_code": "The number has no country code. Add it, for example +49 170 1234567 "
    "or 0049 170 1234567.",
    "error.number.invalid_for_region": "This is not a valid phone number for country code +{country_code}. "
    "Check the digits and the country code.",
    "error.number.not_a_number": "This is not a phone number.",
    "error.number.control_characters": "The number contains an invisible control character ({character}). "
    "Type it again by hand.",
    "error.number.non_ascii_digits": "The number contains the digit \u201c{character}\u201d, which is not one "
    "of 0-9. Type it with the digits 0-9.",
    "error.number.extension": "Mobile numbers have no extension. Remove the extension at the end "
    "(x, ext or #) and try again.",
    "error.number.invalid_character": "The number contains \u201c{character}\u201d, which is not allowed. Type "
    "only digits, with spaces, + ( ) - . / if you like.",
    "error.number.misplaced_plus": "The + sign may appear only once, at the start, before the country code.",
    "error.number.invalid_country_code": "The country code is not valid. Start with + and a real country "
    "code, for example +49 for Germany.",
    "error.ticket.too_long": "The ticket link or reason is too long (at most {max} characters).",
    "error.field.too_long": "This is too long (at most {max} characters).",
    "error.choice.invalid": "Choose one of the offered options.",
    "warning.not_mobile": "This does not look like a mobile number: text messages with sign-in codes may not "
    "arrive.",
    "warning.sms_sign_in_lost": "SMS sign-in is active for the current number and will be set up again for "
    "the new one if the tenant allows it.",
    # graph.workflow.ALTERNATE_FIRST, the advice of the outcome Graph's rule leads to
    "warning.remove_alternate_first": "Graph will refuse this removal: the user also has an alternate mobile "
    "number ({alternate}). Graph rule: remove the alternate mobile number first, or set a new mobile number "
    "instead.",
    # warnings of an outcome (graph.outcome.WarningCode; warning.not_mobile above is one of them)
    "warning.sms_sign_in_unavailable": "SMS sign-in is not available with this number: another account "
    "holds it for SMS sign-in.",
    "warning.change_in_place_after_error": "Microsoft Graph answered the change with an error ({status}), but "
    "reading the methods back shows the change is in place.",
    "warning.notification_no_mail": "No e-mail was sent: the user has no mailbox.",
    "warning.notification_failed": "The change was made, but the e-mail to the user could not be sent (the "
    "reason is below).",
    # Microsoft sign-in or Graph failed while the bot read the directory (nothing was changed)
    "graph.unavailable.title": "Microsoft sign-in/Graph did not answer",
    "graph.unavailable": "Microsoft sign-in/Graph did not answer; nothing was changed. Try again in a few "
    "seconds.",
    "graph.unavailable.request_id": "Microsoft sign-in/Graph did not answer (request ID {id}); nothing was "
    "changed. Try again in a few seconds.",
    "graph.config.title": "The bot's access to Microsoft Graph is not set up correctly",
    "graph.sign_in_refused": "Microsoft Entra refused to give the bot a token ({code}): {problem}. Nothing "
    "was changed. Trying again will not help: an administrator must fix the bot's app registration "
    "(tenant, client ID, secret or certificate, admin consent).",
    "graph.permission_denied": "Microsoft Graph refused the bot access: the app lacks the permission "
    "{permission}. Nothing was changed. An administrator must grant it (with admin consent).",
    "graph.token_rejected": "Microsoft Graph did not accept the bot's token ({code}). Nothing was changed. An "
    "administrator must check the bot's app registration (tenant, client ID, secret or certificate).",
    "graph.refused": "Microsoft Graph refused the request ({status} {code}); nothing was changed. Try again; "
    "if it keeps failing, give request ID {id} to your administrator.",
    # confirmation card
    "confirm.title": "Check the change",
    "confirm.intro": "Nothing has changed yet. Confirm to go ahead.",
    "confirm.intro_approval": "Nothing has changed yet. Confirm to send the request for approval.",
    "fact.user": "User",
    "fact.upn": "UPN",
    "fact.account": "Account",
    "fact.account.member": "member",
    "fact.account.guest": "guest",
    "fact.mobile": "Mobile (current)",
    "fact.alternate": "Alternate mobile",
    "fact.office": "Office phone",
    "fact.sms_sign_in": "SMS sign-in",
    "fact.change": "Change",
    "fact.notification": "Notification",
    "fact.ticket": "Ticket or reason",
    "fact.requested_by": "Requested by",
    "fact.requested_at": "Requested at",
    "fact.expires_at": "Expires at",
    "fact.status": "Status",
    "fact.request": "Request",
    "fact.privileged": "Privileged",
    "fact.outcome": "Outcome",
    "fact.decided_by": "Decided by",
    "fact.decided_at": "Decided at",
    "fact.reason": "Reason",
    "fact.holder": "Held by",
    "fact.phone_type": "Phone type",
    "change.set": "Set mobile: {old} \u2192 {new}",
    "change.update": "Update mobile: {old} \u2192 {new}",
    "change.remove": "Remove mobile {old}",
    "notify.off": "No e-mail to the user",
    "notify.on": "E-mail to the user ({language})",
    "notify.language.auto": "language from the user's location",
    "notify.language.de": "German",
    "notify.language.en": "English",
    "rules.title": "Rules that apply",
    # one line per rule, with its reason (bot.views.cards.confirmation_rules)
    "rule.privileged_requester": "Only the privileged group may change this user: the user holds {roles}. "
    "You are a member.",
    "rule.approval_privileged": "Needs approval by the {group} after you confirm: the user holds {roles}.",
    "rule.approval_always": "Needs approval by the {group} after you confirm: every change is approved "
    "before it runs.",
    "rule.no_approval": "No approval needed: the change runs when you confirm.",
    "warnings.title": "Please note",
    "button.confirm": "Confirm",
    "button.edit": "Edit",
    "button.cancel": "Cancel",
    "button.approve": "Approve",
    "button.reject": "Reject",
    "button.open_portal": "Open in the Entra admin center",
    # phone types and SMS sign-in states
    "phone.mobile": "mobile",
    "phone.alternateMobile": "alternate mobile",
    "phone.office": "office",
    "sms.ready": "ready (the number can be used to sign in by text message)",
    "sms.notSupported": "not supported for this user",
    "sms.notAllowedByPolicy": "not allowed by the tenant's policy",
    "sms.notEnabled": "not enabled",
    "sms.invalidPhoneNumber": "the number cannot be used for SMS sign-in",
    "sms.notConfigured": "not configured",
    "sms.phoneNumberNotUnique": "not possible: another account uses this number for SMS sign-in",
    "sms.unknownFutureValue": "unknown",
    "sms.none": "no mobile number",
    # progress
    "progress.title": "Working on it\u2026",
    "progress.changing": "Changing the number in Microsoft Entra ID\u2026",
    "progress.removing": "Removing the number in Microsoft Entra ID\u2026",
    "progress.checking": "Reading the user's current phone methods\u2026",
    "progress.looking_up": "Looking up {user}\u2026",
    "progress.search_profile": "The number is in use elsewhere. Looking for the account that holds it\u2026",
    "progress.search_scan": "Looking for the account that holds the number: {scanned} accounts checked\u2026",
    "progress.search_scan_total": "Looking for the account that holds the number: {scanned} of about {total} "
    "accounts checked\u2026",
    "progress.approved": "Approved by {name}. Applying the change\u2026",
    # outcomes (one title and one body per OutcomeKind)
    "outcome.added.title": "Done: mobile number set",
    "outcome.added.body": "The mobile number {new} is now registered for MFA.",
    "outcome.updated.title": "Done: mobile number updated",
    "outcome.updated.body": "The mobile number changed from {old} to {new}.",
    "outcome.removed.title": "Done: mobile number removed",
    "outcome.removed.body": "The mobile number {old} was removed. The user can no longer receive MFA codes on it.",
    "outcome.unchanged.title": "Nothing to change",
    "outcome.unchanged.body": "The user already has {new} as mobile number. Nothing was changed.",
    "outcome.nothing_to_remove.title": "Nothing to remove",
    "outcome.nothing_to_remove.body": "The user has no mobile number. Nothing was changed.",
    "outcome.shown.title": "Current phone methods",
    "outcome.shown.body": "Nothing was changed.",
    "outcome.number_mismatch.title": "The number does not match",
    "outcome.number_mismatch.body": "You typed {typed}, but the user's current mobile number is {old}. "
    "Nothing was changed. Check the number and try again.",
    "outcome.blocked_by_graph_rule.title": "Microsoft Entra ID refused the change",
    "outcome.blocked_by_graph_rule.body": "A rule in Microsoft Entra ID blocked the change. Nothing was "
    "changed.",
    "outcome.blocked_by_graph_rule.next": "Check the user's authentication methods in the Entra admin center, "
    "or ask an administrator. The details below say which rule applied.",
    # advice of its own (graph.outcome.NextStep); graph.workflow.ALTERNATE_FIRST, DEFAULT_METHOD_FIRST
    "outcome.next.remove_alternate_first": "Remove the alternate mobile number first, or set a new mobile "
    "number instead.",
    "outcome.next.change_default_method_first": "The user must change the default sign-in method first (My "
    "Sign-Ins: https://mysignins.microsoft.com), then remove the number again.",
    "outcome.conflict_unresolved.title": "Blocked: the number is used by another account",
    "outcome.conflict_unresolved.body": "Another account already uses {new} for SMS sign-in, and Microsoft "
    "Entra ID refused to add it. Nothing was changed.",
    "outcome.conflict_unresolved.next": "Remove the number from the other account (or turn off its SMS "
    "sign-in) first, or use a different number.",
    "outcome.user_not_found.title": "User not found",
    "outcome.user_not_found.body": "No user was found for \u201c{ref}\u201d. Nothing was changed.",
    "outcome.invalid_number.title": "The number cannot be used",
    "outcome.invalid_number.body": "The phone number is not valid. Nothing was changed.",
    "outcome.invalid_request.title": "The request cannot be carried out",
    "outcome.invalid_request.body": "The request is incomplete or not allowed. Nothing was changed.",
    "outcome.permission_denied.title": "The bot lacks a permission",
    "outcome.permission_denied.body": "Microsoft Graph refused the call because the app is missing a "
    "permission. Nothing was changed.",
    "outcome.permission_denied.which": "Missing permission: {permission}. An administrator must grant it "
    "(admin consent) to the app.",
    "outcome.graph_unavailable.title": "Microsoft Graph is not available",
    "outcome.graph_unavailable.body": "Microsoft Graph did not answer in time, so the change could not be "
    "completed. Please try again in a few minutes.",
    "outcome.graph_unavailable.support": "If it keeps failing, give your administrator the request IDs under "
    "Details.",
    "outcome.holder.title": "Account that holds the number",
    "outcome.holder.not_found": "No enabled or disabled account holds the number. It may be held by a "
    "deleted or soft-deleted user.",
    "outcome.holder.account.enabled": "enabled",
    "outcome.holder.account.disabled": "disabled",
    "outcome.holder.disabled_hint": "A disabled account holds the number: it keeps it for SMS sign-in while it is "
    "disabled. Remove the number from that account (or delete the account), then try again.",
    "outcome.holder.not_licensed": "The account that holds the number cannot be searched in this tenant: the "
    "search needs Microsoft Entra ID P1 or P2. Profile phone numbers and disabled accounts were checked without a "
    "match.",
    "outcome.holder.not_permitted": "The account that holds the number could not be searched: the application "
    "lacks the permission {permission}. An administrator can grant it.",
    "outcome.holder.failed": "The search for the account that holds the number did not finish.",
    "outcome.holder.not_run": "The account that holds the number was not searched for.",
    "outcome.graph_says": "Microsoft Graph says: {code}: {message}",
    "outcome.next": "What to do: {text}",
    "outcome.sms_state": "SMS sign-in: {state}",
    # after a change: the SMS sign-in state, the holder of a number refused for SMS sign-in, the Details toggle
    "outcome.sms_state.reading": "SMS sign-in: being checked\u2026",
    "outcome.sms_state.unread": "SMS sign-in: could not be read; the Entra admin center shows it.",
    "outcome.sms_state.removed": "SMS sign-in: gone with the number.",
    "outcome.sms_conflict.once": "{new} is set for MFA (codes by text message and calls work), but not for SMS "
    "sign-in: another account already uses the number for SMS sign-in.",
    "outcome.sms_conflict.holder": "Held for SMS sign-in by {name} ({upn}).",
    "outcome.sms_conflict.no_holder": "No other account was found that holds the number for SMS sign-in; a "
    "deleted user may hold it.",
    "outcome.sms_conflict.not_searched": "The account that holds the number for SMS sign-in could not be "
    "searched.",
    "outcome.sms_conflict.next": "MFA needs nothing more. If the user needs SMS sign-in, remove the number from "
    "the account that holds it (or turn off that account's SMS sign-in), then turn on SMS sign-in for this user "
    "in the Entra admin center.",
    "button.details": "Details",
    "button.audit_trail": "Audit trail",
    "details.audit.display": "Audit trail of request {id}",
    "event.holder_search": "holder of the number searched",
    # notification line, one per NotificationStatus
    "notification.sent": "E-mail sent to {recipient} ({language}).",
    "notification.disabled": "No e-mail sent: not requested.",
    "notification.skipped_no_mail": "No e-mail sent: the user has no mailbox.",
    "notification.failed": "The e-mail could not be sent: {detail}",
    "notification.not_attempted": "No e-mail sent: nothing changed.",
    # why an e-mail failed (graph.outcome.NotificationReason), the {detail} of notification.failed
    "notification.reason.not_configured": "no sender mailbox is configured (MAIL_SENDER).",
    "notification.reason.render_failed": "the e-mail could not be put together from its template.",
    "notification.reason.mailbox_not_enabled": "the sender mailbox {sender} cannot send through Microsoft "
    "Graph (inactive, deleted, on-premises or without an Exchange Online licence).",
    "notification.reason.sender_not_found": "the sender mailbox {sender} was not found.",
    "notification.reason.send_as_denied": "the app may not send as {sender} (Mail.Send permission or an "
    "Exchange application access policy).",
    "notification.reason.unavailable_maybe_sent": "Microsoft Graph answered {status}; the e-mail may or may "
    "not have been sent.",
    "notification.reason.unreachable": "Microsoft Graph could not be reached; the e-mail was not sent.",
    "notification.reason.unreachable_maybe_sent": "Microsoft Graph could not be reached; the e-mail may or "
    "may not have been sent.",
    "notification.reason.busy_not_sent": "Microsoft Graph was busy or unavailable; the e-mail was not sent.",
    "notification.reason.refused": "Microsoft Graph refused to send the e-mail.",
    "notification.reason.unexpected_answer": "Microsoft Graph answered {status} instead of accepting the "
    "e-mail.",
    "notification.reason.error": "an unexpected error occurred while sending.",
    # approvals
    "approval.title": "Approval needed: mobile phone MFA change",
    "approval.waiting": "Waiting for approval by the {group}.",
    "approval.group.approver": "approver group",
    "approval.group.privileged": "privileged group",
    "approval.reason.label": "Reason (optional, sent to the requester)",
    "approval.reason.placeholder": "Why do you reject it?",
    "approval.read_only": "Only members of the {group} can decide. You see the current state.",
    "approval.approved_by": "Approved by {name} on {time}.",
    "approval.rejected_by": "Rejected by {name} on {time}.",
    "approval.rejected_reason": "Reason: {reason}",
    "approval.expired": "Expired on {time}: nobody decided in time. Nothing was changed.",
    "approval.cancelled": "Cancelled by {name} on {time}. Nothing was changed.",
    "approval.cancelled_plain": "Cancelled. Nothing was changed.",
    "approvers.registered": "This conversation now receives the approval requests, those for privileged users "
    "included.",
    "approvers.registered_ordinary": "This conversation now receives the approval requests, except those for "
    "privileged users: they still go to the conversation registered for the privileged approvers.",
    "approvers.registered_ordinary_no_privileged": "This conversation now receives the approval requests, except "
    "those for privileged users: no member of the privileged group has registered a conversation for them yet, "
    "so they cannot be sent. A member of the privileged group must type \u201cregister approvals\u201d in the "
    "privileged approvers' channel or group chat.",
    "approvers.not_allowed": "Only members of the approver group can register this conversation for approvals.",
    "approval.no_approvers_channel": "No approvers' channel is set up, so nobody could approve this request. "
    "It was not sent and nothing was changed. Ask an administrator to add the bot to the approvers' channel or "
    "group chat and to type \u201cregister approvals\u201d there.",
    "approval.no_privileged_approvers_channel": "No conversation for the privileged approvers is set up, so nobody "
    "could approve this change to a privileged user. It was not sent and nothing was changed. A member of the "
    "privileged group must type \u201cregister approvals\u201d in the privileged approvers' channel or group "
    "chat.",
    "approval.undelivered": "The approval request could not be posted to the approvers' channel, so it was "
    "cancelled. Nothing was changed. Please try again later or tell an administrator.",
    "approval.not_draft": "This request was already sent or decided. Type status {id} to see where it stands.",
    "approval.not_found": "This request does not exist.",
    "approval.cancel_not_requester": "Only the person who asked for this change can cancel it.",
    "approval.not_submitted": "This request has not been sent for approval.",
    "approval.already_cancelled": "This request was cancelled. Nothing was changed.",
    "approval.already_approved": "{name} already approved this request on {time}.",
    "approval.already_rejected": "{name} already rejected this request on {time}.",
    "approval.reason_too_long": "The reason is too long (at most {limit} characters). Nothing was changed.",
    "approval.requester.approved": "{name} approved your request for {target} ({upn}). The change is running "
    "now; I will tell you the result.",
    "approval.requester.rejected": "{name} rejected your request for {target} ({upn}). Nothing was changed.",
    "approval.requester.rejected_reason": "{name} rejected your request for {target} ({upn}). Reason: {reason}. "
    "Nothing was changed.",
    "approval.requester.expired": "Your request for {target} ({upn}) expired on {time}: nobody decided in time. "
    "Nothing was changed.",
    "approval.requester.interrupted": "The change for {target} ({upn}) was interrupted while it was running, "
    "so it may or may not have been applied. Check the user's current state (status {id}) before you try again.",
    "execution.interrupted.body": "The run was interrupted: the bot stopped while the change was running. The "
    "change may or may not have been applied in Microsoft Entra ID.",
    "execution.interrupted.next": "Check the user's current state before you try again: type status {id} here "
    "and look at the user's phone methods (show on the command line, or the Entra admin center).",
    "awaiting.title": "Sent for approval",
    "awaiting.body": "Your request is waiting for approval by the {group}. I will tell you the result here.",
    "awaiting.expires": "If nobody decides by {time}, the request expires.",
    "decision.title.approved": "Approved",
    "decision.title.rejected": "Rejected",
    "decision.title.expired": "Expired",
    "decision.title.cancelled": "Cancelled",
    "decision.title.executing": "Approved: applying the change",
    "decision.title.completed": "Completed",
    "decision.title.failed": "Failed",
    "decision.title.draft": "Not confirmed yet",
    "decision.title.awaiting_approval": "Waiting for approval",
    # request states
    "state.draft": "draft, not confirmed",
    "state.awaiting_approval": "waiting for approval",
    "state.approved": "approved",
    "state.executing": "running",
    "state.completed": "completed",
    "state.failed": "failed",
    "state.rejected": "rejected",
    "state.expired": "expired",
    "state.cancelled": "cancelled",
    # refusals
    "refusal.title": "Not possible",
    "notice.refused": "Not possible: {reason}",
    "refusal.not_helpdesk": "Only members of the helpdesk group can change MFA phone numbers. Ask your "
    "administrator to add you if you need this.",
    "refusal.target_privileged": "This user holds {roles}. Only members of the privileged group can change "
    "their MFA phone, and you are not a member.",
    "refusal.own_account": "You cannot change your own MFA phone through the bot. Please ask a colleague.",
    "refusal.other_tenant": "This bot only serves its own organisation. Requests from other tenants are "
    "refused.",
    "refusal.rate_limit": "You have reached the limit of {limit} changes in {window}. Please try again later "
    "or ask a colleague.",
    "refusal.target_cooldown": "This user's MFA phone was changed at {time}. Another change is possible "
    "after {until}.",
    "refusal.target_busy": "Another change for this user is running right now. Nothing was changed by this "
    "request; start a new one when the other has finished.",
    "hold.requester_not_helpdesk": "{name}, who asked for this change, is no longer a member of the helpdesk "
    "group, so the request was cancelled. Nothing was changed.",
    "hold.target_now_privileged": "This user now holds {roles}, and whoever asked for the change is not a "
    "member of the privileged group, so the request was cancelled. Nothing was changed.",
    "hold.needs_privileged_approval": "This user now holds {roles}, and the change was not approved by a "
    "privileged approver, so the request was cancelled. Nothing was changed. A new request will need a "
    "privileged approver.",
    "hold.requester_told": "Request {id} for {target} was cancelled: {reason}",
    "approval.now_privileged": "This user has become privileged ({roles}) since the request was made: only a "
    "member of the privileged group may approve it now. The request keeps waiting for one.",
    "approval.escalated": "This user has become privileged since the request was made: only a member of the "
    "privileged group may approve it now.",
    "refusal.approver_is_requester": "You asked for this change, so you cannot approve or reject it. "
    "Another approver must decide.",
    "refusal.approver_is_target": "This change is about your own account, so you cannot approve or reject it.",
    "refusal.not_approver": "Only members of the {group} can approve or reject this request.",
    "refusal.guest": "Guest accounts cannot ask for MFA phone changes, even in the helpdesk group. Please ask "
    "a helpdesk member of this organisation.",
    "refusal.guest_approver": "Guest accounts cannot approve or reject MFA phone changes. A member of the "
    "organisation must decide.",
    "refusal.not_found": "Request not found, or it is not yours.",
    "refusal.stale": "This card is out of date: the request changed in the meantime. Here is its current state.",
    "refusal.expired": "This request has expired. Nothing was changed. Please start a new one.",
    "refusal.unknown_action": "I do not know this action. Please use the buttons on the latest card.",
    "refusal.already_decided": "This request was already decided: {state}.",
    "refusal.not_in_personal_chat": "Please ask for changes in a personal chat with me.",
    "refusal.bad_input": "I could not read that card action. Please use the latest card.",
    "refusal.internal_error": "Something went wrong on my side. Nothing was changed. Please try again.",
    "refusal.unknown_command": "I did not understand \u201c{text}\u201d. Type help to see what I can do.",
    # a refusal of the request form names the user; a remove of a number the user does not have is not offered
    "refusal.title_for": "Not possible for {user}",
    "refusal.remove_mismatch": "{typed} does not match the current mobile number of {name} ({current}), so "
    "removing it would change nothing. Correct the number with Edit, or leave it empty to remove the current "
    "mobile number.",
    "refusal.remove_no_mobile": "{name} has no mobile number, so {typed} cannot be removed and nothing would "
    "change. Use Edit to correct the user or the number, or Cancel.",
    "cancel.done": "Your request was cancelled. Nothing was changed.",
    "cancel.nothing": "You have no open request to cancel.",
    # history and status
    "history.title": "History for {target}",
    "history.empty": "No entries.",
    "history.more": "Only the newest {count} entries are shown.",
    "status.title": "Status of request {id}",
    "status.audit": "Audit trail",
    "event.requested": "requested",
    "event.edited": "edited",
    "event.draft_updated": "edited",
    "event.confirmed": "confirmed",
    "event.submitted_for_approval": "sent for approval",
    "event.approved": "approved",
    "event.rejected": "rejected",
    "event.expired": "expired",
    "event.cancelled": "cancelled",
    "event.executing": "started",
    "event.completed": "completed",
    "event.failed": "failed",
    "event.execution_started": "started",
    "event.execution_resumed": "resumed after an interruption",
    "event.approval_refused": "refused",
    "event.approval_unavailable": "not sent: no approvers' channel",
    "event.approval_undelivered": "not delivered to the approvers",
    "event.refused": "refused",
    "event.history_viewed": "history viewed",
    "event.notification": "notification",
    "entry.numbers": "{old} \u2192 {new}",
    "entry.outcome": "outcome: {outcome}",
    "entry.reason": "reason: {reason}",
    "entry.by": "by {name}",
    "outcome_name.added": "set",
    "outcome_name.updated": "updated",
    "outcome_name.removed": "removed",
    "outcome_name.unchanged": "unchanged",
    "outcome_name.nothing_to_remove": "nothing to remove",
    "outcome_name.shown": "shown",
    "outcome_name.number_mismatch": "number mismatch",
    "outcome_name.blocked_by_graph_rule": "blocked by a Microsoft Entra ID rule",
    "outcome_name.conflict_unresolved": "blocked: number used by another account",
    "outcome_name.user_not_found": "user not found",
    "outcome_name.invalid_number": "invalid number",
    "outcome_name.invalid_request": "invalid request",
    "outcome_name.permission_denied": "permission missing",
    "outcome_name.graph_unavailable": "Microsoft Graph unavailable",
    "outcome_name.interrupted": "interrupted: may or may not have been applied",
    # caller verification
    "form.verification.label": "How was the caller verified?",
    "form.verification.teams": "Confirmation in Teams: the user answers a message from me",
    "form.verification.code": "One-time code: the caller reads back a code I send to the user",
    "form.verification.manager": "Manager's confirmation in Teams",
    "form.verification.in_person": "In person, ID checked (an approver must approve)",
    "form.verification.error": "Choose how the caller was verified.",
    "error.verification.required": "Choose how the caller was verified.",
    "error.verification.invalid": "This is not one of the ways to verify the caller.",
    "error.verification.not_accepted": "For this user the caller must be verified by: {methods}.",
    "refusal.verification_not_accepted": "This way of verifying the caller is not accepted for this user: use "
    "{methods}. Choose another one with Edit. Nothing was changed.",
    "verify.method.teams": "confirmation in Teams",
    "verify.method.code": "one-time code",
    "verify.method.manager": "manager's confirmation in Teams",
    "verify.method.in_person": "in person, ID checked",
    "fact.verification": "Caller verified",
    "verify.fact.chosen": "{method} (not done yet)",
    "verify.fact.waiting": "{method}: waiting for {name} until {time}",
    "verify.fact.done": "{method}: confirmed by {name} on {time}",
    "verify.fact.code_done": "{method}: read back by the caller, checked on {time} (sent to {name})",
    "verify.fact.attested": "{method}: attested by {name} on {time}",
    "rule.verify_in_person": "Needs approval by the {group} after you confirm: the caller was verified in person.",
    "rule.verify_first": "Before anything changes, the caller is verified ({method}).",
    "verify.waiting.title": "Waiting for the caller to be verified",
    "verify.waiting.teams": "Waiting for {name} to confirm in Teams (expires {time}).",
    "verify.waiting.manager": "Waiting for {name}, the user's manager, to confirm in Teams (expires {time}).",
    "verify.waiting.code": "A one-time code was sent to {name} by {via}. Type the 6 digits the caller reads back "
    "to you (valid until {time}).",
    "verify.via.teams": "a Teams message",
    "verify.via.mail": "e-mail",
    "verify.code.label": "Code the caller reads back",
    "verify.code.placeholder": "6 digits",
    "button.verify_code": "Check the code",
    "verify.code.wrong": "The code is wrong. Attempts left: {left}.",
    "verify.code.malformed": "Type the 6 digits of the code.",
    "verify.confirmed": "Confirmed by {name} at {time}.",
    "verify.code_confirmed": "The code was right (checked at {time}).",
    "verify.already_done": "The caller was already verified; nothing was done again.",
    "verify.refused_reason": "{name} said they did not ask for this change. Their phone methods are locked "
    "against changes through the bot until {until}, and the approvers were alerted.",
    "verify.failed_reason": "The one-time code was typed wrong {count} times, so the caller could not be "
    "verified. Nothing was changed.",
    "verify.expired_reason": "{name} did not answer in time (until {time}), so the caller could not be "
    "verified. Nothing was changed.",
    "entry.verification": "Caller verification: {method}",
    "verify.expired_line": "Expired on {time}: the caller was not verified in time. Nothing was changed.",
    "verify.cancelled_reason": "The request was cancelled before the caller was verified. Nothing was changed.",
    "verify.undelivered": "{name} could not be reached in Teams: {reason} Nothing was changed. Choose another "
    "way to verify the caller with Edit.",
    "verify.undelivered.not_configured": "I am not set up to reach users in Teams.",
    "verify.undelivered.app_not_in_catalog": "my app is not in your organisation's Teams app catalog.",
    "verify.undelivered.blocked_by_policy": "a Teams app policy blocks my app for this person.",
    "verify.undelivered.permission_missing": "I lack the Microsoft Graph permission to install my app for this "
    "person.",
    "verify.undelivered.graph_error": "Microsoft Graph did not answer.",
    "verify.undelivered.send_failed": "the message could not be sent.",
    "verify.code_undelivered": "The one-time code could not be sent to {name}: not in Teams ({reason}) and not by "
    "e-mail ({mail}). Nothing was changed. Choose another way to verify the caller with Edit.",
    "verify.mail.skipped_no_mail": "the user has no mailbox",
    "verify.mail.failed": "sending the e-mail failed",
    "verify.mail.not_configured": "no sender mailbox is set up (MAIL_SENDER)",
    "verify.no_manager": "{name} has no manager in the directory, so no manager can confirm. Choose another way "
    "to verify the caller with Edit. Nothing was changed.",
    "verify.manager_is_requester": "You are {name}'s manager: you cannot confirm your own request. Choose another "
    "way to verify the caller with Edit. Nothing was changed.",
    "verify.manager_is_target": "The directory names {name} as their own manager, so no manager can confirm. "
    "Choose another way to verify the caller with Edit. Nothing was changed.",
    "verify.manager_unusable": "{manager}, the manager of {name}, cannot confirm (the account is disabled or a "
    "guest). Choose another way to verify the caller with Edit. Nothing was changed.",
    "verify.ask.title": "Did you ask the service desk to change your sign-in phone?",
    "verify.ask.title_manager": "Please confirm a service desk request for {target}",
    "verify.ask.body": "{requester} at the service desk is asking to change the mobile phone you use to sign in "
    "(multi-factor authentication). Answer Yes only if you asked for this yourself, just now.",
    "verify.ask.body_manager": "{requester} at the service desk is asking to change the sign-in phone of "
    "{target}, who reports to you. Answer Yes only if you know that {target} asked for it.",
    "verify.ask.hint": "If nobody you know asked for this, press No: the change is stopped and the security team "
    "is told.",
    "button.verify_yes": "Yes, I asked for this",
    "button.verify_no": "No, I did not ask",
    "button.verify_yes_manager": "Yes, this is right",
    "button.verify_no_manager": "No, stop this",
    "verify.thanks.yes": "Thank you. You confirmed this request at {time}; the service desk goes on with it.",
    "verify.thanks.no": "Thank you. The request was stopped and nothing was changed. The security team was told, "
    "and the service desk bot will not change this sign-in phone until {until}.",
    "verify.ended": "This request no longer waits for your answer ({state}). Your click changed nothing.",
    "verify.ended.title": "No answer needed",
    "verify.answered.yes.title": "You confirmed this request",
    "verify.answered.no.title": "Stopped: you did not ask for this",
    "verify.not_verifier": "Only the person who was asked can answer this card.",
    "verify.code_card.title": "Your one-time code for the service desk",
    "verify.code_card.body": "{requester} at the service desk is asking to change your sign-in phone. If you "
    "called the service desk yourself, read this code to them: {code}. It is valid until {time}.",
    "verify.code_card.hint": "If you did not call the service desk, do not give the code to anyone and tell your "
    "security team.",
    "alert.title": "Security alert: a user did not ask for an MFA phone change",
    "alert.body": "{target} ({upn}) answered No when asked to confirm a change of their sign-in phone that "
    "{requester} asked for. The caller may have pretended to be them. Their phone methods are locked against "
    "changes through the bot until {until}.",
    "fact.number_asked": "Number asked for",
    "fact.locked_until": "Locked until",
    "refusal.target_locked": "{name}'s phone methods are locked against changes through the bot until {until}: "
    "they said they did not ask for an earlier change. A member of the privileged group can lift the lock with "
    "unlock <user>.",
    "hold.target_locked": "The user's phone methods are locked against changes through the bot until {until}: "
    "they said they did not ask for a change.",
    "help.cmd.unlock": "unlock <user>: lifts the lock after a user said No (privileged group only)",
    "unlock.done": "The lock on {name} ({upn}) was lifted: changes through the bot are possible again.",
    "unlock.none": "{name} ({upn}) is not locked.",
    "unlock.usage": "Type unlock and the user's UPN, e-mail or object ID.",
    "refusal.unlock_not_privileged": "Only a member of the privileged group can lift a lock.",
    "state.awaiting_verification": "waiting for the caller's verification",
    "decision.title.awaiting_verification": "Waiting for the caller to be verified",
    "event.verification_started": "verification of the caller started",
    "event.verification_code_sent": "one-time code sent",
    "event.verification_wrong_code": "wrong code typed",
    "event.verification_undelivered": "verification could not be delivered",
    "event.caller_verified": "caller verified",
    "event.caller_attested": "caller verified in person (attested)",
    "event.verification_refused": "the user said they did not ask",
    "event.verification_failed": "verification failed",
    "event.verification_expired": "verification expired",
    "event.target_locked": "user locked",
    "event.target_unlocked": "lock lifted",
    "event.security_alert": "security alert sent",
    "event.verification_answer_refused": "answer refused",
}

# ------------------------------------------------------------------------------------------------ German

DE: Final[dict[str, str]] = {
    "app.name": "MFA-Telefon-Helpdesk",
    "demo.banner": "Simulation: Änderungen gehen an einen simulierten Mandanten, nicht an Microsoft Entra ID.",
    "demo.text": "[Simulation] {text}",
    "common.none": "keine",
    "common.yes": "ja",
    "common.no": "nein",
    "common.unknown": "unbekannt",
    "common.utc": "{time} UTC",
    "common.request_id": "Anfrage {id}",
    "common.graph_request_ids": "Request-IDs von Microsoft Graph: {ids}",
    "common.refresh": "Aktualisieren",
    "help.title": "MFA-Telefon-Helpdesk: Was ich kann",
    "help.intro": "Ich setze, ändere oder entferne die Mobilnummer, die ein Benutzer für die Multi-Faktor-"
    "Anmeldung in Microsoft Entra ID hinterlegt hat. Nur Mitglieder der Helpdesk-Gruppe können das anfragen, "
    "und jede Änderung wird protokolliert.",
    "help.commands": "Befehle",
    "help.cmd.help": "help: zeigt diese Karte",
    "help.cmd.set": "set phone: öffnet das Formular, um die Mobilnummer eines Benutzers zu setzen oder zu "
    "ändern",
    "help.cmd.remove": "remove phone: öffnet das Formular, um die Mobilnummer eines Benutzers zu entfernen",
    "help.cmd.history": "history <Benutzer>: das Protokoll zu einem Benutzer (UPN, E-Mail oder Objekt-ID), "
    "neueste zuerst",
    "help.cmd.status": "status <Referenz>: der Stand einer Anfrage, nach der Referenz auf ihrer Karte (etwa "
    "MFA-7K3Q9; groß oder klein geschrieben, mit oder ohne MFA-)",
    "help.cmd.cancel": "cancel: bricht Ihre noch offene Anfrage ab",
    "help.rules": "Niemand kann über mich das eigene MFA-Telefon ändern. Konten mit Administratorrollen "
    "erfordern die privilegierte Gruppe, und manche Änderungen brauchen die Bestätigung einer genehmigenden "
    "Person.",
    "help.tenant.ok": "Mandantenprüfung: alles in Ordnung.",
    "help.tenant.problems": "Mandantenprüfung: {problems}. Einzelheiten: python -m graph doctor",
    "help.tenant.problem": "{check} {status} ({fix})",
    "help.tenant.status.missing": "fehlt",
    "help.tenant.status.failed": "fehlgeschlagen",
    "form.title": "Mobiltelefon als MFA-Methode ändern",
    "form.intro": "Wählen Sie den Benutzer aus oder geben Sie UPN, E-Mail-Adresse oder Objekt-ID ein, falls "
    "die Suche nicht verfügbar ist.",
    "form.target_picker.label": "Benutzer (im Verzeichnis suchen)",
    "form.target_picker.placeholder": "Namen eingeben",
    "form.target_text.label": "Benutzer: UPN, E-Mail-Adresse oder Objekt-ID",
    "form.target_text.placeholder": "adele.vance@contoso.com",
    "form.action.label": "Aktion",
    "form.action.set": "Mobilnummer setzen oder ändern",
    "form.action.remove": "Mobilnummer entfernen",
    "form.action.error": "Wählen Sie Setzen oder Entfernen.",
    "form.number.label": "Mobilnummer",
    "form.number.placeholder": "+49 170 1234567",
    "form.number.hint": "Zum Setzen oder Ändern erforderlich. Beim Entfernen optional: Wenn Sie sie angeben, "
    "muss sie mit der aktuellen Mobilnummer übereinstimmen.",
    "form.notify.label": "Benachrichtigung",
    "form.notify.title": "Benutzer per E-Mail informieren",
    "form.language.label": "Sprache der E-Mail",
    "form.language.auto": "Automatisch (nach Standort des Benutzers)",
    "form.language.de": "Deutsch",
    "form.language.en": "English",
    "form.ticket.label": "Ticket-Link oder Begründung",
    "form.ticket.placeholder": "https://servicedesk.example.com/ticket/4711 oder eine kurze Begründung",
    "form.submit": "Prüfen",
    "form.cancel": "Abbrechen",
    "form.has_errors": "Bitte korrigieren Sie die unten markierten Felder.",
    "error.target.required": "Wählen Sie einen Benutzer aus oder geben Sie UPN, E-Mail-Adresse oder "
    "Objekt-ID ein.",
    "error.target.not_found": "Zu \u201e{ref}\u201c wurde kein Benutzer gefunden. Prüfen Sie die Schreibweise "
    "oder wählen Sie den Benutzer aus.",
    "error.target.both": "Wählen Sie einen Benutzer aus oder geben Sie einen ein, nicht zwei verschiedene.",
    "error.target.invalid": "Das ist keine UPN, E-Mail-Adresse oder Objekt-ID.",
    "error.number.required_for_set": "Geben Sie die neue Mobilnummer ein.",
    "error.number.empty": "Es wurde keine Telefonnummer angegeben.",
    "error.number.letters": "Die Nummer enthält den Buchstaben \u201e{character}\u201c. Geben Sie nur Ziffern "
    "ein, gern mit Leerzeichen und + ( ) - . /.",
    "error.number.too_short": "Die Nummer ist zu kurz: Es fehlen Ziffern.",
    "error.number.too_long": "Die Nummer ist zu lang: Eine Telefonnummer hat höchstens 15 Ziffern "
    "einschließlich Ländervorwahl.",
    "error.number.no_country_code": "Die Nummer hat keine Ländervorwahl. Ergänzen Sie sie, zum Beispiel "
    "+49 170 1234567 oder 0049 170 1234567.",
    "error.number.invalid_for_region": "Das ist keine gültige Telefonnummer für die Ländervorwahl "
    "+{country_code}. Prüfen Sie die Ziffern und die Ländervorwahl.",
    "error.number.not_a_number": "Das ist keine Telefonnummer.",
    "error.number.control_characters": "Die Nummer enthält ein unsichtbares Steuerzeichen ({character}). "
    "Geben Sie sie bitte von Hand neu ein.",
    "error.number.non_ascii_digits": "Die Nummer enthält die Ziffer \u201e{character}\u201c, die keine der "
    "Ziffern 0-9 ist. Geben Sie sie mit den Ziffern 0-9 ein.",
    "error.number.extension": "Mobilnummern haben keine Durchwahl. Entfernen Sie die Durchwahl am Ende "
    "(x, ext oder #) und versuchen Sie es erneut.",
    "error.number.invalid_character": "Die Nummer enthält \u201e{character}\u201c, das ist nicht erlaubt. "
    "Geben Sie nur Ziffern ein, gern mit Leerzeichen und + ( ) - . /.",
    "error.number.misplaced_plus": "Das Pluszeichen darf nur einmal vorkommen, am Anfang vor der "
    "Ländervorwahl.",
    "error.number.invalid_country_code": "Die Ländervorwahl ist ungültig. Beginnen Sie mit + und einer "
    "echten Ländervorwahl, zum Beispiel +49 für Deutschland.",
    "error.ticket.too_long": "Ticket-Link oder Begründung ist zu lang (höchstens {max} Zeichen).",
    "error.field.too_long": "Die Eingabe ist zu lang (höchstens {max} Zeichen).",
    "error.choice.invalid": "Wählen Sie eine der angebotenen Optionen.",
    "warning.not_mobile": "Das sieht nicht nach einer Mobilnummer aus: SMS mit Anmeldecodes kommen "
    "womöglich nicht an.",
    "warning.sms_sign_in_lost": "Für die aktuelle Nummer ist die SMS-Anmeldung aktiv; sie wird für die neue "
    "Nummer wieder eingerichtet, sofern der Mandant es zulässt.",
    "warning.remove_alternate_first": "Graph wird das Entfernen ablehnen: Der Benutzer hat auch eine "
    "alternative Mobilnummer ({alternate}). Graph-Regel: Entfernen Sie zuerst die alternative Mobilnummer, "
    "oder legen Sie stattdessen eine neue Mobilnummer fest.",
    "warning.sms_sign_in_unavailable": "Die SMS-Anmeldung ist mit dieser Nummer nicht möglich: Ein anderes "
    "Konto nutzt sie für die SMS-Anmeldung.",
    "warning.change_in_place_after_error": "Microsoft Graph hat die Änderung mit einem Fehler beantwortet "
    "({status}), aber das Zurücklesen der Methoden zeigt, dass die Änderung besteht.",
    "warning.notification_no_mail": "Es wurde keine E-Mail gesendet: Der Benutzer hat kein Postfach.",
    "warning.notification_failed": "Die Änderung wurde vorgenommen, aber die E-Mail an den Benutzer konnte "
    "nicht gesendet werden (der Grund steht unten).",
    "graph.unavailable.title": "Microsoft-Anmeldung/Graph hat nicht geantwortet",
    "graph.unavailable": "Microsoft-Anmeldung/Graph hat nicht geantwortet; es wurde nichts geändert. "
    "Versuchen Sie es in ein paar Sekunden erneut.",
    "graph.unavailable.request_id": "Microsoft-Anmeldung/Graph hat nicht geantwortet (Request-ID {id}); es "
    "wurde nichts geändert. Versuchen Sie es in ein paar Sekunden erneut.",
    "graph.config.title": "Der Zugriff des Bots auf Microsoft Graph ist nicht richtig eingerichtet",
    "graph.sign_in_refused": "Microsoft Entra hat dem Bot kein Token ausgestellt ({code}): {problem}. Es "
    "wurde nichts geändert. Erneut versuchen hilft nicht: Eine Administratorin oder ein Administrator muss "
    "die App-Registrierung des Bots korrigieren (Mandant, Client-ID, Geheimnis oder Zertifikat, "
    "Administratorzustimmung).",
    "graph.permission_denied": "Microsoft Graph hat dem Bot den Zugriff verweigert: Der App fehlt die "
    "Berechtigung {permission}. Es wurde nichts geändert. Eine Administratorin oder ein Administrator muss "
    "sie erteilen (mit Administratorzustimmung).",
    "graph.token_rejected": "Microsoft Graph hat das Token des Bots nicht angenommen ({code}). Es wurde nichts "
    "geändert. Eine Administratorin oder ein Administrator muss die App-Registrierung des Bots prüfen "
    "(Mandant, Client-ID, Geheimnis oder Zertifikat).",
    "graph.refused": "Microsoft Graph hat die Anfrage abgelehnt ({status} {code}); es wurde nichts geändert. "
    "Versuchen Sie es erneut; wenn es weiter fehlschlägt, geben Sie die Request-ID {id} an Ihre "
    "Administration weiter.",
    "confirm.title": "Änderung prüfen",
    "confirm.intro": "Noch ist nichts geändert. Bestätigen Sie, um fortzufahren.",
    "confirm.intro_approval": "Noch ist nichts geändert. Bestätigen Sie, um die Anfrage zur Genehmigung zu "
    "senden.",
    "fact.user": "Benutzer",
    "fact.upn": "UPN",
    "fact.account": "Konto",
    "fact.account.member": "Mitglied",
    "fact.account.guest": "Gast",
    "fact.mobile": "Mobilnummer (aktuell)",
    "fact.alternate": "Alternative Mobilnummer",
    "fact.office": "Bürotelefon",
    "fact.sms_sign_in": "SMS-Anmeldung",
    "fact.change": "Änderung",
    "fact.notification": "Benachrichtigung",
    "fact.ticket": "Ticket oder Begründung",
    "fact.requested_by": "Angefragt von",
    "fact.requested_at": "Angefragt am",
    "fact.expires_at": "Läuft ab am",
    "fact.status": "Status",
    "fact.request": "Anfrage",
    "fact.privileged": "Privilegiert",
    "fact.outcome": "Ergebnis",
    "fact.decided_by": "Entschieden von",
    "fact.decided_at": "Entschieden am",
    "fact.reason": "Begründung",
    "fact.holder": "Verwendet von",
    "fact.phone_type": "Telefontyp",
    "change.set": "Mobilnummer setzen: {old} \u2192 {new}",
    "change.update": "Mobilnummer ändern: {old} \u2192 {new}",
    "change.remove": "Mobilnummer {old} entfernen",
    "notify.off": "Keine E-Mail an den Benutzer",
    "notify.on": "E-Mail an den Benutzer ({language})",
    "notify.language.auto": "Sprache nach Standort des Benutzers",
    "notify.language.de": "Deutsch",
    "notify.language.en": "Englisch",
    "rules.title": "Geltende Regeln",
    "rule.privileged_requester": "Nur die privilegierte Gruppe darf diesen Benutzer ändern: Er hat {roles}. "
    "Sie sind Mitglied.",
    "rule.approval_privileged": "Nach Ihrer Bestätigung muss die {group} genehmigen: Der Benutzer hat {roles}.",
    "rule.approval_always": "Nach Ihrer Bestätigung muss die {group} genehmigen: Jede Änderung wird vor der "
    "Ausführung genehmigt.",
    "rule.no_approval": "Keine Genehmigung nötig: Die Änderung läuft, sobald Sie bestätigen.",
    "warnings.title": "Bitte beachten",
    "button.confirm": "Bestätigen",
    "button.edit": "Bearbeiten",
    "button.cancel": "Abbrechen",
    "button.approve": "Genehmigen",
    "button.reject": "Ablehnen",
    "button.open_portal": "Im Entra Admin Center öffnen",
    "phone.mobile": "Mobil",
    "phone.alternateMobile": "alternative Mobilnummer",
    "phone.office": "Büro",
    "sms.ready": "bereit (die Nummer kann zur Anmeldung per SMS verwendet werden)",
    "sms.notSupported": "für diesen Benutzer nicht unterstützt",
    "sms.notAllowedByPolicy": "durch die Richtlinie des Mandanten nicht erlaubt",
    "sms.notEnabled": "nicht aktiviert",
    "sms.invalidPhoneNumber": "die Nummer kann nicht für die SMS-Anmeldung verwendet werden",
    "sms.notConfigured": "nicht eingerichtet",
    "sms.phoneNumberNotUnique": "nicht möglich: Ein anderes Konto verwendet diese Nummer für die SMS-Anmeldung",
    "sms.unknownFutureValue": "unbekannt",
    "sms.none": "keine Mobilnummer",
    "progress.title": "In Arbeit\u2026",
    "progress.changing": "Die Nummer wird in Microsoft Entra ID geändert\u2026",
    "progress.removing": "Die Nummer wird in Microsoft Entra ID entfernt\u2026",
    "progress.checking": "Die aktuellen Telefonmethoden des Benutzers werden gelesen\u2026",
    "progress.looking_up": "{user} wird nachgeschlagen\u2026",
    "progress.search_profile": "Die Nummer wird bereits verwendet. Ich suche das Konto, das sie hat\u2026",
    "progress.search_scan": "Suche nach dem Konto, das die Nummer hat: {scanned} Konten geprüft\u2026",
    "progress.search_scan_total": "Suche nach dem Konto, das die Nummer hat: {scanned} von etwa {total} "
    "Konten geprüft\u2026",
    "progress.approved": "Genehmigt von {name}. Die Änderung wird ausgeführt\u2026",
    "outcome.added.title": "Erledigt: Mobilnummer gesetzt",
    "outcome.added.body": "Die Mobilnummer {new} ist jetzt für MFA registriert.",
    "outcome.updated.title": "Erledigt: Mobilnummer geändert",
    "outcome.updated.body": "Die Mobilnummer wurde von {old} auf {new} geändert.",
    "outcome.removed.title": "Erledigt: Mobilnummer entfernt",
    "outcome.removed.body": "Die Mobilnummer {old} wurde entfernt. Der Benutzer erhält darauf keine MFA-Codes "
    "mehr.",
    "outcome.unchanged.title": "Nichts zu ändern",
    "outcome.unchanged.body": "Der Benutzer hat bereits {new} als Mobilnummer. Es wurde nichts geändert.",
    "outcome.nothing_to_remove.title": "Nichts zu entfernen",
    "outcome.nothing_to_remove.body": "Der Benutzer hat keine Mobilnummer. Es wurde nichts geändert.",
    "outcome.shown.title": "Aktuelle Telefonmethoden",
    "outcome.shown.body": "Es wurde nichts geändert.",
    "outcome.number_mismatch.title": "Die Nummer stimmt nicht überein",
    "outcome.number_mismatch.body": "Sie haben {typed} angegeben, die aktuelle Mobilnummer des Benutzers ist "
    "aber {old}. Es wurde nichts geändert. Prüfen Sie die Nummer und versuchen Sie es erneut.",
    "outcome.blocked_by_graph_rule.title": "Microsoft Entra ID hat die Änderung abgelehnt",
    "outcome.blocked_by_graph_rule.body": "Eine Regel in Microsoft Entra ID hat die Änderung verhindert. Es "
    "wurde nichts geändert.",
    "outcome.blocked_by_graph_rule.next": "Prüfen Sie die Authentifizierungsmethoden des Benutzers im Entra "
    "Admin Center oder fragen Sie eine Administratorin oder einen Administrator. Die Details unten nennen "
    "die Regel.",
    "outcome.next.remove_alternate_first": "Entfernen Sie zuerst die alternative Mobilnummer, oder legen Sie "
    "stattdessen eine neue Mobilnummer fest.",
    "outcome.next.change_default_method_first": "Der Benutzer muss zuerst die Standard-Anmeldemethode ändern "
    "(Meine Anmeldungen: https://mysignins.microsoft.com) und dann die Nummer erneut entfernen.",
    "outcome.conflict_unresolved.title": "Blockiert: Die Nummer wird von einem anderen Konto verwendet",
    "outcome.conflict_unresolved.body": "Ein anderes Konto verwendet {new} bereits für die SMS-Anmeldung, und "
    "Microsoft Entra ID hat das Hinzufügen abgelehnt. Es wurde nichts geändert.",
    "outcome.conflict_unresolved.next": "Entfernen Sie die Nummer zuerst beim anderen Konto (oder schalten Sie "
    "dort die SMS-Anmeldung ab), oder verwenden Sie eine andere Nummer.",
    "outcome.user_not_found.title": "Benutzer nicht gefunden",
    "outcome.user_not_found.body": "Zu \u201e{ref}\u201c wurde kein Benutzer gefunden. Es wurde nichts geändert.",
    "outcome.invalid_number.title": "Die Nummer kann nicht verwendet werden",
    "outcome.invalid_number.body": "Die Telefonnummer ist ungültig. Es wurde nichts geändert.",
    "outcome.invalid_request.title": "Die Anfrage kann nicht ausgeführt werden",
    "outcome.invalid_request.body": "Die Anfrage ist unvollständig oder nicht erlaubt. Es wurde nichts "
    "geändert.",
    "outcome.permission_denied.title": "Dem Bot fehlt eine Berechtigung",
    "outcome.permission_denied.body": "Microsoft Graph hat den Aufruf abgelehnt, weil der App eine "
    "Berechtigung fehlt. Es wurde nichts geändert.",
    "outcome.permission_denied.which": "Fehlende Berechtigung: {permission}. Eine Administratorin oder ein "
    "Administrator muss sie der App erteilen (Administratorzustimmung).",
    "outcome.graph_unavailable.title": "Microsoft Graph ist nicht erreichbar",
    "outcome.graph_unavailable.body": "Microsoft Graph hat nicht rechtzeitig geantwortet, daher konnte die "
    "Änderung nicht abgeschlossen werden. Bitte versuchen Sie es in einigen Minuten erneut.",
    "outcome.graph_unavailable.support": "Wenn es weiter fehlschlägt, geben Sie die Request-IDs unter Details an "
    "Ihre Administration weiter.",
    "outcome.holder.title": "Konto, das die Nummer verwendet",
    "outcome.holder.not_found": "Kein aktiviertes oder deaktiviertes Konto verwendet die Nummer. Möglicherweise "
    "gehört sie einem gelöschten oder vorläufig gelöschten Benutzer.",
    "outcome.holder.account.enabled": "aktiviert",
    "outcome.holder.account.disabled": "deaktiviert",
    "outcome.holder.disabled_hint": "Ein deaktiviertes Konto verwendet die Nummer: Es behält sie für die "
    "SMS-Anmeldung, auch solange es deaktiviert ist. Entfernen Sie die Nummer aus diesem Konto (oder löschen Sie "
    "das Konto) und versuchen Sie es dann erneut.",
    "outcome.holder.not_licensed": "Das Konto, das die Nummer verwendet, kann in diesem Mandanten nicht gesucht "
    "werden: Die Suche braucht Microsoft Entra ID P1 oder P2. Telefonnummern im Profil und deaktivierte Konten "
    "wurden ohne Treffer geprüft.",
    "outcome.holder.not_permitted": "Das Konto, das die Nummer verwendet, konnte nicht gesucht werden: Der "
    "Anwendung fehlt die Berechtigung {permission}. Ein Administrator kann sie erteilen.",
    "outcome.holder.failed": "Die Suche nach dem Konto, das die Nummer verwendet, wurde nicht abgeschlossen.",
    "outcome.holder.not_run": "Nach dem Konto, das die Nummer verwendet, wurde nicht gesucht.",
    "outcome.graph_says": "Microsoft Graph meldet: {code}: {message}",
    "outcome.next": "Was zu tun ist: {text}",
    "outcome.sms_state": "SMS-Anmeldung: {state}",
    # nach einer Änderung: Zustand der SMS-Anmeldung, Inhaber einer für die SMS-Anmeldung abgelehnten Nummer, Details
    "outcome.sms_state.reading": "SMS-Anmeldung: wird geprüft\u2026",
    "outcome.sms_state.unread": "SMS-Anmeldung: konnte nicht gelesen werden; das Entra Admin Center zeigt sie.",
    "outcome.sms_state.removed": "SMS-Anmeldung: mit der Nummer entfernt.",
    "outcome.sms_conflict.once": "{new} ist für MFA gesetzt (Codes per SMS und Anrufe funktionieren), aber nicht "
    "für die SMS-Anmeldung: Ein anderes Konto verwendet die Nummer bereits für die SMS-Anmeldung.",
    "outcome.sms_conflict.holder": "Für die SMS-Anmeldung verwendet von {name} ({upn}).",
    "outcome.sms_conflict.no_holder": "Kein anderes Konto wurde gefunden, das die Nummer für die SMS-Anmeldung "
    "verwendet; möglicherweise ein gelöschter Benutzer.",
    "outcome.sms_conflict.not_searched": "Das Konto, das die Nummer für die SMS-Anmeldung verwendet, konnte nicht "
    "gesucht werden.",
    "outcome.sms_conflict.next": "Für MFA ist nichts weiter nötig. Wenn der Benutzer die SMS-Anmeldung braucht, "
    "entfernen Sie die Nummer beim Konto, das sie verwendet (oder schalten Sie dort die SMS-Anmeldung aus), und "
    "schalten Sie dann im Entra Admin Center die SMS-Anmeldung für diesen Benutzer ein.",
    "button.details": "Details",
    "button.audit_trail": "Prüfprotokoll",
    "details.audit.display": "Prüfprotokoll der Anfrage {id}",
    "event.holder_search": "Inhaber der Nummer gesucht",
    "notification.sent": "E-Mail an {recipient} gesendet ({language}).",
    "notification.disabled": "Keine E-Mail gesendet: nicht angefordert.",
    "notification.skipped_no_mail": "Keine E-Mail gesendet: Der Benutzer hat kein Postfach.",
    "notification.failed": "Die E-Mail konnte nicht gesendet werden: {detail}",
    "notification.not_attempted": "Keine E-Mail gesendet: Es wurde nichts geändert.",
    "notification.reason.not_configured": "Es ist kein Absenderpostfach eingerichtet (MAIL_SENDER).",
    "notification.reason.render_failed": "Die E-Mail konnte nicht aus ihrer Vorlage erstellt werden.",
    "notification.reason.mailbox_not_enabled": "Das Absenderpostfach {sender} kann nicht über Microsoft Graph "
    "senden (inaktiv, gelöscht, lokal gehostet oder ohne Exchange-Online-Lizenz).",
    "notification.reason.sender_not_found": "Das Absenderpostfach {sender} wurde nicht gefunden.",
    "notification.reason.send_as_denied": "Die App darf nicht als {sender} senden (Berechtigung Mail.Send oder "
    "eine Exchange-Anwendungszugriffsrichtlinie).",
    "notification.reason.unavailable_maybe_sent": "Microsoft Graph hat mit {status} geantwortet; die E-Mail "
    "wurde möglicherweise trotzdem gesendet.",
    "notification.reason.unreachable": "Microsoft Graph war nicht erreichbar; die E-Mail wurde nicht gesendet.",
    "notification.reason.unreachable_maybe_sent": "Microsoft Graph war nicht erreichbar; die E-Mail wurde "
    "möglicherweise trotzdem gesendet.",
    "notification.reason.busy_not_sent": "Microsoft Graph war ausgelastet oder nicht verfügbar; die E-Mail "
    "wurde nicht gesendet.",
    "notification.reason.refused": "Microsoft Graph hat das Senden der E-Mail abgelehnt.",
    "notification.reason.unexpected_answer": "Microsoft Graph hat mit {status} geantwortet, statt die E-Mail "
    "anzunehmen.",
    "notification.reason.error": "Beim Senden ist ein unerwarteter Fehler aufgetreten.",
    "approval.title": "Genehmigung erforderlich: Änderung des MFA-Mobiltelefons",
    "approval.waiting": "Wartet auf Genehmigung durch die {group}.",
    "approval.group.approver": "Genehmigungsgruppe",
    "approval.group.privileged": "privilegierte Gruppe",
    "approval.reason.label": "Begründung (optional, geht an die anfragende Person)",
    "approval.reason.placeholder": "Warum lehnen Sie ab?",
    "approval.read_only": "Nur Mitglieder der {group} können entscheiden. Sie sehen den aktuellen Stand.",
    "approval.approved_by": "Genehmigt von {name} am {time}.",
    "approval.rejected_by": "Abgelehnt von {name} am {time}.",
    "approval.rejected_reason": "Begründung: {reason}",
    "approval.expired": "Abgelaufen am {time}: Niemand hat rechtzeitig entschieden. Es wurde nichts geändert.",
    "approval.cancelled": "Abgebrochen von {name} am {time}. Es wurde nichts geändert.",
    "approval.cancelled_plain": "Abgebrochen. Es wurde nichts geändert.",
    "approvers.registered": "Diese Unterhaltung erhält jetzt die Genehmigungsanfragen, auch die für "
    "privilegierte Benutzer.",
    "approvers.registered_ordinary": "Diese Unterhaltung erhält jetzt die Genehmigungsanfragen, außer denen für "
    "privilegierte Benutzer: Diese gehen weiterhin an die für die privilegierten Genehmigenden eingetragene "
    "Unterhaltung.",
    "approvers.registered_ordinary_no_privileged": "Diese Unterhaltung erhält jetzt die Genehmigungsanfragen, "
    "außer denen für privilegierte Benutzer: Für diese hat noch kein Mitglied der privilegierten Gruppe eine "
    "Unterhaltung eingetragen, daher können sie nicht gesendet werden. Ein Mitglied der privilegierten Gruppe muss "
    "im Kanal oder Gruppenchat der privilegierten Genehmigenden \u201eregister approvals\u201c eingeben.",
    "approvers.not_allowed": "Nur Mitglieder der Genehmigungsgruppe können diese Unterhaltung für "
    "Genehmigungen eintragen.",
    "approval.no_approvers_channel": "Es ist kein Genehmigungskanal eingerichtet, daher könnte niemand diese "
    "Anfrage genehmigen. Sie wurde nicht gesendet, und es wurde nichts geändert. Bitten Sie eine Administratorin "
    "oder einen Administrator, den Bot zum Genehmigungskanal oder -gruppenchat hinzuzufügen und dort "
    "\u201eregister approvals\u201c einzugeben.",
    "approval.no_privileged_approvers_channel": "Es ist keine Unterhaltung für die privilegierten Genehmigenden "
    "eingerichtet, daher könnte niemand diese Änderung an einem privilegierten Benutzer genehmigen. Sie wurde "
    "nicht gesendet, und es wurde nichts geändert. Ein Mitglied der privilegierten Gruppe muss im Kanal oder "
    "Gruppenchat der privilegierten Genehmigenden \u201eregister approvals\u201c eingeben.",
    "approval.undelivered": "Die Genehmigungsanfrage konnte nicht im Genehmigungskanal veröffentlicht werden und "
    "wurde deshalb abgebrochen. Es wurde nichts geändert. Bitte versuchen Sie es später erneut oder wenden Sie "
    "sich an eine Administratorin oder einen Administrator.",
    "approval.not_draft": "Diese Anfrage wurde bereits gesendet oder entschieden. Geben Sie status {id} ein, um "
    "den aktuellen Stand zu sehen.",
    "approval.not_found": "Diese Anfrage gibt es nicht.",
    "approval.cancel_not_requester": "Nur die Person, die diese Änderung angefragt hat, kann sie abbrechen.",
    "approval.not_submitted": "Diese Anfrage wurde nicht zur Genehmigung gesendet.",
    "approval.already_cancelled": "Diese Anfrage wurde abgebrochen. Es wurde nichts geändert.",
    "approval.already_approved": "{name} hat diese Anfrage bereits am {time} genehmigt.",
    "approval.already_rejected": "{name} hat diese Anfrage bereits am {time} abgelehnt.",
    "approval.reason_too_long": "Die Begründung ist zu lang (höchstens {limit} Zeichen). Es wurde nichts "
    "geändert.",
    "approval.requester.approved": "{name} hat Ihre Anfrage für {target} ({upn}) genehmigt. Die Änderung wird "
    "jetzt ausgeführt; ich teile Ihnen das Ergebnis mit.",
    "approval.requester.rejected": "{name} hat Ihre Anfrage für {target} ({upn}) abgelehnt. Es wurde nichts "
    "geändert.",
    "approval.requester.rejected_reason": "{name} hat Ihre Anfrage für {target} ({upn}) abgelehnt. "
    "Begründung: {reason}. Es wurde nichts geändert.",
    "approval.requester.expired": "Ihre Anfrage für {target} ({upn}) ist am {time} abgelaufen, da niemand "
    "rechtzeitig entschieden hat. Es wurde nichts geändert.",
    "approval.requester.interrupted": "Die Änderung für {target} ({upn}) wurde während der Ausführung "
    "unterbrochen. Ob sie übernommen wurde, ist unklar. Prüfen Sie den aktuellen Stand (status {id}), bevor Sie "
    "es erneut versuchen.",
    "execution.interrupted.body": "Die Ausführung wurde unterbrochen: Der Bot wurde beendet, während die Änderung "
    "lief. Die Änderung wurde in Microsoft Entra ID möglicherweise übernommen, möglicherweise auch nicht.",
    "execution.interrupted.next": "Prüfen Sie den aktuellen Stand des Benutzers, bevor Sie es erneut versuchen: "
    "Geben Sie hier status {id} ein und sehen Sie sich seine Telefonmethoden an (show in der Befehlszeile oder "
    "im Entra Admin Center).",
    "awaiting.title": "Zur Genehmigung gesendet",
    "awaiting.body": "Ihre Anfrage wartet auf die Genehmigung durch die {group}. Ich melde Ihnen das Ergebnis "
    "hier.",
    "awaiting.expires": "Wenn bis {time} niemand entscheidet, läuft die Anfrage ab.",
    "decision.title.approved": "Genehmigt",
    "decision.title.rejected": "Abgelehnt",
    "decision.title.expired": "Abgelaufen",
    "decision.title.cancelled": "Abgebrochen",
    "decision.title.executing": "Genehmigt: Die Änderung wird ausgeführt",
    "decision.title.completed": "Abgeschlossen",
    "decision.title.failed": "Fehlgeschlagen",
    "decision.title.draft": "Noch nicht bestätigt",
    "decision.title.awaiting_approval": "Wartet auf Genehmigung",
    "state.draft": "Entwurf, nicht bestätigt",
    "state.awaiting_approval": "wartet auf Genehmigung",
    "state.approved": "genehmigt",
    "state.executing": "läuft",
    "state.completed": "abgeschlossen",
    "state.failed": "fehlgeschlagen",
    "state.rejected": "abgelehnt",
    "state.expired": "abgelaufen",
    "state.cancelled": "abgebrochen",
    "refusal.title": "Nicht möglich",
    "notice.refused": "Nicht möglich: {reason}",
    "refusal.not_helpdesk": "Nur Mitglieder der Helpdesk-Gruppe können MFA-Telefonnummern ändern. Bitten Sie "
    "Ihre Administration, Sie aufzunehmen, falls Sie das brauchen.",
    "refusal.target_privileged": "Dieser Benutzer hat {roles}. Nur Mitglieder der privilegierten Gruppe "
    "können sein MFA-Telefon ändern, und Sie sind kein Mitglied.",
    "refusal.own_account": "Sie können Ihr eigenes MFA-Telefon nicht über den Bot ändern. Bitte wenden Sie "
    "sich an eine Kollegin oder einen Kollegen.",
    "refusal.other_tenant": "Dieser Bot bedient nur die eigene Organisation. Anfragen aus anderen Mandanten "
    "werden abgelehnt.",
    "refusal.rate_limit": "Sie haben die Grenze von {limit} Änderungen in {window} erreicht. Bitte versuchen "
    "Sie es später erneut oder wenden Sie sich an eine Kollegin oder einen Kollegen.",
    "refusal.target_cooldown": "Das MFA-Telefon dieses Benutzers wurde am {time} geändert. Eine weitere "
    "Änderung ist ab {until} möglich.",
    "refusal.target_busy": "Für diesen Benutzer läuft gerade eine andere Änderung. Mit dieser Anfrage wurde "
    "nichts geändert; stellen Sie eine neue, wenn die andere abgeschlossen ist.",
    "hold.requester_not_helpdesk": "{name}, die/der diese Änderung angefragt hat, ist nicht mehr Mitglied der "
    "Helpdesk-Gruppe, daher wurde die Anfrage abgebrochen. Es wurde nichts geändert.",
    "hold.target_now_privileged": "Dieser Benutzer hat jetzt {roles}, und wer die Änderung angefragt hat, ist "
    "kein Mitglied der privilegierten Gruppe, daher wurde die Anfrage abgebrochen. Es wurde nichts geändert.",
    "hold.needs_privileged_approval": "Dieser Benutzer hat jetzt {roles}, und die Änderung wurde nicht von "
    "einer privilegierten genehmigenden Person genehmigt, daher wurde die Anfrage abgebrochen. Es wurde nichts "
    "geändert. Eine neue Anfrage braucht eine privilegierte genehmigende Person.",
    "hold.requester_told": "Anfrage {id} für {target} wurde abgebrochen: {reason}",
    "approval.now_privileged": "Dieser Benutzer ist seit der Anfrage privilegiert ({roles}): Nur Mitglieder "
    "der privilegierten Gruppe dürfen sie jetzt genehmigen. Die Anfrage wartet weiter auf eine solche Person.",
    "approval.escalated": "Dieser Benutzer ist seit der Anfrage privilegiert: Nur Mitglieder der "
    "privilegierten Gruppe dürfen sie jetzt genehmigen.",
    "refusal.approver_is_requester": "Sie haben diese Änderung angefragt und können sie daher weder "
    "genehmigen noch ablehnen. Eine andere genehmigende Person muss entscheiden.",
    "refusal.approver_is_target": "Diese Änderung betrifft Ihr eigenes Konto, daher können Sie sie weder "
    "genehmigen noch ablehnen.",
    "refusal.not_approver": "Nur Mitglieder der {group} können diese Anfrage genehmigen oder ablehnen.",
    "refusal.guest": "Gastkonten können keine Änderung eines MFA-Telefons anfragen, auch nicht in der "
    "Helpdesk-Gruppe. Bitte wenden Sie sich an ein Helpdesk-Mitglied dieser Organisation.",
    "refusal.guest_approver": "Gastkonten können Änderungen eines MFA-Telefons weder genehmigen noch ablehnen. "
    "Ein Mitglied der Organisation muss entscheiden.",
    "refusal.not_found": "Anfrage nicht gefunden, oder sie gehört nicht Ihnen.",
    "refusal.stale": "Diese Karte ist veraltet: Die Anfrage hat sich inzwischen geändert. Hier ist ihr "
    "aktueller Stand.",
    "refusal.expired": "Diese Anfrage ist abgelaufen. Es wurde nichts geändert. Bitte stellen Sie eine neue.",
    "refusal.unknown_action": "Diese Aktion kenne ich nicht. Bitte verwenden Sie die Schaltflächen der "
    "neuesten Karte.",
    "refusal.already_decided": "Über diese Anfrage wurde bereits entschieden: {state}.",
    "refusal.not_in_personal_chat": "Bitte fragen Sie Änderungen in einem persönlichen Chat mit mir an.",
    "refusal.bad_input": "Diese Kartenaktion konnte ich nicht lesen. Bitte verwenden Sie die neueste Karte.",
    "refusal.internal_error": "Bei mir ist etwas schiefgegangen. Es wurde nichts geändert. Bitte versuchen Sie "
    "es erneut.",
    "refusal.unknown_command": "\u201e{text}\u201c habe ich nicht verstanden. Geben Sie help ein, um zu sehen, "
    "was ich kann.",
    # eine Ablehnung des Anfrageformulars nennt den Benutzer; das Entfernen einer fremden Nummer wird nicht angeboten
    "refusal.title_for": "Nicht möglich für {user}",
    "refusal.remove_mismatch": "{typed} stimmt nicht mit der aktuellen Mobilnummer von {name} ({current}) "
    "überein, Entfernen würde also nichts ändern. Korrigieren Sie die Nummer mit \u201eBearbeiten\u201c, oder "
    "lassen Sie sie leer, um die aktuelle Mobilnummer zu entfernen.",
    "refusal.remove_no_mobile": "{name} hat keine Mobilnummer, daher kann {typed} nicht entfernt werden, und es "
    "würde sich nichts ändern. Korrigieren Sie Benutzer oder Nummer mit \u201eBearbeiten\u201c, oder brechen "
    "Sie ab.",
    "cancel.done": "Ihre Anfrage wurde abgebrochen. Es wurde nichts geändert.",
    "cancel.nothing": "Sie haben keine offene Anfrage, die abgebrochen werden kann.",
    "history.title": "Verlauf für {target}",
    "history.empty": "Keine Einträge.",
    "history.more": "Nur die neuesten {count} Einträge werden angezeigt.",
    "status.title": "Stand der Anfrage {id}",
    "status.audit": "Protokoll",
    "event.requested": "angefragt",
    "event.edited": "bearbeitet",
    "event.draft_updated": "bearbeitet",
    "event.confirmed": "bestätigt",
    "event.submitted_for_approval": "zur Genehmigung gesendet",
    "event.approved": "genehmigt",
    "event.rejected": "abgelehnt",
    "event.expired": "abgelaufen",
    "event.cancelled": "abgebrochen",
    "event.executing": "gestartet",
    "event.completed": "abgeschlossen",
    "event.failed": "fehlgeschlagen",
    "event.execution_started": "gestartet",
    "event.execution_resumed": "nach einer Unterbrechung fortgesetzt",
    "event.approval_refused": "abgewiesen",
    "event.approval_unavailable": "nicht gesendet: kein Genehmigungskanal",
    "event.approval_undelivered": "den genehmigenden Personen nicht zugestellt",
    "event.refused": "abgewiesen",
    "event.history_viewed": "Verlauf angesehen",
    "event.notification": "Benachrichtigung",
    "entry.numbers": "{old} \u2192 {new}",
    "entry.outcome": "Ergebnis: {outcome}",
    "entry.reason": "Begründung: {reason}",
    "entry.by": "von {name}",
    "outcome_name.added": "gesetzt",
    "outcome_name.updated": "geändert",
    "outcome_name.removed": "entfernt",
    "outcome_name.unchanged": "unverändert",
    "outcome_name.nothing_to_remove": "nichts zu entfernen",
    "outcome_name.shown": "angezeigt",
    "outcome_name.number_mismatch": "Nummer stimmt nicht überein",
    "outcome_name.blocked_by_graph_rule": "durch eine Regel von Microsoft Entra ID blockiert",
    "outcome_name.conflict_unresolved": "blockiert: Nummer von anderem Konto verwendet",
    "outcome_name.user_not_found": "Benutzer nicht gefunden",
    "outcome_name.invalid_number": "ungültige Nummer",
    "outcome_name.invalid_request": "ungültige Anfrage",
    "outcome_name.permission_denied": "Berechtigung fehlt",
    "outcome_name.graph_unavailable": "Microsoft Graph nicht erreichbar",
    "outcome_name.interrupted": "unterbrochen: möglicherweise übernommen, möglicherweise nicht",
    # Prüfung der anrufenden Person
    "form.verification.label": "Wie wurde die anrufende Person geprüft?",
    "form.verification.teams": "Bestätigung in Teams: die Person beantwortet eine Nachricht von mir",
    "form.verification.code": "Einmalcode: die anrufende Person liest einen Code vor, den ich dem Benutzer sende",
    "form.verification.manager": "Bestätigung durch die Führungskraft in Teams",
    "form.verification.in_person": "Persönlich, Ausweis geprüft (eine Genehmigung ist nötig)",
    "form.verification.error": "Wählen Sie, wie die anrufende Person geprüft wurde.",
    "error.verification.required": "Wählen Sie, wie die anrufende Person geprüft wurde.",
    "error.verification.invalid": "Das ist keine der Arten, die anrufende Person zu prüfen.",
    "error.verification.not_accepted": "Bei diesem Benutzer muss die anrufende Person so geprüft werden: {methods}.",
    "refusal.verification_not_accepted": "Diese Art der Prüfung ist bei diesem Benutzer nicht zugelassen: "
    "verwenden Sie {methods}. Wählen Sie mit Bearbeiten eine andere. Es wurde nichts geändert.",
    "verify.method.teams": "Bestätigung in Teams",
    "verify.method.code": "Einmalcode",
    "verify.method.manager": "Bestätigung durch die Führungskraft in Teams",
    "verify.method.in_person": "persönlich, Ausweis geprüft",
    "fact.verification": "Anrufende Person geprüft",
    "verify.fact.chosen": "{method} (noch nicht erfolgt)",
    "verify.fact.waiting": "{method}: wartet auf {name} bis {time}",
    "verify.fact.done": "{method}: bestätigt von {name} am {time}",
    "verify.fact.code_done": "{method}: von der anrufenden Person vorgelesen, geprüft am {time} (gesendet an "
    "{name})",
    "verify.fact.attested": "{method}: bezeugt von {name} am {time}",
    "rule.verify_in_person": "Nach Ihrer Bestätigung muss die {group} genehmigen: Die anrufende Person wurde "
    "persönlich geprüft.",
    "rule.verify_first": "Bevor sich etwas ändert, wird die anrufende Person geprüft ({method}).",
    "verify.waiting.title": "Wartet auf die Prüfung der anrufenden Person",
    "verify.waiting.teams": "Wartet darauf, dass {name} in Teams bestätigt (läuft ab: {time}).",
    "verify.waiting.manager": "Wartet darauf, dass {name}, die Führungskraft des Benutzers, in Teams bestätigt "
    "(läuft ab: {time}).",
    "verify.waiting.code": "Ein Einmalcode wurde per {via} an {name} gesendet. Geben Sie die 6 Ziffern ein, die "
    "Ihnen die anrufende Person vorliest (gültig bis {time}).",
    "verify.via.teams": "Teams-Nachricht",
    "verify.via.mail": "E-Mail",
    "verify.code.label": "Code, den die anrufende Person vorliest",
    "verify.code.placeholder": "6 Ziffern",
    "button.verify_code": "Code prüfen",
    "verify.code.wrong": "Der Code ist falsch. Verbleibende Versuche: {left}.",
    "verify.code.malformed": "Geben Sie die 6 Ziffern des Codes ein.",
    "verify.confirmed": "Bestätigt von {name} um {time}.",
    "verify.code_confirmed": "Der Code war richtig (geprüft um {time}).",
    "verify.already_done": "Die anrufende Person wurde bereits geprüft; es wurde nichts erneut ausgeführt.",
    "verify.refused_reason": "{name} hat angegeben, diese Änderung nicht angefragt zu haben. Die "
    "Telefonmethoden sind bis {until} für Änderungen über den Bot gesperrt, und die Genehmigenden wurden "
    "alarmiert.",
    "verify.failed_reason": "Der Einmalcode wurde {count}-mal falsch eingegeben, daher konnte die anrufende "
    "Person nicht geprüft werden. Es wurde nichts geändert.",
    "verify.expired_reason": "{name} hat nicht rechtzeitig geantwortet (bis {time}), daher konnte die anrufende "
    "Person nicht geprüft werden. Es wurde nichts geändert.",
    "entry.verification": "Prüfung der anrufenden Person: {method}",
    "verify.expired_line": "Abgelaufen am {time}: die anrufende Person wurde nicht rechtzeitig geprüft. Es wurde "
    "nichts geändert.",
    "verify.cancelled_reason": "Die Anfrage wurde abgebrochen, bevor die anrufende Person geprüft war. Es wurde "
    "nichts geändert.",
    "verify.undelivered": "{name} war in Teams nicht erreichbar: {reason} Es wurde nichts geändert. Wählen Sie "
    "mit Bearbeiten eine andere Art, die anrufende Person zu prüfen.",
    "verify.undelivered.not_configured": "Ich bin nicht dafür eingerichtet, Benutzer in Teams zu erreichen.",
    "verify.undelivered.app_not_in_catalog": "Meine App ist nicht im Teams-App-Katalog Ihrer Organisation.",
    "verify.undelivered.blocked_by_policy": "Eine Teams-App-Richtlinie sperrt meine App für diese Person.",
    "verify.undelivered.permission_missing": "Mir fehlt die Microsoft-Graph-Berechtigung, meine App für diese "
    "Person zu installieren.",
    "verify.undelivered.graph_error": "Microsoft Graph hat nicht geantwortet.",
    "verify.undelivered.send_failed": "Die Nachricht konnte nicht gesendet werden.",
    "verify.code_undelivered": "Der Einmalcode konnte nicht an {name} gesendet werden: nicht in Teams ({reason}) "
    "und nicht per E-Mail ({mail}). Es wurde nichts geändert. Wählen Sie mit Bearbeiten eine andere Art, die "
    "anrufende Person zu prüfen.",
    "verify.mail.skipped_no_mail": "der Benutzer hat kein Postfach",
    "verify.mail.failed": "das Senden der E-Mail ist fehlgeschlagen",
    "verify.mail.not_configured": "es ist kein Absenderpostfach eingerichtet (MAIL_SENDER)",
    "verify.no_manager": "Für {name} ist im Verzeichnis keine Führungskraft eingetragen, daher kann keine "
    "Führungskraft bestätigen. Wählen Sie mit Bearbeiten eine andere Art der Prüfung. Es wurde nichts geändert.",
    "verify.manager_is_requester": "Sie sind die Führungskraft von {name}: Sie können Ihre eigene Anfrage nicht "
    "bestätigen. Wählen Sie mit Bearbeiten eine andere Art der Prüfung. Es wurde nichts geändert.",
    "verify.manager_is_target": "Im Verzeichnis ist {name} als eigene Führungskraft eingetragen, daher kann keine "
    "Führungskraft bestätigen. Wählen Sie mit Bearbeiten eine andere Art der Prüfung. Es wurde nichts geändert.",
    "verify.manager_unusable": "{manager}, die Führungskraft von {name}, kann nicht bestätigen (das Konto ist "
    "deaktiviert oder ein Gast). Wählen Sie mit Bearbeiten eine andere Art der Prüfung. Es wurde nichts geändert.",
    "verify.ask.title": "Haben Sie den Service Desk gebeten, Ihr Anmeldetelefon zu ändern?",
    "verify.ask.title_manager": "Bitte bestätigen Sie eine Service-Desk-Anfrage für {target}",
    "verify.ask.body": "{requester} vom Service Desk möchte das Mobiltelefon ändern, mit dem Sie sich anmelden "
    "(Multi-Faktor-Authentifizierung). Antworten Sie nur mit Ja, wenn Sie das gerade selbst angefragt haben.",
    "verify.ask.body_manager": "{requester} vom Service Desk möchte das Anmeldetelefon von {target} ändern, "
    "die/der an Sie berichtet. Antworten Sie nur mit Ja, wenn Sie wissen, dass {target} es angefragt hat.",
    "verify.ask.hint": "Wenn das niemand angefragt hat, den Sie kennen, wählen Sie Nein: die Änderung wird "
    "gestoppt und das Sicherheitsteam informiert.",
    "button.verify_yes": "Ja, das habe ich angefragt",
    "button.verify_no": "Nein, das war ich nicht",
    "button.verify_yes_manager": "Ja, das stimmt",
    "button.verify_no_manager": "Nein, stoppen",
    "verify.thanks.yes": "Danke. Sie haben diese Anfrage um {time} bestätigt; der Service Desk macht weiter.",
    "verify.thanks.no": "Danke. Die Anfrage wurde gestoppt, es wurde nichts geändert. Das Sicherheitsteam wurde "
    "informiert, und der Service-Desk-Bot ändert dieses Anmeldetelefon bis {until} nicht.",
    "verify.ended": "Diese Anfrage wartet nicht mehr auf Ihre Antwort ({state}). Ihr Klick hat nichts geändert.",
    "verify.ended.title": "Keine Antwort nötig",
    "verify.answered.yes.title": "Sie haben diese Anfrage bestätigt",
    "verify.answered.no.title": "Gestoppt: Sie haben das nicht angefragt",
    "verify.not_verifier": "Nur die gefragte Person kann auf diese Karte antworten.",
    "verify.code_card.title": "Ihr Einmalcode für den Service Desk",
    "verify.code_card.body": "{requester} vom Service Desk möchte Ihr Anmeldetelefon ändern. Wenn Sie selbst beim "
    "Service Desk angerufen haben, lesen Sie diesen Code vor: {code}. Er ist gültig bis {time}.",
    "verify.code_card.hint": "Wenn Sie nicht beim Service Desk angerufen haben, geben Sie den Code niemandem und "
    "informieren Sie Ihr Sicherheitsteam.",
    "alert.title": "Sicherheitswarnung: ein Benutzer hat eine MFA-Telefonänderung nicht angefragt",
    "alert.body": "{target} ({upn}) hat mit Nein geantwortet, als die von {requester} angefragte Änderung des "
    "Anmeldetelefons bestätigt werden sollte. Die anrufende Person hat sich möglicherweise als dieser Benutzer "
    "ausgegeben. Die Telefonmethoden sind bis {until} für Änderungen über den Bot gesperrt.",
    "fact.number_asked": "Angefragte Nummer",
    "fact.locked_until": "Gesperrt bis",
    "refusal.target_locked": "Die Telefonmethoden von {name} sind bis {until} für Änderungen über den Bot "
    "gesperrt: der Benutzer hat angegeben, eine frühere Änderung nicht angefragt zu haben. Ein Mitglied der "
    "privilegierten Gruppe kann die Sperre mit unlock <Benutzer> aufheben.",
    "hold.target_locked": "Die Telefonmethoden des Benutzers sind bis {until} für Änderungen über den Bot "
    "gesperrt: der Benutzer hat angegeben, eine Änderung nicht angefragt zu haben.",
    "help.cmd.unlock": "unlock <Benutzer>: hebt die Sperre auf, nachdem ein Benutzer Nein gesagt hat (nur "
    "privilegierte Gruppe)",
    "unlock.done": "Die Sperre für {name} ({upn}) wurde aufgehoben: Änderungen über den Bot sind wieder möglich.",
    "unlock.none": "{name} ({upn}) ist nicht gesperrt.",
    "unlock.usage": "Geben Sie unlock und den UPN, die E-Mail-Adresse oder die Objekt-ID des Benutzers ein.",
    "refusal.unlock_not_privileged": "Nur ein Mitglied der privilegierten Gruppe kann eine Sperre aufheben.",
    "state.awaiting_verification": "wartet auf die Prüfung der anrufenden Person",
    "decision.title.awaiting_verification": "Wartet auf die Prüfung der anrufenden Person",
    "event.verification_started": "Prüfung der anrufenden Person begonnen",
    "event.verification_code_sent": "Einmalcode gesendet",
    "event.verification_wrong_code": "falscher Code eingegeben",
    "event.verification_undelivered": "Prüfung konnte nicht zugestellt werden",
    "event.caller_verified": "anrufende Person geprüft",
    "event.caller_attested": "anrufende Person persönlich geprüft (bezeugt)",
    "event.verification_refused": "der Benutzer hat es nicht angefragt",
    "event.verification_failed": "Prüfung fehlgeschlagen",
    "event.verification_expired": "Prüfung abgelaufen",
    "event.target_locked": "Benutzer gesperrt",
    "event.target_unlocked": "Sperre aufgehoben",
    "event.security_alert": "Sicherheitswarnung gesendet",
    "event.verification_answer_refused": "Antwort abgewiesen",
}

TEXTS: Final[dict[str, dict[str, str]]] = {"en": EN, "de": DE}

"""Adaptive Cards (schema 1.5) for every message the bot posts.

Rules every builder follows:

- Buttons are `Action.Execute` (Universal Actions) inside an `ActionSet` in the body, each with an
  `Action.Submit` fallback that carries the same data, and the verb repeated in ``data`` so the fallback still
  says what was clicked. Request-bound buttons carry only ``requestId`` and ``rev``: the facts are read from the
  database, never from card data.
- Phone numbers are always masked (`graph.numbers.mask`). The one exception is the request form's own number
  field, which keeps what the agent typed when the form comes back with an error.
- Every string placed in a TextBlock or a FactSet is markdown-escaped (`md`): Adaptive Cards render markdown
  there, and display names, reasons and Graph messages come from outside. Texts in `bot.views.texts` are plain.
- Every input has a label (client tests and screen readers find inputs by it); a server-side error is a
  TextBlock in the attention colour right under its input, with the values kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from bot.persistence.models import ChangeRequest, RequestState
from bot.views.markdown import escape
from bot.views.texts import t
from graph.outcome import Holder, NotificationStatus, Outcome, OutcomeKind, PhoneState

Card = dict[str, Any]

SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION: Final = "1.5"
MAX_REFRESH_USER_IDS: Final = 60  # Teams refreshes user-specific views for at most 60 users
PEOPLE_DATASET: Final = "graph.microsoft.com/users"

VERB_REVIEW: Final = "mfa.review"
VERB_CONFIRM: Final = "mfa.confirm"
VERB_EDIT: Final = "mfa.edit"
VERB_CANCEL: Final = "mfa.cancel"
VERB_APPROVE: Final = "mfa.approve"
VERB_REJECT: Final = "mfa.reject"
VERB_REFRESH: Final = "mfa.refresh"
# caller verification: the target (or their manager) answers; the agent types the code the caller reads back
VERB_VERIFY_YES: Final = "mfa.verify.yes"
VERB_VERIFY_NO: Final = "mfa.verify.no"
VERB_VERIFY_CODE: Final = "mfa.verify.code"
VERBS: Final = frozenset(
    {
        VERB_REVIEW,
        VERB_CONFIRM,
        VERB_EDIT,
        VERB_CANCEL,
        VERB_APPROVE,
        VERB_REJECT,
        VERB_REFRESH,
        VERB_VERIFY_YES,
        VERB_VERIFY_NO,
        VERB_VERIFY_CODE,
    }
)

# Request form input ids (docs/ARCHITECTURE.md) and limits the form asks the client to hold.
FIELD_TARGET_PICKER: Final = "targetUserId"
FIELD_TARGET_TEXT: Final = "targetUserText"
FIELD_NUMBER: Final = "number"
FIELD_ACTION: Final = "action"
FIELD_NOTIFY: Final = "notify"
FIELD_LANGUAGE: Final = "language"
FIELD_TICKET: Final = "ticket"
FIELD_REASON: Final = "reason"
FIELD_VERIFICATION: Final = "verification"
FIELD_CODE: Final = "code"
VERIFICATION_METHODS: Final = ("teams", "code", "manager", "in_person")
FORM_ERROR: Final = "_form"  # key in `errors` for an error about the form as a whole
MAX_TARGET_CHARS: Final = 256
MAX_NUMBER_CHARS: Final = 40
MAX_TICKET_CHARS: Final = 500
MAX_REASON_CHARS: Final = 500
MAX_HISTORY_ENTRIES: Final = 25


class AuditEntryLike(Protocol):
    """What the history and status cards read from bot.persistence.store.AuditEntry."""

    at: datetime
    event: str
    actor_name: str | None
    details: dict[str, Any]


# ------------------------------------------------------------------------------------------------ escaping


def md(value: object) -> str:
    """Plain text made safe for a markdown-rendering TextBlock or Fact: markdown-significant characters are
    backslash-escaped, line breaks collapse to spaces (no injected headings or lists), so a hostile display
    name cannot inject a link, an image or emphasis. The one escape, shared with text messages (bot.views.markdown)."""
    return escape(value)


def masked(number: str | None) -> str:
    """The masked form of a number ("+49 170 ***4567"), "—" when there is none."""
    from graph.numbers import mask  # the one masking rule, shared with logs and the CLI

    return mask(number)


# ------------------------------------------------------------------------------------------------ elements


def _card(body: list[dict[str, Any]], *, refresh: dict[str, Any] | None = None) -> Card:
    card: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if refresh is not None:
        card["refresh"] = refresh
    return card


def _text(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": md(text), "wrap": True, **props}


def _title(text: str, color: str | None = None) -> dict[str, Any]:
    block = _text(text, size="Medium", weight="Bolder")
    if color:
        block["color"] = color
    return block


def _subtle(text: str) -> dict[str, Any]:
    return _text(text, isSubtle=True, size="Small", spacing="Small")


def _error(field: str, text: str) -> dict[str, Any]:
    return _text(text, id=f"{field}Error", color="Attention", spacing="None", size="Small")


def _facts(pairs: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    return {
        "type": "FactSet",
        "facts": [{"title": md(title), "value": md(value)} for title, value in pairs if value],
    }


def _data(verb: str, req: ChangeRequest | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"verb": verb}
    if req is not None:
        data["requestId"] = req.id
        data["rev"] = req.revision
    return data


def _execute(title: str, verb: str, req: ChangeRequest | None = None, *, style: str | None = None) -> dict:
    data = _data(verb, req)
    fallback: dict[str, Any] = {"type": "Action.Submit", "title": title, "data": dict(data)}
    action: dict[str, Any] = {"type": "Action.Execute", "title": title, "verb": verb, "data": data}
    if style:
        action["style"] = style
        fallback["style"] = style
    action["fallback"] = fallback
    return action


def _actions(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ActionSet", "actions": list(actions)}


def _time(lang: str, value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return t(lang, "common.utc", time=value.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))


def _sms_state(lang: str, state: str | None) -> str:
    if not state:
        return t(lang, "common.unknown")
    key = f"sms.{state}"
    text = t(lang, key)
    return state if text.startswith("⟦") else text


def _phone_type(lang: str, phone_type: str) -> str:
    text = t(lang, f"phone.{phone_type}")
    return phone_type if text.startswith("⟦") else text


def _group(lang: str, req: ChangeRequest) -> str:
    return t(lang, f"approval.group.{'privileged' if req.approver_group == 'privileged' else 'approver'}")


def _change(lang: str, req: ChangeRequest) -> str:
    old = masked(req.previous_number)
    if req.action == "remove":
        return t(lang, "change.remove", old=masked(req.number or req.previous_number))
    key = "change.update" if req.previous_number else "change.set"
    return t(lang, key, old=old, new=masked(req.number))


def _notification(lang: str, req: ChangeRequest) -> str:
    if not req.notify:
        return t(lang, "notify.off")
    return t(lang, "notify.on", language=t(lang, f"notify.language.{req.language}"))


def _user_facts(lang: str, req: ChangeRequest) -> list[tuple[str, str | None]]:
    account = t(lang, "fact.account.guest" if req.target_is_guest else "fact.account.member")
    return [
        (t(lang, "fact.user"), req.target_display_name),
        (t(lang, "fact.upn"), req.target_upn),
        (t(lang, "fact.account"), account),
    ]


def _phone_facts(lang: str, phones: PhoneState | None) -> list[tuple[str, str | None]]:
    if phones is None:
        return []
    mobile = phones.mobile
    return [
        (t(lang, "fact.mobile"), masked(mobile.phone_number) if mobile else t(lang, "common.none")),
        (
            t(lang, "fact.alternate"),
            masked(phones.alternate_mobile.phone_number) if phones.alternate_mobile else None,
        ),
        (t(lang, "fact.office"), masked(phones.office.phone_number) if phones.office else None),
        (
            t(lang, "fact.sms_sign_in"),
            _sms_state(lang, mobile.sms_sign_in_state) if mobile else t(lang, "sms.none"),
        ),
    ]


def verification_line(lang: str, req: ChangeRequest) -> str | None:
    """How the caller was verified, by whom and when (None for a request without caller verification)."""
    if not req.verification:
        return None
    method = t(lang, f"verify.method.{req.verification}")
    if req.verified_by is not None:
        key = "verify.fact.done"
        if req.verification == "in_person":
            key = "verify.fact.attested"
        elif req.verification == "code":
            key = "verify.fact.code_done"
        return t(
            lang, key, method=method, name=req.verified_by.name, time=_time(lang, req.verified_at) or "?"
        )
    if req.state == RequestState.AWAITING_VERIFICATION and req.verifier is not None:
        return t(
            lang,
            "verify.fact.waiting",
            method=method,
            name=req.verifier.name,
            time=_time(lang, req.expires_at) or "?",
        )
    return t(lang, "verify.fact.chosen", method=method)


def _request_facts(lang: str, req: ChangeRequest) -> list[tuple[str, str | None]]:
    return [
        *_user_facts(lang, req),
        (t(lang, "fact.privileged"), ", ".join(req.privilege_reasons) if req.target_privileged else None),
        (t(lang, "fact.change"), _change(lang, req)),
        (t(lang, "fact.notification"), _notification(lang, req)),
        (t(lang, "fact.ticket"), req.ticket),
        (t(lang, "fact.requested_by"), req.requester.name),
        (t(lang, "fact.requested_at"), _time(lang, req.created_at)),
        (t(lang, "fact.verification"), verification_line(lang, req)),
    ]


def _text_or_key(lang: str, value: str, prefix: str = "") -> str:
    """`value` is a text key (with or without `prefix`) or already a sentence; unknown keys show as given."""
    for key in (value, f"{prefix}{value}"):
        text = t(lang, key)
        if not text.startswith("⟦"):
            return text
    return value


# ------------------------------------------------------------------------------------------------ banner


DEMO_BANNER_ID: Final = "demoBanner"
NOTICE_ID: Final = "notice"


def with_demo_banner(card: Card, lang: str) -> Card:
    """The card with the demo-mode banner on top (demo mode sends every card through this)."""
    banner = {
        "type": "Container",
        "id": DEMO_BANNER_ID,
        "style": "warning",
        "bleed": True,
        "items": [_text(t(lang, "demo.banner"), weight="Bolder", size="Small")],
    }
    return {**card, "body": [banner, *card.get("body", [])]}


def has_demo_banner(card: Card) -> bool:
    body = card.get("body")
    return isinstance(body, list) and any(
        isinstance(el, dict) and el.get("id") == DEMO_BANNER_ID for el in body[:1]
    )


def with_notice(card: Card, text: str, *, color: str = "Attention") -> Card:
    """The card with `text` (a sentence already in the card's language) on top in `color`: a refused click or a
    Graph failure said above the card it happened on, whose facts and buttons stay as they are."""
    notice = _text(text, id=NOTICE_ID, color=color, weight="Bolder")
    return {**card, "body": [notice, *card.get("body", [])]}


# ------------------------------------------------------------------------------------------------ request form


def request_card(
    lang: str,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str | tuple[str, Mapping[str, object]]] | None = None,
    notify_default: bool = False,
    people_picker: bool = True,
    draft: ChangeRequest | None = None,
    verification_methods: Sequence[str] | None = None,
) -> Card:
    """The form that collects target user, action, number, notification, language and ticket, and (with
    `verification_methods`, the ways the verification policy accepts) how the caller was verified.

    `values` are the inputs to show again (keyed by input id). `errors` maps an input id (or "_form") to a text
    key of bot.views.texts, or to (key, params) such as (texts.number_error_key(exc.code), exc.details), or to a
    sentence already in `lang`. With `draft`
    (after "Edit") the Review button carries that request's id and revision.
    """
    values = dict(values or {})
    errors = dict(errors or {})

    def err(field: str) -> list[dict[str, Any]]:
        error = errors.get(field)
        if not error:
            return []
        if isinstance(error, tuple):
            key, params = error
            return [_error(field, t(lang, key, **{str(k): v for k, v in params.items()}))]
        return [_error(field, _text_or_key(lang, error))]

    def val(field: str, default: str = "") -> str:
        value = values.get(field, default)
        return value if isinstance(value, str) else default

    body: list[dict[str, Any]] = [
        _title(t(lang, "form.title")),
        _text(t(lang, "form.intro"), spacing="Small"),
    ]
    body += [{**block, "weight": "Bolder"} for block in err(FORM_ERROR)]
    if any(field != FORM_ERROR and error for field, error in errors.items()):
        body.append(_text(t(lang, "form.has_errors"), color="Attention", weight="Bolder"))
    if people_picker:
        picker: dict[str, Any] = {
            "type": "Input.ChoiceSet",
            "id": FIELD_TARGET_PICKER,
            "label": t(lang, "form.target_picker.label"),
            "placeholder": t(lang, "form.target_picker.placeholder"),
            "style": "filtered",
            "isMultiSelect": False,
            "choices": [],
            "choices.data": {"type": "Data.Query", "dataset": PEOPLE_DATASET},
        }
        if val(FIELD_TARGET_PICKER):
            picker["value"] = val(FIELD_TARGET_PICKER)
        body += [picker, *err(FIELD_TARGET_PICKER)]
    body += [
        {
            "type": "Input.Text",
            "id": FIELD_TARGET_TEXT,
            "label": t(lang, "form.target_text.label"),
            "placeholder": t(lang, "form.target_text.placeholder"),
            "maxLength": MAX_TARGET_CHARS,
            "value": val(FIELD_TARGET_TEXT),
        },
        *err(FIELD_TARGET_TEXT),
        {
            "type": "Input.ChoiceSet",
            "id": FIELD_ACTION,
            "label": t(lang, "form.action.label"),
            "style": "expanded",
            "isRequired": True,
            "errorMessage": t(lang, "form.action.error"),
            "value": val(FIELD_ACTION, "set") if val(FIELD_ACTION) in ("set", "remove") else "set",
            "choices": [
                {"title": t(lang, "form.action.set"), "value": "set"},
                {"title": t(lang, "form.action.remove"), "value": "remove"},
            ],
        },
        *err(FIELD_ACTION),
        {
            "type": "Input.Text",
            "id": FIELD_NUMBER,
            "label": t(lang, "form.number.label"),
            "placeholder": t(lang, "form.number.placeholder"),
            "style": "Tel",
            "maxLength": MAX_NUMBER_CHARS,
            "value": val(FIELD_NUMBER),
        },
        *err(FIELD_NUMBER),
        _subtle(t(lang, "form.number.hint")),
        {
            "type": "Input.Toggle",
            "id": FIELD_NOTIFY,
            "label": t(lang, "form.notify.label"),
            "title": t(lang, "form.notify.title"),
            "valueOn": "true",
            "valueOff": "false",
            "value": val(FIELD_NOTIFY, "true" if notify_default else "false")
            if val(FIELD_NOTIFY) in ("true", "false")
            else ("true" if notify_default else "false"),
        },
        *err(FIELD_NOTIFY),
        {
            "type": "Input.ChoiceSet",
            "id": FIELD_LANGUAGE,
            "label": t(lang, "form.language.label"),
            "style": "compact",
            "value": val(FIELD_LANGUAGE) if val(FIELD_LANGUAGE) in ("auto", "de", "en") else "auto",
            "choices": [
                {"title": t(lang, "form.language.auto"), "value": "auto"},
                {"title": t(lang, "form.language.de"), "value": "de"},
                {"title": t(lang, "form.language.en"), "value": "en"},
            ],
        },
        *err(FIELD_LANGUAGE),
        {
            "type": "Input.Text",
            "id": FIELD_TICKET,
            "label": t(lang, "form.ticket.label"),
            "placeholder": t(lang, "form.ticket.placeholder"),
            "maxLength": MAX_TICKET_CHARS,
            "value": val(FIELD_TICKET),
        },
        *err(FIELD_TICKET),
    ]
    if verification_methods:
        methods = [m for m in VERIFICATION_METHODS if m in verification_methods]
        chosen = val(FIELD_VERIFICATION)
        default = "teams" if "teams" in methods else methods[0]
        body += [
            {
                "type": "Input.ChoiceSet",
                "id": FIELD_VERIFICATION,
                "label": t(lang, "form.verification.label"),
                "style": "expanded",
                "isRequired": True,
                "errorMessage": t(lang, "form.verification.error"),
                "value": chosen if chosen in methods else default,
                "choices": [{"title": t(lang, f"form.verification.{m}"), "value": m} for m in methods],
            },
            *err(FIELD_VERIFICATION),
        ]
    buttons = [_execute(t(lang, "form.submit"), VERB_REVIEW, draft, style="positive")]
    if draft is not None:
        buttons.append(_execute(t(lang, "form.cancel"), VERB_CANCEL, draft))
    body.append(_actions(*buttons))
    return _card(body)


# ------------------------------------------------------------------------------------------------ confirmation


def confirmation_rules(lang: str, req: ChangeRequest) -> list[str]:
    """The rules that follow from the request itself (privilege, approval); shown on the confirmation card."""
    roles = ", ".join(req.privilege_reasons) or t(lang, "common.unknown")
    rules: list[str] = []
    if req.target_privileged:
        rules.append(
            t(lang, "rule.privileged" if req.approval_required else "rule.privileged_requester", roles=roles)
        )
    if req.approval_required:
        rules.append(t(lang, "rule.approval_by", group=_group(lang, req)))
    else:
        rules.append(t(lang, "rule.no_approval"))
    if req.verification in ("teams", "code", "manager"):
        rules.insert(0, t(lang, "rule.verify_first", method=t(lang, f"verify.method.{req.verification}")))
    elif req.verification == "in_person":
        rules.append(t(lang, "rule.verify_in_person"))
    return rules


def confirmation_card(
    lang: str,
    req: ChangeRequest,
    phones: PhoneState | None,
    *,
    rules: Sequence[str],
    warnings: Sequence[str | tuple[str, Mapping[str, object]]],
) -> Card:
    """Shown before any change. The rules derived from `req` (confirmation_rules) come first, then `rules`
    (further lines already in `lang`); `warnings` are text keys (e.g. "warning.not_mobile"), (key, params) or
    sentences.
    `phones` None: the current phone methods could not be read (the facts are left out, not guessed)."""
    body: list[dict[str, Any]] = [
        _title(t(lang, "confirm.title")),
        _text(
            t(lang, "confirm.intro_approval" if req.approval_required else "confirm.intro"), spacing="Small"
        ),
        _facts(_user_facts(lang, req)),
        _facts(_phone_facts(lang, phones)),
        _facts(
            [
                (t(lang, "fact.change"), _change(lang, req)),
                (t(lang, "fact.notification"), _notification(lang, req)),
                (t(lang, "fact.ticket"), req.ticket),
                (t(lang, "fact.verification"), verification_line(lang, req)),
            ]
        ),
        _text(t(lang, "rules.title"), weight="Bolder"),
    ]
    all_rules = [*confirmation_rules(lang, req), *(r for r in rules if r)]
    body += [_text(f"• {rule}", spacing="Small") for rule in dict.fromkeys(all_rules)]
    if warnings:
        body.append(_text(t(lang, "warnings.title"), weight="Bolder", color="Warning"))
        body += [_text(_warning(lang, w), color="Warning", spacing="Small") for w in warnings]
    body.append(
        _actions(
            _execute(t(lang, "button.confirm"), VERB_CONFIRM, req, style="positive"),
            _execute(t(lang, "button.edit"), VERB_EDIT, req),
            _execute(t(lang, "button.cancel"), VERB_CANCEL, req, style="destructive"),
        )
    )
    return _card(body)


def _warning(lang: str, warning: str | tuple[str, Mapping[str, object]]) -> str:
    if isinstance(warning, tuple):
        key, params = warning
        return t(lang, key, **{str(k): v for k, v in params.items()})
    return _text_or_key(lang, warning, "warning.")


# ------------------------------------------------------------------------------------------------ progress


def progress_card(lang: str, req: ChangeRequest, text: str) -> Card:
    """While the Graph work runs: `text` is a sentence in `lang` (e.g. t(lang, "progress.changing"))."""
    return _card(
        [
            _title(t(lang, "progress.title")),
            _facts(
                [
                    (t(lang, "fact.user"), f"{req.target_display_name} ({req.target_upn})"),
                    (t(lang, "fact.change"), _change(lang, req)),
                ]
            ),
            _text(text),
        ]
    )


def lookup_card(lang: str, text: str, values: Mapping[str, str], draft: ChangeRequest | None = None) -> Card:
    """The answer to Review while the bot looks the user up in Graph (the card is then updated in place with the
    confirmation card or the form with its errors). `text` is a sentence in `lang`; Edit brings the form back
    with `values` (the inputs as typed)."""
    data = {**_data(VERB_EDIT, draft), **{k: v for k, v in values.items() if isinstance(v, str)}}
    title = t(lang, "button.edit")
    edit = {
        "type": "Action.Execute",
        "title": title,
        "verb": VERB_EDIT,
        "data": data,
        "fallback": {"type": "Action.Submit", "title": title, "data": dict(data)},
    }
    return _card([_title(t(lang, "progress.title")), _text(text), _actions(edit)])


# ------------------------------------------------------------------------------------------------ outcome

_OUTCOME_COLOR: Final = {
    OutcomeKind.ADDED: "Good",
    OutcomeKind.UPDATED: "Good",
    OutcomeKind.REMOVED: "Good",
    OutcomeKind.UNCHANGED: "Default",
    OutcomeKind.NOTHING_TO_REMOVE: "Default",
    OutcomeKind.SHOWN: "Default",
    OutcomeKind.NUMBER_MISMATCH: "Warning",
    OutcomeKind.BLOCKED_BY_GRAPH_RULE: "Attention",
    OutcomeKind.CONFLICT_UNRESOLVED: "Attention",
    OutcomeKind.USER_NOT_FOUND: "Warning",
    OutcomeKind.INVALID_NUMBER: "Warning",
    OutcomeKind.INVALID_REQUEST: "Warning",
    OutcomeKind.PERMISSION_DENIED: "Attention",
    OutcomeKind.GRAPH_UNAVAILABLE: "Attention",
}


def notification_line(lang: str, outcome: Outcome) -> str:
    n = outcome.notification
    if n.status == NotificationStatus.SENT:
        language = (
            t(lang, f"notify.language.{n.language}") if n.language in ("de", "en") else (n.language or "")
        )
        return t(lang, "notification.sent", recipient=n.recipient or "", language=language)
    if n.status == NotificationStatus.FAILED:
        return t(lang, "notification.failed", detail=n.detail or t(lang, "common.unknown"))
    return t(lang, f"notification.{n.status.value}")


def _holder_block(lang: str, outcome: Outcome) -> list[dict[str, Any]]:
    holder: Holder | None = outcome.holder
    body: list[dict[str, Any]] = [_text(t(lang, "outcome.holder.title"), weight="Bolder")]
    if holder is not None:
        body.append(
            _facts(
                [
                    (t(lang, "fact.holder"), holder.display_name),
                    (t(lang, "fact.upn"), holder.user_principal_name),
                    (
                        t(lang, "fact.account"),
                        t(
                            lang,
                            f"outcome.holder.account.{'enabled' if holder.account_enabled else 'disabled'}",
                        ),
                    ),
                    (t(lang, "fact.phone_type"), _phone_type(lang, holder.phone_type)),
                    (t(lang, "fact.sms_sign_in"), _sms_state(lang, holder.sms_sign_in_state)),
                ]
            )
        )
        if not holder.account_enabled:
            body.append(_text(t(lang, "outcome.holder.disabled_hint")))
        if holder.portal_url.startswith("https://"):
            body.append(
                _actions(
                    {
                        "type": "Action.OpenUrl",
                        "title": t(lang, "button.open_portal"),
                        "url": holder.portal_url,
                    }
                )
            )
    elif outcome.holder_search == "not_permitted":
        permission = outcome.missing_permission or t(lang, "common.unknown")
        body.append(_text(t(lang, "outcome.holder.not_permitted", permission=permission), weight="Bolder"))
    else:
        key = {
            "not_found": "outcome.holder.not_found",
            "failed": "outcome.holder.failed",
            "not_licensed": "outcome.holder.not_licensed",
        }.get(outcome.holder_search, "outcome.holder.not_run")
        body.append(_text(t(lang, key)))
    return body


DETAILS_ID: Final = "details"  # the hidden container the Details toggle shows (Graph ids, audit trail)
SMS_STATE_ID: Final = "smsSignIn"  # the line that says whether the number works for SMS sign-in
HOLDER_ID: Final = "smsHolder"  # the part of the SMS sign-in conflict that names the number's holder


def outcome_card(
    lang: str,
    req: ChangeRequest,
    outcome: Outcome,
    *,
    pending: str | None = None,
    sms_unread: bool = False,
) -> Card:
    """The result of a run: one layout per OutcomeKind, then the notification line, and Graph's request ids with
    the request's audit trail behind a Details toggle.

    `pending`: a sentence in `lang` saying what is still being read after the outcome (the holder of a number
    refused for SMS sign-in, the SMS sign-in state of an updated number); the card is updated when it is known.
    `sms_unread`: the SMS sign-in state was read after the outcome and Graph did not answer."""
    kind = outcome.kind
    old = masked(outcome.previous_number if outcome.previous_number else req.previous_number)
    new = masked(outcome.number if outcome.number else req.number)
    ref = outcome.user.user_principal_name if outcome.user else (req.target_upn or req.target_id)
    conflict = kind.changed and kind != OutcomeKind.REMOVED and outcome.sms_sign_in_conflict
    color = "Warning" if conflict else _OUTCOME_COLOR.get(kind, "Default")
    body: list[dict[str, Any]] = [_title(t(lang, f"outcome.{kind.value}.title"), color)]
    user = outcome.user
    body.append(
        _facts(
            [
                (t(lang, "fact.user"), user.display_name if user else req.target_display_name),
                (t(lang, "fact.upn"), user.user_principal_name if user else req.target_upn),
            ]
        )
    )
    if conflict:
        # said once: kept for MFA, refused for SMS sign-in; then who holds it, then what to do
        body.append(_text(t(lang, "outcome.sms_conflict.once", new=new), weight="Bolder", color="Warning"))
        body.append(_sms_holder(lang, outcome, pending))
        body.append(_text(t(lang, "outcome.next", text=t(lang, "outcome.sms_conflict.next"))))
    else:
        body.append(_text(t(lang, f"outcome.{kind.value}.body", old=old, new=new, typed=new, ref=ref)))

    if kind.changed and not conflict:
        body.append(_sms_state_line(lang, outcome, pending, sms_unread))
    elif kind == OutcomeKind.CONFLICT_UNRESOLVED:
        body += _holder_block(lang, outcome)
        body.append(_text(t(lang, "outcome.next", text=t(lang, "outcome.conflict_unresolved.next"))))
    elif kind == OutcomeKind.SHOWN and outcome.phones is not None:
        body.append(_facts(_phone_facts(lang, outcome.phones)))
    elif kind == OutcomeKind.BLOCKED_BY_GRAPH_RULE:
        next_text = outcome.next_step if lang == "en" and outcome.next_step else None
        body.append(
            _text(t(lang, "outcome.next", text=next_text or t(lang, "outcome.blocked_by_graph_rule.next")))
        )
    elif kind == OutcomeKind.PERMISSION_DENIED:
        body.append(
            _text(
                t(
                    lang,
                    "outcome.permission_denied.which",
                    permission=outcome.missing_permission or t(lang, "common.unknown"),
                ),
                weight="Bolder",
            )
        )
    elif kind == OutcomeKind.GRAPH_UNAVAILABLE:
        body.append(_text(t(lang, "outcome.graph_unavailable.support")))

    if outcome.graph_error_code and kind in (
        OutcomeKind.BLOCKED_BY_GRAPH_RULE,
        OutcomeKind.PERMISSION_DENIED,
        OutcomeKind.GRAPH_UNAVAILABLE,
        OutcomeKind.INVALID_REQUEST,
    ):
        body.append(
            _subtle(
                t(
                    lang,
                    "outcome.graph_says",
                    code=outcome.graph_error_code,
                    message=outcome.graph_message or "",
                )
            )
        )
    for warning in outcome.warnings:
        if conflict and _is_sms_conflict_warning(warning):
            continue  # the sentence above says it
        body.append(_text(_text_or_key(lang, warning, "warning."), color="Warning", spacing="Small"))
    body.append(_text(notification_line(lang, outcome), spacing="Medium"))
    body.append(_subtle(t(lang, "common.request_id", id=req.id)))
    body += details_toggle(lang, req, outcome.graph_request_ids)
    return _card(body)


def _is_sms_conflict_warning(warning: object) -> bool:
    """The workflow's warning that the number is not available for SMS sign-in (a sentence or a text code)."""
    key = warning[0] if isinstance(warning, tuple) and warning else warning
    text = str(key).lower().replace("_", " ")
    return "sms sign-in is not available" in text or ("sms" in text and "conflict" in text)


def _sms_holder(lang: str, outcome: Outcome, pending: str | None) -> dict[str, Any]:
    """Who holds the number for SMS sign-in: still being searched, found (with the portal link), nobody, or the
    search could not be made."""
    items: list[dict[str, Any]] = []
    holder = outcome.holder
    if holder is not None:
        items.append(
            _text(
                t(
                    lang,
                    "outcome.sms_conflict.holder",
                    name=holder.display_name,
                    upn=holder.user_principal_name,
                )
            )
        )
        if not holder.account_enabled:
            items.append(_text(t(lang, "outcome.holder.disabled_hint")))
        if holder.portal_url.startswith("https://"):
            items.append(
                _actions(
                    {
                        "type": "Action.OpenUrl",
                        "title": t(lang, "button.open_portal"),
                        "url": holder.portal_url,
                    }
                )
            )
    elif pending:
        items.append(_text(pending, isSubtle=True))
    elif outcome.holder_search == "not_found":
        items.append(_text(t(lang, "outcome.sms_conflict.no_holder")))
    elif outcome.holder_search == "not_run":
        items.append(_text(t(lang, "outcome.holder.not_run")))
    else:
        items.append(_text(t(lang, "outcome.sms_conflict.not_searched")))
        if outcome.holder_search == "not_permitted":
            permission = outcome.missing_permission or t(lang, "common.unknown")
            items.append(_text(t(lang, "outcome.holder.not_permitted", permission=permission)))
        elif outcome.holder_search == "not_licensed":
            items.append(_text(t(lang, "outcome.holder.not_licensed")))
    return {"type": "Container", "id": HOLDER_ID, "items": items}


def _sms_state_line(lang: str, outcome: Outcome, pending: str | None, unread: bool) -> dict[str, Any]:
    """Whether the number works for SMS sign-in after the change (a removed number takes SMS sign-in with it)."""
    if outcome.kind == OutcomeKind.REMOVED:
        text = t(lang, "outcome.sms_state.removed")
    elif outcome.sms_sign_in_state:
        text = t(lang, "outcome.sms_state", state=_sms_state(lang, outcome.sms_sign_in_state))
    elif pending:
        text = pending
    elif unread:
        text = t(lang, "outcome.sms_state.unread")
    else:
        text = t(lang, "outcome.sms_state", state=_sms_state(lang, None))
    return _text(text, id=SMS_STATE_ID, isSubtle=bool(pending) and not outcome.sms_sign_in_state)


def details_toggle(
    lang: str, req: ChangeRequest, graph_request_ids: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """A Details toggle (Action.ToggleVisibility, Adaptive Cards 1.2+) and the hidden container it shows: Microsoft
    Graph's request ids (for support) and a button that shows the request's audit trail in the chat. The button
    is an Action.Submit with Teams' messageBack data: the text `status <request id>` reaches the bot as a message
    (the `status` command) and `displayText` is what the chat shows as sent by the user
    (https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-actions, "Action.Submit"
    with msteams messageBack)."""
    items: list[dict[str, Any]] = []
    if graph_request_ids:
        items.append(_subtle(t(lang, "common.graph_request_ids", ids=", ".join(graph_request_ids[-5:]))))
    title = t(lang, "button.audit_trail")
    items.append(
        _actions(
            {
                "type": "Action.Submit",
                "title": title,
                "data": {
                    "msteams": {
                        "type": "messageBack",
                        "text": f"status {req.id}",
                        "displayText": t(lang, "details.audit.display", id=req.id),
                    }
                },
            }
        )
    )
    toggle = {
        "type": "Action.ToggleVisibility",
        "title": t(lang, "button.details"),
        "targetElements": [DETAILS_ID],
    }
    return [
        _actions(toggle),
        {"type": "Container", "id": DETAILS_ID, "isVisible": False, "items": items},
    ]


# ------------------------------------------------------------------------------------------------ approvals


def approval_card(
    lang: str,
    req: ChangeRequest,
    *,
    phones: PhoneState | None,
    approver_teams_ids: list[str] | None,
    actionable: bool,
) -> Card:
    """The card in the approvers' channel/chat and 1:1 copies. Facts come from `req`; the buttons carry only
    requestId and rev. With `approver_teams_ids` (Teams MRIs) the card asks Teams to refresh it for those users
    (verb mfa.refresh); Teams honours at most 60, so only the first 60 are listed (the base card stays correct
    for everyone else). `actionable=False` is the read-only view."""
    group = _group(lang, req)
    body: list[dict[str, Any]] = [
        _title(t(lang, "approval.title")),
        _facts(_request_facts(lang, req)),
        _facts(_phone_facts(lang, phones)),
        _facts([(t(lang, "fact.expires_at"), _time(lang, req.expires_at))]),
    ]
    if req.state == RequestState.AWAITING_APPROVAL:
        body.append(_text(t(lang, "approval.waiting", group=group), weight="Bolder"))
    else:
        body.append(_text(t(lang, f"state.{req.state.value}"), weight="Bolder"))
    if actionable and req.state == RequestState.AWAITING_APPROVAL:
        body += [
            {
                "type": "Input.Text",
                "id": FIELD_REASON,
                "label": t(lang, "approval.reason.label"),
                "placeholder": t(lang, "approval.reason.placeholder"),
                "maxLength": MAX_REASON_CHARS,
                "isMultiline": True,
            },
            _actions(
                _execute(t(lang, "button.approve"), VERB_APPROVE, req, style="positive"),
                _execute(t(lang, "button.reject"), VERB_REJECT, req, style="destructive"),
            ),
        ]
    elif req.state == RequestState.AWAITING_APPROVAL:
        body.append(_text(t(lang, "approval.read_only", group=group), isSubtle=True))
    body.append(_subtle(t(lang, "common.request_id", id=req.id)))
    refresh = None
    if approver_teams_ids is not None:
        refresh = {
            "action": {
                "type": "Action.Execute",
                "title": t(lang, "common.refresh"),
                "verb": VERB_REFRESH,
                "data": _data(VERB_REFRESH, req),
            },
            "userIds": [str(i) for i in approver_teams_ids[:MAX_REFRESH_USER_IDS]],
        }
    return _card(body, refresh=refresh)


def awaiting_card(lang: str, req: ChangeRequest) -> Card:
    """The requester's card while the request waits: what was asked, who must decide, Cancel."""
    body: list[dict[str, Any]] = [
        _title(t(lang, "awaiting.title")),
        _text(t(lang, "awaiting.body", group=_group(lang, req))),
        _facts(_request_facts(lang, req)),
    ]
    expires = _time(lang, req.expires_at)
    if expires:
        body.append(_text(t(lang, "awaiting.expires", time=expires), isSubtle=True))
    body += [
        _actions(_execute(t(lang, "button.cancel"), VERB_CANCEL, req, style="destructive")),
        _subtle(t(lang, "common.request_id", id=req.id)),
    ]
    return _card(body)


def decision_line(lang: str, req: ChangeRequest) -> str:
    """One sentence: who decided what and when (or the state when nobody decided)."""
    who = req.decided_by.name if req.decided_by else None
    when = _time(lang, req.decided_at or req.updated_at) or t(lang, "common.unknown")
    if req.state == RequestState.REJECTED:
        return t(lang, "approval.rejected_by", name=who or t(lang, "common.unknown"), time=when)
    if (
        req.state == RequestState.EXPIRED
        and req.verification in ("teams", "code", "manager")
        and not req.verified_by
    ):
        return t(lang, "verify.expired_line", time=_time(lang, req.expires_at or req.decided_at) or when)
    if req.state == RequestState.EXPIRED:
        return t(lang, "approval.expired", time=_time(lang, req.expires_at or req.decided_at) or when)
    if req.state == RequestState.CANCELLED:
        name = who or req.requester.name
        return t(lang, "approval.cancelled", name=name, time=when)
    if req.state == RequestState.EXECUTING and who:
        return t(lang, "progress.approved", name=who)
    if who:
        return t(lang, "approval.approved_by", name=who, time=when)
    return t(lang, f"state.{req.state.value}")


def decision_card(lang: str, req: ChangeRequest) -> Card:
    """After a decision (approved, rejected, expired, cancelled; also executing/completed/failed): who decided,
    when, the reason. No buttons and no refresh: every copy shows the same final view."""
    color = {
        RequestState.REJECTED: "Attention",
        RequestState.EXPIRED: "Warning",
        RequestState.CANCELLED: "Warning",
        RequestState.FAILED: "Attention",
    }.get(req.state, "Good")
    body: list[dict[str, Any]] = [
        _title(t(lang, f"decision.title.{req.state.value}"), color),
        _text(decision_line(lang, req), weight="Bolder"),
    ]
    if req.decision_reason:
        body.append(_text(t(lang, "approval.rejected_reason", reason=req.decision_reason)))
    body.append(_facts(_request_facts(lang, req)))
    if req.outcome and req.outcome.get("outcome"):
        body.append(_facts([(t(lang, "fact.outcome"), _outcome_name(lang, str(req.outcome["outcome"])))]))
    body.append(_subtle(t(lang, "common.request_id", id=req.id)))
    return _card(body)


# ------------------------------------------------------------------------------------------------ verification


def verification_waiting_card(lang: str, req: ChangeRequest, *, via: str | None = None) -> Card:
    """The agent's card while the caller is verified: who must answer and until when; for a one-time code the
    input for the digits the caller reads back (the code itself is never on this card); Cancel."""
    name = req.verifier.name if req.verifier else req.target_display_name
    expires = _time(lang, req.expires_at) or "?"
    body: list[dict[str, Any]] = [_title(t(lang, "verify.waiting.title"))]
    if req.verification == "code":
        body.append(
            _text(
                t(
                    lang,
                    "verify.waiting.code",
                    name=name,
                    via=t(lang, f"verify.via.{via or 'teams'}"),
                    time=expires,
                ),
                weight="Bolder",
            )
        )
    else:
        key = "verify.waiting.manager" if req.verification == "manager" else "verify.waiting.teams"
        body.append(_text(t(lang, key, name=name, time=expires), weight="Bolder"))
    body.append(_facts(_request_facts(lang, req)))
    actions = []
    if req.verification == "code":
        body.append(
            {
                "type": "Input.Text",
                "id": FIELD_CODE,
                "label": t(lang, "verify.code.label"),
                "placeholder": t(lang, "verify.code.placeholder"),
                "maxLength": 12,
            }
        )
        actions.append(_execute(t(lang, "button.verify_code"), VERB_VERIFY_CODE, req, style="positive"))
    actions.append(_execute(t(lang, "button.cancel"), VERB_CANCEL, req, style="destructive"))
    body += [_actions(*actions), _subtle(t(lang, "common.request_id", id=req.id))]
    return _card(body)


def verify_request_card(lang: str, req: ChangeRequest, *, manager: bool) -> Card:
    """The card the target (or, `manager`, their manager) gets 1:1 in Teams: who at the service desk asks, what
    would change (masked numbers), the ticket, until when, and Yes / No. The buttons carry requestId and rev
    only; who may answer is checked on the server."""
    who = req.target_display_name
    title = t(lang, "verify.ask.title_manager", target=who) if manager else t(lang, "verify.ask.title")
    body_key = "verify.ask.body_manager" if manager else "verify.ask.body"
    yes, no = (
        ("button.verify_yes_manager", "button.verify_no_manager")
        if manager
        else (
            "button.verify_yes",
            "button.verify_no",
        )
    )
    body: list[dict[str, Any]] = [
        _title(title),
        _text(t(lang, body_key, requester=req.requester.name, target=who)),
        _facts(
            [
                (t(lang, "fact.user"), f"{who} ({req.target_upn})" if manager else None),
                (t(lang, "fact.change"), _change(lang, req)),
                (t(lang, "fact.ticket"), req.ticket),
                (t(lang, "fact.requested_by"), req.requester.name),
                (t(lang, "fact.expires_at"), _time(lang, req.expires_at)),
            ]
        ),
        _text(t(lang, "verify.ask.hint"), isSubtle=True),
        _actions(
            _execute(t(lang, yes), VERB_VERIFY_YES, req, style="positive"),
            _execute(t(lang, no), VERB_VERIFY_NO, req, style="destructive"),
        ),
        _subtle(t(lang, "common.request_id", id=req.id)),
    ]
    return _card(body)


def verify_code_card(lang: str, req: ChangeRequest, code: str) -> Card:
    """The one-time code for the target in Teams (the only card that shows it)."""
    body = [
        _title(t(lang, "verify.code_card.title")),
        _text(
            t(
                lang,
                "verify.code_card.body",
                requester=req.requester.name,
                code=code,
                time=_time(lang, req.expires_at) or "?",
            )
        ),
        _facts([(t(lang, "fact.change"), _change(lang, req)), (t(lang, "fact.ticket"), req.ticket)]),
        _text(t(lang, "verify.code_card.hint"), isSubtle=True),
        _subtle(t(lang, "common.request_id", id=req.id)),
    ]
    return _card(body)


def verify_answered_card(lang: str, title: str, text: str, *, color: str = "Good") -> Card:
    """What the person asked sees after answering (or once the request no longer waits): sentences in `lang`."""
    return _card([_title(title, color), _text(text)])


def security_alert_card(lang: str, req: ChangeRequest, locked_until: datetime) -> Card:
    """To the approvers' conversation after "No, I did not ask": who asked, when, the ticket, the masked number."""
    until = _time(lang, locked_until) or "?"
    body = [
        _title(t(lang, "alert.title"), "Attention"),
        _text(
            t(
                lang,
                "alert.body",
                target=req.target_display_name,
                upn=req.target_upn,
                requester=req.requester.name,
                until=until,
            )
        ),
        _facts(
            [
                (t(lang, "fact.requested_by"), req.requester.name),
                (t(lang, "fact.requested_at"), _time(lang, req.created_at)),
                (t(lang, "fact.ticket"), req.ticket),
                (t(lang, "fact.number_asked"), masked(req.number)),
                (t(lang, "fact.verification"), t(lang, f"verify.method.{req.verification}")),
                (t(lang, "fact.locked_until"), until),
            ]
        ),
        _subtle(t(lang, "common.request_id", id=req.id)),
    ]
    return _card(body)


# ------------------------------------------------------------------------------------------------ refusal, help


def refusal_card(lang: str, title: str, reason: str) -> Card:
    """A clear "no" with the reason (both sentences already in `lang`, e.g. t(lang, "refusal.own_account"))."""
    return _card([_title(title, "Attention"), _text(reason)])


def help_card(lang: str, *, tenant: Any = None) -> Card:
    """`tenant`: the start-up tenant check (graph.doctor.Report), shown to approvers and privileged approvers as
    one line."""
    commands = ["help", "set", "remove", "history", "status", "cancel", "unlock"]
    body = [
        _title(t(lang, "help.title")),
        _text(t(lang, "help.intro")),
        _text(t(lang, "help.commands"), weight="Bolder"),
        *[_text(f"• {t(lang, f'help.cmd.{c}')}", spacing="Small") for c in commands],
        _text(t(lang, "help.rules"), isSubtle=True),
    ]
    if tenant is not None:
        body.append(_tenant_check_line(lang, tenant))
    return _card(body)


def _tenant_check_line(lang: str, report: Any) -> dict[str, Any]:
    if not report.problems:
        return _text(t(lang, "help.tenant.ok"), color="Good")
    problems = "; ".join(
        t(
            lang,
            "help.tenant.problem",
            check=c.name,
            status=t(
                lang, f"help.tenant.status.{c.status.replace(' ', '_')}"
            ),  # a problem: missing or failed
            fix=c.permission or c.detail,
        )
        for c in report.problems
    )
    return _text(t(lang, "help.tenant.problems", problems=problems), color="Attention")


# ------------------------------------------------------------------------------------------------ history, status


def _outcome_name(lang: str, kind: str) -> str:
    text = t(lang, f"outcome_name.{kind}")
    return kind if text.startswith("⟦") else text


def _first(details: Mapping[str, Any], *keys: str) -> Any:
    return next((details[k] for k in keys if details.get(k)), None)


def _entry(lang: str, entry: AuditEntryLike) -> dict[str, Any]:
    """One audit entry. Reads details["old_number"/"previous_number"], ["new_number"/"number"] (masked here),
    ["outcome"], ["decision"], ["reason"]."""
    details = entry.details if isinstance(entry.details, Mapping) else {}
    event = t(lang, f"event.{entry.event}")
    head = [_time(lang, entry.at) or "", entry.event if event.startswith("⟦") else event]
    if entry.actor_name:
        head.append(t(lang, "entry.by", name=entry.actor_name))
    lines = [" · ".join(p for p in head if p)]
    old = _first(details, "old_number", "previous_number")
    new = _first(details, "new_number", "number")
    if old or new:
        lines.append(t(lang, "entry.numbers", old=masked(old), new=masked(new)))
    outcome = _first(details, "outcome")
    if isinstance(outcome, Mapping):
        outcome = outcome.get("outcome")
    if outcome:
        lines.append(t(lang, "entry.outcome", outcome=_outcome_name(lang, str(outcome))))
    reason = _first(details, "reason")
    if reason:
        lines.append(t(lang, "entry.reason", reason=str(reason)[:MAX_REASON_CHARS]))
    method = details.get("method") or details.get("verification")
    if method in VERIFICATION_METHODS:
        who = details.get("verified_by") or details.get("verifier")
        line = t(lang, "entry.verification", method=t(lang, f"verify.method.{method}"))
        lines.append(f"{line} ({who})" if isinstance(who, str) and who else line)
    return {
        "type": "Container",
        "separator": True,
        "items": [_text(lines[0], weight="Bolder", size="Small")] + [_subtle(line) for line in lines[1:]],
    }


def _entries(lang: str, entries: Sequence[AuditEntryLike]) -> list[dict[str, Any]]:
    if not entries:
        return [_text(t(lang, "history.empty"), isSubtle=True)]
    body = [_entry(lang, e) for e in entries[:MAX_HISTORY_ENTRIES]]
    if len(entries) > MAX_HISTORY_ENTRIES:
        body.append(_subtle(t(lang, "history.more", count=MAX_HISTORY_ENTRIES)))
    return body


def history_card(lang: str, target_label: str, entries: Sequence[AuditEntryLike]) -> Card:
    """The audit trail for one user, newest first (as the store returns it)."""
    return _card([_title(t(lang, "history.title", target=target_label)), *_entries(lang, entries)])


def status_card(lang: str, req: ChangeRequest, entries: Sequence[AuditEntryLike]) -> Card:
    """One request: its state, the facts, the decision and the outcome, then its audit trail."""
    facts = [
        (t(lang, "fact.request"), req.id),
        (t(lang, "fact.status"), t(lang, f"state.{req.state.value}")),
        *_request_facts(lang, req),
        (t(lang, "fact.decided_by"), req.decided_by.name if req.decided_by else None),
        (t(lang, "fact.decided_at"), _time(lang, req.decided_at)),
        (t(lang, "fact.reason"), req.decision_reason),
        (
            t(lang, "fact.outcome"),
            _outcome_name(lang, str(req.outcome["outcome"]))
            if req.outcome and req.outcome.get("outcome")
            else None,
        ),
    ]
    return _card(
        [
            _title(t(lang, "status.title", id=req.id)),
            _facts(facts),
            _text(t(lang, "status.audit"), weight="Bolder"),
            *_entries(lang, entries),
        ]
    )

"""The notification e-mail that tells a user an administrator changed their mobile phone MFA method.

Rendering: one jinja2 `Environment` over the repository's ``templates/`` directory (found relative to this
package, not the working directory), `StrictUndefined`, autoescaping for everything except ``*.txt.j2``.
``templates/mail/{de,en}.{html,txt}.j2`` hold the words; ``base.{html,txt}.j2`` the shared frame. The mail
shows only the last digits of the number: the mailbox may be read by others or forwarded, and the user
recognises their own number by its end.

The one-time code mail (`Notifier.send_verification_code`, ``templates/mail/code/{de,en}.{html,txt}.j2`` in the
same frame) carries the code the caller reads back to the agent, in the body only (not the subject, which
notification previews show, and nothing is logged or kept in Sent Items); it names the service desk that asks and
tells a user who did not call to give the code to no one.

Sending: ``POST /users/{sender}/sendMail`` (graph-behaviour §8) with the HTML part, ``saveToSentItems: false``.
`Notifier.send` never raises for Graph errors: a failed mail is a `Notification` with status FAILED and a
reason a person can act on, so a change that was made is never reported as a failure because of its mail.
`Notifier.prepare` renders the request without sending it, so the workflow can send it in the write's $batch
(dependsOn the write); `answered` and `failed` read Graph's answer to it there as `send` does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, urlsplit

import jinja2

from graph.errors import GraphError, TransportError
from graph.numbers import last_digits
from graph.outcome import (
    Notification,
    NotificationReason,
    NotificationStatus,
    Outcome,
    OutcomeKind,
    TargetUser,
)
from graph.settings import ServiceDesk

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

MailKind = Literal["added", "updated", "removed"]
MAIL_KINDS: Final = ("added", "updated", "removed")
LANGUAGES: Final = ("de", "en")
LANGUAGE_CHOICES: Final = ("auto", "de", "en")
GERMAN_USAGE_LOCATIONS: Final = frozenset({"DE", "AT", "CH", "LI"})
TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "templates"
_FALLBACK_ORGANIZATION: Final = {"de": "Ihre Organisation", "en": "your organization"}

__all__ = [
    "LANGUAGE_CHOICES",
    "MAIL_KINDS",
    "MailKind",
    "Notifier",
    "PreparedMail",
    "RenderedMail",
    "ServiceDesk",
    "choose_language",
    "environment",
    "mail_kind",
    "render_code_mail",
    "render_mail",
]


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class PreparedMail:
    """A rendered notification ready to send: `POST path` with `body` (alone, or as a $batch request)."""

    path: str
    body: dict[str, Any]
    recipient: str
    language: str


# ------------------------------------------------------------------------------------------------ language


def choose_language(override: str | None, usage_location: str | None) -> str:
    """ "de" or "en": an explicit override wins; otherwise German for DE, AT, CH and LI, English elsewhere.

    Raises ValueError for an override other than auto/de/en (callers validate input before any change)."""
    choice = (override or "auto").strip().lower() or "auto"
    if choice not in LANGUAGE_CHOICES:
        raise ValueError(f"unknown language {override!r}: use auto, de or en")
    if choice != "auto":
        return choice
    return "de" if (usage_location or "").strip().upper() in GERMAN_USAGE_LOCATIONS else "en"


def mail_kind(kind: OutcomeKind | str) -> MailKind:
    """The mail for an outcome: added, updated or removed. ValueError for an outcome that changed nothing."""
    value = str(kind.value if isinstance(kind, OutcomeKind) else kind).strip().lower()
    if value == "added":
        return "added"
    if value == "updated":
        return "updated"
    if value == "removed":
        return "removed"
    raise ValueError(f"no notification mail for {value!r}: only added, updated and removed are told")


# ------------------------------------------------------------------------------------------------ rendering


def _http_href(value: Any) -> str | None:
    """The URL if it is a plain http(s) URL with a host, else None (so `javascript:` never becomes a link)."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\"'<>\\`" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


_MAIL_ADDRESS = re.compile(r"^[^@\s<>()\[\]\\,;:\"'?&/=]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")


def _mailto_href(value: Any) -> str | None:
    if not isinstance(value, str) or not _MAIL_ADDRESS.match(value.strip()):
        return None
    return "mailto:" + value.strip()


def _tel_href(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or any(not (ch.isascii() and (ch.isdigit() or ch in " +()-./")) for ch in text):
        return None
    number_digits = "".join(ch for ch in text if ch.isdigit())
    if not 3 <= len(number_digits) <= 20:
        return None
    return "tel:" + ("+" if text.startswith("+") else "") + number_digits


def _autoescape(template_name: str | None) -> bool:
    # Escape everything except plain-text templates: a new template is safe by default.
    return not (template_name or "").endswith(".txt.j2")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one template environment (built on first use, not at import)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["http_href"] = _http_href
    env.filters["mailto_href"] = _mailto_href
    env.filters["tel_href"] = _tel_href
    return env


def render_mail(kind: MailKind | str, language: str, context: Mapping[str, Any]) -> RenderedMail:
    """Render subject, HTML and text of one mail.

    `context` needs: display_name, tenant_name (None → "your organization"), number_tail (last digits, "" when
    unknown), caller (None → line left out), performed_at (datetime; shown in UTC), ticket_url (or None),
    service_desk (ServiceDesk or a mapping with display_name, email, phone, portal_url). A missing variable
    raises jinja2.UndefinedError."""
    kind = mail_kind(kind)
    if language not in LANGUAGES:
        raise ValueError(f"unknown mail language {language!r}: use de or en")
    values: dict[str, Any] = dict(context)
    values["kind"] = kind
    values["language"] = language
    performed_at = values.get("performed_at")
    if isinstance(performed_at, datetime):
        values["performed_at"] = (
            performed_at.replace(tzinfo=UTC) if performed_at.tzinfo is None else performed_at.astimezone(UTC)
        )
    if "service_desk" in values:
        values["show_contact"] = _has_contact(values["service_desk"]) or bool(values.get("ticket_url"))
    env = environment()
    text_template = env.get_template(f"mail/{language}.txt.j2")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(values)))
    values["subject"] = " ".join(subject.split())[:250]
    text = text_template.render(values)
    html = env.get_template(f"mail/{language}.html.j2").render(values)
    return RenderedMail(subject=values["subject"], html=html, text=_tidy_text(text))


_CODE = re.compile(r"^[0-9]{4,10}$")


def render_code_mail(language: str, context: Mapping[str, Any]) -> RenderedMail:
    """Render subject, HTML and text of the one-time code mail.

    `context` needs: display_name, tenant_name (None → "your organization"), code (4-10 digits, else ValueError),
    valid_minutes, requested_at (datetime; shown in UTC), service_desk (ServiceDesk or a mapping)."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown mail language {language!r}: use de or en")
    values: dict[str, Any] = dict(context)
    if not isinstance(values.get("code"), str) or not _CODE.match(values["code"]):
        raise ValueError("the verification code must be 4 to 10 digits")
    values.update(language=language, caller=None, ticket_url=None)
    requested_at = values.get("requested_at")
    if isinstance(requested_at, datetime):
        values["requested_at"] = (
            requested_at.replace(tzinfo=UTC) if requested_at.tzinfo is None else requested_at.astimezone(UTC)
        )
    values["show_contact"] = _has_contact(values.get("service_desk"))
    env = environment()
    text_template = env.get_template(f"mail/code/{language}.txt.j2")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(values)))
    values["subject"] = " ".join(subject.split())[:250]
    text = text_template.render(values)
    html = env.get_template(f"mail/code/{language}.html.j2").render(values)
    return RenderedMail(subject=values["subject"], html=html, text=_tidy_text(text))


def _has_contact(service_desk: Any) -> bool:
    if service_desk is None:
        return False
    get = (
        service_desk.get
        if isinstance(service_desk, Mapping)
        else lambda name: getattr(service_desk, name, None)
    )
    return any(get(name) for name in ("display_name", "email", "phone", "portal_url"))


def _tidy_text(text: str) -> str:
    """Collapse runs of blank lines the template conditionals leave behind."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"


# ------------------------------------------------------------------------------------------------ sending

TenantNameProvider = Callable[[], Awaitable[str | None]]


class Notifier:
    """Renders and sends the notification mail through Graph from the configured sender mailbox."""

    def __init__(
        self,
        client: GraphClient | None,
        sender: str | None,
        service_desk: ServiceDesk | None = None,
        tenant_name_provider: TenantNameProvider | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self.sender = (sender or "").strip() or None
        self.service_desk = service_desk or ServiceDesk()
        self._tenant_name_provider = tenant_name_provider
        self._tenant_name: str | None = None
        self._now = now

    @classmethod
    def from_settings(cls, settings: Any, client: GraphClient | None = None) -> Notifier:
        """From GraphSettings (mail_sender, service_desk). Without a client, `notify(client=...)` supplies it."""
        return cls(client, getattr(settings, "mail_sender", None), getattr(settings, "service_desk", None))

    async def send(
        self,
        user: TargetUser,
        kind: MailKind | OutcomeKind | str,
        number: str | None,
        caller: str | None = None,
        ticket_url: str | None = None,
        language_override: str | None = None,
        *,
        client: GraphClient | None = None,
    ) -> Notification:
        """Tell `user` about the change. `number` is the number added/set or removed (any form; only its last
        digits appear in the mail). Returns SENT, SKIPPED_NO_MAIL or FAILED (with the reason); never raises
        for a Graph error. Whether to notify at all (DISABLED) is the caller's decision."""
        client = client or self._client
        prepared = await self.prepare(
            user, kind, number, caller, ticket_url, language_override, client=client
        )
        if isinstance(prepared, Notification):
            return prepared
        assert client is not None  # prepare answers FAILED without one
        try:
            response = await client.post(prepared.path, json=prepared.body)
        except GraphError as err:
            return self.failed(prepared, err)
        return self.answered(prepared, response.status, response.request_id)

    async def prepare(
        self,
        user: TargetUser,
        kind: MailKind | OutcomeKind | str,
        number: str | None,
        caller: str | None = None,
        ticket_url: str | None = None,
        language_override: str | None = None,
        *,
        client: GraphClient | None = None,
    ) -> PreparedMail | Notification:
        """The mail `send` would send, rendered (the sendMail request, ready to go alone or in a $batch), or the
        Notification that says why none is sent (SKIPPED_NO_MAIL, FAILED)."""
        language = choose_language(language_override, user.usage_location)
        recipient = (user.mail or "").strip() or None
        if recipient is None:
            return Notification(
                NotificationStatus.SKIPPED_NO_MAIL,
                language=language,
                detail="the user has no e-mail address, so no notification was sent",
            )
        client = client or self._client
        if self.sender is None or client is None:
            return Notification(
                NotificationStatus.FAILED,
                recipient=recipient,
                language=language,
                detail="no sender mailbox is configured (MAIL_SENDER), so no notification was sent",
                reason=NotificationReason.NOT_CONFIGURED,
            )
        tenant_name = await self._organization_name(client)
        try:
            mail = render_mail(
                mail_kind(kind),
                language,
                {
                    "display_name": user.display_name or user.user_principal_name,
                    "tenant_name": tenant_name,
                    "number_tail": last_digits(number),
                    "caller": (caller or "").strip() or None,
                    "performed_at": self._now(),
                    "ticket_url": (ticket_url or "").strip() or None,
                    "service_desk": self.service_desk,
                },
            )
        except (jinja2.TemplateError, ValueError) as exc:
            log.error("notification mail could not be rendered: %s", type(exc).__name__)
            return Notification(
                NotificationStatus.FAILED,
                recipient=recipient,
                language=language,
                detail=f"the notification could not be rendered ({type(exc).__name__}: {exc})",
                reason=NotificationReason.RENDER_FAILED,
            )
        body = {
            "message": {
                "subject": mail.subject,
                "body": {"contentType": "HTML", "content": mail.html},
                "toRecipients": [{"emailAddress": {"address": recipient}}],
            },
            "saveToSentItems": False,
        }
        return PreparedMail(f"/users/{quote(self.sender, safe='@')}/sendMail", body, recipient, language)

    async def send_verification_code(
        self,
        user: TargetUser,
        code: str,
        *,
        valid_minutes: int,
        language_override: str | None = None,
        client: GraphClient | None = None,
    ) -> Notification:
        """Mail the one-time code to `user`'s mailbox (their `mail`), from the sender mailbox, in their language
        (`language_override` auto/de/en as for `send`). Returns SENT, SKIPPED_NO_MAIL (no mail address) or FAILED
        with the reason; never raises for a Graph error, and the code is in no log line and no Notification.
        ValueError, before anything is sent, for a code that is not 4-10 digits or valid_minutes below 1."""
        if not isinstance(code, str) or not _CODE.match(code):
            raise ValueError("the verification code must be 4 to 10 digits")
        if not isinstance(valid_minutes, int) or valid_minutes < 1:
            raise ValueError("valid_minutes must be a whole number of minutes, at least 1")
        language = choose_language(language_override, user.usage_location)
        recipient = (user.mail or "").strip() or None
        if recipient is None:
            return Notification(
                NotificationStatus.SKIPPED_NO_MAIL,
                language=language,
                detail="the user has no e-mail address, so no code was sent",
            )
        client = client or self._client
        if self.sender is None or client is None:
            return Notification(
                NotificationStatus.FAILED,
                recipient=recipient,
                language=language,
                detail="no sender mailbox is configured (MAIL_SENDER), so no code was sent",
            )
        tenant_name = await self._organization_name(client)
        try:
            mail = render_code_mail(
                language,
                {
                    "display_name": user.display_name or user.user_principal_name,
                    "tenant_name": tenant_name,
                    "code": code,
                    "valid_minutes": valid_minutes,
                    "requested_at": self._now(),
                    "service_desk": self.service_desk,
                },
            )
        except jinja2.TemplateError as exc:  # the message could quote a value: only the type is told
            log.error("verification code mail could not be rendered: %s", type(exc).__name__)
            return Notification(
                NotificationStatus.FAILED,
                recipient=recipient,
                language=language,
                detail=f"the code mail could not be rendered ({type(exc).__name__})",
            )
        prepared = PreparedMail(
            f"/users/{quote(self.sender, safe='@')}/sendMail",
            {
                "message": {
                    "subject": mail.subject,
                    "body": {"contentType": "HTML", "content": mail.html},
                    "toRecipients": [{"emailAddress": {"address": recipient}}],
                },
                "saveToSentItems": False,  # the code stays out of the sender mailbox
            },
            recipient,
            language,
        )
        try:
            response = await client.post(prepared.path, json=prepared.body)
        except GraphError as err:
            return self.failed(prepared, err)
        return self.answered(prepared, response.status, response.request_id)

    def failed(self, mail: PreparedMail, err: GraphError) -> Notification:
        """The Notification for a sendMail Graph refused or did not answer."""
        log.warning(
            "notification mail failed",
            extra={"status": err.status, "code": err.code, "request_id": err.request_id},
        )
        reason, params, detail = self._failure_reason(err)
        return Notification(
            NotificationStatus.FAILED,
            recipient=mail.recipient,
            language=mail.language,
            detail=detail,
            reason=reason,
            reason_params=params,
        )

    def answered(self, mail: PreparedMail, status: int, request_id: str | None) -> Notification:
        """The Notification for a sendMail Graph answered without an error: SENT for 202 Accepted."""
        if status != 202:
            return Notification(
                NotificationStatus.FAILED,
                recipient=mail.recipient,
                language=mail.language,
                detail=f"Graph answered {status} instead of 202 Accepted to sendMail"
                + (f" (request-id {request_id})" if request_id else ""),
                reason=NotificationReason.UNEXPECTED_ANSWER,
                reason_params={"status": str(status)},
            )
        return Notification(NotificationStatus.SENT, recipient=mail.recipient, language=mail.language)

    async def notify(
        self,
        *,
        user: TargetUser,
        outcome: Outcome,
        language: str | None = None,
        ticket_url: str | None = None,
        caller: str | None = None,
        client: GraphClient | None = None,
    ) -> Notification:
        """`send` for a workflow outcome: the mail kind and number come from the outcome."""
        try:
            kind = mail_kind(outcome.kind)
        except ValueError:
            return Notification(
                NotificationStatus.NOT_ATTEMPTED, detail="nothing changed, so there is nothing to tell"
            )
        return await self.send(user, kind, outcome.number, caller, ticket_url, language, client=client)

    async def prefetch(self, client: GraphClient | None = None) -> None:
        """Read ahead what a mail needs from Graph (the tenant's name, once a process), so sending it later
        waits for nothing but sendMail. Never raises for a Graph error."""
        client = client or self._client
        if client is not None and self.sender:
            await self._organization_name(client)

    async def _organization_name(self, client: GraphClient) -> str | None:
        """The tenant's display name from /organization (cached once known); None lets the template fall back."""
        if self._tenant_name:
            return self._tenant_name
        name: str | None = None
        try:
            if self._tenant_name_provider is not None:
                name = await self._tenant_name_provider()
            else:
                response = await client.get("/organization", params={"$select": "displayName"})
                values = (response.json or {}).get("value") or []
                if values and isinstance(values[0], dict):
                    name = values[0].get("displayName") or None
        except GraphError as err:
            log.warning(
                "organization name unavailable; the mail uses the fallback",
                extra={"status": err.status, "code": err.code, "request_id": err.request_id},
            )
            return None
        if name and isinstance(name, str) and name.strip():
            self._tenant_name = name.strip()
        return self._tenant_name

    def _failure_reason(self, err: GraphError) -> tuple[NotificationReason, dict[str, str], str]:
        """Why sendMail failed: the reason's code and params (for the bot's texts) and the English detail."""
        sender = self.sender
        code = err.code or ""
        params = {"sender": sender or ""}
        if code == "MailboxNotEnabledForRESTAPI":
            reason = NotificationReason.MAILBOX_NOT_ENABLED
            why = (
                f"the sender mailbox {sender} is not enabled for sending through Graph (it is inactive, "
                "soft-deleted, hosted on-premises or has no Exchange Online licence); use a licensed Exchange "
                "Online mailbox as MAIL_SENDER"
            )
        elif code in ("ErrorInvalidUser", "ResourceNotFound") or err.status == 404:
            reason = NotificationReason.SENDER_NOT_FOUND
            why = f"the sender mailbox {sender} was not found; check MAIL_SENDER"
        elif (
            code in ("ErrorAccessDenied", "Authorization_RequestDenied", "AccessDenied") or err.status == 403
        ):
            reason = NotificationReason.SEND_AS_DENIED
            why = (
                f"the application may not send as {sender}: grant it the Mail.Send application permission "
                "(admin consent) and, if an Exchange application access policy is set, include this mailbox in it"
            )
        elif isinstance(err, TransportError) and err.status:
            reason, params = NotificationReason.UNAVAILABLE_MAYBE_SENT, {"status": str(err.status)}
            why = f"Graph answered {err.status} (unavailable); the mail may or may not have been sent"
        elif isinstance(err, TransportError):
            reason = (
                NotificationReason.UNREACHABLE_MAYBE_SENT
                if err.write_outcome_unknown
                else NotificationReason.UNREACHABLE
            )
            params = {}
            why = "Graph could not be reached to send the mail" + (
                "; it may or may not have been sent" if err.write_outcome_unknown else ""
            )
        elif err.status == 429 or (err.status or 0) >= 500:
            reason, params = NotificationReason.BUSY_NOT_SENT, {}
            why = "Graph was busy or unavailable and did not accept the mail; it was not sent"
        else:
            reason, params = NotificationReason.REFUSED, {}
            why = "Graph refused to send the mail"
        graph_part = ": ".join(p for p in (code, err.message) if p)
        detail = f"{why} (Graph: {graph_part})" if graph_part else why
        if err.request_id:
            detail += f" [request-id {err.request_id}]"
        return reason, params, detail

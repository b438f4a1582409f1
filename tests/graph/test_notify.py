"""The notification e-mail: what the user reads, in which language, and what reaches Graph's sendMail."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import jinja2
import pytest

from graph.client import GraphClient, RetryPolicy, create_graph_client
from graph.notify import (
    TEMPLATES_DIR,
    Notifier,
    RenderedMail,
    ServiceDesk,
    choose_language,
    environment,
    mail_kind,
    render_mail,
)
from graph.outcome import Notification, NotificationStatus, Outcome, OutcomeKind, TargetUser
from graph.settings import GraphSettings

WHEN = datetime(2025, 3, 1, 14, 5, 9, tzinfo=UTC)
DESK = ServiceDesk(
    display_name="Contoso IT Service Desk",
    email="servicedesk@contoso.com",
    phone="+49 89 1234-0",
    portal_url="https://help.contoso.com/portal",
)


def context(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "display_name": "Erika Mustermann",
        "tenant_name": "Contoso GmbH",
        "number_tail": "4567",
        "caller": "Max Agent",
        "performed_at": WHEN,
        "ticket_url": "https://tickets.contoso.com/INC-1234",
        "service_desk": DESK,
    }
    values.update(overrides)
    return values


class _Links(HTMLParser):
    """Collects every href and every <script> element of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.scripts = 0
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.scripts += 1
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")


def parse_html(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


# ---------------------------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("override", "usage_location", "expected"),
    [
        (None, "DE", "de"),
        (None, "AT", "de"),
        (None, "CH", "de"),
        (None, "LI", "de"),
        ("auto", "de", "de"),
        ("auto", " at ", "de"),
        ("", "LI", "de"),
        (None, "US", "en"),
        (None, "FR", "en"),
        (None, "LU", "en"),
        (None, None, "en"),
        ("auto", "", "en"),
        ("de", "US", "de"),
        ("DE", None, "de"),
        ("en", "DE", "en"),
        ("EN", "AT", "en"),
        (" en ", "CH", "en"),
    ],
)
def test_language_override_wins_else_german_for_de_at_ch_li_else_english(
    override: str | None, usage_location: str | None, expected: str
) -> None:
    assert choose_language(override, usage_location) == expected


@pytest.mark.parametrize("override", ["fr", "german", "de-DE", "1"])
def test_unknown_language_override_is_refused(override: str) -> None:
    with pytest.raises(ValueError, match="auto, de or en"):
        choose_language(override, "DE")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (OutcomeKind.ADDED, "added"),
        (OutcomeKind.UPDATED, "updated"),
        (OutcomeKind.REMOVED, "removed"),
        ("Added", "added"),
    ],
)
def test_mail_kind_follows_the_outcome(kind: OutcomeKind | str, expected: str) -> None:
    assert mail_kind(kind) == expected


@pytest.mark.parametrize("kind", [OutcomeKind.UNCHANGED, OutcomeKind.NUMBER_MISMATCH, "deleted"])
def test_outcomes_that_changed_nothing_have_no_mail(kind: OutcomeKind | str) -> None:
    with pytest.raises(ValueError, match="no notification mail"):
        mail_kind(kind)


# ---------------------------------------------------------------------------------------------- rendering

EXPECTED_WORDS = {
    ("added", "en"): (
        "A mobile phone number was added to your sign-in methods (Contoso GmbH)",
        "Hello Erika Mustermann,",
        "an administrator has added the mobile phone number ending in 4567",
    ),
    ("updated", "en"): (
        "The mobile phone number for your sign-in was changed (Contoso GmbH)",
        "Hello Erika Mustermann,",
        "an administrator has changed the mobile phone number",
    ),
    ("removed", "en"): (
        "A mobile phone number was removed from your sign-in methods (Contoso GmbH)",
        "Hello Erika Mustermann,",
        "an administrator has removed the mobile phone number ending in 4567",
    ),
    ("added", "de"): (
        "Eine Mobilnummer wurde zu Ihren Anmeldemethoden hinzugefügt (Contoso GmbH)",
        "Guten Tag Erika Mustermann,",
        "ein Administrator hat Ihrem Konto die Mobilnummer mit der Endung 4567",
    ),
    ("updated", "de"): (
        "Die Mobilnummer für Ihre Anmeldung wurde geändert (Contoso GmbH)",
        "Guten Tag Erika Mustermann,",
        "ein Administrator hat die Mobilnummer für die Multi-Faktor-Authentifizierung (MFA) Ihres Kontos geändert.",
    ),
    ("removed", "de"): (
        "Eine Mobilnummer wurde aus Ihren Anmeldemethoden entfernt (Contoso GmbH)",
        "Guten Tag Erika Mustermann,",
        "ein Administrator hat die Mobilnummer mit der Endung 4567 aus den Methoden",
    ),
}

COMMON_WORDS = {
    "en": (
        "If you did not expect this change, please contact your IT department right away.",
        "Action performed by: Max Agent",
        "Date and time: 2025-03-01 14:05 UTC",
        "Please do not reply to this e-mail.",
        "Your service desk",
        "on behalf of Contoso GmbH",
    ),
    "de": (
        "Falls Sie diese Änderung nicht erwartet haben, wenden Sie sich bitte umgehend an Ihre IT-Abteilung.",
        "Durchgeführt von: Max Agent",
        "Datum und Uhrzeit: 01.03.2025, 14:05 UTC",
        "Bitte antworten Sie nicht auf diese E-Mail.",
        "Ihr Service Desk",
        "im Auftrag von Contoso GmbH",
    ),
}


@pytest.mark.parametrize(("kind", "language"), sorted(EXPECTED_WORDS))
def test_each_mail_greets_by_name_says_what_happened_and_who_did_it_when(kind: str, language: str) -> None:
    mail = render_mail(kind, language, context())
    subject, greeting, sentence = EXPECTED_WORDS[(kind, language)]
    assert mail.subject == subject
    for part in (mail.text, mail.html):
        assert greeting in part
        assert sentence in re.sub(r"</?strong>", "", part)
        for words in COMMON_WORDS[language]:
            assert words in part
    assert f'<html lang="{language}">' in mail.html
    assert f"<title>{subject}</title>" in mail.html


@pytest.mark.parametrize(("kind", "language"), sorted(EXPECTED_WORDS))
def test_mail_shows_only_the_last_four_digits_of_the_number(kind: str, language: str) -> None:
    mail = render_mail(kind, language, context(number_tail="4567"))
    for part in (mail.subject, mail.text, mail.html):
        assert "1701234567" not in part.replace(" ", "")
        assert "170" not in part
    assert "4567" in mail.text
    assert ("last digits" if language == "en" else "letzten Ziffern") in mail.text


def test_updated_mail_names_the_end_of_the_new_number() -> None:
    assert "The new number ends in 4567." in render_mail("updated", "en", context()).text
    assert "Die neue Nummer endet auf 4567." in render_mail("updated", "de", context()).text


def test_mail_without_a_known_number_speaks_of_the_mobile_number_in_general() -> None:
    mail = render_mail("removed", "en", context(number_tail=""))
    assert "an administrator has removed the mobile phone number from the multi-factor" in mail.text
    assert "ending in" not in mail.text
    assert "last digits" not in mail.text


def test_time_is_shown_in_utc_whatever_the_clock_zone() -> None:
    berlin = WHEN.astimezone(timezone(timedelta(hours=1)))
    assert berlin.hour == 15
    assert (
        "Date and time: 2025-03-01 14:05 UTC" in render_mail("added", "en", context(performed_at=berlin)).text
    )
    naive_utc = datetime(2025, 3, 1, 14, 5)
    assert "01.03.2025, 14:05 UTC" in render_mail("added", "de", context(performed_at=naive_utc)).text


def test_service_desk_block_has_mailto_tel_portal_and_ticket_links() -> None:
    mail = render_mail("added", "en", context())
    links = parse_html(mail.html)
    assert links.hrefs == [
        "mailto:servicedesk@contoso.com",
        "tel:+498912340",
        "https://help.contoso.com/portal",
        "https://tickets.contoso.com/INC-1234",
    ]
    assert "Contoso IT Service Desk" in mail.html
    for line in (
        "Contoso IT Service Desk",
        "E-mail: servicedesk@contoso.com",
        "Phone: +49 89 1234-0",
        "Portal: https://help.contoso.com/portal",
        "Ticket: https://tickets.contoso.com/INC-1234",
    ):
        assert line in mail.text


@pytest.mark.parametrize("language", ["de", "en"])
def test_service_desk_block_is_left_out_when_nothing_is_set(language: str) -> None:
    mail = render_mail(
        language=language, kind="added", context=context(service_desk=ServiceDesk(), ticket_url=None)
    )
    heading = "Your service desk" if language == "en" else "Ihr Service Desk"
    assert heading not in mail.text
    assert heading not in mail.html
    assert parse_html(mail.html).hrefs == []
    assert "Ticket" not in mail.text


def test_service_desk_block_shows_only_the_fields_that_are_set() -> None:
    mail = render_mail(
        "added", "de", context(service_desk=ServiceDesk(phone="+43 1 234 567"), ticket_url=None)
    )
    assert "Ihr Service Desk" in mail.text
    assert "Telefon: +43 1 234 567" in mail.text
    assert "E-Mail:" not in mail.text
    assert "Portal:" not in mail.text
    assert parse_html(mail.html).hrefs == ["tel:+431234567"]


def test_a_ticket_link_alone_shows_the_block() -> None:
    mail = render_mail("removed", "en", context(service_desk=ServiceDesk()))
    assert "Ticket: https://tickets.contoso.com/INC-1234" in mail.text
    assert parse_html(mail.html).hrefs == ["https://tickets.contoso.com/INC-1234"]


def test_without_a_caller_the_performed_by_line_is_left_out() -> None:
    mail = render_mail("added", "en", context(caller=None))
    assert "Action performed by" not in mail.text
    assert "Action performed by" not in mail.html


@pytest.mark.parametrize(
    ("language", "fallback"),
    [("en", "on behalf of your organization"), ("de", "im Auftrag Ihrer Organisation")],
)
def test_without_a_tenant_name_the_mail_speaks_of_your_organization(language: str, fallback: str) -> None:
    mail = render_mail("added", language, context(tenant_name=None))
    assert fallback in mail.text
    assert fallback in mail.html
    assert "(" not in mail.subject
    assert "Contoso GmbH" not in mail.html


HOSTILE_NAME = "<script>alert('x')</script> \"Eve\" & <b>Co</b>"
HOSTILE_CALLER = '<img src=x onerror="alert(1)">'


@pytest.mark.parametrize("language", ["de", "en"])
def test_hostile_names_are_escaped_in_html_and_kept_literally_in_text(language: str) -> None:
    mail = render_mail(
        "added",
        language,
        context(display_name=HOSTILE_NAME, caller=HOSTILE_CALLER, tenant_name="<i>Evil</i> Corp"),
    )
    parsed = parse_html(mail.html)
    assert parsed.scripts == 0
    assert "img" not in parsed.tags
    assert "i" not in parsed.tags
    assert "b" not in parsed.tags
    assert "<script>" not in mail.html
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &#34;Eve&#34; &amp; &lt;b&gt;Co&lt;/b&gt;"
        in mail.html
    )
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in mail.html
    assert HOSTILE_NAME in mail.text  # text/plain shows what the directory holds, unchanged
    assert HOSTILE_CALLER in mail.text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "https://",
        "//evil.example/x",
        "https://ok.example/a b",
        'https://ok.example/"onmouseover="alert(1)',
    ],
)
def test_a_ticket_url_that_is_not_plain_http_never_becomes_a_link(url: str) -> None:
    mail = render_mail("added", "en", context(ticket_url=url, service_desk=ServiceDesk()))
    parsed = parse_html(mail.html)
    assert parsed.hrefs == []
    assert parsed.scripts == 0
    assert "Ticket" in mail.html  # still shown, as text, so the user can quote it


def test_a_url_with_quotes_or_brackets_is_shown_escaped_not_linked() -> None:
    mail = render_mail(
        "added", "en", context(ticket_url="https://t.example/?q=\"'><x", service_desk=ServiceDesk())
    )
    parsed = parse_html(mail.html)
    assert parsed.hrefs == []
    assert "x" not in parsed.tags
    assert "https://t.example/?q=&#34;&#39;&gt;&lt;x" in mail.html


@pytest.mark.parametrize(
    ("desk", "hrefs"),
    [
        (ServiceDesk(email="help@contoso.com?subject=x&bcc=eve@evil.example"), []),
        (ServiceDesk(email="javascript:alert(1)//@x.com"), []),
        (ServiceDesk(phone="+49 89 1234 <script>"), []),
        (ServiceDesk(phone="call us"), []),
        (ServiceDesk(portal_url="javascript:alert(1)"), []),
        (ServiceDesk(portal_url="ftp://files.contoso.com"), []),
    ],
)
def test_service_desk_values_only_become_links_when_they_are_what_they_claim(
    desk: ServiceDesk, hrefs: list[str]
) -> None:
    mail = render_mail("added", "en", context(service_desk=desk, ticket_url=None))
    assert parse_html(mail.html).hrefs == hrefs
    assert "<script>" not in mail.html


def test_a_missing_variable_is_an_error_not_an_empty_gap() -> None:
    values = context()
    del values["caller"]
    with pytest.raises(jinja2.UndefinedError, match="caller"):
        render_mail("added", "en", values)


def test_a_missing_service_desk_field_is_an_error_too() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render_mail(
            "added", "en", context(service_desk={"display_name": "Desk", "email": None, "phone": None})
        )


def test_unknown_language_or_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        render_mail("added", "fr", context())
    with pytest.raises(ValueError):
        render_mail("unchanged", "en", context())


def test_one_environment_escapes_html_templates_and_loads_from_the_repository() -> None:
    env = environment()
    assert env is environment()
    assert env.undefined is jinja2.StrictUndefined
    assert TEMPLATES_DIR.is_dir() and (TEMPLATES_DIR / "mail" / "en.html.j2").is_file()
    for name in ("de.html.j2", "en.html.j2", "de.txt.j2", "en.txt.j2"):
        env.get_template(f"mail/{name}")  # compiles
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_templates_are_found_whatever_the_working_directory(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environment.cache_clear()
    try:
        assert isinstance(render_mail("added", "de", context()), RenderedMail)
    finally:
        environment.cache_clear()


def test_text_mail_has_no_markup_and_no_runs_of_blank_lines() -> None:
    for kind, language in EXPECTED_WORDS:
        text = render_mail(kind, language, context()).text
        assert "<" not in text and "{" not in text
        assert "\n\n\n" not in text
        assert text.endswith("\n") and not text.startswith("\n")


# ------------------------------------------------------------------------------ sending through Graph (simulator)

SENDER = "servicedesk@contoso.example"
READ_ONLY_CLIENT = ("6e2f8d4c-3b5a-4f7e-8c2d-1b2c3d4e5f60", "test-secret-readonly")
FIXED_NOW = datetime(2025, 6, 2, 8, 30, tzinfo=UTC)
ALEX = TargetUser(
    id="00000000-0000-0000-0000-0000000000a1",
    user_principal_name="alex.wilber@contoso.example",
    display_name="Alex Wilber",
    mail="alex.wilber@contoso.example",
    usage_location="DE",
)


@asynccontextmanager
async def graph(env: dict[str, str]) -> AsyncIterator[GraphClient]:
    client, close = await create_graph_client(
        GraphSettings.from_env(env),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, deadline=5.0),
    )
    try:
        yield client
    finally:
        await close()


def notifier(client: GraphClient, sender: str | None = SENDER, desk: ServiceDesk = DESK) -> Notifier:
    return Notifier(client, sender, desk, now=lambda: FIXED_NOW)


def mail_calls(sim: Any) -> list[Any]:
    return [c for c in sim.calls if c.path.endswith("/sendMail")]


async def test_sent_mail_reaches_the_user_in_german_with_html_body_and_no_copy_in_sent_items(
    sim: Any, sim_env: dict[str, str]
) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client).send(
            ALEX, "added", "+49 1701234567", "Max Agent", "https://t.example/INC-7", None
        )
    assert note == Notification(NotificationStatus.SENT, recipient=ALEX.mail, language="de")
    assert len(sim.outbox) == 1
    sent = sim.outbox[0]
    assert sent["sender"] == SENDER
    assert sent["to"] == [ALEX.mail]
    assert sent["contentType"] == "HTML"
    assert sent["saveToSentItems"] is False
    assert sent["subject"] == "Eine Mobilnummer wurde zu Ihren Anmeldemethoden hinzugefügt (Contoso Test)"
    assert "Guten Tag Alex Wilber," in sent["html"]
    assert "mit der Endung <strong>4567</strong>" in sent["html"]
    assert "1701234567" not in sent["html"]
    assert "Durchgeführt von: Max Agent" in sent["html"]
    assert "Datum und Uhrzeit: 02.06.2025, 08:30 UTC" in sent["html"]
    assert 'href="https://t.example/INC-7"' in sent["html"]
    assert "im Auftrag von Contoso Test" in sent["html"]


async def test_english_for_a_us_user_and_the_override_wins_over_the_usage_location(
    sim: Any, sim_env: dict[str, str]
) -> None:
    diego = TargetUser(
        "00000000-0000-0000-0000-0000000000c2",
        "diego.siciliani@contoso.example",
        "Diego Siciliani",
        mail="diego.siciliani@contoso.example",
        usage_location="US",
    )
    async with graph(sim_env) as client:
        n = notifier(client)
        first = await n.send(diego, "removed", "+1 2065550100", "Max Agent", None, "auto")
        second = await n.send(ALEX, "updated", "+49 1701234567", "Max Agent", None, "en")
    assert (first.status, first.language, second.status, second.language) == (
        NotificationStatus.SENT,
        "en",
        NotificationStatus.SENT,
        "en",
    )
    assert [m["subject"] for m in sim.outbox] == [
        "A mobile phone number was removed from your sign-in methods (Contoso Test)",
        "The mobile phone number for your sign-in was changed (Contoso Test)",
    ]
    assert "ending in <strong>0100</strong>" in sim.outbox[0]["html"]
    organization_reads = [c for c in sim.calls if c.path.endswith("/organization")]
    assert len(organization_reads) == 1  # the tenant name is read once and kept


async def test_hostile_display_name_and_caller_arrive_escaped(sim: Any, sim_env: dict[str, str]) -> None:
    eve = TargetUser(ALEX.id, ALEX.user_principal_name, HOSTILE_NAME, mail=ALEX.mail, usage_location="GB")
    async with graph(sim_env) as client:
        note = await notifier(client).send(
            eve, "added", "+49 1701234567", HOSTILE_CALLER, "javascript:alert(1)", None
        )
    assert note.status is NotificationStatus.SENT
    html = sim.outbox[0]["html"]
    parsed = parse_html(html)
    assert parsed.scripts == 0 and "img" not in parsed.tags
    assert "javascript:" not in parsed.hrefs and all(
        not h.lower().startswith("javascript") for h in parsed.hrefs
    )
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html


async def test_a_user_without_mail_is_skipped_and_nothing_is_sent(sim: Any, sim_env: dict[str, str]) -> None:
    johanna = TargetUser(
        "00000000-0000-0000-0000-0000000000c4",
        "johanna.lorenz@contoso.example",
        "Johanna Lorenz",
        mail=None,
        usage_location="AT",
    )
    async with graph(sim_env) as client:
        note = await notifier(client).send(johanna, "added", "+43 6641234567", "Max Agent", None, None)
    assert note.status is NotificationStatus.SKIPPED_NO_MAIL
    assert note.language == "de"
    assert note.detail and "no e-mail address" in note.detail
    assert sim.outbox == [] and mail_calls(sim) == []


async def test_no_sender_configured_fails_without_calling_graph(sim: Any, sim_env: dict[str, str]) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client, sender=None).send(ALEX, "added", "+49 1701234567", None, None, None)
    assert note.status is NotificationStatus.FAILED
    assert note.detail and "MAIL_SENDER" in note.detail
    assert note.reason == "not_configured"
    assert mail_calls(sim) == []


async def test_sender_without_mailbox_fails_with_the_reason_and_does_not_raise(
    sim: Any, sim_env: dict[str, str]
) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client, sender="johanna.lorenz@contoso.example").send(
            ALEX, "added", "+49 1701234567", None, None, None
        )
    assert note.status is NotificationStatus.FAILED
    assert note.recipient == ALEX.mail
    assert note.detail is not None
    assert "sender mailbox johanna.lorenz@contoso.example is not enabled" in note.detail
    assert "MailboxNotEnabledForRESTAPI" in note.detail
    assert "request-id" in note.detail
    assert (note.reason, note.reason_params) == (
        "mailbox_not_enabled",
        {"sender": "johanna.lorenz@contoso.example"},
    )
    assert sim.outbox == []


async def test_unknown_sender_fails_with_error_invalid_user(sim: Any, sim_env: dict[str, str]) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client, sender="nobody@contoso.example").send(
            ALEX, "removed", None, None, None, None
        )
    assert note.status is NotificationStatus.FAILED
    assert note.detail is not None
    assert "was not found" in note.detail and "ErrorInvalidUser" in note.detail
    assert note.reason == "sender_not_found" and note.reason_params["sender"]
    assert sim.outbox == []


async def test_missing_mail_send_permission_is_named_and_the_tenant_name_falls_back(
    sim: Any, sim_env: dict[str, str]
) -> None:
    client_id, secret = READ_ONLY_CLIENT
    env = dict(sim_env, GRAPH_CLIENT_ID=client_id, GRAPH_CLIENT_SECRET=secret)
    async with graph(env) as client:
        note = await notifier(client).send(ALEX, "added", "+49 1701234567", None, None, None)
    assert note.status is NotificationStatus.FAILED
    assert note.detail is not None
    assert "Mail.Send" in note.detail and "application access policy" in note.detail
    assert "ErrorAccessDenied" in note.detail
    assert note.reason == "send_as_denied" and note.reason_params["sender"]
    assert [c.status for c in mail_calls(sim)] == [403]
    assert sim.outbox == []


async def test_without_organization_access_the_mail_says_your_organization(
    sim: Any, sim_env: dict[str, str]
) -> None:
    sim.faults.inject("GET", r"/organization$", 403, times=1)
    async with graph(sim_env) as client:
        note = await notifier(client).send(ALEX, "added", "+49 1701234567", None, None, "en")
    assert note.status is NotificationStatus.SENT
    assert sim.outbox[0]["subject"] == "A mobile phone number was added to your sign-in methods"
    assert "on behalf of your organization" in sim.outbox[0]["html"]


async def test_a_503_on_sendmail_is_a_failed_notification_sent_once_that_says_it_may_have_gone(
    sim: Any, sim_env: dict[str, str]
) -> None:
    # A 503 does not promise that Graph did not take the mail, so it is not re-sent blindly.
    sim.faults.inject("POST", r"/sendMail$", 503, times=10)
    async with graph(sim_env) as client:
        note = await notifier(client).send(ALEX, "added", "+49 1701234567", None, None, None)
    assert note.status is NotificationStatus.FAILED
    assert note.detail is not None and "answered 503" in note.detail
    assert "may or may not have been sent" in note.detail
    assert (note.reason, note.reason_params) == ("unavailable_maybe_sent", {"status": "503"})
    assert len(mail_calls(sim)) == 1
    assert sim.outbox == []


async def test_a_throttled_sendmail_is_retried_and_sent(sim: Any, sim_env: dict[str, str]) -> None:
    sim.faults.inject("POST", r"/sendMail$", 429, times=1, retry_after=0.1)
    async with graph(sim_env) as client:
        note = await notifier(client).send(ALEX, "added", "+49 1701234567", None, None, None)
    assert note.status is NotificationStatus.SENT
    assert len(sim.outbox) == 1


async def test_a_dropped_connection_is_not_resent_and_says_the_mail_may_have_gone(
    sim: Any, sim_env: dict[str, str]
) -> None:
    sim.faults.inject("POST", r"/sendMail$", "drop", times=1, after_apply=True)
    async with graph(sim_env) as client:
        note = await notifier(client).send(ALEX, "added", "+49 1701234567", None, None, None)
    assert note.status is NotificationStatus.FAILED
    assert note.detail is not None and "may or may not have been sent" in note.detail
    assert note.reason == "unreachable_maybe_sent"
    assert len(mail_calls(sim)) == 1  # never repeated blindly
    assert len(sim.outbox) == 1  # Graph did take it


async def test_notify_for_a_workflow_outcome_sends_the_removed_mail(
    sim: Any, sim_env: dict[str, str]
) -> None:
    outcome = Outcome(kind=OutcomeKind.REMOVED, action="remove", user=ALEX, number="+491701234567")
    async with graph(sim_env) as client:
        n = Notifier.from_settings(
            GraphSettings.from_env(dict(sim_env, MAIL_SENDER=SENDER, SERVICE_DESK_DISPLAY_NAME="Contoso IT"))
        )
        note = await n.notify(
            user=ALEX, outcome=outcome, language="auto", ticket_url=None, caller="Max", client=client
        )
    assert note.status is NotificationStatus.SENT
    assert sim.outbox[0]["subject"].startswith("Eine Mobilnummer wurde aus Ihren Anmeldemethoden entfernt")
    assert "Ihr Service Desk" in sim.outbox[0]["html"] and "Contoso IT" in sim.outbox[0]["html"]

"""The one-time code mail: what reaches Graph's sendMail (the simulator's outbox), in which language, that the code
is in the body and nowhere else, and that a failure is an answer, not an exception or a logged code."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from html import unescape
from typing import Any

import pytest

from graph.notify import Notifier, ServiceDesk, render_code_mail
from graph.outcome import NotificationStatus, TargetUser
from tests.graph.test_notify import ALEX, DESK, FIXED_NOW, READ_ONLY_CLIENT, SENDER, graph, mail_calls

CODE = "480613"
LYNNE = TargetUser(
    id="00000000-0000-0000-0000-0000000000c1",
    user_principal_name="lynne.robbins@contoso.example",
    display_name="Lynne Robbins",
    mail="lynne.robbins@contoso.example",
    usage_location="US",
)


def notifier(client: Any, sender: str | None = SENDER, desk: ServiceDesk = DESK) -> Notifier:
    return Notifier(client, sender, desk, now=lambda: FIXED_NOW)


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_the_code_goes_to_the_users_mailbox_in_the_body_only(sim: Any, sim_env: dict[str, str]) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client).send_verification_code(LYNNE, CODE, valid_minutes=10)
    assert (note.status, note.recipient, note.language) == (NotificationStatus.SENT, LYNNE.mail, "en")
    assert CODE not in (note.detail or "")
    (sent,) = sim.outbox
    assert (sent["sender"], sent["to"], sent["cc"]) == (SENDER, [LYNNE.mail], [])
    assert sent["saveToSentItems"] is False and sent["contentType"] == "HTML"
    assert sent["subject"] == "Your verification code for Contoso IT Service Desk (Contoso Test)"
    assert CODE not in sent["subject"]
    body = text_of(sent["html"])
    assert f"Your verification code: {CODE}" in body
    assert "Hello Lynne Robbins," in body
    assert "Contoso IT Service Desk is asking you to confirm" in body
    assert "valid for 10 minutes" in body
    assert "If you did not contact Contoso IT Service Desk, do not give this code to anyone" in body
    assert "Requested at: 2025-06-02 08:30 UTC" in body
    assert f"<title>{sent['subject']}</title>" in sent["html"]  # the code is not in the title either
    # only the sendMail went to Graph with the code in it, and the code is in no other request
    assert [c.status for c in mail_calls(sim)] == [202]
    assert not [c for c in sim.calls if CODE in str(c.query) or CODE in c.path]


async def test_german_for_a_german_user_and_the_override_wins(sim: Any, sim_env: dict[str, str]) -> None:
    async with graph(sim_env) as client:
        german = await notifier(client).send_verification_code(ALEX, CODE, valid_minutes=5)
        english = await notifier(client).send_verification_code(
            ALEX, "1234", valid_minutes=5, language_override="en"
        )
    assert (german.language, english.language) == ("de", "en")
    first, second = sim.outbox
    assert first["subject"] == "Ihr Bestätigungscode für Contoso IT Service Desk (Contoso Test)"
    body = text_of(first["html"])
    assert f"Ihr Bestätigungscode: {CODE}" in body and "5 Minuten gültig" in body
    assert "Falls Sie sich nicht an Contoso IT Service Desk gewandt haben" in body
    assert "Your verification code: 1234" in text_of(second["html"])


async def test_without_a_service_desk_name_the_mail_says_the_service_desk(
    sim: Any, sim_env: dict[str, str]
) -> None:
    async with graph(sim_env) as client:
        await notifier(client, desk=ServiceDesk()).send_verification_code(LYNNE, CODE, valid_minutes=10)
    (sent,) = sim.outbox
    assert sent["subject"] == "Your verification code for the service desk (Contoso Test)"
    assert "If you did not contact the service desk" in text_of(sent["html"])


async def test_a_hostile_name_arrives_escaped(sim: Any, sim_env: dict[str, str]) -> None:
    hostile = replace(LYNNE, display_name='<img src=x onerror="alert(1)">')
    desk = replace(DESK, display_name="<b>Desk</b>")
    async with graph(sim_env) as client:
        await notifier(client, desk=desk).send_verification_code(hostile, CODE, valid_minutes=10)
    (sent,) = sim.outbox
    assert "<img" not in sent["html"] and "<b>Desk" not in sent["html"]
    assert "&lt;img src=x" in sent["html"] and "&lt;b&gt;Desk&lt;/b&gt;" in sent["html"]


async def test_a_user_without_mail_is_skipped_and_nothing_is_sent(sim: Any, sim_env: dict[str, str]) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client).send_verification_code(
            replace(LYNNE, mail=None), CODE, valid_minutes=10
        )
    assert note.status is NotificationStatus.SKIPPED_NO_MAIL
    assert sim.outbox == [] and mail_calls(sim) == []


async def test_no_sender_fails_without_calling_graph(sim: Any, sim_env: dict[str, str]) -> None:
    async with graph(sim_env) as client:
        note = await notifier(client, sender=None).send_verification_code(LYNNE, CODE, valid_minutes=10)
    assert note.status is NotificationStatus.FAILED and "MAIL_SENDER" in (note.detail or "")
    assert sim.calls == []


async def test_a_refused_sendmail_is_a_failed_answer_and_the_code_is_never_logged(
    sim: Any, sim_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client_id, secret = READ_ONLY_CLIENT
    env = dict(sim_env, GRAPH_CLIENT_ID=client_id, GRAPH_CLIENT_SECRET=secret)
    caplog.set_level(logging.DEBUG)
    async with graph(env) as client:
        note = await notifier(client).send_verification_code(LYNNE, CODE, valid_minutes=10)
    assert note.status is NotificationStatus.FAILED
    assert "ErrorAccessDenied" in (note.detail or "") and CODE not in (note.detail or "")
    assert [c.status for c in mail_calls(sim)] == [403] and sim.outbox == []
    assert caplog.records and not [
        r for r in caplog.records if CODE in r.getMessage() or CODE in str(r.__dict__)
    ]


@pytest.mark.parametrize(
    ("code", "minutes"), [("12345a", 10), ("123", 10), ("<b>1</b>", 10), ("", 10), ("123456", 0)]
)
async def test_a_malformed_code_or_lifetime_is_refused_before_anything_is_sent(
    sim: Any, sim_env: dict[str, str], code: str, minutes: int
) -> None:
    async with graph(sim_env) as client:
        with pytest.raises(ValueError):
            await notifier(client).send_verification_code(LYNNE, code, valid_minutes=minutes)
    assert sim.calls == [] and sim.outbox == []


def test_the_plain_text_has_the_code_and_the_subject_never_does() -> None:
    for language in ("en", "de"):
        mail = render_code_mail(
            language,
            {
                "display_name": "Lynne Robbins",
                "tenant_name": None,
                "code": CODE,
                "valid_minutes": 10,
                "requested_at": FIXED_NOW,
                "service_desk": DESK,
            },
        )
        assert CODE in mail.text and CODE in mail.html and CODE not in mail.subject
        assert "{{" not in mail.text and "{%" not in mail.html

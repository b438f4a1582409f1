"""Every text the bot can show exists in English and German: the keys the code names, the keys built from an
outcome's codes, and every outcome card in both languages renders without a missing key and, in German, without
an English sentence of the workflow. `t()` only logs a missing key at run time; these tests fail on it."""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.views import cards, texts
from graph.outcome import (
    Holder,
    NextStep,
    Notification,
    NotificationReason,
    NotificationStatus,
    Outcome,
    OutcomeKind,
    OutcomeWarning,
    PhoneMethod,
    PhoneState,
    TargetUser,
    WarningCode,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("bot", "dialogs") for p in sorted((ROOT / d).rglob("*.py")) if p.name != "texts.py"]
KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
PREFIXES = {key.split(".", 1)[0] for key in texts.EN}

# The parameters each code's producer passes (graph.workflow, graph.notify): a text may use only these.
WARNING_PARAMS: dict[WarningCode, set[str]] = {code: set() for code in WarningCode} | {
    WarningCode.CHANGE_IN_PLACE_AFTER_ERROR: {"status", "request_id"},
}
REASON_PARAMS: dict[NotificationReason, set[str]] = {reason: set() for reason in NotificationReason} | {
    NotificationReason.MAILBOX_NOT_ENABLED: {"sender"},
    NotificationReason.SENDER_NOT_FOUND: {"sender"},
    NotificationReason.SEND_AS_DENIED: {"sender"},
    NotificationReason.UNAVAILABLE_MAYBE_SENT: {"status"},
    NotificationReason.UNEXPECTED_ANSWER: {"status"},
}

# Sentences as the workflow and the notifier write them (graph.workflow, graph.notify): English, for logs and
# the CLI. None of them may reach a German card.
WORKFLOW_WARNING = {
    WarningCode.NOT_MOBILE: "This looks like a fixed-line number, not a mobile number: text messages with "
    "sign-in codes may not arrive.",
    WarningCode.SMS_SIGN_IN_UNAVAILABLE: "SMS sign-in is not available with this number: another user holds "
    "it for SMS sign-in.",
    WarningCode.CHANGE_IN_PLACE_AFTER_ERROR: "Graph answered 503 to the change (serviceNotAvailable, Graph "
    "request-id 1f0c), but reading the state back shows the change is in place.",
    WarningCode.NOTIFICATION_NO_MAIL: "No notification was sent: the user has no mail address.",
    WarningCode.NOTIFICATION_FAILED: "The change was made, but the notification e-mail failed: Graph refused "
    "to send the mail (Graph: ErrorAccessDenied: Access is denied.)",
}
WORKFLOW_MESSAGE = "The mobile phone MFA method of Adele Vance was set to +491765550199 for MFA."
WORKFLOW_NEXT_STEP = "Check the user's phone methods with `show`, then try again."
NOTIFY_DETAIL = (
    "the application may not send as servicedesk@contoso.example: grant it the Mail.Send permission"
)

USER = TargetUser("u-1", "adele@contoso.example", "Adele Vance", mail="adele@contoso.example")
HOLDER = Holder(
    "u-2", "Megan Bowen", "megan@contoso.example", "mobile", "ready", "https://entra.microsoft.com/#view/x"
)
PHONES = PhoneState((PhoneMethod("m-1", "mobile", "+49 1765550199", "ready"),))


def _request() -> ChangeRequest:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    return ChangeRequest(
        id="r-1",
        revision=1,
        requester=Person(aad_object_id="a-1", name="Alex Wilber", teams_id="29:alex"),
        target_id=USER.id,
        target_upn=USER.user_principal_name,
        target_display_name=USER.display_name,
        action="set",
        number="+491765550199",
        previous_number="+491609876543",
        notify=True,
        language="de",
        ticket="T-1",
        state=RequestState.COMPLETED,
        created_at=now,
        updated_at=now,
    )


def _outcome(kind: OutcomeKind, code: WarningCode, reason: NotificationReason) -> Outcome:
    return Outcome(
        kind=kind,
        action="set",
        user=USER,
        previous_number="+491609876543",
        number="+491765550199",
        sms_sign_in_state="ready",
        sms_sign_in_conflict=kind in (OutcomeKind.ADDED, OutcomeKind.UPDATED),
        holder=HOLDER,
        holder_search="found",
        notification=Notification(
            NotificationStatus.FAILED,
            USER.mail,
            "de",
            NOTIFY_DETAIL,
            reason=reason,
            reason_params={p: "x" for p in REASON_PARAMS[reason]},
        ),
        graph_request_ids=["1f0c"],
        message=WORKFLOW_MESSAGE,
        next_step=WORKFLOW_NEXT_STEP,
        next_step_code=NextStep.REMOVE_ALTERNATE_FIRST.value,
        graph_error_code="badRequest",
        missing_permission="UserAuthenticationMethod.ReadWrite.All",
        warnings=[OutcomeWarning(code, WORKFLOW_WARNING[code], {p: "x" for p in WARNING_PARAMS[code]})],
        phones=PHONES,
    )


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "value", "label", "placeholder", "fallbackText"):
                if isinstance(value, str):
                    yield value.replace("\\", "")
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _missing(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if "missing text key" in r.getMessage() or "bad template" in r.getMessage()
    ]


# ------------------------------------------------------------------------------------------------ (a) the code


def _literal_keys() -> Iterator[tuple[str, int, str]]:
    """Every string literal in bot/ and dialogs/ that has the shape of a text key of a known family."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and KEY.fullmatch(node.value)
                and node.value.split(".", 1)[0] in PREFIXES
            ):
                yield str(path.relative_to(ROOT)), node.lineno, node.value


def _built_keys() -> Iterator[tuple[str, int, str]]:
    """Every f-string in bot/ and dialogs/ that builds a text key, as a pattern."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr) or not node.values:
                continue
            head = node.values[0]
            if not (isinstance(head, ast.Constant) and isinstance(head.value, str)):
                continue
            if not re.match(r"[a-z_]+\.", head.value) or head.value.split(".", 1)[0] not in PREFIXES:
                continue
            pattern = "".join(
                re.escape(part.value) if isinstance(part, ast.Constant) else "[A-Za-z0-9_]+"
                for part in node.values
            )
            yield str(path.relative_to(ROOT)), node.lineno, pattern


def test_every_key_the_code_names_exists_in_english_and_german() -> None:
    found = list(_literal_keys())
    assert len(found) > 200  # the scan sees the code (a scan that finds nothing proves nothing)
    gaps = [f"{path}:{line} {key}" for path, line, key in found if key not in texts.EN or key not in texts.DE]
    assert gaps == []


def test_every_key_the_code_builds_matches_texts_in_both_languages() -> None:
    built = list(_built_keys())
    assert len(built) > 10
    for path, line, pattern in built:
        for table in (texts.EN, texts.DE):
            assert any(re.fullmatch(pattern, key) for key in table), f"{path}:{line} {pattern}"


def test_every_code_an_outcome_can_carry_has_a_text_with_only_its_parameters() -> None:
    keys: dict[str, set[str]] = {}
    keys |= {f"warning.{code.value}": params for code, params in WARNING_PARAMS.items()}
    keys |= {f"notification.reason.{reason.value}": params for reason, params in REASON_PARAMS.items()}
    keys |= {f"outcome.next.{step.value}": set() for step in NextStep}
    keys |= {
        f"notification.{status.value}": {"recipient", "language", "detail"} for status in NotificationStatus
    }
    for kind in OutcomeKind:
        keys |= {
            f"outcome.{kind.value}.title": set(),
            f"outcome.{kind.value}.body": {"old", "new", "typed", "ref"},
            f"outcome_name.{kind.value}": set(),
        }
    for holder_search in ("not_found", "failed", "not_licensed", "not_run"):
        keys[f"outcome.holder.{holder_search}"] = set()
    for key, params in keys.items():
        for lang, table in (("en", texts.EN), ("de", texts.DE)):
            assert key in table, (lang, key)
            assert texts.placeholders(table[key]) <= params, (lang, key)


# ------------------------------------------------------------------------------------------------ (b) the tables


def test_english_and_german_have_the_same_keys_and_placeholders_and_no_empty_text() -> None:
    assert sorted(set(texts.EN) - set(texts.DE)) == []
    assert sorted(set(texts.DE) - set(texts.EN)) == []
    for key in texts.EN:
        assert texts.placeholders(texts.EN[key]) == texts.placeholders(texts.DE[key]), key
        assert texts.EN[key].strip() and texts.DE[key].strip(), key


# ------------------------------------------------------------------------------------------------ (c) the cards


@pytest.mark.parametrize("kind", list(OutcomeKind))
def test_every_outcome_card_with_every_warning_renders_from_texts_in_both_languages(
    kind: OutcomeKind, caplog: pytest.LogCaptureFixture
) -> None:
    req = _request()
    with caplog.at_level(logging.WARNING):
        for code in WarningCode:
            for reason in NotificationReason:
                outcome = _outcome(kind, code, reason)
                for lang in texts.LANGUAGES:
                    card = cards.outcome_card(lang, req, outcome)
                    shown = " ".join(_strings(card))
                    assert texts.MISSING_MARKER not in json.dumps(card, ensure_ascii=False)
                    warning_text = texts.t(lang, f"warning.{code.value}", status="x", request_id="x")
                    if code is WarningCode.SMS_SIGN_IN_UNAVAILABLE and outcome.sms_sign_in_conflict:
                        # the SMS sign-in conflict card says it once, in its own sentence, not again as a warning
                        assert warning_text not in shown
                        once = texts.t(lang, "outcome.sms_conflict.once", new=cards.masked(outcome.number))
                        assert shown.count(once) == 1
                    else:
                        assert warning_text in shown
                    reason_text = texts.t(lang, f"notification.reason.{reason.value}", sender="x", status="x")
                    assert reason_text in shown
                    if lang == "de":
                        for english in (WORKFLOW_WARNING[code], WORKFLOW_MESSAGE, WORKFLOW_NEXT_STEP):
                            assert english not in shown, (kind, code, english)
                        assert NOTIFY_DETAIL not in shown
                        assert texts.EN[f"warning.{code.value}"].split(" ")[:4] != shown.split(" ")[:4]
                        assert texts.t("en", f"warning.{code.value}", status="x", request_id="x") not in shown
    assert _missing(caplog) == []


def test_an_outcome_stored_before_codes_shows_its_sentences_without_a_missing_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request completed before warnings had codes keeps its outcome JSON: its card still renders, with the
    stored sentences, and the log stays quiet."""
    # (a warning the card shows as such: the SMS sign-in one is said once by the conflict card's own sentence)
    stored = _outcome(OutcomeKind.ADDED, WarningCode.NOT_MOBILE, NotificationReason.REFUSED)
    old = stored.to_json()
    for later in ("warning_codes", "next_step_code", "notification_reason", "notification_reason_params"):
        del old[later]
    with caplog.at_level(logging.WARNING):
        back = Outcome.from_json(json.loads(json.dumps(old)))
        assert [(w.code, w.text) for w in back.warnings] == [("", WORKFLOW_WARNING[stored.warnings[0].code])]
        for lang in texts.LANGUAGES:
            shown = " ".join(_strings(cards.outcome_card(lang, _request(), back)))
            assert WORKFLOW_WARNING[WarningCode.NOT_MOBILE] in shown
            assert texts.t(lang, "notification.failed", detail=NOTIFY_DETAIL).replace("\\", "") in shown
    assert _missing(caplog) == []


def test_an_outcome_goes_through_its_json_and_back_unchanged() -> None:
    for code in WarningCode:
        outcome = _outcome(OutcomeKind.UPDATED, code, NotificationReason.UNAVAILABLE_MAYBE_SENT)
        back = Outcome.from_json(json.loads(json.dumps(outcome.to_json())))
        assert back == replace(outcome, user=replace(USER))
        assert back.to_json() == outcome.to_json()
    assert Outcome.warnings_from_json({"warnings": "not a list", "warning_codes": None}) == []
    assert Outcome.warnings_from_json(
        {"warnings": ["A sentence.", 7], "warning_codes": [{"code": "not_mobile", "params": None}, "junk"]}
    ) == [OutcomeWarning("not_mobile", "A sentence.")]


def test_a_code_without_a_text_is_logged_and_its_sentence_shown_rather_than_a_gap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = replace(
        _outcome(OutcomeKind.ADDED, WarningCode.NOT_MOBILE, NotificationReason.ERROR),
        warnings=[OutcomeWarning("from_a_newer_version", "A sentence from a newer version.")],
    )
    with caplog.at_level(logging.WARNING):
        shown = " ".join(_strings(cards.outcome_card("de", _request(), outcome)))
    assert "A sentence from a newer version." in shown
    assert _missing(caplog) == ["missing text key 'warning.from_a_newer_version' for language 'de'"]


def test_a_sentence_given_to_a_card_is_shown_as_it_is_without_a_missing_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        card = cards.confirmation_card(
            "de", _request(), PHONES, warnings=["warning.not_mobile", "A sentence, not a key."]
        )
    shown = " ".join(_strings(card))
    assert texts.DE["warning.not_mobile"] in shown and "A sentence, not a key." in shown
    assert _missing(caplog) == []

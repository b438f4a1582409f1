"""The cards the bot sends: Microsoft's Adaptive Cards parser accepts every one, numbers are masked, user data
cannot inject markdown, every input has a label, and both languages are complete."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.persistence.store import AuditEntry
from bot.views import cards, texts
from graph import numbers
from graph.outcome import (
    Holder,
    Notification,
    NotificationStatus,
    Outcome,
    OutcomeKind,
    PhoneMethod,
    PhoneState,
    TargetUser,
)

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "tests" / "tools" / "validate_cards.mjs"

# Full numbers used in the fixtures; none may appear on any card (national digits checked).
NEW = "+491765550199"
OLD = "+491609876543"
ALT = "+4915112345678"
OFFICE = "+49891234567"
TYPED_ON_FORM = "+49 171 5550123"
FULL_NUMBERS = [NEW, OLD, ALT, OFFICE]
HOSTILE = "[Click here](https://evil.example/x) **Boss** _x_ <at>y</at> ![img](https://evil.example/i.png)"
T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


def _request(**overrides: Any) -> ChangeRequest:
    base = ChangeRequest(
        id="5f0c1d2e3a4b5c6d7e8f901234567890",
        revision=3,
        state=RequestState.DRAFT,
        action="set",
        requester=Person(aad_object_id="req-oid", name="Alex Wilber", teams_id="29:alex"),
        target_id="11111111-2222-3333-4444-555555555555",
        target_upn="adele.vance@contoso.com",
        target_display_name="Adele Vance",
        number=NEW,
        previous_number=OLD,
        notify=True,
        language="de",
        ticket="https://servicedesk.example.com/ticket/4711",
        created_at=T0,
        updated_at=T0,
        expires_at=T0 + timedelta(hours=24),
    )
    return replace(base, **overrides)


PHONES = PhoneState(
    methods=(
        PhoneMethod("3179e48a-750b-4051-897c-87b9720928f7", "mobile", "+49 1609876543", "ready"),
        PhoneMethod("b6332ec1-7057-4abe-9331-3d72feddfe41", "alternateMobile", "+49 15112345678", None),
        PhoneMethod("e37fc753-ff3b-4958-9484-eaa9425c82bc", "office", "+49 891234567", None),
    )
)
USER = TargetUser(
    "11111111-2222-3333-4444-555555555555", "adele.vance@contoso.com", "Adele Vance", "adele@contoso.com"
)
HOLDER = Holder(
    "99999999-2222-3333-4444-555555555555",
    "Megan Bowen",
    "megan.bowen@contoso.com",
    "mobile",
    "ready",
    "https://entra.microsoft.com/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/UserAuthMethods/userId/9999",
)


def _outcome(kind: OutcomeKind, **overrides: Any) -> Outcome:
    base = Outcome(
        kind=kind,
        action="remove" if kind in (OutcomeKind.REMOVED, OutcomeKind.NOTHING_TO_REMOVE) else "set",
        user=None if kind == OutcomeKind.USER_NOT_FOUND else USER,
        previous_number=OLD,
        number=NEW,
        sms_sign_in_state="ready",
        graph_request_ids=["a1b2c3d4-0000-0000-0000-000000000001"],
        notification=Notification(NotificationStatus.SENT, "adele@contoso.com", "de"),
        phones=PHONES,
    )
    return replace(base, **overrides)


OUTCOMES: dict[str, Outcome] = {kind.value: _outcome(kind) for kind in OutcomeKind}
OUTCOMES |= {
    "sms_conflict_holder_found": _outcome(
        OutcomeKind.ADDED,
        sms_sign_in_conflict=True,
        sms_sign_in_state="notAllowedByPolicy",
        holder=HOLDER,
        holder_search="found",
    ),
    "sms_conflict_holder_not_found": _outcome(
        OutcomeKind.UPDATED, sms_sign_in_conflict=True, holder_search="not_found"
    ),
    "conflict_holder_found": _outcome(OutcomeKind.CONFLICT_UNRESOLVED, holder=HOLDER, holder_search="found"),
    "conflict_holder_not_found": _outcome(OutcomeKind.CONFLICT_UNRESOLVED, holder_search="not_found"),
    "conflict_holder_failed": _outcome(OutcomeKind.CONFLICT_UNRESOLVED, holder_search="failed"),
    "conflict_holder_disabled": _outcome(
        OutcomeKind.CONFLICT_UNRESOLVED, holder=replace(HOLDER, account_enabled=False), holder_search="found"
    ),
    "conflict_holder_not_licensed": _outcome(OutcomeKind.CONFLICT_UNRESOLVED, holder_search="not_licensed"),
    "conflict_holder_not_permitted": _outcome(
        OutcomeKind.CONFLICT_UNRESOLVED, holder_search="not_permitted", missing_permission="AuditLog.Read.All"
    ),
    "permission_named": _outcome(
        OutcomeKind.PERMISSION_DENIED,
        missing_permission="UserAuthenticationMethod.ReadWrite.All",
        graph_error_code="Authorization_RequestDenied",
        graph_message="Insufficient privileges.",
    ),
    "graph_rule": _outcome(
        OutcomeKind.BLOCKED_BY_GRAPH_RULE,
        graph_error_code="badRequest",
        graph_message="Invalid phone number.",
        next_step="Check the number format in the Entra admin center.",
    ),
    "graph_unavailable_ids": _outcome(
        OutcomeKind.GRAPH_UNAVAILABLE,
        graph_request_ids=["req-id-503-a", "req-id-503-b"],
        graph_error_code="serviceNotAvailable",
    ),
}
OUTCOMES |= {
    f"notification_{status.value}": _outcome(
        OutcomeKind.ADDED,
        notification=Notification(status, "adele@contoso.com", "en", "mailbox quota exceeded"),
    )
    for status in NotificationStatus
}

ENTRIES = [
    AuditEntry(
        3,
        T0 + timedelta(minutes=5),
        "completed",
        "r1",
        "x",
        "Megan Bowen",
        USER.id,
        USER.user_principal_name,
        {"old_number": OLD, "new_number": NEW, "outcome": "updated"},
    ),
    AuditEntry(
        2,
        T0 + timedelta(minutes=2),
        "rejected",
        "r0",
        "y",
        HOSTILE,
        USER.id,
        USER.user_principal_name,
        {"reason": HOSTILE, "decision": "rejected"},
    ),
    AuditEntry(
        1,
        T0,
        "requested",
        "r1",
        "z",
        "Alex Wilber",
        USER.id,
        USER.user_principal_name,
        {"old_number": OLD, "new_number": NEW},
    ),
]

REFUSAL_KEYS = sorted(k for k in texts.EN if k.startswith("refusal.") and k != "refusal.title")
REFUSAL_PARAMS = {
    "roles": "Global Administrator",
    "limit": 10,
    "window": "1 h",
    "time": "2026-05-04 09:30 UTC",
    "until": "2026-05-04 10:30 UTC",
    "group": "approver group",
    "state": "rejected",
    "text": HOSTILE,
    "name": "Lynne Robbins",
    "methods": "confirmation in Teams",
}


def catalogue(lang: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every builder, every OutcomeKind, every NotificationStatus, every refusal, every decision state."""
    req = _request()
    yield "request_empty", cards.request_card(lang)
    yield "request_no_picker", cards.request_card(lang, people_picker=False, notify_default=True)
    yield (
        "request_errors",
        cards.request_card(
            lang,
            values={
                "targetUserText": "nobody@contoso.com",
                "number": TYPED_ON_FORM,
                "action": "set",
                "notify": "true",
                "language": "en",
                "ticket": "T-1",
            },
            errors={
                "targetUserText": ("error.target.not_found", {"ref": "nobody@contoso.com"}),
                "number": (texts.number_error_key("letters"), {"character": "x"}),
                "_form": "form.has_errors",
            },
        ),
    )
    yield "request_edit_draft", cards.request_card(lang, values={"targetUserId": USER.id}, draft=req)
    yield (
        "confirmation",
        cards.confirmation_card(lang, req, PHONES, rules=[], warnings=["warning.not_mobile"]),
    )
    yield (
        "confirmation_privileged_guest",
        cards.confirmation_card(
            lang,
            _request(
                target_privileged=True,
                privilege_reasons=["Global Administrator"],
                approval_required=True,
                approver_group="privileged",
                target_is_guest=True,
                target_display_name=HOSTILE,
                ticket=HOSTILE,
            ),
            PhoneState(),
            rules=["An extra rule line."],
            warnings=["A warning sentence from the number parser."],
        ),
    )
    yield (
        "confirmation_remove",
        cards.confirmation_card(
            lang, _request(action="remove", number=None, notify=False), PHONES, rules=[], warnings=[]
        ),
    )
    yield "progress", cards.progress_card(lang, req, texts.t(lang, "progress.search_scan", scanned=1200))
    yield (
        "lookup",
        cards.lookup_card(
            lang,
            texts.t(lang, "progress.looking_up", user="diego.siciliani@contoso.example"),
            {
                "targetUserText": "diego.siciliani@contoso.example",
                "number": "+49 170 5556666",
                "ticket": "INC-9",
            },
        ),
    )
    for name, outcome in OUTCOMES.items():
        yield f"outcome_{name}", cards.outcome_card(lang, _request(state=RequestState.COMPLETED), outcome)
    # caller verification
    lynne = Person(aad_object_id="11111111-2222-3333-4444-555555555555", name="Adele Vance")
    yield (
        "request_verification",
        cards.request_card(
            lang,
            values={"verification": "code"},
            errors={"verification": ("error.verification.not_accepted", {"methods": "x"})},
            verification_methods=["teams", "code", "manager", "in_person"],
        ),
    )
    for method in ("teams", "code", "manager"):
        waiting = _request(
            state=RequestState.AWAITING_VERIFICATION,
            verification=method,
            verifier=Person(aad_object_id="m", name="Megan Bowen") if method == "manager" else lynne,
        )
        yield f"verification_waiting_{method}", cards.verification_waiting_card(lang, waiting, via="mail")
    asked = _request(state=RequestState.AWAITING_VERIFICATION, verification="teams", verifier=lynne)
    yield "verify_request_target", cards.verify_request_card(lang, asked, manager=False)
    yield "verify_request_manager", cards.verify_request_card(lang, asked, manager=True)
    yield "verify_code", cards.verify_code_card(lang, asked, "123456")
    yield (
        "verify_answered",
        cards.verify_answered_card(
            lang,
            texts.t(lang, "verify.ended.title"),
            texts.t(lang, "verify.thanks.no", until="2026-05-05 09:30 UTC"),
        ),
    )
    yield "security_alert", cards.security_alert_card(lang, asked, T0 + timedelta(hours=24))
    yield (
        "decision_verification_expired",
        cards.decision_card(
            lang,
            _request(state=RequestState.EXPIRED, verification="teams", verifier=lynne, decision_reason="x"),
        ),
    )
    yield (
        "approval_verified_in_person",
        cards.approval_card(
            lang,
            _request(
                state=RequestState.AWAITING_APPROVAL,
                approval_required=True,
                verification="in_person",
                verified_by=Person(aad_object_id="req-oid", name="Alex Wilber"),
                verified_at=T0,
            ),
            phones=None,
            approver_teams_ids=None,
            actionable=True,
        ),
    )
    awaiting = _request(
        state=RequestState.AWAITING_APPROVAL, approval_required=True, approver_group="approver"
    )
    yield (
        "approval_actionable",
        cards.approval_card(
            lang, awaiting, phones=PHONES, approver_teams_ids=["29:megan", "29:lynne"], actionable=True
        ),
    )
    yield (
        "approval_read_only",
        cards.approval_card(lang, awaiting, phones=None, approver_teams_ids=["29:megan"], actionable=False),
    )
    yield (
        "approval_no_refresh",
        cards.approval_card(lang, awaiting, phones=PHONES, approver_teams_ids=None, actionable=True),
    )
    yield (
        "approval_many_approvers",
        cards.approval_card(
            lang,
            awaiting,
            phones=PHONES,
            approver_teams_ids=[f"29:user{i}" for i in range(75)],
            actionable=True,
        ),
    )
    yield "awaiting", cards.awaiting_card(lang, awaiting)
    approver = Person("appr-oid", HOSTILE, "29:megan")
    for state in RequestState:
        yield (
            f"decision_{state.value}",
            cards.decision_card(
                lang,
                _request(
                    state=state,
                    decided_by=approver,
                    decided_at=T0 + timedelta(minutes=3),
                    decision_reason=HOSTILE if state == RequestState.REJECTED else None,
                    outcome={"outcome": "updated"} if state == RequestState.COMPLETED else None,
                ),
            ),
        )
    for key in REFUSAL_KEYS:
        yield (
            f"refusal_{key}",
            cards.refusal_card(lang, texts.t(lang, "refusal.title"), texts.t(lang, key, **REFUSAL_PARAMS)),
        )
    yield "history", cards.history_card(lang, "Adele Vance (adele.vance@contoso.com)", ENTRIES)
    yield "history_empty", cards.history_card(lang, HOSTILE, [])
    yield (
        "status",
        cards.status_card(
            lang, _request(state=RequestState.COMPLETED, outcome={"outcome": "added"}), ENTRIES
        ),
    )
    yield "help", cards.help_card(lang)
    yield "demo_banner", cards.with_demo_banner(cards.help_card(lang), lang)


CARDS: dict[str, dict[str, Any]] = {
    f"{lang}:{name}": card for lang in texts.LANGUAGES for name, card in catalogue(lang)
}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def rendered_strings(card: dict[str, Any]) -> list[str]:
    """Every string Adaptive Cards renders as markdown: TextBlock text, Fact title and value."""
    out: list[str] = []
    for node in walk(card):
        if node.get("type") == "TextBlock":
            out.append(node["text"])
        if node.get("type") == "FactSet":
            for fact in node["facts"]:
                out += [fact["title"], fact["value"]]
    return out


def unescaped(text: str, token: str) -> bool:
    """True when `token` occurs in `text` without a backslash before its first character."""
    return any(m.start() == 0 or text[m.start() - 1] != "\\" for m in re.finditer(re.escape(token), text))


# ------------------------------------------------------------------------------------------------ parser


def run_validator(batch: list[dict[str, Any]]) -> dict[str, list[str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (ROOT / "node_modules" / "adaptivecards").is_dir():
        pytest.fail("node_modules/adaptivecards is missing: run `make setup-node`")
    proc = subprocess.run(
        [node, str(VALIDATOR)], input=json.dumps(batch), capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return {r["name"]: r["problems"] for r in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def parser_results() -> dict[str, list[str]]:
    return run_validator([{"name": name, "card": card} for name, card in CARDS.items()])


@pytest.mark.parametrize("name", sorted(CARDS))
def test_microsofts_parser_accepts_card_without_errors_or_warnings(
    name: str, parser_results: dict[str, list[str]]
) -> None:
    assert parser_results[name] == []


def test_validator_reports_broken_cards() -> None:
    bad = {
        "unknown_property": {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "txt": "x"}],
        },
        "duplicate_id": {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [
                {"type": "Input.Text", "id": "a", "label": "A"},
                {"type": "Input.Text", "id": "a", "label": "B"},
            ],
        },
        "empty_choices_without_query": {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "Input.ChoiceSet", "id": "c", "label": "C", "choices": []}],
        },
        "old_version": {"type": "AdaptiveCard", "version": "1.3", "body": []},
        "unknown_element": {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Input.Fancy"}]},
        "typo_in_action": {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [
                {
                    "type": "ActionSet",
                    "actions": [{"type": "Action.Execute", "title": "x", "verbb": "mfa.confirm"}],
                }
            ],
        },
    }
    results = run_validator([{"name": n, "card": c} for n, c in bad.items()])
    assert all(results[name] for name in bad), results


# ------------------------------------------------------------------------------------------------ structure


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_is_version_1_5(name: str) -> None:
    assert CARDS[name]["version"] == "1.5"
    assert CARDS[name]["type"] == "AdaptiveCard"


FORM_INPUT_IDS = ("targetUserId", "targetUserText", "number", "action", "notify", "language", "ticket")


def test_every_execute_action_carries_its_verb_and_only_ids() -> None:
    seen_verbs: set[str] = set()
    for name, card in CARDS.items():
        for node in walk(card):
            if node.get("type") != "Action.Execute":
                continue
            verb = node["verb"]
            seen_verbs.add(verb)
            assert verb in cards.VERBS, name
            data = node["data"]
            assert data["verb"] == verb, name
            if name.endswith("lookup"):
                # the look-up card's Edit carries the typed form values (the form is not on that card)
                assert verb == cards.VERB_EDIT, name
                assert set(data) <= {"verb", "requestId", "rev", *FORM_INPUT_IDS}, name
                assert data["targetUserText"] == "diego.siciliani@contoso.example", name
                continue
            assert set(data) <= {"verb", "requestId", "rev"}, name
            if not (verb == cards.VERB_REVIEW and "draft" not in name):
                assert data["requestId"] == _request().id, name
                assert data["rev"] == _request().revision, name
            if "fallback" in node:  # refresh actions have none
                assert node["fallback"]["type"] == "Action.Submit"
                assert node["fallback"]["data"] == data
            else:
                assert verb == cards.VERB_REFRESH, name
    assert seen_verbs == set(cards.VERBS)


def test_buttons_sit_in_an_action_set_in_the_body() -> None:
    for name, card in CARDS.items():
        assert "actions" not in card, name


@pytest.mark.parametrize("name", sorted(CARDS))
def test_no_full_phone_number_anywhere_on_a_card(name: str) -> None:
    card = json.loads(json.dumps(CARDS[name]))
    # The only full number allowed is the one the agent typed, kept in the form's own number field.
    for node in walk(card):
        if node.get("id") == cards.FIELD_NUMBER and node.get("type") == "Input.Text":
            node.pop("value", None)
    dumped = json.dumps(card, ensure_ascii=False).replace("\\", "")
    flat = re.sub(r"[\s\-()./]", "", dumped)
    for number in [*FULL_NUMBERS, TYPED_ON_FORM]:
        national = numbers.digits(number)[2:]
        assert national not in flat, f"{name} shows {number}"


def test_masked_numbers_are_shown_where_the_card_talks_about_numbers() -> None:
    confirmation = " ".join(rendered_strings(CARDS["en:confirmation"])).replace("\\", "")
    for number in (OLD, ALT, OFFICE, NEW):
        assert numbers.mask(number) in confirmation


def test_request_form_keeps_the_typed_number_in_its_field() -> None:
    card = CARDS["en:request_errors"]
    field = next(n for n in walk(card) if n.get("id") == cards.FIELD_NUMBER)
    assert field["value"] == TYPED_ON_FORM


@pytest.mark.parametrize("name", sorted(CARDS))
def test_user_data_cannot_inject_markdown(name: str) -> None:
    for text in rendered_strings(CARDS[name]):
        for token in ("[", "](", "**", "_", "<", "!["):
            assert not unescaped(text, token), (name, text)


def test_hostile_display_name_is_shown_escaped_not_dropped() -> None:
    texts_on_card = rendered_strings(CARDS["en:confirmation_privileged_guest"])
    assert cards.md(HOSTILE) in texts_on_card
    assert "\\[Click here\\]\\(https://evil.example/x\\)" in cards.md(HOSTILE)
    reject = " ".join(rendered_strings(CARDS["en:decision_rejected"]))
    assert cards.md(HOSTILE) in reject


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("# Heading", "\\# Heading"),
        ("- item", "\\- item"),
        ("1. first", "1\\. first"),
        ("line\nbreak\r\n# x", "line break # x"),
        ("\n# x", "\\# x"),
        ("+49 170 ***4567", "+49 170 \\*\\*\\*4567"),
        ("adele_vance@contoso.com", "adele\\_vance@contoso.com"),
        ("<at>Boss</at>", "\\<at\\>Boss\\</at\\>"),
        ("Anna-Lena O'Brien", "Anna-Lena O'Brien"),
        ("{{DATE(2026-01-01T00:00:00Z)}}", "\\{\\{DATE\\(2026-01-01T00:00:00Z\\)\\}\\}"),
    ],
)
def test_md_escapes_markdown_and_keeps_plain_text(raw: str, escaped: str) -> None:
    assert cards.md(raw) == escaped


def test_every_input_has_a_label() -> None:
    for name, card in CARDS.items():
        for node in walk(card):
            if str(node.get("type", "")).startswith("Input."):
                assert node.get("label"), (name, node.get("id"))


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_request_form_has_picker_and_text_field_with_the_contract_ids(lang: str) -> None:
    card = cards.request_card(lang)
    inputs = {n["id"]: n for n in walk(card) if str(n.get("type", "")).startswith("Input.")}
    assert set(inputs) == {
        "targetUserId",
        "targetUserText",
        "number",
        "action",
        "notify",
        "language",
        "ticket",
    }
    picker = inputs["targetUserId"]
    assert picker["type"] == "Input.ChoiceSet"
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    assert inputs["targetUserText"]["label"] == texts.t(lang, "form.target_text.label")
    assert {c["value"] for c in inputs["action"]["choices"]} == {"set", "remove"}
    assert {c["value"] for c in inputs["language"]["choices"]} == {"auto", "de", "en"}
    assert (inputs["notify"]["valueOn"], inputs["notify"]["valueOff"]) == ("true", "false")
    no_picker = cards.request_card(lang, people_picker=False)
    assert "targetUserId" not in {n.get("id") for n in walk(no_picker)}


def test_request_form_shows_each_error_right_under_its_field_with_values_kept() -> None:
    body = CARDS["de:request_errors"]["body"]
    ids = [element.get("id") for element in body]
    for field, expected in (
        ("targetUserText", texts.t("de", "error.target.not_found", ref="nobody@contoso.com")),
        ("number", texts.t("de", "error.number.letters", character="x")),
    ):
        error = body[ids.index(field) + 1]
        assert error["type"] == "TextBlock" and error["color"] == "Attention"
        assert error["text"] == cards.md(expected)
    values = {e["id"]: e.get("value") for e in body if str(e.get("type", "")).startswith("Input.")}
    assert values["targetUserText"] == "nobody@contoso.com"
    assert values["language"] == "en" and values["notify"] == "true" and values["ticket"] == "T-1"


def test_notify_default_comes_from_settings_unless_the_agent_chose() -> None:
    def notify(card: dict[str, Any]) -> str:
        return next(n for n in walk(card) if n.get("id") == "notify")["value"]

    assert notify(cards.request_card("en", notify_default=True)) == "true"
    assert notify(cards.request_card("en", notify_default=False)) == "false"
    assert notify(cards.request_card("en", notify_default=True, values={"notify": "false"})) == "false"


def test_confirmation_shows_target_phones_change_notification_and_rules() -> None:
    text = " ".join(rendered_strings(CARDS["en:confirmation"])).replace("\\", "")
    for expected in (
        "Adele Vance",
        "adele.vance@contoso.com",
        "member",
        texts.EN["sms.ready"],
        f"{numbers.mask(OLD)} → {numbers.mask(NEW)}",
        "E-mail to the user (German)",
        texts.EN["rule.no_approval"],
    ):
        assert expected in text
    privileged = " ".join(rendered_strings(CARDS["en:confirmation_privileged_guest"])).replace("\\", "")
    assert texts.t("en", "rule.privileged", roles="Global Administrator") in privileged
    assert "guest" in privileged and "An extra rule line." in privileged
    titles = [n["title"] for n in walk(CARDS["en:confirmation"]) if n.get("type") == "Action.Execute"]
    assert titles == ["Confirm", "Edit", "Cancel"]


@pytest.mark.parametrize("kind", list(OutcomeKind))
def test_each_outcome_kind_has_its_own_title(kind: OutcomeKind) -> None:
    for lang in texts.LANGUAGES:
        title = CARDS[f"{lang}:outcome_{kind.value}"]["body"][0]["text"]
        assert title == cards.md(texts.t(lang, f"outcome.{kind.value}.title"))


@pytest.mark.parametrize("status", list(NotificationStatus))
def test_outcome_card_carries_the_notification_line(status: NotificationStatus) -> None:
    text = " ".join(rendered_strings(CARDS[f"en:outcome_notification_{status.value}"])).replace("\\", "")
    expected = {
        NotificationStatus.SENT: "E-mail sent to adele@contoso.com (English).",
        NotificationStatus.DISABLED: "No e-mail sent: not requested.",
        NotificationStatus.SKIPPED_NO_MAIL: "No e-mail sent: the user has no mailbox.",
        NotificationStatus.FAILED: "The e-mail could not be sent: mailbox quota exceeded",
        NotificationStatus.NOT_ATTEMPTED: "No e-mail sent: nothing changed.",
    }[status]
    assert expected in text


def test_sms_conflict_says_it_once_names_the_holder_and_what_to_do() -> None:
    text = " ".join(rendered_strings(CARDS["en:outcome_sms_conflict_holder_found"])).replace("\\", "")
    once = texts.t("en", "outcome.sms_conflict.once", new=cards.masked(NEW))
    assert text.count(once) == 1
    assert texts.EN["outcome.holder.title"] not in text  # no second block that says it again
    assert (
        texts.t("en", "outcome.sms_conflict.holder", name="Megan Bowen", upn="megan.bowen@contoso.com")
        in text
    )
    assert texts.t("en", "outcome.next", text=texts.EN["outcome.sms_conflict.next"]) in text
    links = [
        n for n in walk(CARDS["en:outcome_sms_conflict_holder_found"]) if n.get("type") == "Action.OpenUrl"
    ]
    assert links and links[0]["url"] == HOLDER.portal_url
    not_found = " ".join(rendered_strings(CARDS["de:outcome_sms_conflict_holder_not_found"])).replace(
        "\\", ""
    )
    assert texts.DE["outcome.sms_conflict.no_holder"] in not_found


def test_sms_conflict_card_while_the_holder_is_searched_says_so_and_drops_the_repeated_warning() -> None:
    outcome = _outcome(
        OutcomeKind.UPDATED,
        sms_sign_in_conflict=True,
        warnings=["SMS sign-in is not available with this number: another user holds it for SMS sign-in."],
    )
    for lang in texts.LANGUAGES:
        searching = texts.t(lang, "progress.search_profile")
        card = cards.outcome_card(lang, _request(state=RequestState.COMPLETED), outcome, pending=searching)
        holder = next(n for n in walk(card) if n.get("id") == cards.HOLDER_ID)
        assert [n.get("text") for n in walk(holder) if n.get("type") == "TextBlock"] == [cards.md(searching)]
        assert "another user holds it" not in " ".join(rendered_strings(card))


def test_changes_say_the_sms_sign_in_state_and_a_removal_says_it_went_with_the_number() -> None:
    def line(card: dict[str, Any]) -> str:
        return next(n["text"] for n in walk(card) if n.get("id") == cards.SMS_STATE_ID)

    request = _request(state=RequestState.COMPLETED)
    for lang in texts.LANGUAGES:
        updated = _outcome(OutcomeKind.UPDATED, sms_sign_in_state="ready")
        assert line(cards.outcome_card(lang, request, updated)) == cards.md(
            texts.t(lang, "outcome.sms_state", state=texts.t(lang, "sms.ready"))
        )
        unknown = _outcome(OutcomeKind.UPDATED, sms_sign_in_state=None)
        reading = texts.t(lang, "outcome.sms_state.reading")
        assert line(cards.outcome_card(lang, request, unknown, pending=reading)) == cards.md(reading)
        assert line(cards.outcome_card(lang, request, unknown, sms_unread=True)) == cards.md(
            texts.t(lang, "outcome.sms_state.unread")
        )
        removed = _outcome(OutcomeKind.REMOVED, sms_sign_in_state=None)
        assert line(cards.outcome_card(lang, request, removed)) == cards.md(
            texts.t(lang, "outcome.sms_state.removed")
        )


def test_graph_request_ids_sit_behind_a_details_toggle_with_the_audit_trail_button() -> None:
    request = _request(state=RequestState.COMPLETED)
    for lang in texts.LANGUAGES:
        card = CARDS[f"{lang}:outcome_graph_unavailable_ids"]
        toggles = [n for n in walk(card) if n.get("type") == "Action.ToggleVisibility"]
        assert [(n["title"], n["targetElements"]) for n in toggles] == [
            (texts.t(lang, "button.details"), [cards.DETAILS_ID])
        ]
        details = next(n for n in walk(card) if n.get("id") == cards.DETAILS_ID)
        assert details["type"] == "Container" and details["isVisible"] is False
        inside = " ".join(rendered_strings(details))
        assert "req-id-503-a" in inside and "req-id-503-b" in inside
        visible = [n for n in card["body"] if n is not details]
        assert not any("req-id-503" in s for n in visible for s in rendered_strings({"body": [n]}))
        (audit,) = [n for n in walk(details) if n.get("type") == "Action.Submit"]
        assert audit["title"] == texts.t(lang, "button.audit_trail")
        assert audit["data"] == {
            "msteams": {
                "type": "messageBack",
                "text": f"status {request.id}",
                "displayText": texts.t(lang, "details.audit.display", id=request.id),
            }
        }


def test_conflict_unresolved_shows_holder_or_deleted_user_hint() -> None:
    found = " ".join(rendered_strings(CARDS["en:outcome_conflict_holder_found"])).replace("\\", "")
    assert "Megan Bowen" in found and "mobile" in found
    not_found = " ".join(rendered_strings(CARDS["en:outcome_conflict_holder_not_found"])).replace("\\", "")
    assert "deleted or soft-deleted user" in not_found
    failed = " ".join(rendered_strings(CARDS["en:outcome_conflict_holder_failed"])).replace("\\", "")
    assert texts.EN["outcome.holder.failed"] in failed


def test_conflict_card_says_which_kind_of_holder_it_found_or_why_it_could_not_search() -> None:
    def shown(name: str) -> str:
        return " ".join(rendered_strings(CARDS[name])).replace("\\", "")

    for lang in texts.LANGUAGES:
        enabled = shown(f"{lang}:outcome_conflict_holder_found")
        assert texts.t(lang, "outcome.holder.account.enabled") in enabled
        assert texts.t(lang, "outcome.holder.disabled_hint") not in enabled
        disabled = shown(f"{lang}:outcome_conflict_holder_disabled")
        assert "Megan Bowen" in disabled and texts.t(lang, "outcome.holder.account.disabled") in disabled
        assert texts.t(lang, "outcome.holder.disabled_hint") in disabled
        licence = shown(f"{lang}:outcome_conflict_holder_not_licensed")
        assert texts.t(lang, "outcome.holder.not_licensed") in licence
        assert texts.t(lang, "outcome.holder.not_found") not in licence
        permission = shown(f"{lang}:outcome_conflict_holder_not_permitted")
        assert texts.t(lang, "outcome.holder.not_permitted", permission="AuditLog.Read.All") in permission
    assert "cannot be searched in this tenant" in texts.EN["outcome.holder.not_licensed"]


def test_error_outcomes_name_permission_rule_and_request_ids() -> None:
    permission = " ".join(rendered_strings(CARDS["en:outcome_permission_named"])).replace("\\", "")
    assert "UserAuthenticationMethod.ReadWrite.All" in permission
    rule = " ".join(rendered_strings(CARDS["en:outcome_graph_rule"])).replace("\\", "")
    assert "Invalid phone number." in rule and "Check the number format" in rule
    unavailable = " ".join(rendered_strings(CARDS["de:outcome_graph_unavailable_ids"])).replace("\\", "")
    assert "req-id-503-a" in unavailable and "req-id-503-b" in unavailable
    assert texts.DE["outcome.graph_unavailable.body"] in unavailable


def test_approval_card_refresh_lists_at_most_60_approvers_and_is_omitted_without_ids() -> None:
    card = CARDS["en:approval_actionable"]
    assert card["refresh"]["action"]["verb"] == "mfa.refresh"
    assert card["refresh"]["action"]["data"] == {"verb": "mfa.refresh", "requestId": _request().id, "rev": 3}
    assert card["refresh"]["userIds"] == ["29:megan", "29:lynne"]
    assert len(CARDS["en:approval_many_approvers"]["refresh"]["userIds"]) == 60
    assert "refresh" not in CARDS["en:approval_no_refresh"]


def test_approval_card_actionable_has_reason_and_buttons_read_only_has_none() -> None:
    actionable = CARDS["en:approval_actionable"]
    verbs = [
        n["verb"]
        for n in walk(actionable)
        if n.get("type") == "Action.Execute" and n is not actionable.get("refresh", {}).get("action")
    ]
    assert verbs == ["mfa.approve", "mfa.reject"]
    assert any(n.get("id") == "reason" and n["type"] == "Input.Text" for n in walk(actionable))
    read_only = CARDS["en:approval_read_only"]
    assert not any(n.get("type") == "Input.Text" for n in walk(read_only))
    assert [n["verb"] for n in walk(read_only) if n.get("type") == "Action.Execute"] == ["mfa.refresh"]
    assert "approver group" in " ".join(rendered_strings(read_only))


def test_decision_cards_say_who_when_and_why() -> None:
    rejected = " ".join(rendered_strings(CARDS["en:decision_rejected"]))
    assert (
        cards.md(texts.t("en", "approval.rejected_by", name=HOSTILE, time="2026-05-04 09:33 UTC")) in rejected
    )
    assert cards.md(texts.t("en", "approval.rejected_reason", reason=HOSTILE)) in rejected
    approved = " ".join(rendered_strings(CARDS["de:decision_approved"]))
    assert "2026-05-04 09:33 UTC" in approved
    expired = " ".join(rendered_strings(CARDS["en:decision_expired"]))
    assert "2026-05-05 09:30 UTC" in expired
    for name, card in CARDS.items():
        if ":decision_" in name:
            assert "refresh" not in card and not any(n.get("type") == "Action.Execute" for n in walk(card))


def test_history_masks_numbers_and_names_events() -> None:
    text = " ".join(rendered_strings(CARDS["de:history"])).replace("\\", "")
    assert f"{numbers.mask(OLD)} → {numbers.mask(NEW)}" in text
    assert "abgeschlossen" in text and "angefragt" in text and "Ergebnis: geändert" in text
    assert texts.DE["history.empty"] in " ".join(rendered_strings(CARDS["de:history_empty"]))


def test_demo_banner_is_the_first_thing_on_the_card() -> None:
    banner = CARDS["de:demo_banner"]["body"][0]
    assert banner["items"][0]["text"] == cards.md(texts.DE["demo.banner"])


# ------------------------------------------------------------------------------------------------ languages


@pytest.mark.parametrize("name", sorted({n.split(":", 1)[1] for n in CARDS}))
def test_german_and_english_cards_differ_and_have_no_missing_texts(name: str) -> None:
    en, de = CARDS[f"en:{name}"], CARDS[f"de:{name}"]
    assert rendered_strings(en) != rendered_strings(de)
    for card in (en, de):
        dumped = json.dumps(card, ensure_ascii=False)
        assert texts.MISSING_MARKER not in dumped
        assert not re.search(r"(?<!\\)\{[a-z_]+\}", dumped)


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    assert set(texts.EN) == set(texts.DE)
    for key in texts.EN:
        assert texts.placeholders(texts.EN[key]) == texts.placeholders(texts.DE[key]), key


@pytest.mark.parametrize(
    ("locale", "lang"),
    [
        ("de", "de"),
        ("de-DE", "de"),
        ("de-AT", "de"),
        ("de-CH", "de"),
        ("DE_de", "de"),
        ("en-US", "en"),
        ("en", "en"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
        ("deu", "en"),
    ],
)
def test_lang_from_locale(locale: str | None, lang: str) -> None:
    assert texts.lang_from_locale(locale) == lang


def test_every_number_error_code_has_a_text() -> None:
    for code in numbers.REASON_CODES:
        key = texts.number_error_key(code)
        assert key == f"error.number.{code}", code
    for required in (
        "empty",
        "letters",
        "too_short",
        "too_long",
        "no_country_code",
        "invalid_for_region",
        "not_a_number",
    ):
        assert f"error.number.{required}" in texts.EN
    for key in ("error.target.required", "error.target.not_found", "error.number.required_for_set"):
        assert key in texts.EN


def test_every_outcome_kind_and_notification_status_has_texts() -> None:
    for kind in OutcomeKind:
        assert {
            f"outcome.{kind.value}.title",
            f"outcome.{kind.value}.body",
            f"outcome_name.{kind.value}",
        } <= set(texts.EN)
    for status in NotificationStatus:
        assert f"notification.{status.value}" in texts.EN
    for state in RequestState:
        assert {f"state.{state.value}", f"decision.title.{state.value}"} <= set(texts.EN)


def test_t_fills_placeholders_and_marks_gaps_instead_of_failing() -> None:
    assert texts.t("de", "approval.waiting", group="Genehmigungsgruppe") == (
        "Wartet auf Genehmigung durch die Genehmigungsgruppe."
    )
    assert texts.t("fr", "button.confirm") == "Confirm"
    assert texts.t("en", "no.such.key") == "⟦no.such.key⟧"
    assert "⟦group⟧" in texts.t("en", "approval.waiting")

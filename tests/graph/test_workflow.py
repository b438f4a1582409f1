"""The workflow against the Graph simulator over loopback HTTPS: real msal, real httpx, nothing mocked."""

from __future__ import annotations

import time
from typing import Any

import pytest

from graph.outcome import NotificationStatus, OutcomeKind
from graph.workflow import ALTERNATE_FIRST, required_permission
from tests.conftest import TEST_CLIENT_ID
from tests.graph.workflow_helpers import Stack, add_user, graph_calls, make_stack, mobile_of, request, writes

SENDER = "helpdesk@contoso.example"


@pytest.fixture
async def stack(sim: Any, sim_env: dict[str, str]) -> Any:
    if sim.tenant.user_by_address(SENDER) is None:
        sim.tenant.add_user(
            {
                "id": "5e7de700-0000-4000-8000-000000000001",
                "userPrincipalName": SENDER,
                "displayName": "Helpdesk",
                "mail": SENDER,
            }
        )
    env = dict(sim_env, MAIL_SENDER=SENDER)
    async for s in make_stack(sim, env):
        yield s


# ------------------------------------------------------------------------------------------ set


async def test_set_adds_a_mobile_method_when_the_user_has_none(stack: Stack) -> None:
    user = add_user(stack.sim)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.ADDED
    assert out.number == "+491761234567" and out.previous_number is None
    assert mobile_of(stack.sim, user) == "+49 1761234567"
    assert writes(stack.sim, start) == [("POST", f"/v1.0/users/{user.id}/authentication/phoneMethods")]
    assert out.user is not None and out.user.user_principal_name == user.upn
    assert out.sms_sign_in_state == "ready"


async def test_set_updates_the_existing_mobile_method_with_patch(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1769999999")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, "0049 (0)176-1234567"))
    assert out.kind is OutcomeKind.UPDATED
    assert out.previous_number == "+491769999999" and out.number == "+491761234567"
    assert mobile_of(stack.sim, user) == "+49 1761234567"
    assert [m for m, _ in writes(stack.sim, start)] == ["PATCH"]


async def test_the_same_number_in_another_format_is_unchanged_and_nothing_is_written(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.id, "+49 (0) 176 123 45 67"))
    assert out.kind is OutcomeKind.UNCHANGED
    assert out.exit_code == 0
    assert writes(stack.sim, start) == []


async def test_a_user_found_by_mail_address_is_changed(stack: Stack) -> None:
    user = add_user(stack.sim, mail="adele.private.alias@contoso.example")
    out = await stack.workflow.run(request("set", "adele.private.alias@contoso.example", "+49 176 1234567"))
    assert out.kind is OutcomeKind.ADDED
    assert out.user is not None and out.user.id == user.id


async def test_a_guest_with_ext_upn_is_found_and_changed(stack: Stack) -> None:
    uid = "6f1c0a7e-1111-4222-8333-944455556666"
    stack.sim.tenant.add_user(
        {
            "id": uid,
            "userPrincipalName": "megan_fabrikam.example#EXT#@contoso.example",
            "displayName": "Megan Guest",
            "userType": "Guest",
            "mail": "megan@fabrikam.example",
        }
    )
    out = await stack.workflow.run(
        request("set", "megan_fabrikam.example#EXT#@contoso.example", "+49 176 1234567")
    )
    assert out.kind is OutcomeKind.ADDED
    assert out.user is not None and out.user.is_guest


@pytest.mark.parametrize(
    "ref", ["nobody@contoso.example", "0b7d3a64-0000-4000-8000-00000000dead", "not a user"]
)
async def test_an_unknown_user_is_user_not_found_and_nothing_is_written(stack: Stack, ref: str) -> None:
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", ref, "+49 176 1234567"))
    assert out.kind is OutcomeKind.USER_NOT_FOUND
    assert out.exit_code == 2
    assert writes(stack.sim, start) == []


@pytest.mark.parametrize(
    "number",
    [
        "",
        "   ",
        "abc",
        "+49 176",
        "+49 176 1234567 1234567 99",
        "+49 176 12#34567",
        "+٤٩ ١٧٠ ١٢٣٤٥٦٧",
        "1" * 10_000,
    ],
)
async def test_an_invalid_number_is_refused_with_a_reason_before_any_graph_call(
    stack: Stack, number: str
) -> None:
    user = add_user(stack.sim)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, number))
    assert out.kind is OutcomeKind.INVALID_NUMBER
    assert out.message and len(out.message) < 400
    assert graph_calls(stack.sim, start) == []


async def test_notification_without_a_sender_is_refused_before_any_change(stack: Stack) -> None:
    user = add_user(stack.sim)
    wf = stack.with_settings(mail_sender=None)
    start = len(stack.sim.calls)
    out = await wf.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.INVALID_REQUEST
    assert "MAIL_SENDER" in out.message
    assert graph_calls(stack.sim, start) == []
    assert mobile_of(stack.sim, user) is None


async def test_a_landline_is_set_with_a_warning(stack: Stack) -> None:
    user = add_user(stack.sim)
    out = await stack.workflow.run(request("set", user.upn, "+49 30 12345678"))
    assert out.kind is OutcomeKind.ADDED
    assert any("mobile" in w.text for w in out.warnings)
    assert [w.code for w in out.warnings] == ["not_mobile"]


# ------------------------------------------------------------------------------------------ remove


async def test_remove_deletes_the_mobile_method_when_it_holds_the_given_number(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, "+491761234567"))
    assert out.kind is OutcomeKind.REMOVED
    assert out.previous_number == "+491761234567"
    assert mobile_of(stack.sim, user) is None
    assert [m for m, _ in writes(stack.sim, start)] == ["DELETE"]


async def test_remove_of_another_number_is_a_mismatch_naming_the_current_number_masked(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1769998877")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.NUMBER_MISMATCH
    assert "+49 176 ***8877" in out.message
    assert "1769998877" not in out.message
    assert writes(stack.sim, start) == []
    assert mobile_of(stack.sim, user) == "+49 1769998877"


async def test_remove_without_a_mobile_method_is_nothing_to_remove(stack: Stack) -> None:
    user = add_user(stack.sim)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.NOTHING_TO_REMOVE
    assert writes(stack.sim, start) == []


async def test_remove_while_an_alternate_mobile_exists_is_explained_before_any_call(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567", alternate="+49 1517654321")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.BLOCKED_BY_GRAPH_RULE
    assert out.next_step is not None and ALTERNATE_FIRST in out.next_step.lower()
    assert out.next_step_code == "remove_alternate_first"
    assert writes(stack.sim, start) == []
    assert mobile_of(stack.sim, user) == "+49 1761234567"


async def test_remove_of_the_default_method_is_explained_from_graphs_refusal(stack: Stack) -> None:
    user = add_user(
        stack.sim, mobile="+49 1761234567", defaultMethod="mobile", otherMethods=["microsoftAuthenticator"]
    )
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.BLOCKED_BY_GRAPH_RULE
    assert out.next_step is not None and "default sign-in method" in out.next_step
    assert "My Sign-Ins" in out.next_step
    assert mobile_of(stack.sim, user) == "+49 1761234567"
    assert out.graph_request_ids


# ------------------------------------------------------------------------------------------ 409


async def test_409_with_the_number_stored_after_a_visibility_delay_is_success_with_warning(
    stack: Stack,
) -> None:
    add_user(stack.sim, name="Holder One", mobile="+49 1761234567", mobile_sms="ready")
    user = add_user(stack.sim, name="Target", mobile="+49 1760000001")
    stack.sim.behaviour.update({"conflict_stores_method": True, "visibility_delay_ms": 300})
    wf = stack.with_settings(
        conflict_poll_first_delay=0.05, conflict_poll_max_delay=0.4, conflict_poll_timeout=3.0
    )
    out = await wf.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.UPDATED
    assert out.sms_sign_in_conflict is True
    assert out.sms_sign_in_state == "phoneNumberNotUnique"
    assert out.graph_error_code == "phoneNumberNotUnique" and out.graph_message
    assert out.holder is None and out.holder_search == "not_run"
    # Polled with short, doubling waits, not the runbook's fixed 5 s, and stopped at the first read that showed
    # the number: the waits are really slept, so once 0.05 + 0.1 + 0.2 s have been waited the 0.3 s delay has
    # passed and the next read sees it (on a slow machine a read may see it sooner: fewer waits, never more).
    polls = stack.workflow_sleeps.delays
    assert polls == [0.05, 0.1, 0.2][: len(polls)], polls
    assert stack.client_sleeps.delays == []  # nothing was retried: the 409 is not waited on by the client
    reads = [
        c
        for c in stack.sim.calls
        if c.method == "GET" and c.path.endswith(f"{user.id}/authentication/phoneMethods")
    ]
    assert len(reads) >= 2  # preflight plus at least one read-back


async def test_409_without_the_number_stored_is_conflict_unresolved_with_the_holder(stack: Stack) -> None:
    holder = add_user(stack.sim, name="Holder Two", mobile="+49 1761234567", mobile_sms="ready")
    user = add_user(stack.sim, name="Target Two")
    stack.sim.behaviour.update({"conflict_stores_method": False})
    wf = stack.with_settings(conflict_poll_timeout=0.3)
    progress: list[Any] = []
    out = await wf.run(request("set", user.upn, "+49 176 1234567"), progress=progress.append)
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
    assert out.exit_code == 1
    assert out.holder is not None and out.holder.id == holder.id
    assert out.holder.user_principal_name == holder.upn
    assert out.holder.sms_sign_in_state == "ready" and out.holder.phone_type == "mobile"
    assert out.holder.portal_url.endswith(f"/userId/{holder.id}")
    assert mobile_of(stack.sim, user) is None
    assert progress and progress[-1].found is True


async def test_409_holder_found_by_profile_mobile_phone_in_one_query(stack: Stack) -> None:
    holder = add_user(
        stack.sim,
        name="Profile Holder",
        mobile="+49 1761234567",
        mobile_sms="ready",
        mobilePhone="+49 176 1234567",
    )
    user = add_user(stack.sim, name="Target Three")
    stack.sim.behaviour.update({"conflict_stores_method": False})
    wf = stack.with_settings(conflict_poll_timeout=0.2)
    start = len(stack.sim.calls)
    out = await wf.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
    assert out.holder is not None and out.holder.id == holder.id
    report_calls = [c for c in stack.sim.calls[start:] if "userRegistrationDetails" in c.path]
    assert report_calls == []


# ------------------------------------------------------------------------------------------ errors


async def test_503_twice_then_success_is_retried_to_a_change(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 503, times=2, retry_after=0.05)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.ADDED
    posts = [c for c in stack.sim.calls if c.method == "POST" and c.path.endswith("/phoneMethods")]
    assert [c.status for c in posts[-3:]] == [503, 503, 201]


async def test_fractional_retry_after_on_429_is_honoured(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("GET", r"/phoneMethods$", 429, times=1, retry_after=0.25)
    started = time.perf_counter()
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.ADDED
    assert time.perf_counter() - started >= 0.25


async def test_persistent_503_is_graph_unavailable_with_graphs_request_id(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 503, times=50)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.GRAPH_UNAVAILABLE
    failed = [c for c in stack.sim.calls if c.method == "POST" and c.status == 503]
    assert failed[-1].request_id in out.message
    assert failed[-1].request_id in out.graph_request_ids
    assert mobile_of(stack.sim, user) is None


async def test_a_dropped_write_that_was_applied_is_confirmed_by_reading_back(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1769999999")
    stack.sim.faults.inject("PATCH", r"/phoneMethods/", "drop", times=1, after_apply=True)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.UPDATED
    assert "read" in out.message.lower()
    assert [m for m, _ in writes(stack.sim, start)] == ["PATCH"]  # never repeated blindly


async def test_a_dropped_write_that_was_not_applied_is_unavailable_saying_nothing_changed(
    stack: Stack,
) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", "drop", times=1)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.GRAPH_UNAVAILABLE
    assert "nothing changed" in out.message
    assert [m for m, _ in writes(stack.sim, start)] == ["POST"]
    assert mobile_of(stack.sim, user) is None


async def test_403_on_the_write_names_the_missing_permission(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 403, times=1)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert (
        out.missing_permission
        == "UserAuthMethod-Phone.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)"
    )
    assert out.missing_permission in out.message


@pytest.mark.parametrize(
    ("method", "url", "permission"),
    [
        (
            "GET",
            "https://graph/v1.0/users/x/authentication/phoneMethods",
            "UserAuthMethod-Phone.Read.All",
        ),
        (
            "DELETE",
            "https://graph/v1.0/users/x/authentication/phoneMethods/y",
            "UserAuthMethod-Phone.ReadWrite.All",
        ),
        ("GET", "https://graph/v1.0/users/x", "User.Read.All"),
        (
            "GET",
            "https://graph/v1.0/reports/authenticationMethods/userRegistrationDetails",
            "AuditLog.Read.All",
        ),
        ("POST", "https://graph/v1.0/users/s/sendMail", "Mail.Send"),
        ("GET", "https://graph/v1.0/organization", "Organization.Read.All"),
    ],
)
def test_required_permission_by_endpoint(method: str, url: str, permission: str) -> None:
    assert required_permission(method, url).startswith(permission)


# ------------------------------------------------------------------------------------------ request-ids, show


async def test_every_graph_request_id_of_the_run_is_in_the_outcome(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1769999999")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567"))
    seen = [c.request_id for c in stack.sim.calls[start:] if not c.in_batch]
    assert seen and out.graph_request_ids == seen


async def test_show_reads_all_phone_methods_and_writes_nothing(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567", alternate="+49 1517654321", office="+49 3012345678")
    start = len(stack.sim.calls)
    out = await stack.workflow.show(user.upn)
    assert out.kind is OutcomeKind.SHOWN
    assert out.phones is not None
    assert {m.phone_type for m in out.phones.methods} == {"mobile", "alternateMobile", "office"}
    assert out.number == "+491761234567"
    assert writes(stack.sim, start) == []


# ------------------------------------------------------------------------------------------ notification


async def test_notification_in_german_for_a_user_in_austria(stack: Stack) -> None:
    user = add_user(stack.sim, usage_location="AT")
    out = await stack.workflow.run(
        request("set", user.upn, "+43 664 1234567", notify=True, caller="Agent Smith")
    )
    assert out.kind is OutcomeKind.ADDED
    assert out.notification.status is NotificationStatus.SENT
    assert out.notification.language == "de"
    mail = stack.sim.outbox[-1]
    assert user.mail in str(mail["to"])


async def test_notification_in_english_by_override(stack: Stack) -> None:
    user = add_user(stack.sim, usage_location="DE")
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True, language="en"))
    assert out.notification.status is NotificationStatus.SENT
    assert out.notification.language == "en"


async def test_a_failed_mail_does_not_turn_the_change_into_a_failure(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/sendMail$", 403, times=5)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.ADDED
    assert out.exit_code == 0
    assert out.notification.status is NotificationStatus.FAILED
    assert mobile_of(stack.sim, user) == "+49 1761234567"


async def test_a_user_without_mail_is_changed_and_the_mail_skipped(stack: Stack) -> None:
    user = add_user(stack.sim, mail=None)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.ADDED
    assert out.notification.status is NotificationStatus.SKIPPED_NO_MAIL


async def test_no_mail_when_nothing_changed(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    before = len(stack.sim.outbox)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.UNCHANGED
    assert out.notification.status is NotificationStatus.NOT_ATTEMPTED
    assert len(stack.sim.outbox) == before


def send_mail_statuses(stack: Stack, start: int) -> list[tuple[int | None, bool]]:
    return [(c.status, c.in_batch) for c in stack.sim.calls[start:] if c.path.endswith("/sendMail")]


async def test_the_mail_goes_with_the_write_and_graph_sends_it_once_the_write_succeeded(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    start, before = len(stack.sim.calls), len(stack.sim.outbox)
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.REMOVED
    assert out.notification.status is NotificationStatus.SENT
    assert len(stack.sim.outbox) == before + 1
    assert send_mail_statuses(stack, start) == [(202, True)]
    batched = [(c.method, c.status) for c in stack.sim.calls[start:] if c.in_batch]
    assert batched == [("DELETE", 204), ("POST", 202)]


async def test_a_write_applied_but_answered_503_is_read_back_and_the_mail_sent_after_it(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 503, times=1, after_apply=True)
    start, before = len(stack.sim.calls), len(stack.sim.outbox)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.ADDED
    assert any("reading the state back shows the change is in place" in w.text for w in out.warnings)
    # the mail in the write's batch was not sent (its dependency failed); it went once the outcome was known
    assert send_mail_statuses(stack, start) == [(424, True), (202, False)]
    assert out.notification.status is NotificationStatus.SENT
    assert len(stack.sim.outbox) == before + 1


async def test_the_409_stored_with_a_warning_sends_the_mail_after_reading_the_number_back(
    stack: Stack,
) -> None:
    add_user(stack.sim, name="Holder One", mobile="+49 1761234567", mobile_sms="ready")
    user = add_user(stack.sim, name="Target", mobile="+49 1760000001")
    stack.sim.behaviour.update({"conflict_stores_method": True})
    start, before = len(stack.sim.calls), len(stack.sim.outbox)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.kind is OutcomeKind.UPDATED and out.sms_sign_in_conflict is True
    assert send_mail_statuses(stack, start) == [(424, True), (202, False)]
    assert out.notification.status is NotificationStatus.SENT
    assert len(stack.sim.outbox) == before + 1


async def test_a_refused_write_sends_no_mail(stack: Stack) -> None:
    user = add_user(stack.sim)
    stack.sim.faults.inject("POST", r"/phoneMethods$", 403, times=1)
    start, before = len(stack.sim.calls), len(stack.sim.outbox)
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    # the write's refusal in the batch is taken as the write's refusal alone
    assert out.kind is OutcomeKind.PERMISSION_DENIED
    assert (
        out.missing_permission
        == "UserAuthMethod-Phone.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)"
    )
    assert out.notification.status is NotificationStatus.NOT_ATTEMPTED
    assert send_mail_statuses(stack, start) == [(424, True)]
    assert len(stack.sim.outbox) == before


async def test_remove_without_a_number_is_refused_before_any_graph_call(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, None))
    assert out.kind is OutcomeKind.INVALID_NUMBER
    assert graph_calls(stack.sim, start) == []
    assert mobile_of(stack.sim, user) == "+49 1761234567"


async def test_a_dropped_delete_that_was_applied_is_confirmed_as_removed(stack: Stack) -> None:
    user = add_user(stack.sim, mobile="+49 1761234567")
    stack.sim.faults.inject("DELETE", r"/phoneMethods/", "drop", times=1, after_apply=True)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234567"))
    assert out.kind is OutcomeKind.REMOVED
    assert [m for m, _ in writes(stack.sim, start)] == ["DELETE"]
    assert mobile_of(stack.sim, user) is None


async def test_conflict_with_a_failed_owner_search_still_explains_the_conflict(stack: Stack) -> None:
    add_user(stack.sim, name="Holder Four", mobile="+49 1765550004", mobile_sms="ready")
    user = add_user(stack.sim, name="Target Four")
    stack.sim.behaviour.update({"conflict_stores_method": False})
    stack.sim.faults.inject("GET", r"userRegistrationDetails", 400, times=1)
    wf = stack.with_settings(conflict_poll_timeout=0.2)
    out = await wf.run(request("set", user.upn, "+49 176 5550004"))
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
    assert out.holder is None and out.holder_search == "failed"
    assert "another user holds it" in out.message


async def test_conflict_with_a_disabled_holder_names_the_disabled_account(stack: Stack) -> None:
    user = add_user(stack.sim, name="Target Five")
    stack.sim.behaviour.update({"conflict_stores_method": False})
    wf = stack.with_settings(conflict_poll_timeout=0.2)
    out = await wf.run(request("set", user.upn, "+49 170 8880006"))  # Dirk Disabled's number
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED and out.holder_search == "found"
    assert out.holder is not None and out.holder.user_principal_name == "dirk.disabled@contoso.example"
    assert out.holder.account_enabled is False
    assert out.to_json()["holder"]["accountEnabled"] is False
    assert "disabled account" in out.message and "deleted" not in out.message


async def test_conflict_in_a_tenant_without_p1_says_the_holder_cannot_be_searched(stack: Stack) -> None:
    user = add_user(stack.sim, name="Target Six")
    stack.sim.behaviour.update({"conflict_stores_method": False, "p1_licensed": False, "pim_licensed": False})
    wf = stack.with_settings(conflict_poll_timeout=0.2)
    out = await wf.run(request("set", user.upn, "+49 170 8880003"))  # Hanna Hidden: only the report finds her
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED
    assert out.holder is None and out.holder_search == "not_licensed"
    assert "cannot be searched in this tenant" in out.message and "deleted" not in out.message
    assert out.graph_request_ids  # the report's refusal is among them


async def test_conflict_with_the_report_refused_names_audit_log_read_all(
    sim: Any, sim_env: dict[str, str]
) -> None:
    app = sim.tenant.app(TEST_CLIENT_ID)
    app.roles = [r for r in app.roles if r != "AuditLog.Read.All"]
    sim.behaviour.update({"conflict_stores_method": False, "report_throttle": False})
    async for s in make_stack(sim, sim_env, conflict_poll_timeout=0.2):
        user = add_user(sim, name="Target Seven")
        out = await s.workflow.run(request("set", user.upn, "+49 170 8880003"))
    assert out.kind is OutcomeKind.CONFLICT_UNRESOLVED and out.holder_search == "not_permitted"
    assert out.missing_permission is not None and "AuditLog.Read.All" in out.missing_permission
    assert out.to_json()["missing_permission"] == out.missing_permission
    assert "AuditLog.Read.All" in out.message


async def test_a_hostile_display_name_is_escaped_in_the_mail(stack: Stack) -> None:
    user = add_user(stack.sim, name="<script>alert(1)</script> Eve", usage_location="US")
    out = await stack.workflow.run(request("set", user.upn, "+49 176 1234567", notify=True))
    assert out.notification.status is NotificationStatus.SENT and out.notification.language == "en"
    html = stack.sim.outbox[-1]["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_a_reference_graph_cannot_parse_is_user_not_found(stack: Stack) -> None:
    out = await stack.workflow.run(request("set", "<script>/x@contoso.example", "+49 176 1234567"))
    assert out.kind is OutcomeKind.USER_NOT_FOUND

"""The demo's story in the Agents Playground: Alex (helpdesk) asks to change Lynne Robbins' number, Lynne confirms
(or refuses) in her own window, Megan approves, Alex sees the result.

(Named to run after test_demo_command.py, whose asyncio.run cannot start while the browser's loop runs.)

Lynne's window is open before Alex asks, as in `make demo`: opening it is enough for the bot to reach her there
(the Playground announces the app's installation in her chat, and the bot keeps that conversation); she never has
to write to the bot first.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AGENT, APPROVER, PRIVILEGED_APPROVER, TARGET, WAIT_MS, Chat, StackThread
from tests.e2e.test_scenarios import (
    DIEGO,
    LYNNE,
    NUMBER_FIELD,
    USER_FIELD,
    confirm,
    open_form,
    request_ref_of,
    review,
)

pytestmark = pytest.mark.e2e

ASK_TITLE = "Did you ask the service desk to change your sign-in phone?"
NEW_NUMBER = "+49 170 7654321"


def open_lynne(open_chat: Any, stack: StackThread) -> Chat:
    """Lynne opens her window; the bot knows where to reach her once the Playground has announced the app."""
    lynne = open_chat(TARGET)
    deadline = time.monotonic() + WAIT_MS / 1000
    while stack.reference_of(f"user:{LYNNE}") is None:
        assert time.monotonic() < deadline, "opening Lynne's window did not give the bot her conversation"
        time.sleep(0.1)
    return lynne


def ask_for_lynne(alex: Chat) -> tuple[str, Any]:
    """Alex asks for Lynne's new number, verified by confirmation in Teams (the default): the request id and the
    card Alex then sees."""
    confirmation = review(alex, "lynne.robbins@contoso.example", NEW_NUMBER)
    expect(confirmation).to_contain_text("confirmation in Teams (not done yet)")
    waiting = confirm(alex, confirmation)
    expect(waiting).to_contain_text("Waiting for Lynne Robbins to confirm in Teams", timeout=WAIT_MS)
    return request_ref_of(waiting), waiting


def test_lynne_confirms_in_her_window_megan_approves_and_alex_sees_the_change(
    open_chat, approvers: dict[str, Chat], stack: StackThread, caller_verification: None
) -> None:
    lynne = open_lynne(open_chat, stack)
    alex = open_chat(AGENT)
    request_id, _ = ask_for_lynne(alex)

    ask = lynne.card_with(ASK_TITLE)
    expect(ask).to_be_visible(timeout=WAIT_MS)
    expect(ask).to_contain_text("Alex Wilber")
    expect(ask).to_contain_text("+49 170 ***4321")
    expect(ask).not_to_contain_text("7654321")
    lynne.screenshot("test_lynne_confirms-the-question-in-lynnes-window")
    alex.screenshot("test_lynne_confirms-alex-waits")
    ask.get_by_role("button", name="Yes, I asked for this", exact=True).click()
    expect(lynne.cards.last).to_contain_text("You confirmed this request", timeout=WAIT_MS)
    expect(lynne.cards.last).not_to_contain_text("No answer needed")
    assert stack.mobile_of(LYNNE) == "+49 1701234567"  # not before an approver approves

    megan = approvers[APPROVER]
    approval = megan.card_with(request_id)
    expect(approval).to_contain_text("Approval needed", timeout=WAIT_MS)
    expect(approval).to_contain_text("Lynne Robbins")
    approval.get_by_role("button", name="Approve", exact=True).click()

    outcome = alex.card_with(request_id)
    expect(outcome).to_contain_text("Done: mobile number updated", timeout=WAIT_MS)
    expect(outcome).to_contain_text("+49 170 ***4321")
    assert stack.mobile_of(LYNNE) == "+49 1707654321"


def test_lynne_refuses_in_her_window_the_request_stops_and_the_approvers_are_alerted(
    open_chat, approvers: dict[str, Chat], stack: StackThread, caller_verification: None
) -> None:
    lynne = open_lynne(open_chat, stack)
    alex = open_chat(AGENT)
    try:
        request_id, _ = ask_for_lynne(alex)

        ask = lynne.card_with(ASK_TITLE)
        expect(ask).to_be_visible(timeout=WAIT_MS)
        ask.get_by_role("button", name="No, I did not ask", exact=True).click()
        expect(lynne.cards.last).to_contain_text("The request was stopped", timeout=WAIT_MS)

        expect(alex.card_with(request_id)).to_contain_text(
            "Lynne Robbins said they did not ask for this change", timeout=WAIT_MS
        )
        alert = approvers[APPROVER].card_with(request_id)
        expect(alert).to_contain_text("Security alert", timeout=WAIT_MS)
        expect(alert).to_contain_text("Alex Wilber")
        assert stack.mobile_of(LYNNE) == "+49 1701234567"

        # her phone methods are locked against changes through the bot: Alex's next try is refused ...
        form = open_form(alex)
        form.get_by_label(USER_FIELD, exact=True).fill("lynne.robbins@contoso.example")
        form.get_by_label(NUMBER_FIELD, exact=True).fill(NEW_NUMBER)
        form.get_by_role("button", name="Review", exact=True).click()
        expect(alex.cards.last).to_contain_text("locked against changes through the bot", timeout=WAIT_MS)

        # ... until a privileged approver lifts the lock
        patti = approvers[PRIVILEGED_APPROVER]
        patti.say("unlock lynne.robbins@contoso.example")
        expect(patti.message("The lock on Lynne Robbins")).to_be_visible(timeout=WAIT_MS)
        assert stack.mobile_of(LYNNE) == "+49 1701234567"
    finally:
        lift_lock(stack)  # the scenarios after this one change Lynne's number too


def lift_lock(stack: StackThread) -> None:
    from bot.persistence.models import Person

    stack.run(
        lambda: stack.runtime.store.lift_target_lock(
            LYNNE, actor=Person(aad_object_id="", name="e2e clean-up"), target_upn=None, details={}
        )
    )


def test_a_user_without_a_playground_window_cannot_confirm_in_teams_and_alex_is_told_why(
    open_chat, approvers: dict[str, Chat], stack: StackThread, caller_verification: None
) -> None:
    """Diego Siciliani has no window: the bot installs its app for him through the simulated Graph, but no
    Playground knows the chat Graph names, so the card cannot be sent and nothing is asked or changed."""
    alex = open_chat(AGENT)
    confirmation = review(alex, "diego.siciliani@contoso.example", "+49 170 3334444")
    answer = confirm(alex, confirmation)
    expect(answer).to_contain_text("Diego Siciliani could not be reached in Teams", timeout=WAIT_MS)
    expect(answer).to_contain_text("the message could not be sent")
    assert stack.mobile_of(DIEGO) is None

"""What a helpdesk agent and the approvers see in the Agents Playground, scenario by scenario.

Each test types into the message box, fills the card fields by their labels, presses buttons by their names and
reads the cards that come back; where a change must (or must not) have happened, the simulated tenant says so.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    AGENT,
    ALEX_ID,
    APPROVER,
    NO_ROLE,
    PRIVILEGED_APPROVER,
    PRIVILEGED_GROUP_ID,
    WAIT_MS,
    Chat,
    StackThread,
)

pytestmark = pytest.mark.e2e

DIEGO = "00000000-0000-0000-0000-0000000000c2"
LYNNE = "00000000-0000-0000-0000-0000000000c1"
ISAIAH = "00000000-0000-0000-0000-0000000000b1"
USER_FIELD = "User: UPN, e-mail or object ID"
NUMBER_FIELD = "Mobile number"
FORM_TITLE = "Change a mobile phone MFA method"
CONFIRM_TITLE = "Check the change"


def open_form(chat: Chat, command: str = "set phone") -> Any:
    chat.say(command)
    form = chat.card_with(FORM_TITLE)
    expect(form).to_be_visible(timeout=WAIT_MS)
    return form


def review(chat: Chat, user: str, number: str = "", *, remove: bool = False) -> Any:
    """Fill the request form and press Review; returns the confirmation card."""
    form = open_form(chat, "remove phone" if remove else "set phone")
    form.get_by_label(USER_FIELD, exact=True).fill(user)
    if remove:
        form.get_by_label("Remove the mobile number", exact=True).check()
    form.get_by_label(NUMBER_FIELD, exact=True).fill(number)
    form.get_by_role("button", name="Review", exact=True).click()
    confirmation = chat.card_with(CONFIRM_TITLE)
    expect(confirmation).to_be_visible(timeout=WAIT_MS)
    return confirmation


def confirm(chat: Chat, confirmation: Any) -> Any:
    confirmation.get_by_role("button", name="Confirm", exact=True).click()
    return chat.cards.last


def request_ref_of(card: Any) -> str:
    """The short reference the card names its request by (MFA- and five characters)."""
    match = re.search(r"Request (MFA-[0-9A-HJKMNP-TV-Z]{5})", card.inner_text())
    assert match, "the card shows no request reference"
    return match.group(1)


# ------------------------------------------------------------------------------------------------ changes


def test_setting_a_new_number_for_a_user_without_phone(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    confirmation = review(alex, "diego.siciliani@contoso.example", "+49 170 3334444")
    expect(confirmation).to_contain_text("Diego Siciliani")
    expect(confirmation).to_contain_text("+49 1703334444")  # the typed number in full, as Graph stores it
    expect(confirmation).to_contain_text("No approval needed")
    outcome = confirm(alex, confirmation)
    expect(outcome).to_contain_text("Done: mobile number set", timeout=WAIT_MS)
    expect(outcome).to_contain_text("+49 170 ***4444")
    assert stack.mobile_of(DIEGO) == "+49 1703334444"


def test_updating_a_number_shows_old_and_new_masked(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    confirmation = review(alex, "lynne.robbins@contoso.example", "0170 7654321")
    expect(confirmation).to_contain_text("+49 170 ***4567 → +49 1707654321")  # current masked, typed in full
    outcome = confirm(alex, confirmation)
    expect(outcome).to_contain_text("Done: mobile number updated", timeout=WAIT_MS)
    expect(outcome).to_contain_text("changed from +49 170 ***4567 to +49 170 ***4321")
    expect(outcome).not_to_contain_text("7654321")
    assert stack.mobile_of(LYNNE) == "+49 1707654321"


def test_the_same_number_again_changes_nothing(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    outcome = confirm(alex, review(alex, "lynne.robbins@contoso.example", "+49 170 1234567"))
    expect(outcome).to_contain_text("Nothing to change", timeout=WAIT_MS)
    assert stack.mobile_of(LYNNE) == "+49 1701234567"
    assert stack.outbox() == []


def test_removing_the_mobile_number(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    confirmation = review(alex, "lynne.robbins@contoso.example", remove=True)
    expect(confirmation).to_contain_text("+49 170 ***4567")
    outcome = confirm(alex, confirmation)
    expect(outcome).to_contain_text("Done: mobile number removed", timeout=WAIT_MS)
    assert stack.mobile_of(LYNNE) is None


def test_removing_a_number_the_user_does_not_have_says_so_before_confirm(
    open_chat, stack: StackThread
) -> None:
    alex = open_chat(AGENT)
    card = review(alex, "lynne.robbins@contoso.example", "+49 170 9999999", remove=True)
    expect(card).to_contain_text("does not match the current mobile number of Lynne Robbins")
    expect(card.get_by_role("button", name="Confirm", exact=True)).to_have_count(0)
    alex.screenshot("test_removing_a_number_the_user_does_not_have-the-confirmation-card")
    card.get_by_role("button", name="Edit", exact=True).click()
    form = alex.cards.last
    expect(form.get_by_label(NUMBER_FIELD, exact=True)).to_have_value("+491709999999", timeout=WAIT_MS)
    assert stack.mobile_of(LYNNE) == "+49 1701234567"


def test_a_refused_request_names_the_user_and_edit_keeps_the_values(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    form = open_form(alex)
    form.get_by_label(USER_FIELD, exact=True).fill("alex.wilber@contoso.example")
    form.get_by_label(NUMBER_FIELD, exact=True).fill("+49 170 5550000")
    form.get_by_role("button", name="Review", exact=True).click()
    refused = alex.card_with("Not possible for Alex Wilber")
    expect(refused).to_be_visible(timeout=WAIT_MS)
    expect(refused).to_contain_text("You cannot change your own MFA phone")
    expect(refused.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
    alex.screenshot("test_a_refused_request-the-refusal")
    refused.get_by_role("button", name="Edit", exact=True).click()
    again = alex.cards.last
    expect(again.get_by_label(USER_FIELD, exact=True)).to_have_value(
        "alex.wilber@contoso.example", timeout=WAIT_MS
    )
    expect(again.get_by_label(NUMBER_FIELD, exact=True)).to_have_value("+49 170 5550000")


def test_graph_request_ids_sit_behind_details_with_the_audit_trail(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    outcome = confirm(alex, review(alex, "diego.siciliani@contoso.example", "+49 170 4445555"))
    expect(outcome).to_contain_text("Done: mobile number set", timeout=WAIT_MS)
    expect(outcome).not_to_contain_text("Microsoft Graph request IDs")
    outcome.get_by_role("button", name="Details", exact=True).click()
    expect(outcome).to_contain_text("Microsoft Graph request IDs", timeout=WAIT_MS)
    # The button is Teams' messageBack (it sends `status <ref>` as the agent's message; tested through the HTTP
    # endpoint): the Agents Playground does not send messageBack actions, so it is only seen here.
    expect(outcome.get_by_role("button", name="Audit trail", exact=True)).to_be_visible()
    assert request_ref_of(outcome).startswith("MFA-")


def test_a_number_held_for_sms_sign_in_by_another_user_is_set_for_mfa_only(
    open_chat, stack: StackThread
) -> None:
    alex = open_chat(AGENT)
    outcome = confirm(alex, review(alex, "diego.siciliani@contoso.example", "+49 170 9876543"))
    expect(outcome).to_contain_text(
        "is set for MFA (codes by text message and calls work), but not for SMS", timeout=WAIT_MS
    )
    # the holder is looked for after the card is shown, and the card is updated with the name
    expect(outcome).to_contain_text("Held for SMS sign-in by Grady Archie", timeout=WAIT_MS)
    assert stack.mobile_of(DIEGO) == "+49 1709876543"


def test_a_conflict_that_blocks_the_change_names_the_holder(open_chat, stack: StackThread) -> None:
    stack.call(stack.sim.behaviour.update, {"conflict_stores_method": False})
    alex = open_chat(AGENT)
    outcome = confirm(alex, review(alex, "diego.siciliani@contoso.example", "+49 170 9876543"))
    expect(outcome).to_contain_text("Blocked: the number is used by another account", timeout=WAIT_MS)
    expect(outcome).to_contain_text("Grady Archie", timeout=WAIT_MS)
    assert stack.mobile_of(DIEGO) is None


def test_an_invalid_number_is_corrected_on_the_same_card(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    form = open_form(alex)
    form.get_by_label(USER_FIELD, exact=True).fill("lynne.robbins@contoso.example")
    form.get_by_label(NUMBER_FIELD, exact=True).fill("+49 170 12O4567")
    form.get_by_role("button", name="Review", exact=True).click()
    form = alex.card_with(FORM_TITLE)
    expect(form).to_contain_text("The number contains the letter", timeout=WAIT_MS)
    expect(form.get_by_label(USER_FIELD, exact=True)).to_have_value("lynne.robbins@contoso.example")
    expect(form.get_by_label(NUMBER_FIELD, exact=True)).to_have_value("+49 170 12O4567")
    expect(alex.cards).to_have_count(1)  # the same card came back, with the error beside the field

    form.get_by_label(NUMBER_FIELD, exact=True).fill("+49 170 1204567")
    form.get_by_role("button", name="Review", exact=True).click()
    confirmation = alex.card_with(CONFIRM_TITLE)
    expect(confirmation).to_contain_text("+49 170 ***4567", timeout=WAIT_MS)
    expect(alex.cards).to_have_count(1)
    assert stack.mobile_of(LYNNE) == "+49 1701234567"  # nothing changes before Confirm


def test_a_requester_without_the_helpdesk_role_is_refused(open_chat) -> None:
    pradeep = open_chat(NO_ROLE)
    pradeep.say("set phone")
    refusal = pradeep.cards.last
    expect(refusal).to_contain_text("Only members of the helpdesk group", timeout=WAIT_MS)
    expect(pradeep.page.get_by_text(FORM_TITLE)).to_have_count(0)


def test_the_notification_mail_reaches_the_outbox(open_chat, stack: StackThread) -> None:
    alex = open_chat(AGENT)
    outcome = confirm(alex, review(alex, "lynne.robbins@contoso.example", "+49 170 7654321"))
    expect(outcome).to_contain_text("E-mail sent to lynne.robbins@contoso.example", timeout=WAIT_MS)
    mails = stack.outbox()
    assert len(mails) == 1
    assert "lynne.robbins@contoso.example" in str(mails[0]["to"])
    body = mails[0].get("text") or mails[0].get("html") or ""
    assert "4321" in body and "7654321" not in body  # the mail shows only the last digits

    # The demo's mail page shows it to a person too.
    page = alex.page.context.new_page()
    page.goto(stack.stack.info_url)
    expect(page.get_by_role("heading", name="Sent e-mail (1)")).to_be_visible()
    expect(page.get_by_role("heading", name=mails[0]["subject"])).to_be_visible()
    Chat(page, "mail").screenshot("test_the_notification_mail_reaches_the_outbox-mail-page")


# ------------------------------------------------------------------------------------------------ approvals


def privileged_request(alex: Chat, stack: StackThread) -> tuple[str, Any]:
    """Alex, also a member of the privileged group for this scenario, asks to change a Global Administrator."""
    stack.add_to_group(PRIVILEGED_GROUP_ID, ALEX_ID)
    confirmation = review(alex, "isaiah.langer@contoso.example", "+49 170 5550199")
    expect(confirmation).to_contain_text("Global Administrator")
    expect(confirmation).to_contain_text(
        "Needs approval by the privileged group after you confirm: the user holds Global Administrator"
    )
    waiting = confirm(alex, confirmation)
    expect(waiting).to_contain_text("Sent for approval", timeout=WAIT_MS)
    return request_ref_of(waiting), waiting


def test_a_privileged_target_needs_the_privileged_approver(
    open_chat, approvers: dict[str, Chat], stack: StackThread
) -> None:
    alex = open_chat(AGENT)
    ref, _ = privileged_request(alex, stack)
    megan = approvers[APPROVER]
    card = megan.card_with(ref)
    expect(card).to_contain_text("Approval needed", timeout=WAIT_MS)
    card.get_by_role("button", name="Approve", exact=True).click()
    expect(
        megan.page.get_by_text("Only members of the privileged group can approve or reject")
    ).to_be_visible()
    megan.screenshot("test_a_privileged_target_needs_the_privileged_approver-megan")
    assert stack.mobile_of(ISAIAH) == "+49 1705550101"
    expect(alex.card_with(ref)).to_contain_text("Sent for approval")


def test_approval_by_the_privileged_approver_runs_the_change_and_updates_the_requesters_card(
    open_chat, approvers: dict[str, Chat], stack: StackThread
) -> None:
    alex = open_chat(AGENT)
    ref, _ = privileged_request(alex, stack)
    patti = approvers[PRIVILEGED_APPROVER]
    card = patti.card_with(ref)
    expect(card).to_contain_text("Approval needed", timeout=WAIT_MS)
    card.get_by_role("button", name="Approve", exact=True).click()
    expect(patti.card_with(ref)).to_contain_text("Done: mobile number updated", timeout=WAIT_MS)
    patti.screenshot("test_approval_by_the_privileged_approver-patti")

    requester_card = alex.card_with(ref)
    expect(requester_card).to_contain_text("Done: mobile number updated", timeout=WAIT_MS)
    expect(requester_card).to_contain_text("+49 170 ***0199")
    expect(alex.message("Patti Fernandez approved your request")).to_be_visible()
    assert stack.mobile_of(ISAIAH) == "+49 1705550199"


def test_rejection_with_a_reason_reaches_the_requester(
    open_chat, approvers: dict[str, Chat], stack: StackThread
) -> None:
    alex = open_chat(AGENT)
    ref, _ = privileged_request(alex, stack)
    patti = approvers[PRIVILEGED_APPROVER]
    card = patti.card_with(ref)
    expect(card).to_contain_text("Approval needed", timeout=WAIT_MS)
    card.get_by_label("Reason (optional, sent to the requester)", exact=True).fill("Caller not verified")
    card.get_by_role("button", name="Reject", exact=True).click()
    expect(patti.card_with(ref)).to_contain_text("Rejected", timeout=WAIT_MS)
    patti.screenshot("test_rejection_with_a_reason-patti")

    requester_card = alex.card_with(ref)
    expect(requester_card).to_contain_text("Rejected", timeout=WAIT_MS)
    expect(requester_card).to_contain_text("Caller not verified")
    assert stack.mobile_of(ISAIAH) == "+49 1705550101"

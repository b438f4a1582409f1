"""The Agents Playground talks to the bot: a person types in the message box and reads the bot's answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AGENT, WAIT_MS

pytestmark = pytest.mark.e2e


def test_agent_typing_set_phone_gets_the_request_form(open_chat) -> None:
    alex = open_chat(AGENT)
    alex.say("set phone")
    form = alex.card_with("Change a mobile phone MFA method")
    expect(form).to_be_visible(timeout=WAIT_MS)
    expect(form.get_by_label("User: UPN, e-mail or object ID", exact=True)).to_be_editable()
    expect(form.get_by_label("Mobile number", exact=True)).to_be_editable()
    expect(form.get_by_role("button", name="Review")).to_be_visible()


def test_demo_mode_says_it_is_a_simulation_in_chat(open_chat) -> None:
    alex = open_chat(AGENT)
    alex.say("set phone")
    form = alex.card_with("Change a mobile phone MFA method")
    expect(form).to_contain_text("Simulation", timeout=WAIT_MS)

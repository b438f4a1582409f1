"""End-to-end harness: the demo stack (Graph simulator + bot + Agents Playgrounds) on free loopback ports, driven
in Debian's Chromium through Playwright as a person would use it.

One stack per test session (bot.teams.demo.DemoStack in a background thread with its own event loop), reused by all
scenarios; the simulated tenant is reset before each test and every test opens a fresh chat page. The approvers'
pages (Megan Bowen, Patti Fernandez) stay open for the whole session, as an approver's Teams would.

Skips (with the reason) only when Debian's chromium or node_modules (the Agents Playground) are missing; the
README's test command (`make test`) installs both.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app import create_app
from bot.teams.demo import PLAYGROUND_BIN, ROOT, DemoStack, free_port

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
# The longest a person waits for the bot's answer (Graph work, owner search) before giving up.
WAIT_MS = 20_000
BOT_NAME = "MFA Phone Bot (demo)"

# The personas with a Playground in the e2e stack (bot/teams/demo/playground/<key>/.m365agentsplayground.yml).
AGENT, APPROVER, PRIVILEGED_APPROVER, NO_ROLE, TARGET = (
    "alex-wilber",
    "megan-bowen",
    "patti-fernandez",
    "pradeep-gupta",
    "lynne-robbins",  # the user whose phone is changed, who confirms in Teams that she asked
)
ALEX_ID = "00000000-0000-0000-0000-0000000000a1"
PRIVILEGED_GROUP_ID = "11111111-1111-1111-1111-000000000003"


def missing_tools() -> str | None:
    if not CHROMIUM.exists():
        return f"Debian chromium is not installed ({CHROMIUM}); `make setup-browser` installs it"
    if not PLAYGROUND_BIN.exists():
        return "node_modules is missing (no Agents Playground); `npm ci` (or `make setup-node`) installs it"
    return None


# ------------------------------------------------------------------------------------------------ the stack


class StackThread:
    """DemoStack served from a background thread; `call`/`run` reach into it safely from the test thread."""

    def __init__(self, stack: DemoStack) -> None:
        self.stack = stack
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="e2e-stack", daemon=True)

    def start(self) -> StackThread:
        self._thread.start()
        self.run(self.stack.start, timeout=120)
        return self

    def stop(self) -> None:
        try:
            self.run(self.stack.stop, timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def run(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(factory(), self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def runner() -> T:
            return fn(*args)

        return self.run(runner)

    @property
    def sim(self) -> Any:
        return self.stack.sim

    def url(self, persona: str) -> str:
        return self.stack.playground(persona).url

    def reset_tenant(self) -> None:
        """The seeded tenant again, with the simulator's default behaviour (reset() keeps the switches)."""
        from graph.simulator import Behaviour

        def reset() -> None:
            self.sim.reset()
            self.sim.behaviour.update(Behaviour().to_dict())

        self.call(reset)

    def outbox(self) -> list[dict[str, Any]]:
        return self.call(lambda: [dict(m) for m in self.sim.outbox])

    def mobile_of(self, user_id: str) -> str | None:
        def read() -> str | None:
            phone = self.sim.tenant.user(user_id).phones.get("mobile")
            return phone.number if phone else None

        return self.call(read)

    def add_to_group(self, group_id: str, user_id: str) -> None:
        self.call(lambda: self.sim.tenant.groups[group_id].members.append(user_id))

    @property
    def runtime(self) -> Any:
        """The running bot's Runtime (app.py): its settings, store and desk."""
        from app import RUNTIME

        return self.stack._runners[0].app[RUNTIME]  # noqa: SLF001  (the bot is the first runner DemoStack starts)

    def reference_of(self, key: str) -> dict[str, Any] | None:
        """A conversation reference the bot stored (e.g. "user:<aadObjectId>")."""
        return self.run(lambda: self.runtime.store.conversation_reference(key))

    def use_settings(self, settings: Any) -> Any:
        """Run the bot on other settings from now on (its desk, policy, approvals and executor read them on every
        request); returns the settings it had."""
        runtime = self.runtime
        desk = runtime.bot.desk
        old = desk.settings

        def swap() -> None:
            for part in (desk, desk.policy, desk.approvals, desk.executor):
                for name in ("settings", "_settings"):
                    if getattr(part, name, None) is old:
                        setattr(part, name, settings)
            runtime.settings = settings

        self.call(swap)
        return old


# Package scope, not session: Playwright's sync API keeps an event loop running in the main thread while it is
# open, so it must close when the end-to-end tests are done, before any other package's asyncio tests run.
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackThread]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    demo = DemoStack(
        create_app=create_app,
        playgrounds=tuple(
            (key, free_port()) for key in (AGENT, APPROVER, PRIVILEGED_APPROVER, NO_ROLE, TARGET)
        ),
        bot_port=free_port(),
        info_port=free_port(),
        sim_port=0,
        data_dir=tmp_path_factory.mktemp("e2e-data"),
        overrides={
            # Changes of ordinary users run on Confirm; privileged targets wait for the privileged group.
            "APPROVAL_POLICY": "privileged",
            # Tests arrange group memberships in the simulated tenant and expect the bot to see them at once.
            "ROLE_CACHE_SECONDS": "0",
            # The scenarios of the request itself run without caller verification; the fixture
            # `caller_verification` switches it on (and approval for every change) for the ones about it.
            "VERIFICATION_POLICY": "none",
            "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "WARNING"),
        },
    )
    running = StackThread(demo).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def _fresh_tenant(request: pytest.FixtureRequest) -> None:
    """Every scenario starts from the seeded demo tenant (phones, groups, outbox)."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").reset_tenant()


@pytest.fixture
def caller_verification(stack: StackThread) -> Iterator[None]:
    """Caller verification as the bot runs by default (VERIFICATION_POLICY unset), and every change approved by an
    approver as in `make demo` (APPROVAL_POLICY=always), for one scenario: the demo's story."""
    import dataclasses

    from bot.settings import VerificationPolicy

    current = stack.runtime.bot.desk.settings
    old = stack.use_settings(
        dataclasses.replace(current, verification_policy=VerificationPolicy(), approval_policy="always")
    )
    try:
        yield
    finally:
        stack.use_settings(old)


# ------------------------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="package")
def browser(stack: StackThread) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # the screenshots of this run only
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Chat:
    """One person's Playground page, used the way a person uses Teams."""

    def __init__(self, page: Any, who: str) -> None:
        self.page = page
        self.who = who

    @property
    def cards(self) -> Any:
        return self.page.locator(".ac-adaptiveCard")

    def card_with(self, text: str) -> Any:
        return self.cards.filter(has_text=text).last

    def message(self, text: str) -> Any:
        """A text message in the conversation (not a card)."""
        return self.page.get_by_role("paragraph").filter(has_text=text).last

    def open(self, url: str) -> Chat:
        from playwright.sync_api import expect

        self.page.goto(url)
        expect(self.message_box).to_be_visible(timeout=WAIT_MS)
        return self

    @property
    def message_box(self) -> Any:
        return self.page.locator("[data-lexical-editor=true]")

    def open_chat(self, name: str) -> None:
        self.page.get_by_text(name, exact=True).click()

    def say(self, text: str) -> None:
        self.message_box.click()
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")

    def say_to_bot(self, text: str) -> None:
        """In a group chat the bot hears only messages that mention it: type @, pick the bot, then the text."""
        self.message_box.click()
        self.page.keyboard.type("@MFA")
        self.page.get_by_text(BOT_NAME, exact=True).last.click()
        self.page.keyboard.type(" " + text)
        self.page.keyboard.press("Enter")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_chat(
    browser: Any, stack: StackThread, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Chat]]:
    """open_chat(persona) -> a fresh chat page of that persona; its final state is kept as a screenshot."""
    contexts: list[tuple[Any, Chat]] = []

    def opener(persona: str) -> Chat:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(WAIT_MS)
        chat = Chat(context.new_page(), persona).open(stack.url(persona))
        contexts.append((context, chat))
        return chat

    yield opener
    for context, chat in contexts:
        suffix = "" if len(contexts) == 1 else f"-{chat.who}"
        try:
            chat.screenshot(f"{request.node.name}{suffix}")
        finally:
            context.close()


@pytest.fixture(scope="package")
def approvers(browser: Any, stack: StackThread) -> Iterator[dict[str, Chat]]:
    """Megan Bowen's and Patti Fernandez's Playgrounds, open for the whole session.

    Megan registers her group chat "Helpdesk approvals" as the approvers' conversation the way an admin would
    ("@MFA Phone Bot register approvals"); Patti says hello to the bot in her personal chat, so the bot knows
    where to send her approval cards.
    """
    from playwright.sync_api import expect

    chats: dict[str, Chat] = {}
    contexts = []
    for persona in (APPROVER, PRIVILEGED_APPROVER):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        chats[persona] = Chat(context.new_page(), persona).open(stack.url(persona))

    megan = chats[APPROVER]
    megan.open_chat("Helpdesk approvals")
    megan.say_to_bot("register approvals")
    expect(
        megan.page.get_by_role("paragraph").filter(
            has_text="This conversation now receives the approval requests"
        )
    ).to_be_visible(timeout=WAIT_MS)
    patti = chats[PRIVILEGED_APPROVER]
    patti.say("help")
    expect(patti.cards.last).to_be_visible(timeout=WAIT_MS)
    try:
        yield chats
    finally:
        for persona, chat in chats.items():
            chat.screenshot(f"approver-session-{persona}")
        for context in contexts:
            context.close()

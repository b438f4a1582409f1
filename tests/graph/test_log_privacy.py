"""The log mask: a phone number in any spelling never reaches a log line, ids and timestamps stay readable."""

from __future__ import annotations

import logging

import pytest

from graph.log_privacy import install, mask_numbers

FULL = "1705556666"


@pytest.mark.parametrize(
    "text",
    [
        "number +49 170 5556666 refused",
        "number +491705556666 refused",
        "compared 491705556666 with the stored one",
        "typed 0170 5556666",
        "typed +49 (0)170-555 66 66",
        "typed 0170/555.66.66",
        # httpx's request line of the owner search: form-encoded, then percent-encoded with %20
        "HTTP Request: GET https://graph.example/v1.0/users?%24filter=mobilePhone+eq+%27%2B49+1705556666%27 200",
        "GET /users?$filter=mobilePhone%20eq%20%27%2B49%20170%205556666%27",
        "GET /users?$filter=mobilePhone%20eq%20%270170%205556666%27",
        "headers [(b'x-number', b'+49 170 5556666')]",
    ],
)
def test_a_number_in_any_spelling_is_masked(text: str) -> None:
    masked = mask_numbers(text)
    assert FULL not in "".join(ch for ch in masked if ch.isdigit())
    assert "***6666" in masked


def test_the_mask_is_the_one_of_graph_numbers() -> None:
    assert mask_numbers("set +49 1701234567 for Diego") == "set +49 170 ***4567 for Diego"


@pytest.mark.parametrize(
    "text",
    [
        "user 00000000-0000-0000-0000-0000000000c2 request-id 2bf3c0d7-81b0-4251-a25a-dd316c9a25b3",
        "GET /roleAssignments?%24filter=principalId+eq+%2700000000-0000-0000-0000-0000000000c2%27 200",
        "expires 2026-05-04T09:33:12.1234567Z, at 2026-05-04 09:33:12",
        "port 3978, 409 after 12.5 ms, 20 users, tenant size 5000",
        "+49 170 ***6666 and +353 871 ***4567",
    ],
)
def test_ids_timestamps_small_figures_and_masked_numbers_are_left_as_they_are(text: str) -> None:
    assert mask_numbers(text) == text


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s %(url)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_every_logger_any_level_message_arguments_traceback_and_extra_fields_are_masked() -> None:
    root = logging.getLogger()
    handler = _Lines()
    root.addHandler(handler)
    install()
    library = logging.getLogger("some.library")
    old_level = library.level
    library.setLevel(logging.DEBUG)
    try:
        library.debug("request %s", "GET /users?$filter=mobilePhone eq '+49 170 5556666'", extra={"url": ""})
        try:
            raise ValueError("conflict on %2B49%20170%205556666")
        except ValueError:
            library.exception("failed", extra={"url": "/users?number=%2B491705556666"})
        library.warning("bad format %d", "+49 170 5556666", extra={"url": ""})  # a wrong format string
    finally:
        library.setLevel(old_level)
        root.removeHandler(handler)
    text = "\n".join(handler.lines)
    assert len(handler.lines) == 3 and "Traceback" in text
    assert FULL not in "".join(ch for ch in text if ch.isdigit() or ch == "\n")
    assert text.count("***6666") >= 4

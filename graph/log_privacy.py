"""No full phone number in any log line, whoever writes it.

Our own code logs numbers only through `graph.numbers.mask`. This module is the net under that for the text we do
not write: httpx logs every request URL at INFO (the owner search's ``$filter=mobilePhone eq '+49 …'``,
percent-encoded), httpcore logs request lines and headers at DEBUG, and exception texts carry URLs and bodies.

`install()` (called by every entry point: ``app.py``, ``create_app``, ``python -m graph``, the demo) does two things,
both idempotent:

* it wraps the process's log-record factory, so every record of every logger is masked when it is made, before
  any handler sees it (ours, pytest's, one a library adds later): the message is formatted with its arguments and
  masked, the arguments are dropped, a traceback and a stack are formatted and masked;
* it puts `MaskNumbers` on the root logger's handlers, which also masks text fields added with ``extra=``.

What counts as a number: a run of digits joined by the punctuation people and URLs put between them (spaces,
``- . / ( )``, a form-encoded ``+`` and their percent-escapes ``%20 %2D %2E %2F %28 %29``), optionally led by
``+`` or ``%2B``, with at least six digits after a plus and seven without. Such a run is replaced by
``graph.numbers.mask`` of its decoded text (``+49 170 ***4567``). Object ids (GUIDs), ISO timestamps and numbers
masked before are left as they are; anything else that looks like a number (a long count, a float with many decimals) is masked too:
a log loses a figure rather than risk a number.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final
from urllib.parse import unquote

from graph.numbers import digits, mask

_SEP: Final = r"(?:[^\S\r\n]|[\-./()+]|%20|%2[8-9dDeEfF]|%[cC]2%[aA]0)"
_NUMBER: Final = re.compile(
    # Not inside a word, an id or a percent-escape, but right after a whole escape ("%27" + number) is fine.
    r"(?:(?<![0-9A-Za-z%])|(?<=%[0-9A-Fa-f]{2}))"
    rf"(?P<plus>(?:\+|%2[bB]){_SEP}{{0,2}})?"
    rf"\d(?:{_SEP}{{0,3}}\d)*"
)
_KEEP: Final = re.compile(
    # An object or request id.
    r"(?:(?<![0-9A-Za-z%-])|(?<=%[0-9A-Fa-f]{2}))[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Za-z-])"
    # An ISO timestamp (date and time), not glued to digits or a plus in front.
    r"|(?<![0-9A-Za-z+%\-./])(?<![0-9+] )(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?(?![0-9])"
    # A number masked before ("+49 170 ***4567", "***67"): masking twice changes nothing.
    r"|(?:(?<![0-9A-Za-z%])\+\d{1,3} |(?<![0-9A-Za-z%\-./(+])(?<![0-9] ))(?:\d{2,3} )?\*\*\*\d{0,4}(?![0-9])"
)
MIN_DIGITS_AFTER_PLUS: Final = 6
MIN_DIGITS: Final = 7
_MARK: Final = "_masks_phone_numbers"
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def mask_numbers(text: str) -> str:
    """The text with every phone-number-looking run masked (see the module's docstring)."""
    if not any("0" <= ch <= "9" for ch in text):
        return text
    out: list[str] = []
    pos = 0
    for kept in _KEEP.finditer(text):
        out.append(_NUMBER.sub(_masked, text[pos : kept.start()]))
        out.append(kept.group())
        pos = kept.end()
    out.append(_NUMBER.sub(_masked, text[pos:]))
    return "".join(out)


def _masked(match: re.Match[str]) -> str:
    raw = match.group()
    plus = match.group("plus")
    found = digits(raw[len(plus) :] if plus else raw)
    if len(found) < (MIN_DIGITS_AFTER_PLUS if plus else MIN_DIGITS):
        return raw
    rest = unquote(raw[len(plus) :] if plus else raw).replace("+", " ")
    return mask(("+" if plus else "") + rest)


def mask_record(record: logging.LogRecord) -> None:
    """Mask a record in place: message formatted with its arguments and masked, arguments dropped, traceback and
    stack formatted and masked. Never raises: a message that cannot be formatted is kept as its masked repr."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not break the caller or leak its arguments
        message = f"{record.msg!r} {record.args!r}"
    record.msg = mask_numbers(message)
    record.args = ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        try:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        except Exception:  # noqa: BLE001
            record.exc_text = repr(record.exc_info[1])
    if record.exc_text:
        record.exc_text = mask_numbers(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_numbers(record.stack_info)


class MaskNumbers(logging.Filter):
    """A handler filter: masks the record (as `mask_record`) and every text field added with ``extra=``."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask_numbers(value))
        return True


def install() -> None:
    """Mask every log record of the process from now on (see the module's docstring). Idempotent."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, _MARK, False):
        inner = factory

        def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = inner(*args, **kwargs)
            mask_record(record)
            return record

        setattr(masking_factory, _MARK, True)
        logging.setLogRecordFactory(masking_factory)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskNumbers) for f in handler.filters):
            handler.addFilter(MaskNumbers())

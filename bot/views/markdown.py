"""Text from outside made inert where Teams renders markdown.

Display names, UPNs, approvers' reasons, ticket text, Graph's messages and whatever a person typed come from
outside; Teams renders markdown both in Adaptive Card TextBlocks and in plain-text chat messages, so such text
could otherwise carry a link (``[Re-verify your MFA](https://evil.example)``), an image, emphasis or a heading.

* `escape` is the one markdown escape: markdown- and HTML-significant characters (``\\ ` * _ { } [ ] ( ) < > ~ | !``)
  are backslash-escaped, line breaks collapse to spaces and a line start that would make a heading, quote or
  list (``#``, ``>``, ``+ ``, ``- ``, ``1.``) is escaped. The card builders apply it to every string they put in a
  TextBlock or Fact (`bot.views.cards.md`).
* `chat_text` is what a plain-text chat message goes out as: `escape`, after web addresses are defanged so no
  client turns them into links (``https://evil.example/x`` -> ``https[:]//evil[.]example/x``, ``www.evil.com`` ->
  ``www[.]evil[.]com``; an e-mail address is left as it is). `bot.teams.handler.InertText` applies it to the text of
  every message the bot sends or updates (turn replies and proactive messages alike), so the bot's text
  messages carry no markdown and no links of their own: links go on cards, as buttons.

Backslash escapes rather than zero-width characters: what a person copies out of a message is what they see.
"""

from __future__ import annotations

import re
from typing import Final

_MD_SPECIAL: Final = re.compile(r"([\\`*_{}\[\]()<>~|!])")
_LINE_START: Final = re.compile(r"^(\s*)(?:([#>=]|[+\-](?=\s))|(\d+)([.)])(?=\s|$))")
_WHITESPACE: Final = re.compile(r"[\s\u0085\u2028\u2029]+")
# "scheme://": the colon becomes "[:]".
_SCHEME: Final = re.compile(r"(?i)(?<![^\W_])([a-z][a-z0-9+.\-]{0,31}):(?=//)")
# A host name ("evil.example", "www.evil.com", an internationalised one): its dots become "[.]". Not inside a
# longer word and not the domain or the local part of an e-mail address.
_HOST: Final = re.compile(r"(?<![\w@.\-])(?:[^\W_](?:[\w\-]*[^\W_])?\.)+[^\W\d_]{2,63}(?![\w@\-]|\.[^\W_])")


def escape(value: object) -> str:
    """Plain text made safe for a markdown-rendering TextBlock, Fact or message: markdown-significant characters
    are backslash-escaped, line breaks collapse to spaces (no injected headings or lists), so a hostile display
    name cannot inject a link, an image or emphasis."""
    text = _WHITESPACE.sub(" ", str(value)).strip()
    text = "".join(ch for ch in text if ch >= " " or ch == "\t")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(_escape_line_start, text)


def _escape_line_start(m: re.Match[str]) -> str:
    if m.group(2):  # heading, quote, setext underline or bullet
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"  # ordered list "1." -> "1\."


def defang(text: str) -> str:
    """Web addresses written so that no client links them: "https://a.example/x" -> "https[:]//a[.]example/x"."""
    text = _SCHEME.sub(r"\1[:]", text)
    return _HOST.sub(lambda m: m.group().replace(".", "[.]"), text)


def chat_text(text: str) -> str:
    """The text of a plain-text chat message as it is sent: defanged, then escaped."""
    return escape(defang(text))

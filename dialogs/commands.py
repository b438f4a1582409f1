"""The chat commands, parsed from what a person types (pure; no Bot Framework)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

CommandName = Literal[
    "help", "set", "remove", "history", "status", "cancel", "unlock", "register_approvals", "unknown"
]

MAX_COMMAND_CHARS = 1000
_MENTION = re.compile(r"<at>[^<]{0,200}</at>", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    name: CommandName
    argument: str = ""


def parse_command(text: str | None) -> Command:
    """'help' | 'set phone' | 'remove phone' | 'history <user>' | 'status <request id>' | 'cancel' |
    'unlock <user>' | 'register approvals'; case and extra spaces do not matter, a leading bot mention is ignored."""
    if not text or not isinstance(text, str):
        return Command("unknown")
    cleaned = _MENTION.sub(" ", text[:MAX_COMMAND_CHARS]).replace("\u00a0", " ")
    words = cleaned.split()
    if not words:
        return Command("unknown")
    head = words[0].lower().lstrip("/")
    rest = words[1:]
    if head in ("help", "hilfe", "?") and not rest:
        return Command("help")
    if head in ("set", "update", "change") and (not rest or rest[0].lower() in ("phone", "mobile", "number")):
        return Command("set")
    if head in ("remove", "delete") and (not rest or rest[0].lower() in ("phone", "mobile", "number")):
        return Command("remove")
    if head == "history":
        return Command("history", rest[0] if len(rest) == 1 else " ".join(rest))
    if head == "status":
        return Command("status", rest[0] if len(rest) == 1 else " ".join(rest))
    if head in ("unlock", "entsperren"):
        return Command("unlock", rest[0] if len(rest) == 1 else " ".join(rest))
    if head in ("cancel", "abbrechen") and not rest:
        return Command("cancel")
    if head == "register" and len(rest) == 1 and rest[0].lower() in ("approvals", "approvers"):
        return Command("register_approvals")
    return Command("unknown", cleaned.strip()[:80])

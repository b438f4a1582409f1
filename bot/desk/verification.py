"""Caller verification: before any change, the desk makes sure the person on the phone is the user.

The seam to Teams delivery: the desk asks a `Reacher` to put a card in front of a person in Teams (1:1) and gets a
`Delivery` back: delivered with the CardRef of the sent card (role "verifier", for in-place updates), or the reason
it was not. bot/teams/reach.py implements it; tests pass their own. None means Teams confirmation is unavailable
("not_configured").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.persistence.models import CardRef

# Delivery.reason values (each has a text "verify.undelivered.<reason>" in bot/views/texts.py)
UNDELIVERED_REASONS = (
    "not_configured",
    "app_not_in_catalog",
    "blocked_by_policy",
    "permission_missing",
    "graph_error",
    "send_failed",
)


@dataclass(frozen=True)
class Recipient:
    """Who must get the card."""

    aad_object_id: str
    display_name: str
    user_principal_name: str


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    card_ref: CardRef | None = None  # where the card went (for in-place updates: role "verifier")
    # when not delivered: "not_configured" (no TEAMS_APP_ID and no stored conversation) | "app_not_in_catalog" |
    # "blocked_by_policy" | "permission_missing" | "graph_error" | "send_failed"
    reason: str | None = None
    detail: str = ""  # for logs/admins only


class Reacher(Protocol):
    async def send_card(self, recipient: Recipient, card: dict[str, Any]) -> Delivery: ...

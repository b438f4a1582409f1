"""The short reference of a change request (`MFA-7K3Q9`): what people read on cards, say on the phone and type
into `status`. The full request id (uuid4 hex) stays the key in the database and in card data.

Five characters from Crockford's base32 alphabet (digits and letters without I, L, O and U, so no look-alikes):
32^5 = 33.5 million references, drawn at random (`secrets`); the store keeps them unique (a unique index) and
draws again on the rare collision. What people type is read as Crockford reads it: case does not matter, spaces,
hyphens and the `MFA` prefix may be left out or added, O is read as 0 and I or L as 1.
"""

from __future__ import annotations

import secrets
from typing import Final

PREFIX: Final = "MFA-"
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
LENGTH: Final = 5
MAX_TYPED_CHARS: Final = 32  # longer input is no reference (and is not worth reading)

_TYPED: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})  # Crockford's decoding of look-alikes
_SEPARATORS: Final = frozenset(" -_.\t")


def new_ref() -> str:
    """A random reference such as "MFA-7K3Q9" (not checked for uniqueness: the store does that)."""
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def parse_ref(text: str) -> str | None:
    """The reference `text` names, in its stored form ("MFA-7K3Q9"), or None when it is no reference.

    Accepts "MFA-7K3Q9", "mfa-7k3q9", "MFA 7K3Q9", "mfa7k3q9", "7K3Q9", "7k3q9" and the look-alikes O (for 0)
    and I or L (for 1). U is not in the alphabet: a reference with U is none."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if len(text) > MAX_TYPED_CHARS:
        return None
    compact = "".join(c for c in text.upper() if c not in _SEPARATORS)
    if len(compact) == len(PREFIX) - 1 + LENGTH and compact.startswith(PREFIX[:-1]):
        compact = compact[len(PREFIX) - 1 :]
    if len(compact) != LENGTH:
        return None
    body = compact.translate(_TYPED)
    if any(c not in ALPHABET for c in body):
        return None
    return PREFIX + body


__all__ = ["ALPHABET", "LENGTH", "PREFIX", "new_ref", "parse_ref"]

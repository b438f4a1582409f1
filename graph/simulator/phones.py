"""Phone number checks as Graph's phoneMethods API applies them (graph-behaviour.md §1)."""

from __future__ import annotations

import re

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

MOBILE_ID = "3179e48a-750b-4051-897c-87b9720928f7"
ALTERNATE_MOBILE_ID = "b6332ec1-7057-4abe-9331-3d72feddfe41"
OFFICE_ID = "e37fc753-ff3b-4958-9484-eaa9425c82bc"
METHOD_IDS = {"mobile": MOBILE_ID, "alternateMobile": ALTERNATE_MOBILE_ID, "office": OFFICE_ID}
METHOD_TYPES = {v: k for k, v in METHOD_IDS.items()}
PHONE_TYPES = tuple(METHOD_IDS)

_FORMAT = re.compile(r"^\+(\d[\d ]*?)(?:[xX](\d{1,10}))?$")


class InvalidPhoneNumber(ValueError):
    pass


def digits(number: str) -> str:
    """The comparison key: digits only, extension dropped."""
    base = re.split(r"[xX]", number, maxsplit=1)[0]
    return "".join(ch for ch in base if ch.isdigit())


def _split_country_code(number_digits: str) -> tuple[str, str] | None:
    for length in (1, 2, 3):
        cc = number_digits[:length]
        if int(cc or "0") in COUNTRY_CODE_TO_REGION_CODE and cc[0] != "0":
            return cc, number_digits[length:]
    return None


def check_number(raw: object, phone_type: str, *, normalise: bool = True) -> str:
    """Validate a phoneNumber sent to Graph and return the form Graph stores.

    Accepted: ``+CC NNN`` (the documented form, optional ``xEXT`` for office phones) and, as observed in production,
    ``+CCNNN`` without the space, which Graph returns as ``+CC NNN`` (country code split by the real plan) when
    ``normalise`` is on; with it off the number is kept as sent.
    """
    if not isinstance(raw, str) or not raw:
        raise InvalidPhoneNumber("phoneNumber is required.")
    match = _FORMAT.match(raw)
    if not match:
        raise InvalidPhoneNumber(f"Invalid phone number format: '{raw}'.")
    body, extension = match.group(1), match.group(2)
    if extension and phone_type != "office":
        raise InvalidPhoneNumber("Phone extensions are supported only for office phones.")
    body = body.rstrip()
    if " " in body:
        cc, rest = body.split(" ", 1)
        if int(cc) not in COUNTRY_CODE_TO_REGION_CODE:
            raise InvalidPhoneNumber(f"Invalid country code '+{cc}'.")
        national = rest.replace(" ", "")
        spaced = True
    else:
        split = _split_country_code(body)
        if split is None:
            raise InvalidPhoneNumber("Invalid country code.")
        cc, national = split
        spaced = False
    if not 4 <= len(national) <= 14 or len(cc) + len(national) > 15:
        raise InvalidPhoneNumber(f"Invalid phone number length: '{raw}'.")
    if not normalise and not spaced:
        return raw
    if not normalise:
        return raw
    return f"+{cc} {national}" + (f"x{extension}" if extension else "")

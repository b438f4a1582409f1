"""Phone numbers as helpdesk agents type them, checked before any Graph call.

`parse_number` accepts what people type (``+49 170 1234567``, ``+49 (0)170-1234567``, ``0049 170 1234567``,
a national number when a default region is configured) and returns the forms the product needs: E.164 for
comparing and storing, and Graph's ``+CC NNN`` form for writing. Anything else is refused with an
`InvalidNumber` that carries an English reason for people and a stable `code` for translations.

Non-ASCII digits (full-width ``４``, Arabic-Indic ``٤`` ...) are refused rather than converted: the agent must
see and confirm exactly the digits that will be stored, and look-alike digits pasted from elsewhere are more
often a mistake (or a trick) than an intent.

`same_number` (on `number_key`) is the one way numbers are compared: a stored number that kept the trunk zero
after the country code ("+49 0170 1234567", typed that way into a portal or an older tool) is the same number as
"+49 170 1234567". `mask` is the one way a number appears in logs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

# Longest input looked at. The longest sensible spelling of a number ("+49 (0) 170 / 123 45 67") is far
# shorter; anything longer is refused before any parsing so a pasted document costs nothing.
MAX_INPUT_CHARS: Final = 40
# E.164: at most 15 digits including the country code.
MAX_DIGITS: Final = 15
MIN_DIGITS: Final = 6

# Every code InvalidNumber.code can take (translations key on these).
REASON_CODES: Final = (
    "empty",
    "too_long",
    "control_characters",
    "non_ascii_digits",
    "extension",
    "letters",
    "invalid_character",
    "misplaced_plus",
    "not_a_number",
    "no_country_code",
    "invalid_country_code",
    "too_short",
    "invalid_for_region",
)

_ALLOWED_PUNCTUATION: Final = frozenset(" +()-./")
_EXTENSION = re.compile(r"(?:x|ext\.?|extension|durchwahl|dw\.?|#)\s*\d{1,8}\s*$", re.IGNORECASE)
_MOBILE_TYPES: Final = {PhoneNumberType.MOBILE: True, PhoneNumberType.FIXED_LINE_OR_MOBILE: None}
_TYPE_WORDS: Final = {
    PhoneNumberType.FIXED_LINE: "a fixed-line number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company switchboard number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
}


class InvalidNumber(ValueError):
    """A number that cannot be used. `reason` is one English sentence for a helpdesk agent, `code` is stable
    (one of REASON_CODES) and `details` holds the values a translated text needs (e.g. the character)."""

    def __init__(self, reason: str, code: str, details: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.details: dict[str, str] = dict(details or {})

    def __repr__(self) -> str:
        return f"InvalidNumber(code={self.code!r}, reason={self.reason!r})"


@dataclass(frozen=True)
class ParsedNumber:
    e164: str  # "+491701234567"
    graph: str  # "+49 1701234567": country code, one space, national significant number
    region: str  # "DE" ("001" for non-geographic numbers)
    is_mobile: bool | None  # None: the numbering plan does not tell (e.g. US numbers)
    warnings: list[str] = field(default_factory=list)
    international: str = ""  # "+49 170 1234567", for showing to people

    @property
    def masked(self) -> str:
        return mask(self.e164)


def parse_number(text: str | None, default_region: str | None = None) -> ParsedNumber:
    """Parse what an agent typed; raise InvalidNumber with the reason when it cannot be used."""
    if text is None or not isinstance(text, str):
        raise InvalidNumber("No phone number was given.", "empty")
    if len(text) > MAX_INPUT_CHARS * 4:
        raise InvalidNumber(_too_long_reason(), "too_long")
    # Any Unicode space (no-break spaces come with copy and paste from Teams and Outlook) counts as a space.
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text).strip()
    if not text:
        raise InvalidNumber("No phone number was given.", "empty")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidNumber(_too_long_reason(), "too_long")
    _check_characters(text)

    cleaned = text
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    digit_count = sum(ch.isdigit() for ch in cleaned)
    if digit_count == 0:
        raise InvalidNumber("This is not a phone number: it contains no digits.", "not_a_number")
    if digit_count > MAX_DIGITS + 1:  # +1: a "(0)" trunk digit is allowed on top
        raise InvalidNumber(_too_long_reason(), "too_long")

    region = default_region.strip().upper() if default_region else None
    if not cleaned.startswith("+") and not region:
        raise InvalidNumber(
            "The number has no country code. Add it, for example +49 170 1234567 or 0049 170 1234567.",
            "no_country_code",
        )
    try:
        number = phonenumbers.parse(cleaned, None if cleaned.startswith("+") else region)
    except NumberParseException as exc:
        raise _from_parse_error(exc, region) from None

    _check_possible(number)
    national = phonenumbers.national_significant_number(number)
    cc = int(number.country_code or 0)
    if len(str(cc)) + len(national) > MAX_DIGITS:
        raise InvalidNumber(_too_long_reason(), "too_long")
    region_code = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(cc)
    if not phonenumbers.is_valid_number(number):
        place = _place_name(number, cc)
        raise InvalidNumber(
            f"This is not a valid phone number in {place}. Check the digits and the country code.",
            "invalid_for_region",
            {"country_code": str(cc), "region": region_code or ""},
        )

    number_type = phonenumbers.number_type(number)
    warnings: list[str] = []
    is_mobile: bool | None
    if number_type in _MOBILE_TYPES:
        is_mobile = _MOBILE_TYPES[number_type]
    else:
        is_mobile = False
        kind = _TYPE_WORDS.get(number_type, "not a mobile number")
        warnings.append(
            f"This looks like {kind}, not a mobile number: text messages with sign-in codes may not arrive."
            if kind.startswith("a ")
            else "This does not look like a mobile number: text messages with sign-in codes may not arrive."
        )
    return ParsedNumber(
        e164=f"+{cc}{national}",
        graph=f"+{cc} {national}",
        region=region_code or "ZZ",
        is_mobile=is_mobile,
        warnings=warnings,
        international=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    )


def digits(number: str) -> str:
    """The ASCII digits of a number: "+49 170 1234567" -> "491701234567". The one way numbers are compared."""
    return "".join(ch for ch in number if "0" <= ch <= "9")


@lru_cache(maxsize=4096)
def number_key(number: str | None) -> str:
    """The comparison key of a number: the digits of its E.164 form, country code first, extension left out.

    A number in international form ("+CC ..." or "00CC ...") goes through the numbering plan of its country, so a
    trunk zero kept after the country code is dropped ("+49 0170 1234567" -> "491701234567") where the country
    dials one, and kept where it is part of the number (Italy: "+39 06 1234 5678" -> "390612345678"). A number
    the plan cannot read, or one without a country code, is compared by its digits."""
    if not number:
        return ""
    main = _without_extension(number).strip()
    all_digits = digits(main)
    if main.startswith("00"):
        all_digits = all_digits[2:]
    elif not main.startswith("+"):
        return all_digits
    if not all_digits:
        return ""
    try:
        parsed = phonenumbers.parse("+" + all_digits, None)
    except NumberParseException:
        return all_digits
    national = phonenumbers.national_significant_number(parsed)
    return f"{parsed.country_code}{national}" if national else all_digits


def same_number(a: str | None, b: str | None) -> bool:
    """Whether two numbers are the same number (see number_key); an empty number is never the same as another."""
    key = number_key(a)
    return bool(key) and key == number_key(b)


def last_digits(number: str | None, count: int = 4) -> str:
    """The last `count` digits (fewer for very short numbers, so some stay hidden); "" for None."""
    d = digits(_without_extension(number or ""))
    keep = min(count, max(len(d) - 4, 0))
    return d[-keep:] if keep else ""


def mask(number: str | None) -> str:
    """A number fit for logs and chat: "+49 1701234567" -> "+49 170 ***4567". Short numbers hide more;
    the full digit string never appears. None or blank -> "—"."""
    if number is None or not number.strip():
        return "—"
    main = _without_extension(number).strip()
    all_digits = digits(main)
    if main.startswith("00"):
        all_digits = all_digits[2:]
    cc = _country_code(all_digits) if main.startswith(("+", "00")) else ""
    national = all_digits[len(cc) :]
    if not national:
        return "***"
    n = len(national)
    head, tail = (3, 4) if n >= 10 else (2, 2) if n >= 7 else (0, 2) if n >= 4 else (0, 0)
    shown = (national[:head] + " " if head else "") + "***" + (national[-tail:] if tail else "")
    return f"+{cc} {shown}" if cc else shown


# ------------------------------------------------------------------------------------------------ helpers


def _too_long_reason() -> str:
    return (
        f"The number is too long: a phone number has at most {MAX_DIGITS} digits including the country code."
    )


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def _check_characters(text: str) -> None:
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "C":  # control, format (zero-width, direction marks), private use, unassigned
            raise InvalidNumber(
                f"The number contains an invisible control character ({_describe(ch)}). Type it again by hand.",
                "control_characters",
                {"character": f"U+{ord(ch):04X}"},
            )
    for ch in text:
        if not ch.isascii() and (ch.isdigit() or ch.isnumeric()):
            raise InvalidNumber(
                f"The number contains the digit '{ch}' ({_describe(ch)}), which is not one of 0-9. "
                "Type it with the digits 0-9.",
                "non_ascii_digits",
                {"character": ch},
            )
    if any(ch.isalpha() for ch in text):
        if _EXTENSION.search(text) and not any(ch.isalpha() for ch in _EXTENSION.sub("", text)):
            raise _extension()
        letter = next(ch for ch in text if ch.isalpha())
        raise InvalidNumber(
            f"The number contains the letter '{letter}'. Type only digits, with spaces, + ( ) - . / if you like.",
            "letters",
            {"character": letter},
        )
    if _EXTENSION.search(text):  # "#123"
        raise _extension()
    for ch in text:
        if not ch.isdigit() and ch not in _ALLOWED_PUNCTUATION:
            raise InvalidNumber(
                f"The number contains '{ch}', which is not allowed. Type only digits, with spaces, "
                "+ ( ) - . / if you like.",
                "invalid_character",
                {"character": ch},
            )
    if "+" in text[1:] or text.count("+") > 1:
        raise InvalidNumber(
            "The + sign may appear only once, at the start, before the country code.", "misplaced_plus"
        )


def _from_parse_error(exc: NumberParseException, region: str | None) -> InvalidNumber:
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        if region and not phonenumbers.country_code_for_region(region):
            return InvalidNumber(
                f"The configured default region '{region}' is not a known country code; "
                "type the number with its country code.",
                "no_country_code",
            )
        return InvalidNumber(
            "The country code is not valid. Start with + and a real country code, for example +49 for Germany.",
            "invalid_country_code",
        )
    if exc.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return _too_short()
    if exc.error_type == NumberParseException.TOO_LONG:
        return InvalidNumber(_too_long_reason(), "too_long")
    return InvalidNumber("This is not a phone number.", "not_a_number")


def _extension() -> InvalidNumber:
    return InvalidNumber(
        "Mobile phone numbers have no extension. Remove the extension at the end (x, ext or #) and try again.",
        "extension",
    )


def _too_short() -> InvalidNumber:
    return InvalidNumber("The number is too short: some digits are missing.", "too_short")


def _check_possible(number: phonenumbers.PhoneNumber) -> None:
    national = phonenumbers.national_significant_number(number)
    if len(str(number.country_code)) + len(national) < MIN_DIGITS:
        raise _too_short()
    result = phonenumbers.is_possible_number_with_reason(number)
    if result == ValidationResult.INVALID_COUNTRY_CODE:
        raise InvalidNumber(
            "The country code is not valid. Start with + and a real country code, for example +49 for Germany.",
            "invalid_country_code",
        )
    if result == ValidationResult.TOO_SHORT:
        raise _too_short()
    if result == ValidationResult.TOO_LONG:
        raise InvalidNumber(
            f"The number is too long for country code +{number.country_code}: there are extra digits.",
            "too_long",
        )


def _place_name(number: phonenumbers.PhoneNumber, cc: int) -> str:
    from phonenumbers import geocoder  # loaded only when needed: its data takes a moment to load

    name = geocoder.country_name_for_number(number, "en")
    if not name:
        region = phonenumbers.region_code_for_country_code(cc)
        name = region if region and region not in ("ZZ", "001") else ""
    return f"{name} (+{cc})" if name else f"the numbering plan of +{cc}"


def _without_extension(number: str) -> str:
    for sep in ("x", "X", ";ext=", "#"):
        if sep in number:
            number = number.split(sep, 1)[0]
    return number


def _country_code(all_digits: str) -> str:
    for length in (1, 2, 3):
        head = all_digits[:length]
        if len(all_digits) > length and phonenumbers.region_code_for_country_code(int(head)) != "ZZ":
            return head
    return ""

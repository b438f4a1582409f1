"""What agents type, what the product sends to Graph, and what it refuses (with which reason)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.numbers import (
    REASON_CODES,
    InvalidNumber,
    ParsedNumber,
    digits,
    last_digits,
    mask,
    number_key,
    parse_number,
    same_number,
)

GERMAN_MOBILE = ("+491701234567", "+49 1701234567")


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("+49 01701234567", "+49 170 1234567"),  # the trunk zero kept after the country code
        ("+49 0170 1234567", "+49 1701234567"),
        ("+4901701234567", "+491701234567"),
        ("0049 0170 1234567", "+49 170 1234567"),
        ("+49 (0)170 1234567", "+49 170 1234567"),
        ("+43 0664 1234567", "+43 664 1234567"),  # Austria
        ("+33 0612345678", "+33 6 12 34 56 78"),  # France
        ("+44 07911 123456", "+44 7911 123456"),  # United Kingdom
        ("+41 079 123 45 67", "+41 79 123 45 67"),  # Switzerland
        ("+49 1701234567", "+49 170 1234567"),  # no trunk zero at all
    ],
)
def test_a_stored_number_that_kept_the_trunk_zero_is_the_same_number(stored: str, typed: str) -> None:
    assert same_number(stored, typed) and same_number(typed, stored)
    assert number_key(stored) == digits(parse_number(typed).e164)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("+39 06 12345678", "+39 6 12345678"),  # Italy: the leading zero is part of the number
        ("+49 01701234567", "+49 1701234568"),
        ("+49 1701234567", "+43 1701234567"),
        ("+49 1701234567", ""),
        ("", ""),
        (None, None),
    ],
)
def test_different_numbers_stay_different(a: str | None, b: str | None) -> None:
    assert not same_number(a, b)


def test_an_italian_number_keeps_its_leading_zero_in_the_key() -> None:
    assert number_key("+39 06 1234 5678") == "390612345678"
    assert same_number("+39 06 1234 5678", parse_number("+39 06 1234 5678").e164)


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("+49 170 1234567", None),
        ("+49 (0)170-1234567", None),
        ("+49 (0) 170 / 123 45 67", None),
        ("0049 170 1234567", None),
        ("00491701234567", None),
        ("+491701234567", None),
        ("+49 1701234567", None),
        ("+49.170.123.4567", None),
        ("+49-170-123-4567", None),
        ("  +49 170 1234567  ", None),
        ("+49\u00a0170\u00a01234567", None),  # no-break spaces from copy and paste
        ("+49 01701234567", None),  # trunk zero typed after the country code
        ("0170 1234567", "DE"),
        ("0170/1234567", "de"),
        ("(0170) 123 45 67", "DE"),
        ("+49 170 1234567", "US"),  # an explicit country code beats the default region
    ],
)
def test_accepts_what_agents_type_and_gives_graph_the_spaced_form(typed: str, region: str | None) -> None:
    parsed = parse_number(typed, default_region=region)
    assert (parsed.e164, parsed.graph) == GERMAN_MOBILE
    assert parsed.region == "DE"
    assert parsed.is_mobile is True
    assert parsed.warnings == []
    assert parsed.international == "+49 170 1234567"


@pytest.mark.parametrize(
    ("typed", "e164", "graph", "region"),
    [
        ("+1 206 555 0100", "+12065550100", "+1 2065550100", "US"),
        ("+31 6 12345678", "+31612345678", "+31 612345678", "NL"),
        ("+43 664 1234567", "+436641234567", "+43 6641234567", "AT"),
        ("+41 79 123 45 67", "+41791234567", "+41 791234567", "CH"),
        ("+44 7400 123456", "+447400123456", "+44 7400123456", "GB"),
    ],
)
def test_graph_form_is_country_code_space_national_number_without_further_spaces(
    typed: str, e164: str, graph: str, region: str
) -> None:
    parsed = parse_number(typed)
    assert (parsed.e164, parsed.graph, parsed.region) == (e164, graph, region)
    assert parsed.graph.count(" ") == 1


def test_us_number_is_mobile_unknown_because_the_plan_does_not_tell() -> None:
    parsed = parse_number("+1 206 555 0100")
    assert parsed.is_mobile is None
    assert parsed.warnings == []


@pytest.mark.parametrize(
    ("typed", "word"),
    [("+49 30 1234567", "fixed-line"), ("+49 800 1234567", "toll-free"), ("+39 06 1234 5678", "fixed-line")],
)
def test_non_mobile_number_is_accepted_with_a_warning(typed: str, word: str) -> None:
    parsed = parse_number(typed)
    assert parsed.is_mobile is False
    assert len(parsed.warnings) == 1
    assert word in parsed.warnings[0]
    assert "not a mobile number" in parsed.warnings[0]


def test_italian_leading_zero_is_kept_in_the_graph_form() -> None:
    assert parse_number("+39 06 1234 5678").graph == "+39 0612345678"


@pytest.mark.parametrize(
    ("typed", "region", "code", "words"),
    [
        ("", None, "empty", "No phone number"),
        ("   ", None, "empty", "No phone number"),
        ("\t\n", None, "empty", "No phone number"),
        (None, None, "empty", "No phone number"),
        ("0170 1234567", None, "no_country_code", "country code"),
        ("170 1234567", None, "no_country_code", "country code"),
        ("0170 1234567", "XX", "no_country_code", "default region 'XX'"),
        ("+49 170 CALLME", None, "letters", "letter 'C'"),
        ("abc", None, "letters", "letter 'a'"),
        ("tel:+491701234567", None, "letters", "letter 't'"),
        ("+49 170 1234567 x12", None, "extension", "no extension"),
        ("+49 170 1234567 ext. 12", None, "extension", "no extension"),
        ("+49 170 1234567#12", None, "extension", "no extension"),
        ("+４９ １７０ １２３４５６７", None, "non_ascii_digits", "FULLWIDTH DIGIT FOUR"),
        ("+49 ١٧٠ 1234567", None, "non_ascii_digits", "ARABIC-INDIC DIGIT"),
        ("+49 170 123456\u00b2", None, "non_ascii_digits", "SUPERSCRIPT TWO"),
        ("+49 170\x07 1234567", None, "control_characters", "U+0007"),
        ("+49 170\x00 1234567", None, "control_characters", "U+0000"),
        ("+49 170\u200b1234567", None, "control_characters", "ZERO WIDTH SPACE"),
        ("+49 170\u202e1234567", None, "control_characters", "RIGHT-TO-LEFT OVERRIDE"),
        ("+49 170 1234567\n+49 171 7654321", None, "control_characters", "U+000A"),
        ("+49 170 123*4567", None, "invalid_character", "'*'"),
        ("+49, 170 1234567", None, "invalid_character", "','"),
        ("+49 170 1234567;", None, "invalid_character", "';'"),
        ("49+1701234567", None, "misplaced_plus", "+ sign"),
        ("++491701234567", None, "misplaced_plus", "+ sign"),
        ("+-()", None, "not_a_number", "no digits"),
        ("+", None, "not_a_number", "no digits"),
        ("+49 1", None, "too_short", "too short"),
        ("+49 17", None, "too_short", "too short"),
        ("+1 234", None, "too_short", "too short"),
        ("017", "DE", "too_short", "too short"),
        ("0170", "DE", "invalid_for_region", "Germany (+49)"),
        ("+49 170 123456789012345", None, "too_long", "too long"),
        ("+49 1701234567891234", None, "too_long", "too long"),
        ("+44 7400 1234567890", None, "too_long", "too long"),
        ("+49 " + "1 " * 30, None, "too_long", "too long"),
        ("+999 1234567", None, "invalid_country_code", "country code"),
        ("+49 1234567890", None, "invalid_for_region", "Germany (+49)"),
        ("+1 011 555 0100", None, "invalid_for_region", "+1"),
    ],
)
def test_refuses_bad_input_with_a_clear_reason_and_a_stable_code(
    typed: str | None, region: str | None, code: str, words: str
) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number(typed, default_region=region)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert code in REASON_CODES
    assert words in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert caught.value.reason.endswith(".")


def test_reasons_never_repeat_the_full_number() -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number("+49 1234567890")
    assert "1234567890" not in digits(caught.value.reason)


def test_letter_refusal_names_the_letter_for_translations() -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number("+49 170 12345Z7")
    assert caught.value.details == {"character": "Z"}


def _calls_made(text: str) -> int:
    """How many Python and built-in function calls parse_number(text) makes before it gives its answer: a
    measure of its work that, unlike a stopwatch, does not depend on how busy the machine is."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        parse_number(text)
    except InvalidNumber:
        pass
    finally:
        sys.setprofile(previous)
    return calls


def test_ten_kilobytes_of_input_is_refused_quickly() -> None:
    for blob in (
        "1" * 10_240,
        "+" + "(" * 10_240,
        "x" * 10_240,
        " " * 10_240 + "+49 170 1234567",
        "+49 170 " * 1300,
    ):
        with pytest.raises(InvalidNumber) as caught:
            parse_number(blob)
        assert caught.value.code == "too_long"
        # Refused before looking at the characters: ten times the input costs not a single call more (a scan
        # of the text, one call per character, would cost 10 000 and then 100 000).
        ten_times = blob * 10
        with pytest.raises(InvalidNumber, match="too long"):
            parse_number(ten_times)
        assert _calls_made(ten_times) == _calls_made(blob) < 100


def test_parsed_number_masks_itself_for_logs() -> None:
    assert parse_number("+49 170 1234567").masked == "+49 170 ***4567"


# ------------------------------------------------------------------------------------------ digits and mask


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+49 170 1234567", "491701234567"),
        ("+49 1701234567", "491701234567"),
        ("+491701234567", "491701234567"),
        ("", ""),
        ("+４９", ""),  # only ASCII digits count
    ],
)
def test_digits_keeps_only_ascii_digits(number: str, expected: str) -> None:
    assert digits(number) == expected


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+49 1701234567", "+49 170 ***4567"),
        ("+491701234567", "+49 170 ***4567"),
        ("+49 170 1234567", "+49 170 ***4567"),
        ("0049 170 1234567", "+49 170 ***4567"),
        ("+1 2065550100", "+1 206 ***0100"),
        ("+1 5555551234x123", "+1 555 ***1234"),  # an office extension is dropped
        ("+44 7400123456", "+44 740 ***3456"),
        ("+49 30123456", "+49 30 ***56"),  # 8 national digits: less is shown
        ("+49 30 12345", "+49 30 ***45"),
        ("+49 301234", "+49 ***34"),
        ("+49 123", "+49 ***"),
        ("12345", "***45"),
        ("+49", "***"),
        (None, "—"),
        ("", "—"),
        ("   ", "—"),
    ],
)
def test_mask_keeps_country_code_first_three_and_last_four_and_hides_more_of_short_numbers(
    number: str | None, masked: str
) -> None:
    assert mask(number) == masked


@pytest.mark.parametrize(
    ("number", "tail"),
    [
        ("+49 1701234567", "4567"),
        ("+1 5555551234x123", "1234"),
        ("+49 12345", "345"),
        ("12345", "5"),
        ("+49", ""),
        (None, ""),
    ],
)
def test_last_digits_for_the_mail_hides_all_but_the_end(number: str | None, tail: str) -> None:
    assert last_digits(number) == tail


# ------------------------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_raises_anything_but_invalid_number(text: str) -> None:
    try:
        result = parse_number(text)
    except InvalidNumber as exc:
        assert exc.code in REASON_CODES
        assert exc.reason
    else:
        assert isinstance(result, ParsedNumber)


phone_like = st.text(alphabet="0123456789 +()-./x#", min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(phone_like, st.sampled_from([None, "DE", "US", "GB"]))
def test_parse_of_phone_like_text_never_raises_anything_but_invalid_number(
    text: str, region: str | None
) -> None:
    try:
        parsed = parse_number(text, region)
    except InvalidNumber as exc:
        assert exc.code in REASON_CODES
    else:
        assert digits(parsed.graph) == digits(parsed.e164)
        assert parsed.e164 == "+" + digits(parsed.e164)
        assert len(digits(parsed.e164)) <= 15


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["+49", "+1", "+44", "+31", "+43", "+41", "+33", "+39", "+7", "+86", "+91", "+353"]),
    st.text(alphabet="0123456789", min_size=4, max_size=13),
)
def test_graph_form_and_e164_have_the_same_digits(prefix: str, rest: str) -> None:
    try:
        parsed = parse_number(f"{prefix} {rest}")
    except InvalidNumber:
        return
    assert digits(parsed.graph) == digits(parsed.e164)
    cc, national = parsed.graph.split(" ")
    assert cc == prefix and national.isdigit()


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_mask_never_contains_the_full_digit_string(text: str) -> None:
    full = digits(text.split("x")[0].split("X")[0].split("#")[0].split(";ext=")[0])
    masked = mask(text)
    if full:
        assert full not in masked
        assert digits(masked) != full


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=8, max_size=14))
def test_mask_of_an_international_number_never_shows_all_its_digits(national: str) -> None:
    number = "+49 " + national
    assert digits(number) not in digits(mask(number))

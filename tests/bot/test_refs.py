"""Short request references: how they are drawn and how what people type is read."""

from __future__ import annotations

import pytest

from bot.persistence.refs import ALPHABET, LENGTH, PREFIX, new_ref, parse_ref


def test_the_alphabet_is_crockford_base32_without_look_alikes() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)


def test_a_new_reference_is_the_prefix_and_five_characters_of_the_alphabet() -> None:
    drawn = [new_ref() for _ in range(200)]
    for ref in drawn:
        assert ref.startswith(PREFIX) and len(ref) == len(PREFIX) + LENGTH
        assert set(ref[len(PREFIX) :]) <= set(ALPHABET)
        assert parse_ref(ref) == ref
    assert len(set(drawn)) > 190  # random: 200 draws from 33.5 million hardly ever repeat


@pytest.mark.parametrize(
    "typed",
    [
        "MFA-7K3Q9",
        "mfa-7k3q9",
        "Mfa-7K3q9",
        "MFA 7K3Q9",
        "MFA7K3Q9",
        "7K3Q9",
        "7k3q9",
        " 7K3-Q9 ",
        "mfa_7k3q9",
        "MFA - 7K 3Q9",
    ],
)
def test_what_people_type_is_read_whatever_the_case_spaces_and_prefix(typed: str) -> None:
    assert parse_ref(typed) == "MFA-7K3Q9"


@pytest.mark.parametrize(
    ("typed", "ref"),
    [("MFA-1O0IL", "MFA-10011"), ("mfa-lo0io", "MFA-10010"), ("oooOO", "MFA-00000"), ("iIlL1", "MFA-11111")],
)
def test_look_alikes_are_read_as_crockford_reads_them(typed: str, ref: str) -> None:
    assert parse_ref(typed) == ref


def test_a_five_character_body_may_itself_start_with_mfa() -> None:
    assert parse_ref("MFA12") == "MFA-MFA12"
    assert parse_ref("MFA-MFA12") == "MFA-MFA12"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "MFA-",
        "MFA-7K3Q",
        "MFA-7K3Q9X",
        "MFX-7K3Q9",
        "MFA-7K3U9",  # U is not in the alphabet
        "MFA-7K3Q!",
        "MFA-7K3Qé",
        "5f0c1d2e3a4b5c6d7e8f901234567890",  # a full request id is not a reference
        "M F A - 7 K 3 Q 9" + " -" * 20,  # longer than anyone types a reference
    ],
)
def test_anything_else_is_no_reference(typed: str) -> None:
    assert parse_ref(typed) is None

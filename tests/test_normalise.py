import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy.keyring import Keyring
from privacy.normalise import normalise_email, normalise_phone, split_postcode
from privacy.pseudonymise import email_map, phone_map, pseudonym


@pytest.mark.parametrize(
    "raw", ["06-12345678", "+31 6 1234 5678", "0031612345678", "0612345678", " 06 12 34 56 78 "]
)
def test_dutch_phone_variants_are_one_number(raw):
    assert normalise_phone(raw) == "+31612345678"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "", None])
def test_unparseable_phone_is_missing(raw):
    assert normalise_phone(raw) is None


@given(
    local=st.from_regex(r"[a-z][a-z0-9.]{0,10}[a-z0-9]", fullmatch=True).filter(
        lambda s: ".." not in s
    ),
    pad_left=st.text(" \t", max_size=3),
    pad_right=st.text(" \t", max_size=3),
    flips=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_case_and_space_variants_of_an_email_are_one_person(local, pad_left, pad_right, flips):
    canonical = f"{local}@example.nl"
    variant = "".join(
        c.upper() if f else c for c, f in zip(canonical, flips + [False] * 40, strict=False)
    )
    assert normalise_email(pad_left + variant + pad_right) == canonical


def test_invalid_email_is_missing():
    assert normalise_email("jan at example") is None
    assert normalise_email("") is None


def test_postcode_is_cut_to_pc4():
    assert split_postcode("1234 ab") == ("1234", "1234AB")
    assert split_postcode("1234AB") == ("1234", "1234AB")
    assert split_postcode("B-1000") == (None, None)


def test_pseudonyms_depend_on_the_key_and_join_variants():
    ring_a = Keyring("a", "fa", b"a" * 32)
    ring_b = Keyring("b", "fb", b"b" * 32)
    table_a, bad = email_map(ring_a, ["Jan@Example.nl ", "jan@example.nl", "nonsense"])
    assert bad == 1
    pseudos = table_a.column("pseudonym").to_pylist()
    assert len(set(pseudos)) == 1
    table_b, _ = email_map(ring_b, ["jan@example.nl"])
    assert table_b.column("pseudonym").to_pylist()[0] != pseudos[0]
    phones, _ = phone_map(ring_a, ["06-12345678", "+31 6 1234 5678"])
    assert len(set(phones.column("pseudonym").to_pylist())) == 1


def test_pseudonym_is_not_the_plain_hash():
    import hashlib

    value = "jan@example.nl"
    assert pseudonym(b"k" * 32, "email", value) != hashlib.sha256(value.encode()).hexdigest()


def test_keyring_repr_hides_the_secret():
    ring = Keyring("k1", "abcd", b"s" * 32)
    assert "sss" not in repr(ring)


# The fast paths of privacy/normalise.py accept only what the full parsers accept, with the
# same result: if they ever disagreed, one person would get two pseudonyms depending on which
# path a value took.
from hypothesis import settings  # noqa: E402

from privacy.normalise import (  # noqa: E402
    _parsed_phone,
    _plain_dutch_phone,
    _plain_email,
    _validated_email,
)

_LOCAL = r"[a-z0-9]{1,8}(?:[._+-][a-z0-9]{1,8}){0,3}"
_DOMAIN = r"(?:[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?\.){1,3}[a-z]{2,8}"


@settings(max_examples=400, deadline=None)
@given(st.from_regex(rf"{_LOCAL}@{_DOMAIN}", fullmatch=True) | st.text(max_size=40))
def test_the_email_fast_path_accepts_only_what_email_validator_accepts(text):
    if _plain_email(text):
        assert _validated_email(text) == text


@pytest.mark.parametrize(
    "address", ["a@b.test", "a@x.localhost", "jan@xn--bcher-kva.de", "a..b@c.nl", ".a@c.nl",
                "a@-c.nl", "a@c-.nl", "a@c.n1", "a" * 65 + "@c.nl"],
)  # fmt: skip
def test_addresses_the_fast_path_leaves_to_the_full_check(address):
    assert not _plain_email(address)
    assert normalise_email(address) == _validated_email(address)


_NATIONAL = st.from_regex(r"[1-9][0-9]{8}", fullmatch=True)


@settings(max_examples=600, deadline=None)
@given(
    national=_NATIONAL,
    prefix=st.sampled_from(["0", "+31", "+31 ", "0031"]),
    sep=st.sampled_from(["", " ", "-", "  "]),
)
def test_the_phone_fast_path_agrees_with_phonenumbers(national, prefix, sep):
    written = prefix + national[:1] + sep + national[1:5] + sep + national[5:]
    text = "+" + written[2:] if written.startswith("00") else written
    fast = _plain_dutch_phone(text)
    if fast is not None:
        assert fast == _parsed_phone(text, "NL")
    assert normalise_phone(written) == _parsed_phone(text, "NL")


def test_the_phone_fast_path_takes_the_common_dutch_numbers():
    # mobile and Amsterdam fixed line: the shapes that make up nearly every delivery
    assert _plain_dutch_phone("0612345678") == "+31612345678"
    assert _plain_dutch_phone("+31201234567") == "+31201234567"
    assert _plain_dutch_phone("0800-1234") is None  # service numbers: the full path


def test_a_zero_width_character_inside_a_combined_letter_is_one_person():
    """Found by hypothesis in CI: 'e' + zero-width space + combining acute must compose to 'é'
    once the invisible character is gone."""
    assert normalise_email("0000000e\u200b\u0301.0000@0000000000.nl") == normalise_email(
        "0000000\u00e9.0000@0000000000.nl"
    )

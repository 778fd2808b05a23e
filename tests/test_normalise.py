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

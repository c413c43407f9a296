"""Password policy and hashing: cost 12, long passphrases, no silent truncation."""

from __future__ import annotations

import pytest

from control_api.auth.passwords import (
    MAX_CHARS,
    SCHEME,
    PasswordHasher,
    PasswordPolicyError,
    generate_password,
)


@pytest.fixture(scope="module")
def hasher():
    return PasswordHasher(cost=4)


def test_production_hasher_uses_bcrypt_cost_12():
    stored = PasswordHasher().hash("twelve chars")
    scheme, _, hashed = stored.partition("$")
    assert scheme == SCHEME
    assert hashed.startswith("$2b$12$")


def test_round_trip_and_wrong_password(hasher):
    stored = hasher.hash("correct horse battery")
    assert hasher.verify("correct horse battery", stored)
    assert not hasher.verify("correct horse batterY", stored)


@pytest.mark.parametrize("password", ["", "short", "elevenchars"])
def test_fewer_than_12_characters_is_refused(hasher, password):
    with pytest.raises(PasswordPolicyError, match="at least 12 characters"):
        hasher.hash(password)


def test_more_than_max_is_refused_clearly_and_never_verifies(hasher):
    with pytest.raises(PasswordPolicyError, match=f"at most {MAX_CHARS} characters"):
        hasher.hash("x" * (MAX_CHARS + 1))
    stored = hasher.hash("x" * MAX_CHARS)
    assert not hasher.verify("x" * (MAX_CHARS + 1), stored)


def test_passwords_differing_only_after_byte_72_are_different(hasher):
    # Raw bcrypt would read only the first 72 bytes and call these equal.
    common = "ü" * 40  # 80 bytes in UTF-8
    stored = hasher.hash(common + "one")
    assert hasher.verify(common + "one", stored)
    assert not hasher.verify(common + "two", stored)


def test_non_ascii_passphrases_are_normalised(hasher):
    composed, decomposed = "caf\u00e9 au lait ok", "cafe\u0301 au lait ok"
    assert hasher.verify(decomposed, hasher.hash(composed))


def test_unknown_account_check_does_the_same_bcrypt_work(hasher):
    assert hasher.verify("any password at all", None) is False


@pytest.mark.parametrize("stored", ["", "md5$abc", "bcrypt$$2b$04$invalid"])
def test_a_stored_value_of_another_scheme_never_matches(hasher, stored):
    assert not hasher.verify("any password at all", stored)


def test_generated_passwords_meet_the_policy_and_differ(hasher):
    first, second = generate_password(), generate_password()
    assert len(first) >= 24 and first != second
    hasher.hash(first)


@pytest.mark.parametrize("password,message", [
    ("password1234", "on the list of common and breached passwords"),
    ("PASSWORD1234", "on the list of common and breached passwords"),
    ("aaaaaaaaaaaaaaaa", "too easy to guess: Repeats like"),
    ("admin@example.test", "too easy to guess"),
])
def test_common_and_guessable_passwords_are_refused(password, message):
    from control_api.auth.passwords import check_strength

    with pytest.raises(PasswordPolicyError, match=message):
        check_strength(password, ("admin@example.test", "admin"))


def test_long_passphrases_pass_the_strength_check():
    from control_api.auth.passwords import check_strength

    check_strength("correct horse battery staple")
    check_strength("Überall sind Läuse, sagte der Fährmann zur blauen Möwe am Nordkap, "
                   "und dann fuhr er weiter nach Tromsø, wo es im Winter nie hell wird " * 5)

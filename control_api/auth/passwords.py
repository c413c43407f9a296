"""Password policy and hashing: bcrypt cost 12 over an HMAC-SHA256 pre-hash.

bcrypt reads at most 72 bytes and bcrypt 5 raises on longer input. Refusing long
passwords would punish passphrases (NIST SP 800-63B asks verifiers to accept at least
64 characters, and 64 non-ASCII characters exceed 72 bytes), while truncating
silently makes two different passphrases equal. So every password is NFKC-normalised
(SP 800-63B 5.1.1.2), pre-hashed with a domain-separated HMAC-SHA256 and base64
encoded (44 bytes, no NUL) before bcrypt: every character counts, at any length up to
MAX_CHARS. The stored value names its scheme so it can change later.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import unicodedata

import bcrypt
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

SCHEME = "bcrypt-hmac-sha256-v1"
DEFAULT_COST = 12
MIN_CHARS = 12
# Long enough for any passphrase; short enough that hashing cannot be used to burn CPU.
MAX_CHARS = 1024
_LABEL = b"weco/password-prehash/v1"


class PasswordPolicyError(ValueError):
    """The password does not meet the policy; str() says why, without echoing it."""


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str) -> None:
    length = len(_normalise(password))
    if length < MIN_CHARS:
        raise PasswordPolicyError(f"password must be at least {MIN_CHARS} characters")
    if length > MAX_CHARS:
        raise PasswordPolicyError(f"password must be at most {MAX_CHARS} characters")


def check_strength(password: str, context: tuple[str, ...] = ()) -> None:
    """The policy for a new password: length, not a known common or breached password
    (zxcvbn's bundled list of 30,000), and not easy to guess given `context` (the
    email, the product name): zxcvbn score 3 of 4 at least."""
    check_policy(password)
    normalised = _normalise(password)
    if normalised.casefold() in _common_passwords():
        raise PasswordPolicyError("password is on the list of common and breached passwords")
    # zxcvbn refuses input over 72 characters (and slows before): judge the start.
    result = zxcvbn(normalised[:72], user_inputs=[*context, "weco"])
    if result["score"] < 3:
        hint = result["feedback"]["warning"] or "add more words or characters"
        raise PasswordPolicyError(f"password is too easy to guess: {hint.rstrip('.')}")


@functools.cache
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def _prehash(password: str) -> bytes:
    digest = hmac.new(_LABEL, _normalise(password).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


def generate_password() -> str:
    """A random password well above the minimum: 24 characters, about 144 bits."""
    return secrets.token_urlsafe(18)


class PasswordHasher:
    def __init__(self, cost: int = DEFAULT_COST) -> None:
        self.cost = cost
        # Verifying against this when an account does not exist makes an unknown
        # email cost the same bcrypt work as a wrong password.
        self._dummy = bcrypt.hashpw(_prehash(generate_password()), bcrypt.gensalt(cost))

    def hash(self, password: str) -> str:
        check_policy(password)
        hashed = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(self.cost))
        return f"{SCHEME}${hashed.decode('ascii')}"

    def verify(self, password: str, stored: str | None) -> bool:
        """True if `password` matches `stored`; with stored=None, burn the same time."""
        if len(password) > MAX_CHARS:
            return False
        if stored is None:
            bcrypt.checkpw(_prehash(password), self._dummy)
            return False
        scheme, _, hashed = stored.partition("$")
        if scheme != SCHEME:
            return False
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))

"""Time and randomness as injectable collaborators, so tests never patch globals.

Times are naive UTC datetimes throughout the store: both backends keep them as
written, and nothing is ever compared across time zones.
"""

from __future__ import annotations

import datetime as dt
import secrets

_EPOCH = dt.datetime(1970, 1, 1)


def unix_seconds(moment: dt.datetime) -> float:
    """A naive UTC datetime as seconds since the epoch (what TOTP steps count)."""
    return (moment - _EPOCH).total_seconds()


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class SecretTokens:
    """Random values for session ids, API tokens and request ids."""

    def token(self, nbytes: int = 32) -> str:
        return secrets.token_urlsafe(nbytes)

    def request_id(self) -> str:
        return secrets.token_hex(8)

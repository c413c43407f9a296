"""control_api/license/entitlement.py: the documented states, at their exact boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from control_api.license.entitlement import COMMUNITY, entitlement
from control_api.license.token import Caps, License, RevocationList

ISSUED = dt.datetime(2026, 1, 1)
EXPIRES = dt.datetime(2027, 1, 1)
GRACE = dt.timedelta(days=14)
LIC = License("ACME", "enterprise", Caps(10, 20, 5), ISSUED, EXPIRES, "lic-0001-acme", "kid")


@pytest.mark.parametrize("now, state, caps", [
    (ISSUED, "active", Caps(10, 20, 5)),
    (EXPIRES - dt.timedelta(seconds=1), "active", Caps(10, 20, 5)),
    (EXPIRES, "grace", Caps(10, 20, 5)),
    (EXPIRES + GRACE - dt.timedelta(seconds=1), "grace", Caps(10, 20, 5)),
    (EXPIRES + GRACE, "lapsed", COMMUNITY),
    (EXPIRES + dt.timedelta(days=3650), "lapsed", COMMUNITY),
])
def test_a_license_is_active_then_in_grace_then_lapsed_to_the_community_caps(now, state, caps):
    granted = entitlement(LIC, None, now, GRACE, dev=False)
    assert (granted.state, granted.caps) == (state, caps)
    assert granted.tier == ("community" if state == "lapsed" else "enterprise")


def test_a_zero_day_grace_lapses_at_expiry():
    assert entitlement(LIC, None, EXPIRES, dt.timedelta(0), dev=False).state == "lapsed"


def test_a_revoked_license_gets_the_community_caps_at_once_and_no_grace():
    listed = RevocationList(ISSUED, "rev-00000001", frozenset({"lic-0001-acme"}), "kid")
    granted = entitlement(LIC, listed, ISSUED, GRACE, dev=False)
    assert (granted.state, granted.caps) == ("revoked", COMMUNITY)
    other = RevocationList(ISSUED, "rev-00000002", frozenset({"lic-9999-other"}), "kid")
    assert entitlement(LIC, other, ISSUED, GRACE, dev=False).state == "active"


def test_without_a_license_production_is_community_and_dev_has_no_caps():
    community = entitlement(None, None, ISSUED, GRACE, dev=False)
    assert (community.state, community.caps) == ("community", COMMUNITY)
    dev = entitlement(None, None, ISSUED, GRACE, dev=True)
    assert (dev.state, dev.tier, dev.caps, dev.cap("sites")) == ("dev", "dev", None, None)


def test_a_stored_license_that_no_longer_verifies_is_community_even_in_dev():
    granted = entitlement(None, None, ISSUED, GRACE, dev=True, invalid="bad signature")
    assert (granted.state, granted.caps) == ("invalid", COMMUNITY)
    assert "bad signature" in granted.explain()

"""control_api/license/store.py on both backends: a license installs with its audit event;
a forged, tampered, alg-confused, expired, future, revoked or older one is refused with a
clear reason and changes nothing; revocation lists only move forward; caps always come
from the verified token, never from the store's columns."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from control_api.license.entitlement import COMMUNITY
from control_api.license.store import SHIPPED_KEY, LicenseError, LicenseRow, RevocationRow, trusted_key
from control_api.license.token import Caps, PublicKey
from control_api.models import AuditEvent, AuditQueue
from control_api.settings import SettingsError, load_settings
from tests.conftest import ACTOR
from tests.control_api.license.conftest import new_issuer


def snapshot() -> tuple:
    return (LicenseRow.select().count(), RevocationRow.select().count(),
            AuditQueue.select().count() + AuditEvent.select().count())


def events(deps, action: str) -> list[dict]:
    deps.audit.seal()
    found = [json.loads(row.event_json) for row in AuditEvent.select().order_by(AuditEvent.seq)]
    return [event for event in found if event["action"] == action]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_license_installs_once_with_its_audit_event(licenses, issuer, clock, deps):
    token = issuer.license(clock.now(), sites=3, hosts=4, admins=2, jti="lic-0001-acme")
    lic, new = licenses.install_license(token, ACTOR)
    assert new and lic.caps == Caps(3, 4, 2)
    granted = licenses.entitlement()
    assert (granted.state, granted.tier, granted.caps) == ("active", "standard", Caps(3, 4, 2))
    before = snapshot()
    assert licenses.install_license(token + "\n", ACTOR) == (lic, False)
    assert snapshot() == before
    [event] = events(deps, "license.install")
    assert event["target"] == "license:lic-0001-acme" and event["actor"] == ACTOR.id
    assert event["metadata"]["caps"] == {"sites": 3, "hosts": 4, "admins": 2}
    assert event["metadata"]["customer"] == "ACME Disclosures Ltd" and event["metadata"]["replaces"] is None


def _refusals(issuer, now):
    """(name, token, what the refusal says) for every kind of bad license."""
    good = issuer.license(now, sites=1)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["caps"]["sites"] = 10_000
    fat = b64(json.dumps(claims).encode())
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "weco-license+jwt"}).encode())
    hs_mac = hmac.new(issuer.public_pem, f"{hs_header}.{fat}".encode(), hashlib.sha256).digest()
    return [
        ("forged", new_issuer().license(now, sites=10_000), "signed by another key"),
        ("tampered", f"{header}.{fat}.{signature}", "bad_signature"),
        ("alg none", b64(b'{"alg":"none","typ":"weco-license+jwt"}') + f".{fat}.", "'none' is refused"),
        ("hs256 with the public key", f"{hs_header}.{fat}.{b64(hs_mac)}", "'HS256' is refused"),
        ("expired", issuer.license(now - dt.timedelta(days=31), days=30), "expired on"),
        ("issued in the future", issuer.license(now + dt.timedelta(hours=1)), "issued in the future"),
        ("a revocation list", issuer.revocations(now, "lic-0001-acme"), "not a 'weco-license\\+jwt'"),
        ("junk", "not a license at all", "not a JWT"),
    ]


def test_a_bad_license_is_refused_and_changes_nothing(licenses, issuer, clock, install):
    install(sites=2)
    before, granted = snapshot(), licenses.entitlement()
    for name, token, message in _refusals(issuer, clock.now()):  # one store for all: cheaper
        with pytest.raises(LicenseError, match=message):
            licenses.install_license(token, ACTOR)
        assert snapshot() == before, name
        assert licenses.entitlement() == granted, name


def test_an_older_license_does_not_replace_a_newer_one(licenses, issuer, clock):
    older = issuer.license(clock.now(), sites=50)
    clock.advance(days=1)
    newer = issuer.license(clock.now(), sites=2)
    licenses.install_license(newer, ACTOR)
    before = snapshot()
    with pytest.raises(LicenseError, match="issued before the installed one"):
        licenses.install_license(older, ACTOR)
    assert snapshot() == before and licenses.entitlement().caps.sites == 2


def test_a_revocation_list_revokes_the_license_and_only_moves_forward(licenses, issuer, clock, install, deps):
    lic = install(sites=10)
    first = issuer.revocations(clock.now(), "lic-unrelated-1")
    assert licenses.install_revocations(first, ACTOR)[1]
    assert licenses.entitlement().state == "active"
    clock.advance(minutes=1)
    second = issuer.revocations(clock.now(), "lic-unrelated-1", lic.jti)
    assert licenses.install_revocations(second, ACTOR)[1]
    granted = licenses.entitlement()
    assert (granted.state, granted.caps) == ("revoked", COMMUNITY)
    [_, event] = events(deps, "license.revocations_install")
    assert event["metadata"]["revokes_installed_license"] is True and event["metadata"]["revoked_count"] == 2
    before = snapshot()
    with pytest.raises(LicenseError, match="not newer than the installed one"):
        licenses.install_revocations(first, ACTOR)  # would un-revoke it
    with pytest.raises(LicenseError, match="signed by another key"):
        licenses.install_revocations(new_issuer().revocations(clock.now()), ACTOR)
    assert snapshot() == before and licenses.entitlement().state == "revoked"
    assert licenses.install_revocations(second, ACTOR)[1] is False


def test_a_revoked_license_cannot_be_installed(licenses, issuer, clock):
    token = issuer.license(clock.now(), jti="lic-0002-pirate")
    licenses.install_revocations(issuer.revocations(clock.now(), "lic-0002-pirate"), ACTOR)
    before = snapshot()
    with pytest.raises(LicenseError, match="revoked by the installed revocation list"):
        licenses.install_license(token, ACTOR)
    assert snapshot() == before


def test_caps_come_from_the_verified_token_never_from_the_columns(licenses, install, db, issuer, clock):
    install(sites=2)
    db.execute_sql("UPDATE licenses SET tier = 'unlimited', customer = 'x'")
    assert licenses.entitlement().caps == Caps(2, 5, 5)
    # A row rewritten with a token the trusted key did not sign counts for nothing.
    forged = new_issuer().license(clock.now(), sites=10_000)
    db.execute_sql(f"UPDATE licenses SET token = {db.param}", (forged,))
    granted = licenses.entitlement()
    assert (granted.state, granted.caps) == ("invalid", COMMUNITY)
    assert "signed by another key" in granted.note


def test_expiry_follows_the_clock(licenses, install, clock, settings):
    install(sites=7, days=30)
    clock.advance(days=30)
    assert (licenses.entitlement().state, licenses.entitlement().caps.sites) == ("grace", 7)
    clock.advance(days=settings.license_grace_days)
    assert (licenses.entitlement().state, licenses.entitlement().caps) == ("lapsed", COMMUNITY)


def test_another_key_is_refused_in_production_and_the_shipped_one_is_the_default(tmp_path, issuer_pub):
    with pytest.raises(SettingsError, match="FF_LICENSE_PUBLIC_KEY is allowed only with FF_ENV=dev"):
        load_settings({"FF_LICENSE_PUBLIC_KEY": str(issuer_pub), "FF_DATA_DIR": str(tmp_path)})
    production = load_settings({"FF_DATA_DIR": str(tmp_path)})
    assert trusted_key(production).key_id == PublicKey.from_pem(SHIPPED_KEY.read_bytes()).key_id
    dev = load_settings({"FF_ENV": "dev", "FF_LICENSE_PUBLIC_KEY": str(tmp_path / "missing.pub")})
    with pytest.raises(SettingsError, match=r"FF_LICENSE_PUBLIC_KEY: cannot use .*missing\.pub"):
        trusted_key(dev)
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(SettingsError, match="not a PEM public key"):
        trusted_key(load_settings({"FF_ENV": "dev", "FF_LICENSE_PUBLIC_KEY": str(tmp_path / "bad.pub")}))

"""Installing licenses and revocation lists into the store, and reading what is in force.

Each install verifies the token under the trusted key (the release's own, or in dev
FF_LICENSE_PUBLIC_KEY), checks it against what is installed, and adds a row with its
audit event in one transaction; a refusal raises LicenseError and changes nothing.
Reading verifies the stored token again every time, so caps never come from a column
someone could edit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.clock import SystemClock
from control_api.db import database_proxy
from control_api.license.entitlement import Entitlement, entitlement
from control_api.license.token import (
    License,
    PublicKey,
    RevocationList,
    TokenError,
    read_license,
    read_revocations,
)
from control_api.settings import Settings, SettingsError

SHIPPED_KEY = Path(__file__).with_name("issuer.pub")
# Clocks of the issuer's laptop and the admin VM may differ a little.
CLOCK_SKEW = dt.timedelta(minutes=5)


class LicenseError(Exception):
    """A license or revocation list cannot be installed; str() says why. Nothing changed."""


class LicenseRow(peewee.Model):
    token = peewee.TextField()
    jti = peewee.TextField()
    customer = peewee.TextField()
    tier = peewee.TextField()
    expires_at = peewee.DateTimeField()
    installed_at = peewee.DateTimeField()
    installed_by = peewee.TextField()

    class Meta:
        database = database_proxy
        table_name = "licenses"


class RevocationRow(peewee.Model):
    token = peewee.TextField()
    jti = peewee.TextField()
    issued_at = peewee.DateTimeField()
    revoked_count = peewee.IntegerField()
    installed_at = peewee.DateTimeField()
    installed_by = peewee.TextField()

    class Meta:
        database = database_proxy
        table_name = "license_revocations"


def trusted_key(settings: Settings) -> PublicKey:
    """The key licenses must be signed by: the release's own; another only in dev
    (settings.py refuses FF_LICENSE_PUBLIC_KEY in production)."""
    path = Path(settings.license_public_key) if settings.license_public_key else SHIPPED_KEY
    try:
        return PublicKey.from_pem(path.read_bytes(), str(path))
    except (OSError, TokenError) as exc:
        raise SettingsError(f"FF_LICENSE_PUBLIC_KEY: cannot use {path}: "
                            f"{exc.strerror if isinstance(exc, OSError) else exc}") from None


@dataclasses.dataclass(frozen=True)
class Installed:
    license: License | None
    revocations: RevocationList | None
    invalid: str = ""  # why the stored license does not verify, if it does not


class LicenseStore:
    def __init__(self, audit: AuditLog, clock: SystemClock, key: PublicKey, grace: dt.timedelta,
                 dev: bool) -> None:
        self.audit, self.clock, self.key, self.grace, self.dev = audit, clock, key, grace, dev

    # -- reading ----------------------------------------------------------------------

    def installed(self) -> Installed:
        row = LicenseRow.select().order_by(LicenseRow.id.desc()).first()
        rev_row = RevocationRow.select().order_by(RevocationRow.id.desc()).first()
        revocations = None
        if rev_row is not None:
            try:
                revocations = read_revocations(rev_row.token, self.key)
            except TokenError:
                # A list that no longer verifies revokes nothing it could prove; the
                # license it would have revoked is checked on its own below.
                revocations = None
        if row is None:
            return Installed(None, revocations)
        try:
            return Installed(read_license(row.token, self.key), revocations)
        except TokenError as exc:
            return Installed(None, revocations, invalid=str(exc))

    def entitlement(self) -> Entitlement:
        found = self.installed()
        return entitlement(found.license, found.revocations, self.clock.now(), self.grace, self.dev,
                           found.invalid)

    # -- installing -------------------------------------------------------------------

    def install_license(self, token: str, actor: Actor) -> tuple[License, bool]:
        """(the license, whether it was newly installed); LicenseError if refused."""
        lic = self._read(read_license, token)
        now = self.clock.now()
        if lic.expires_at <= now:
            raise LicenseError(f"license {lic.jti} expired on {lic.expires_at:%Y-%m-%d %H:%M} UTC; "
                               "ask the issuer for a new one")
        if lic.issued_at > now + CLOCK_SKEW:
            raise LicenseError(f"license {lic.jti} is issued in the future ({lic.issued_at:%Y-%m-%d %H:%M} "
                               "UTC): check this machine's clock")
        with self.audit.mutation():
            current = self.installed()
            if current.license is not None and current.license.jti == lic.jti:
                return lic, False
            if current.revocations is not None and lic.jti in current.revocations.revoked:
                raise LicenseError(f"license {lic.jti} is revoked by the installed revocation list")
            if current.license is not None and lic.issued_at < current.license.issued_at:
                raise LicenseError(f"license {lic.jti} was issued before the installed one "
                                   f"({current.license.jti}); only a newer license replaces it")
            LicenseRow.create(token=token.strip(), jti=lic.jti, customer=lic.customer, tier=lic.tier,
                              expires_at=lic.expires_at, installed_at=now, installed_by=actor.id)
            self.audit.record(actor, "license.install", f"license:{lic.jti}", {
                "customer": lic.customer, "tier": lic.tier, "caps": lic.caps.as_dict(),
                "issued_at": f"{lic.issued_at:%Y-%m-%dT%H:%M:%S}Z",
                "expires_at": f"{lic.expires_at:%Y-%m-%dT%H:%M:%S}Z", "key_id": lic.key_id,
                "replaces": current.license.jti if current.license else None})
        return lic, True

    def install_revocations(self, token: str, actor: Actor) -> tuple[RevocationList, bool]:
        revocations = self._read(read_revocations, token)
        now = self.clock.now()
        if revocations.issued_at > now + CLOCK_SKEW:
            raise LicenseError("the revocation list is issued in the future: check this machine's clock")
        with self.audit.mutation():
            current = self.installed()
            if current.revocations is not None:
                if current.revocations.jti == revocations.jti:
                    return revocations, False
                # An older list could un-revoke a license: never go back.
                if revocations.issued_at <= current.revocations.issued_at:
                    raise LicenseError("this revocation list is not newer than the installed one "
                                       f"(issued {current.revocations.issued_at:%Y-%m-%d %H:%M:%S} UTC)")
            RevocationRow.create(token=token.strip(), jti=revocations.jti, issued_at=revocations.issued_at,
                                 revoked_count=len(revocations.revoked), installed_at=now,
                                 installed_by=actor.id)
            hits = current.license is not None and current.license.jti in revocations.revoked
            target = f"license_revocations:{revocations.jti}"
            self.audit.record(actor, "license.revocations_install", target, {
                "issued_at": f"{revocations.issued_at:%Y-%m-%dT%H:%M:%S}Z",
                "revoked_count": len(revocations.revoked), "revokes_installed_license": hits})
        return revocations, True

    def _read(self, reader, token: str):
        try:
            return reader(token, self.key)
        except TokenError as exc:
            raise LicenseError(str(exc)) from None

"""What the store's license entitles to at a given moment: a pure function of the
installed license, the installed revocation list, the time and the settings.

The rules (the README's "License" section says the same):

- a valid license, before its `exp`: its tier and caps (state `active`);
- after `exp`, for FF_LICENSE_GRACE_DAYS: still its caps (state `grace`);
- after the grace, or at once when a signed revocation list names its id: the community
  caps (states `lapsed`, `revoked`), so nothing already there is taken away and only
  growth beyond them stops;
- no license: the community tier in production; in FF_ENV=dev, the `dev` tier with no
  caps, so a laptop and the test suite need no license;
- a stored license that no longer verifies (another release key, an edited row): the
  community caps (state `invalid`).

Only creating a site, a host or an account is ever refused. Logins, runs (deploys and
rollbacks), deletes, grants, documents, backups and the audit log never consult this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from control_api.license.token import Caps, License, RevocationList

COMMUNITY = Caps(sites=1, hosts=2, admins=3)


@dataclasses.dataclass(frozen=True)
class Entitlement:
    state: str  # active | grace | lapsed | revoked | invalid | community | dev
    tier: str
    caps: Caps | None  # None: no caps (dev without a license)
    license: License | None = None
    grace_ends_at: dt.datetime | None = None
    note: str = ""

    def cap(self, kind: str) -> int | None:
        return None if self.caps is None else self.caps.of(kind)

    def explain(self) -> str:
        """Why these caps, for a refusal's description."""
        if self.state in ("active", "grace"):
            lic = self.license
            grace = ""
            if self.state == "grace":
                grace = f" (expired; grace ends {self.grace_ends_at:%Y-%m-%d %H:%M} UTC)"
            return f"the {lic.tier} license of {lic.customer} (id {lic.jti}){grace}"
        return f"the community tier ({self.note})"


def entitlement(lic: License | None, revocations: RevocationList | None, now: dt.datetime,
                grace: dt.timedelta, dev: bool, invalid: str = "") -> Entitlement:
    if invalid:
        return Entitlement("invalid", "community", COMMUNITY,
                           note=f"the installed license is invalid: {invalid}")
    if lic is None:
        if dev:
            return Entitlement("dev", "dev", None, note="FF_ENV=dev without a license: no caps")
        return Entitlement("community", "community", COMMUNITY, note="no license is installed")
    grace_ends = lic.expires_at + grace
    if revocations is not None and lic.jti in revocations.revoked:
        return Entitlement("revoked", "community", COMMUNITY, lic, grace_ends,
                           note=f"license {lic.jti} was revoked by the list issued "
                                f"{revocations.issued_at:%Y-%m-%d}")
    if now < lic.expires_at:
        return Entitlement("active", lic.tier, lic.caps, lic, grace_ends)
    if now < grace_ends:
        return Entitlement("grace", lic.tier, lic.caps, lic, grace_ends)
    return Entitlement("lapsed", "community", COMMUNITY, lic, grace_ends,
                       note=f"license {lic.jti} expired {lic.expires_at:%Y-%m-%d} and its grace ended "
                            f"{grace_ends:%Y-%m-%d}")

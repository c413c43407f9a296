"""A test issuer: its own Ed25519 key (FF_LICENSE_PUBLIC_KEY points at its public half,
as only FF_ENV=dev allows), and helpers to sign licenses and revocation lists with it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from control_api.license.token import Caps, SigningKey, generate_keypair, sign_license, sign_revocations
from control_api.wiring import build_licenses
from tests.conftest import ACTOR


@dataclasses.dataclass
class Issuer:
    key: SigningKey
    private_pem: bytes
    public_pem: bytes

    def license(self, now: dt.datetime, sites=5, hosts=5, admins=5, days=30, **extra) -> str:
        return sign_license(self.key, extra.pop("customer", "ACME Disclosures Ltd"),
                            extra.pop("tier", "standard"), Caps(sites, hosts, admins),
                            now, now + dt.timedelta(days=days), **extra)

    def revocations(self, now: dt.datetime, *jtis: str) -> str:
        return sign_revocations(self.key, set(jtis), now)


def new_issuer() -> Issuer:
    private, public = generate_keypair()
    return Issuer(SigningKey.from_pem(private), private, public)


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return new_issuer()


@pytest.fixture
def issuer_pub(issuer, tmp_path) -> Path:
    path = tmp_path / "issuer.pub"
    path.write_bytes(issuer.public_pem)
    return path


@pytest.fixture
def env(env, issuer_pub):
    """The dev deployment of the root conftest, trusting the test issuer."""
    return {**env, "FF_LICENSE_PUBLIC_KEY": str(issuer_pub)}


@pytest.fixture
def licenses(deps):
    return build_licenses(deps)


@pytest.fixture
def install(licenses, issuer, clock):
    """Install a license from the test issuer with these caps; returns it."""
    def install(**caps):
        lic, new = licenses.install_license(issuer.license(clock.now(), **caps), ACTOR)
        assert new
        return lic
    return install

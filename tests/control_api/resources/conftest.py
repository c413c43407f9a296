"""API tokens for the resource tests: `root` (a superadmin's) and `adm` (an admin's)."""

from __future__ import annotations

import pytest

from control_api.wiring import build_credentials
from tests.conftest import ACTOR


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def root(deps, superadmin):
    return bearer(build_credentials(deps).create_token(superadmin, "root", None, ACTOR)[0])


@pytest.fixture
def adm(deps, admin):
    return bearer(build_credentials(deps).create_token(admin, "adm", None, ACTOR)[0])

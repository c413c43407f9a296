"""An account the IdP provisioned over SCIM signs in by SAML or OIDC: its first login
with that address links it (audited); a local account with the same address is still
never taken over, and a SCIM leaver cannot sign in."""

from __future__ import annotations

import pytest

from control_api.models import User
from control_api.sso.accounts import IdpIdentity, SsoAccounts, SsoRefused
from control_api.sso.groups import GroupMap, GroupSync
from control_api.sso.models import SsoIdentity
from control_api.wiring import build_caps, build_catalog, build_credentials
from tests.conftest import ACTOR
from tests.control_api.scim.conftest import GROUP_MAP, events, user_body


@pytest.fixture
def accounts(deps):
    groups = GroupMap.parse(GROUP_MAP)
    return SsoAccounts(build_credentials(deps), groups, GroupSync(groups, build_catalog(deps), deps.audit),
                       deps.audit, build_caps(deps), deps.clock)


def _who(email, subject="sub-1", issuer="https://idp.example.test"):
    return IdpIdentity("oidc", issuer, subject, email, ("weco-admins",), {})


def test_a_provisioned_account_is_linked_at_its_first_sign_in(scim, accounts):
    scim.post("/Users", user_body("ada@example.test"))
    _, user = accounts.sign_in(_who("ada@example.test"), ACTOR, None)
    assert user.email == "ada@example.test" and User.select().count() == 1
    assert events("sso.identity_linked")[0]["metadata"]["subject"] == "sub-1"
    _, again = accounts.sign_in(_who("ada@example.test"), ACTOR, None)  # now by its link
    assert again.id == user.id and len(events("sso.identity_linked")) == 1
    # Another subject of the same issuer claiming the address is refused.
    with pytest.raises(SsoRefused):
        accounts.sign_in(_who("ada@example.test", subject="sub-2"), ACTOR, None)
    assert SsoIdentity.select().count() == 1


def test_a_local_account_is_still_never_taken_over(admin, accounts):
    with pytest.raises(SsoRefused):
        accounts.sign_in(_who(admin.email), ACTOR, None)
    assert SsoIdentity.select().count() == 0


def test_a_scim_leaver_cannot_sign_in(scim, accounts):
    doc = scim.post("/Users", user_body("gone@example.test")).json
    scim.patch(f"/Users/{doc['id']}", {"op": "Replace", "path": "active", "value": "False"})
    with pytest.raises(SsoRefused):
        accounts.sign_in(_who("gone@example.test"), ACTOR, None)

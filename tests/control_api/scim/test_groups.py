"""SCIM Groups give their members the role and the site grants FF_SSO_GROUP_MAP says
(control_api/sso/groups.py, the mapping SAML and OIDC apply): joining, moving and
leaving a group, renaming and deleting it, each audited."""

from __future__ import annotations

from control_api.models import Site, SiteGrant, User
from control_api.wiring import build_catalog
from tests.conftest import ACTOR
from tests.control_api.scim.conftest import GROUP, actions, user_body


def _access(email):
    user = User.get(User.email == email)
    return user.role, sorted(g.site.slug for g in SiteGrant.select(SiteGrant, Site).join(Site)
                             .where(SiteGrant.user == user))


def test_groups_map_to_role_and_grants(deps, scim):
    build_catalog(deps).create_site({"slug": "acme", "domain": "acme.example.test"}, ACTOR)
    ada = scim.post("/Users", user_body("ada@example.test")).json["id"]
    bob = scim.post("/Users", user_body("bob@example.test")).json["id"]
    assert _access("ada@example.test") == ("admin", [])  # in no group: no grant

    admins = scim.post("/Groups", {"schemas": [GROUP], "displayName": "weco-admins",
                                   "members": [{"value": ada}]})
    assert admins.status_code == 201, admins.text
    gid = admins.json["id"]
    assert _access("ada@example.test") == ("admin", ["acme"])
    # Entra ID adds and removes members with PATCH, capitalised:
    scim.patch(f"/Groups/{gid}", {"op": "Add", "path": "members", "value": [{"value": bob}]})
    assert _access("bob@example.test") == ("admin", ["acme"])
    scim.patch(f"/Groups/{gid}", {"op": "Remove", "path": f'members[value eq "{ada}"]'})
    assert _access("ada@example.test") == ("admin", [])
    assert [m["value"] for m in scim.get(f"/Groups/{gid}").json["members"]] == [bob]

    root = scim.post("/Groups", {"schemas": [GROUP], "displayName": "weco-root", "members": [{"value": bob}]})
    assert _access("bob@example.test") == ("superadmin", ["acme"])
    assert scim.get(f"/Users/{bob}").json["groups"][0]["display"] in ("weco-admins", "weco-root")
    # Renamed to a name the map does not know: its members lose what it gave.
    rename = {"op": "replace", "path": "displayName", "value": "other"}
    renamed = scim.patch(f"/Groups/{root.json['id']}", rename)
    assert renamed.status_code == 200 and _access("bob@example.test") == ("admin", ["acme"])
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert _access("bob@example.test") == ("admin", [])
    assert {"scim.group_created", "scim.group_members", "scim.group_patched", "scim.group_deleted",
            "user.role_change", "site.grant", "site.revoke"} <= set(actions())
    listed = scim.get("/Groups", filter='displayName eq "OTHER"').json
    assert [g["displayName"] for g in listed["Resources"]] == ["other"]

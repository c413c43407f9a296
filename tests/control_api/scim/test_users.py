"""SCIM Users over HTTP on both stores: create, get, list with the filters the big IdPs
send and paging, replace, PATCH as Entra ID and Okta send it, and the leaver, who loses
every session and API token at once. Every mutation is audited."""

from __future__ import annotations

from control_api.models import ApiToken, Session, SiteGrant, User
from control_api.scim.models import ScimUser
from control_api.wiring import build_catalog, build_credentials
from tests.conftest import ACTOR
from tests.control_api.scim.conftest import ENTERPRISE, SCIM, USER, actions, events, last_event_id, user_body


def test_create_get_and_list_a_user(scim):
    made = scim.post("/Users", user_body())
    assert made.status_code == 201 and made.headers["content-type"] == SCIM
    doc = made.json
    assert made.headers["location"] == doc["meta"]["location"] == f"http://falconframework.org/scim/v2/Users/{doc['id']}"
    assert doc["userName"] == "ada@example.test" and doc["active"] is True
    assert doc["externalId"] == "ext-ada@example.test" and doc["name"]["givenName"] == "Ada"
    account = User.get(User.email == "ada@example.test")
    assert account.role == "admin" and account.disabled_at is None and account.password_hash == "!sso"
    got = scim.get(f"/Users/{doc['id']}")
    assert got.status_code == 200 and got.headers["content-type"] == SCIM and got.json == doc
    assert events("scim.user_created")[0]["metadata"]["userName"] == "ada@example.test"


def test_filters_the_idps_send(scim):
    ids = {n: scim.post("/Users", user_body(f"{n}@example.test")).json["id"] for n in ("ada", "bob", "cy")}
    scim.patch(f"/Users/{ids['bob']}", {"op": "replace", "path": "active", "value": False})

    def found(text):
        listing = scim.get("/Users", filter=text)
        assert listing.status_code == 200, listing.text
        return sorted(r["userName"].split("@")[0] for r in listing.json["Resources"])

    assert found('userName eq "ADA@example.test"') == ["ada"]  # userName is case-insensitive
    assert found("active eq false") == ["bob"]
    assert found("active eq true") == ["ada", "cy"]
    assert found('externalId eq "ext-cy@example.test"') == ["cy"]
    assert found('externalId eq "EXT-cy@example.test"') == []  # externalId is case-exact
    assert found('emails[type eq "work"].value eq "bob@example.test"') == ["bob"]
    assert found('emails[type eq "home"].value eq "bob@example.test"') == []
    assert found('userName sw "a" or (userName sw "c" and not (active eq false))') == ["ada", "cy"]
    assert found('name.givenName eq "Ada"') == ["ada", "bob", "cy"]
    assert found('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "cy@example.test"') == ["cy"]


def test_paging_as_okta_tests_a_connection(scim):
    for n in range(5):
        scim.post("/Users", user_body(f"u{n}@example.test"))
    page = scim.get("/Users", startIndex="1", count="2").json
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 1, 2)
    assert [r["userName"] for r in page["Resources"]] == ["u0@example.test", "u1@example.test"]
    last = scim.get("/Users", startIndex="5", count="2").json
    assert [r["userName"] for r in last["Resources"]] == ["u4@example.test"]
    assert scim.get("/Users", count="0").json["Resources"] == []
    assert scim.get("/Users", filter='userName eq "nobody@example.test"').json["totalResults"] == 0
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
              "filter": 'userName eq "u3@example.test"'}
    searched = scim.post("/Users/.search", search)
    assert [r["userName"] for r in searched.json["Resources"]] == ["u3@example.test"]


def test_replace_keeps_the_id_and_changes_the_account(scim):
    doc = scim.post("/Users", user_body()).json
    body = {"schemas": [USER], "userName": "ada.l@example.test", "externalId": "ext-2", "active": True,
            "displayName": "Ada L",
            "emails": [{"value": "ada.l@example.test", "type": "work", "primary": True}]}
    replaced = scim.put(f"/Users/{doc['id']}", body)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json["id"] == doc["id"] and replaced.json["userName"] == "ada.l@example.test"
    assert "name" not in replaced.json and replaced.json["meta"]["version"] == 'W/"2"'
    assert User.get_by_id(ScimUser.get(ScimUser.scim_id == doc["id"]).user_id).email == "ada.l@example.test"
    assert "scim.user_replaced" in actions()


def test_patch_as_entra_sends_it(scim):
    doc = scim.post("/Users", user_body()).json
    patched = scim.patch(f"/Users/{doc['id']}",
                         {"op": "Replace", "path": 'emails[type eq "work"].value',
                          "value": "ada2@example.test"},
                         {"op": "Add", "path": "name.familyName", "value": "King"},
                         {"op": "Replace", "path": "displayName", "value": "Countess"},
                         {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Analytical Engines"},
                         {"op": "Remove", "path": "externalId"})
    assert patched.status_code == 200, patched.text
    got = patched.json
    assert got["emails"] == [{"value": "ada2@example.test", "type": "work", "primary": True}]
    assert got["name"] == {"familyName": "King", "givenName": "Ada"} and got["displayName"] == "Countess"
    assert got[ENTERPRISE] == {"department": "Analytical Engines"}
    assert "externalId" not in got
    assert User.get(User.email == "ada2@example.test")  # the account follows its primary email
    # Without a path, as Okta and Entra send attribute bags:
    bag = scim.patch(f"/Users/{doc['id']}",
                     {"op": "replace", "value": {"displayName": "Ada", "externalId": "x-1"}})
    assert bag.json["displayName"] == "Ada" and bag.json["externalId"] == "x-1"
    assert actions().count("scim.user_patched") == 2


def _with_access(deps, scim, name="leaver@example.test"):
    doc = scim.post("/Users", user_body(name)).json
    user = User.get(User.email == name)
    credentials = build_credentials(deps)
    credentials.start_session(user, ACTOR)
    credentials.start_session(user, ACTOR)
    credentials.create_token(user, "ci", None, ACTOR)
    return doc, user


def _live(user):
    sessions = Session.select().where((Session.user == user) & Session.revoked_at.is_null()).count()
    tokens = ApiToken.select().where((ApiToken.user == user) & ApiToken.revoked_at.is_null()).count()
    return sessions, tokens


def test_a_leaver_by_entra_patch_loses_every_session_and_token_at_once(deps, scim, client):
    doc, user = _with_access(deps, scim)
    assert _live(user) == (2, 1)
    since = last_event_id()
    # Entra ID: a capitalised op, no path, and "False" as a string.
    answer = scim.patch(f"/Users/{doc['id']}", {"op": "Replace", "value": {"active": "False"}})
    assert answer.status_code == 200 and answer.json["active"] is False
    assert _live(user) == (0, 0)
    assert User.get_by_id(user.id).disabled_at is not None
    assert set(actions(since)) >= {"scim.user_patched", "user.disable", "auth.sessions_ended",
                                   "auth.tokens_revoked"}
    # Back again: the account is enabled, its old credentials stay revoked.
    back = scim.patch(f"/Users/{doc['id']}", {"op": "replace", "path": "active", "value": True})
    assert back.json["active"] is True and _live(user) == (0, 0)
    assert "scim.user_reactivated" in actions(since)


def test_a_leaver_by_okta_active_false_and_by_delete(deps, scim):
    doc, user = _with_access(deps, scim, "okta@example.test")
    body = {**user_body("okta@example.test"), "active": False}
    assert scim.put(f"/Users/{doc['id']}", body).json["active"] is False
    assert _live(user) == (0, 0)

    doc2, user2 = _with_access(deps, scim, "gone@example.test")
    catalog = build_catalog(deps)
    site = catalog.create_site({"slug": "acme", "domain": "acme.example.test"}, ACTOR)
    catalog.grant(site, user2, ACTOR)
    since = last_event_id()
    assert scim.delete(f"/Users/{doc2['id']}").status_code == 204
    assert _live(user2) == (0, 0)
    assert User.get_by_id(user2.id).disabled_at is not None  # kept, disabled, for the audit trail
    assert not SiteGrant.select().where(SiteGrant.user == user2).exists()
    assert scim.get(f"/Users/{doc2['id']}").status_code == 404
    assert set(actions(since)) >= {"user.disable", "auth.sessions_ended", "auth.tokens_revoked",
                                   "scim.user_deleted"}


def test_a_user_made_inactive_has_no_access_from_the_start(scim):
    doc = scim.post("/Users", {**user_body("late@example.test"), "active": False}).json
    assert doc["active"] is False and User.get(User.email == "late@example.test").disabled_at is not None


def test_a_username_that_is_not_an_address_gets_an_address_that_reaches_nobody(scim):
    doc = scim.post("/Users", {"schemas": [USER], "userName": "ADA-1234"}).json
    account = User.get_by_id(ScimUser.get(ScimUser.scim_id == doc["id"]).user_id)
    assert account.email.startswith("scim-") and account.email.endswith("@scim.invalid")

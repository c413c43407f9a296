"""Requests malformed per RFC 7644, each answered in the SCIM error schema with its
status and scimType, and changing nothing."""

from __future__ import annotations

import pytest

from control_api.models import User
from control_api.scim.models import ScimGroup, ScimUser
from tests.control_api.scim.conftest import ERROR, GROUP, SCIM, USER, last_event_id, user_body


def _error(answer, status, scim_type):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == SCIM
    assert answer.json["schemas"] == [ERROR] and answer.json["status"] == str(status)
    assert answer.json.get("scimType") == scim_type
    return answer.json["detail"]


@pytest.mark.parametrize("text", [
    'userName eq', 'userName xx "a"', 'bogus eq "a"', 'userName eq "unterminated', '(userName eq "a"',
    'userName eq a', 'emails[type eq "work"', 'emails[type eq "work"].nothing eq "a"', 'name.x eq "a"',
    'userName eq "a" and', 'a.b.c eq "x"', "userName eq \"a\" \x01", " ",
])
def test_a_bad_filter_is_invalid_filter(scim, text):
    _error(scim.get("/Users", filter=text), 400, "invalidFilter")


def test_bad_paging_is_invalid_value(scim):
    _error(scim.get("/Users", startIndex="x"), 400, "invalidValue")


@pytest.mark.parametrize(("operation", "scim_type"), [
    ({"op": "replace", "path": "bogus", "value": 1}, "invalidPath"),
    ({"op": "replace", "path": 'emails[type eq "work"', "value": "a"}, "invalidPath"),
    ({"op": "replace", "path": 'emails[bogus eq "work"].value', "value": "a"}, "invalidPath"),
    ({"op": "replace", "path": 'emails[type eq "work"].nothing', "value": "a"}, "invalidPath"),
    ({"op": "replace", "path": 'name[givenName eq "a"]', "value": "a"}, "invalidPath"),
    ({"op": "replace", "path": "", "value": "a"}, "invalidPath"),
    ({"op": "remove"}, "noTarget"),
    ({"op": "replace", "path": 'emails[value eq "none@example.test"]', "value": {"value": "x"}}, "noTarget"),
    ({"op": "replace", "path": "id", "value": "mine"}, "mutability"),
    ({"op": "add", "path": "groups", "value": [{"value": "x"}]}, "mutability"),
    ({"op": "remove", "path": "userName"}, "invalidValue"),
    ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
    ({"op": "replace", "path": "userName", "value": ""}, "invalidValue"),
    ({"op": "replace", "path": "name", "value": "not an object"}, "invalidValue"),
    ({"op": "replace"}, "invalidValue"),
    ({"op": "move", "path": "userName", "value": "a"}, "invalidSyntax"),
    ({"path": "userName", "value": "a"}, "invalidSyntax"),
])
def test_a_bad_patch_is_refused_and_changes_nothing(scim, operation, scim_type):
    doc = scim.post("/Users", user_body()).json
    since = last_event_id()
    _error(scim.patch(f"/Users/{doc['id']}", operation), 400, scim_type)
    assert scim.get(f"/Users/{doc['id']}").json == doc
    assert last_event_id() == since


def test_a_patch_with_the_wrong_schema_or_shape_is_invalid_syntax(scim):
    doc = scim.post("/Users", user_body()).json
    op = {"op": "replace", "path": "displayName", "value": "x"}
    _error(scim.patch(f"/Users/{doc['id']}", op, schemas=[USER]), 400, "invalidSyntax")
    empty = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}
    _error(scim.send("PATCH", f"/Users/{doc['id']}", empty), 400, "invalidSyntax")
    _error(scim.send("PATCH", f"/Users/{doc['id']}", "{not json"), 400, "invalidSyntax")
    assert scim.get(f"/Users/{doc['id']}").json == doc


@pytest.mark.parametrize("body", [
    {"userName": "a@example.test"},  # no schemas
    {"schemas": [GROUP], "userName": "a@example.test"},  # the wrong schema
    {"schemas": "urn:ietf:params:scim:schemas:core:2.0:User", "userName": "a@example.test"},
    [], "null",
])
def test_a_user_with_the_wrong_schema_is_invalid_syntax(scim, body):
    _error(scim.post("/Users", body), 400, "invalidSyntax")
    assert ScimUser.select().count() == 0 and User.select().count() == 0


@pytest.mark.parametrize("body", [
    {"schemas": [USER]},
    {"schemas": [USER], "userName": 5},
    {"schemas": [USER], "userName": "x" * 300},
    {"schemas": [USER], "userName": "a\x00b"},
    {"schemas": [USER], "userName": "a@example.test", "active": "yes"},
    {"schemas": [USER], "userName": "a@example.test", "emails": "a@example.test"},
    {"schemas": [USER], "userName": "a@example.test", "emails": [{"type": "work"}]},
    {"schemas": [USER], "userName": "a@example.test", "name": {"givenName": ["x"]}},
])
def test_a_user_with_a_bad_value_is_invalid_value(scim, body):
    _error(scim.post("/Users", body), 400, "invalidValue")
    assert ScimUser.select().count() == 0 and User.select().count() == 0


def test_a_taken_user_name_or_email_is_uniqueness(scim, admin):
    scim.post("/Users", user_body())
    _error(scim.post("/Users", user_body("ADA@example.test")), 409, "uniqueness")
    # an address a local account already has is never taken over
    _error(scim.post("/Users", user_body("admin@example.test")), 409, "uniqueness")
    assert ScimUser.select().count() == 1


def test_groups_refuse_unknown_members_and_taken_names(scim):
    _error(scim.post("/Groups", {"schemas": [GROUP], "displayName": "g", "members": [{"value": "nobody"}]}),
           400, "invalidValue")
    _error(scim.post("/Groups", {"schemas": [USER], "displayName": "g"}), 400, "invalidSyntax")
    scim.post("/Groups", {"schemas": [GROUP], "displayName": "g"})
    _error(scim.post("/Groups", {"schemas": [GROUP], "displayName": "G"}), 409, "uniqueness")
    assert ScimGroup.select().count() == 1


def test_unknown_resources_and_paths_are_scim_404s(scim):
    _error(scim.get("/Users/nope"), 404, None)
    _error(scim.put("/Users/nope", user_body()), 404, None)
    _error(scim.delete("/Groups/nope"), 404, None)
    _error(scim.get("/Nothing/here"), 404, None)
    _error(scim.get("/Schemas/urn:nope"), 404, None)


def test_a_body_that_is_not_scim_json_is_refused(scim):
    answer = scim.post("/Users", "userName=a", headers={"Content-Type": "application/x-www-form-urlencoded"})
    _error(answer, 415, None)

"""The group map (control_api/sso/groups.py): its file is checked strictly, groups give
the highest role and the union of grants, and a sync sets an account's role and grants to
exactly that, through the audited catalog, in one transaction."""

from __future__ import annotations

import json

import pytest

from control_api.audit.log import AuditUnavailable
from control_api.models import HostGrant, SiteGrant, User
from control_api.sso.groups import GroupMap, GroupMapError, GroupSync, clean_groups
from control_api.wiring import build_catalog
from tests.conftest import ACTOR

MAP = {"groups": {"ops": {"role": "admin", "sites": ["acme"], "hosts": ["web-1"]},
                  "root": {"role": "superadmin"},
                  "beta": {"sites": ["beta", "missing"]}}}


@pytest.mark.parametrize("data", [
    [], {"groups": []}, {"groups": {}, "more": 1}, {"groups": {"g": {"role": "owner"}}},
    {"groups": {"g": {"sites": "acme"}}}, {"groups": {"g": {"sites": [1]}}}, {"groups": {"g": {"other": 1}}},
    {"groups": {"": {}}}, {"groups": {"g" * 257: {}}}, {"groups": {"g": []}},
])
def test_a_malformed_map_is_refused_naming_the_setting(data):
    with pytest.raises(GroupMapError, match="FF_SSO_GROUP_MAP"):
        GroupMap.parse(data)


def test_an_unreadable_map_file_is_refused(tmp_path):
    with pytest.raises(GroupMapError, match="cannot read"):
        GroupMap.load(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GroupMapError, match="cannot read"):
        GroupMap.load(str(tmp_path / "bad.json"))
    (tmp_path / "good.json").write_text(json.dumps(MAP))
    assert set(GroupMap.load(str(tmp_path / "good.json")).rules) == {"ops", "root", "beta"}


def test_groups_give_the_highest_role_and_the_union_of_grants():
    groups = GroupMap.parse(MAP)
    both = groups.entitlement(["beta", "ops", "unmapped"])
    assert (both.role, both.sites, both.hosts, both.groups) == (
        "admin", {"acme", "beta", "missing"}, {"web-1"}, ("beta", "ops"))
    assert groups.entitlement(["ops", "root"]).role == "superadmin"
    assert groups.entitlement(["unmapped"]).role is None
    assert groups.entitlement([]).role is None


@pytest.mark.parametrize("value", [[1], ["x" * 257], {"a": 1}, ["g"] * 1001])
def test_what_an_idp_sends_as_groups_must_be_a_list_of_names(value):
    with pytest.raises(GroupMapError):
        clean_groups(value)
    assert clean_groups("one") == ["one"] and clean_groups(None) == []


@pytest.fixture
def world(deps, admin):
    catalog = build_catalog(deps)
    sites = {slug: catalog.create_site({"slug": slug, "domain": f"{slug}.example.test"}, ACTOR)
             for slug in ("acme", "beta", "other")}
    host = catalog.create_host({"name": "web-1", "connection": "local"}, ACTOR)
    return catalog, sites, host


def test_a_sync_sets_role_and_grants_exactly_and_audits_each_change(deps, admin, world):
    catalog, sites, _ = world
    catalog.grant(sites["other"], admin, ACTOR)  # not from the groups: the IdP is the source of truth
    sync, groups = GroupSync(GroupMap.parse(MAP), catalog, deps.audit), GroupMap.parse(MAP)
    changes = sync.apply(admin, groups.entitlement(["ops", "beta"]), ACTOR, "saml")
    assert changes == {"sites_granted": ["acme", "beta"], "sites_revoked": ["other"],
                       "sites_unknown": ["missing"], "hosts_granted": ["web-1"]}
    held = {g.site.slug for g in SiteGrant.select().where(SiteGrant.user == admin)}
    assert held == {"acme", "beta"} and HostGrant.select().where(HostGrant.user == admin).count() == 1
    again = sync.apply(admin, groups.entitlement(["ops", "beta"]), ACTOR, "saml")
    assert again == {"sites_unknown": ["missing"]}
    moved = sync.apply(admin, groups.entitlement(["root"]), ACTOR, "oidc")
    assert moved == {"role": "superadmin", "sites_revoked": ["acme", "beta"], "hosts_revoked": ["web-1"]}
    assert User.get_by_id(admin.id).role == "superadmin"
    with pytest.raises(ValueError, match="no access"):
        sync.apply(admin, groups.entitlement([]), ACTOR, "saml")


def test_a_sync_that_cannot_be_audited_changes_nothing(deps, admin, world, monkeypatch):
    catalog, _, _ = world
    sync, groups = GroupSync(GroupMap.parse(MAP), catalog, deps.audit), GroupMap.parse(MAP)

    def broken(*args, **kwargs):
        raise AuditUnavailable("the audit log is down")

    monkeypatch.setattr(deps.audit.witness, "sign_event", broken)
    with pytest.raises(AuditUnavailable):
        sync.apply(admin, groups.entitlement(["root", "ops"]), ACTOR, "saml")
    assert User.get_by_id(admin.id).role == "admin"
    assert SiteGrant.select().where(SiteGrant.user == admin).count() == 0

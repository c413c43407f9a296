"""control_api/license/caps.py through the services and the API, on both backends: each
create is refused at its cap (403, with why, nothing created, audited), deleting frees a
place, disabled accounts do not count, and after expiry and grace (or a revocation) only
growth past the community caps stops: logins, runs and rollbacks go on."""

from __future__ import annotations

import json

import pytest

from control_api.license.caps import LicenseCaps, LicenseLimit
from control_api.license.entitlement import COMMUNITY
from control_api.license.store import LicenseStore, trusted_key
from control_api.models import AuditEvent, AuditQueue, Host, Site, User
from control_api.sites.catalog import SiteCatalog
from control_api.wiring import build_catalog, build_credentials
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.resources.conftest import bearer


@pytest.fixture
def root(deps, superadmin):
    return bearer(build_credentials(deps).create_token(superadmin, "root", None, ACTOR)[0])


def new_site(client, root, slug):
    return client.simulate_post("/api/sites", json={"slug": slug, "domain": f"{slug}.example.com"},
                                headers=root)


def new_host(client, root, name):
    return client.simulate_post("/api/hosts", json={"name": name, "connection": "local"}, headers=root)


def refusals(deps) -> list[dict]:
    deps.audit.seal()
    rows = [json.loads(row.event_json) for row in AuditEvent.select().order_by(AuditEvent.seq)]
    return [row for row in rows if row["action"] == "license.cap_refused"]


def audit_rows() -> int:
    return AuditQueue.select().count() + AuditEvent.select().count()


def test_the_site_cap_refuses_over_the_api_with_403_and_audits_it(client, root, install, deps):
    lic = install(sites=2)
    assert [new_site(client, root, s).status_code for s in ("one", "two")] == [201, 201]
    before = audit_rows()
    refused = new_site(client, root, "three")
    assert refused.status_code == 403
    assert refused.json == {
        "title": "License limit reached",
        "description": f"The standard license of ACME Disclosures Ltd (id {lic.jti}) allows 2 sites and 2 "
                       f"exist; remove one or install a license with more"}
    assert Site.select().count() == 2 and not Site.select().where(Site.slug == "three").exists()
    assert audit_rows() == before + 1  # the refusal, and no site.create
    [event] = refusals(deps)
    assert event["target"] == "license:sites" and event["actor"].startswith("user:")
    assert event["metadata"] == {"kind": "sites", "cap": 2, "count": 2, "state": "active",
                                 "tier": "standard", "license": lic.jti}
    assert client.simulate_delete("/api/sites/two", headers=root).status_code == 204
    assert new_site(client, root, "three").status_code == 201


def test_the_host_cap(client, root, install, deps):
    install(hosts=1)
    assert new_host(client, root, "first").status_code == 201
    refused = new_host(client, root, "second")
    assert refused.status_code == 403 and "allows 1 hosts and 1 exist" in refused.json["description"]
    assert Host.select().count() == 1
    assert [e["metadata"]["kind"] for e in refusals(deps)] == ["hosts"]
    first = Host.get(Host.name == "first").id
    assert client.simulate_delete(f"/api/hosts/{first}", headers=root).status_code == 204
    assert new_host(client, root, "second").status_code == 201


def test_the_admin_cap_counts_enabled_accounts_of_both_roles(users, install, deps, superadmin):
    install(admins=2)
    users.create("second@example.test", "admin", PASSWORD, ACTOR)
    with pytest.raises(LicenseLimit, match="allows 2 admin and superadmin accounts and 2 exist"):
        users.create("third@example.test", "superadmin", PASSWORD, ACTOR)
    assert User.select().count() == 2
    # Disabling one frees its place (a disabled account cannot log in).
    User.update(disabled_at=deps.clock.now()).where(User.email == "second@example.test").execute()
    users.create("third@example.test", "superadmin", PASSWORD, ACTOR)
    assert [e["metadata"]["count"] for e in refusals(deps)] == [2]


def test_a_cap_of_zero_refuses_the_first_one(client, root, install):
    install(sites=0)
    assert new_site(client, root, "any").status_code == 403


def test_grace_keeps_the_caps_then_the_community_caps_stop_growth_only(
        client, root, install, deps, clock, settings, superadmin):
    install(sites=3, days=10)
    assert [new_site(client, root, s).status_code for s in ("a", "b")] == [201, 201]
    clock.advance(days=10)  # expired: in grace
    assert new_site(client, root, "c").status_code == 201
    clock.advance(days=settings.license_grace_days)  # lapsed: community caps (1 site) and 3 exist
    refused = new_site(client, root, "d")
    assert refused.status_code == 403
    assert "community tier" in refused.json["description"] and "grace ended" in refused.json["description"]
    assert refusals(deps)[-1]["metadata"]["state"] == "lapsed"
    # Everything that exists keeps working: a login, a deploy, a rollback, a delete.
    login = client.simulate_post("/api/auth/login", json={"email": superadmin.email, "password": PASSWORD})
    assert login.status_code == 200, login.json
    for body in ({"playbook": "deploy_site", "site": "a"}, {"playbook": "rollback_site", "site": "a"}):
        assert client.simulate_post("/api/runs", json=body, headers=root).status_code == 201
    assert client.simulate_delete("/api/sites/c", headers=root).status_code == 204
    assert Site.select().count() == 2


def test_a_revoked_license_falls_to_the_community_caps(client, root, install, licenses, issuer, clock):
    lic = install(hosts=5)
    assert new_host(client, root, "h1").status_code == 201
    licenses.install_revocations(issuer.revocations(clock.now(), lic.jti), ACTOR)
    assert new_host(client, root, "h2").status_code == 201  # community allows 2 hosts
    refused = new_host(client, root, "h3")
    assert refused.status_code == 403 and "was revoked" in refused.json["description"]


def test_production_without_a_license_is_the_community_tier(deps, settings):
    store = LicenseStore(deps.audit, deps.clock, trusted_key(settings), dt_grace(settings), dev=False)
    caps = LicenseCaps(deps.db, deps.audit, store)
    catalog = SiteCatalog(deps.audit, deps.keys, deps.clock, True, caps=caps)
    for n in range(COMMUNITY.sites):
        catalog.create_site({"slug": f"s{n}", "domain": f"s{n}.example.com"}, ACTOR)
    with pytest.raises(LicenseLimit, match="community tier \\(no license is installed\\)"):
        catalog.create_site({"slug": "more", "domain": "more.example.com"}, ACTOR)


def test_dev_without_a_license_has_no_caps(deps):
    catalog = build_catalog(deps)
    for n in range(COMMUNITY.sites + 3):
        catalog.create_site({"slug": f"s{n}", "domain": f"s{n}.example.com"}, ACTOR)
    assert Site.select().count() == COMMUNITY.sites + 3


def test_reserve_refuses_to_run_outside_the_creating_transaction(deps):
    with pytest.raises(RuntimeError, match="inside the creating transaction"):
        build_catalog(deps).caps.reserve("sites", ACTOR)


def dt_grace(settings):
    import datetime as dt

    return dt.timedelta(days=settings.license_grace_days)

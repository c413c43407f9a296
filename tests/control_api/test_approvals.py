"""Four-eyes approval over the real API (FF_JIT_REQUIRED=1): a site is deleted only with
an approval bound to exactly that deletion, given by another superadmin who proved a
TOTP code, used once by its requester, before it expires; every other path is refused,
audited, and changes nothing."""

from __future__ import annotations

import dataclasses
import json
import threading

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.auth.totp import STEP_SECONDS, TotpService, code_at
from control_api.clock import unix_seconds
from control_api.models import ApprovalRequest, AuditEvent, Site
from control_api.wiring import build_credentials
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.resources.conftest import bearer


@pytest.fixture
def env(env):
    return dict(env, FF_JIT_REQUIRED="1", FF_JIT_TTL_MINUTES="30")


@pytest.fixture
def people(deps, users, clock, superadmin):
    """Three superadmins (the requester and two approvers, each with TOTP) and an admin."""
    totp = TotpService(deps.keys)
    seeds, tokens = {}, {}
    for name in ("root", "ann", "bob"):
        user = (superadmin if name == "root" else
                users.create(f"{name}@example.test", "superadmin", PASSWORD, ACTOR))
        seeds[name] = totp.begin(user, clock.now())[0]
        totp.confirm(user, clock.now())
        tokens[name] = bearer(build_credentials(deps).create_token(user, "t", None, ACTOR)[0])
        tokens[name + "_user"] = user
    return seeds, tokens


@pytest.fixture
def site(client, people):
    _, tokens = people
    made = client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"},
                                headers=tokens["root"])
    assert made.status_code == 201
    return made.json


def code(seeds, name, clock, steps_ahead=0) -> str:
    return code_at(seeds[name], int(unix_seconds(clock.now()) // STEP_SECONDS) + steps_ahead)


def ask(client, headers, action="site.delete", params=None):
    body = {"action": action, "params": params or {"slug": "acme"}, "reason": "the SPV was wound up"}
    return client.simulate_post("/api/approvals", json=body, headers=headers)


def approve(client, headers, request_id, totp_code):
    return client.simulate_post(f"/api/approvals/{request_id}/approve", json={"code": totp_code},
                                headers=headers)


def delete_site(client, headers, request_id=None, slug="acme"):
    extra = {"X-Approval": str(request_id)} if request_id is not None else {}
    return client.simulate_delete(f"/api/sites/{slug}", headers=dict(headers, **extra))


def actions(*names) -> list[str]:
    return [e.action for e in AuditEvent.select().order_by(AuditEvent.seq) if e.action in names]


def refusals() -> list[str]:
    return [json.loads(e.event_json)["metadata"]["why"] for e in AuditEvent.select().order_by(AuditEvent.seq)
            if e.action == "approval.refused"]


def test_another_superadmin_approves_and_the_requester_deletes_once(client, clock, people, site):
    seeds, t = people
    assert delete_site(client, t["root"]).status_code == 403  # no approval: refused, nothing deleted
    request = ask(client, t["root"]).json
    assert request["state"] == "pending" and request["approvals_needed"] == 1
    assert delete_site(client, t["root"], request["id"]).status_code == 403  # not approved yet
    approved = approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    assert approved.status_code == 200 and approved.json["state"] == "approved"
    assert delete_site(client, t["root"], request["id"]).status_code == 204
    assert not Site.select().exists()
    used = client.simulate_get(f"/api/approvals/{request['id']}", headers=t["bob"]).json
    assert used["state"] == "consumed" and used["votes"][0]["approver"] == t["ann_user"].id
    assert actions("approval.request", "approval.approve", "approval.consumed", "site.delete") == [
        "approval.request", "approval.approve", "approval.consumed", "site.delete"]


def test_no_path_lets_the_requester_approve_their_own_request(client, clock, people, site):
    seeds, t = people
    request = ask(client, t["root"]).json
    own = approve(client, t["root"], request["id"], code(seeds, "root", clock))
    assert own.status_code == 403 and "your own request" in own.json["description"]
    # Nor can someone else's approval be used by another superadmin than the requester.
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    assert delete_site(client, t["ann"], request["id"]).status_code == 403
    assert delete_site(client, t["bob"], request["id"]).status_code == 403
    assert Site.select().exists()
    assert refusals() == ["the requester approved their own request",
                          *["used by someone other than its requester"] * 2]


def test_an_approval_for_other_parameters_or_action_is_refused(client, clock, people, site):
    seeds, t = people
    other = {"slug": "other", "domain": "other.example.com"}
    client.simulate_post("/api/sites", json=other, headers=t["root"])
    request = ask(client, t["root"]).json  # for acme
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    assert delete_site(client, t["root"], request["id"], slug="other").status_code == 403
    host = client.simulate_post("/api/hosts", json={"name": "here", "connection": "local"},
                                headers=t["root"]).json
    gone = client.simulate_delete(f"/api/hosts/{host['id']}",
                                  headers=dict(t["root"], **{"X-Approval": str(request["id"])}))
    assert gone.status_code == 403
    assert Site.select().count() == 2 and refusals() == ["used for another action or other parameters"] * 2
    assert delete_site(client, t["root"], request["id"]).status_code == 204  # still good for what it names


def test_a_replayed_approval_is_refused(client, clock, people, site):
    seeds, t = people
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    assert delete_site(client, t["root"], request["id"]).status_code == 204
    client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"}, headers=t["root"])
    replay = delete_site(client, t["root"], request["id"])
    assert replay.status_code == 409 and "consumed" in replay.json["description"]
    assert Site.select().count() == 1


def test_an_expired_request_is_refused_and_its_history_kept(client, clock, people, site):
    seeds, t = people
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    clock.advance(minutes=31)
    late = delete_site(client, t["root"], request["id"])
    assert late.status_code == 409 and "expired" in late.json["description"]
    assert Site.select().exists()
    assert actions("approval.expired") == ["approval.expired"]
    delete_site(client, t["root"], request["id"])
    assert actions("approval.expired") == ["approval.expired"]  # recorded once
    kept = client.simulate_get(f"/api/approvals/{request['id']}", headers=t["root"]).json
    assert kept["state"] == "expired" and len(kept["votes"]) == 1


def test_a_withdrawn_approval_stops_what_it_had_not_yet_allowed(client, clock, people, site):
    seeds, t = people
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    withdrawn = client.simulate_delete(f"/api/approvals/{request['id']}/approve", headers=t["ann"])
    assert withdrawn.status_code == 204
    refused = delete_site(client, t["root"], request["id"])
    assert refused.status_code == 403 and "0 of the 1" in refused.json["description"]
    assert Site.select().exists() and actions("approval.withdraw") == ["approval.withdraw"]


def test_an_approver_disabled_after_approving_no_longer_counts(client, clock, people, site, deps, users):
    seeds, t = people
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    users.disable(t["ann_user"], ACTOR, build_credentials(deps))
    assert delete_site(client, t["root"], request["id"]).status_code == 403
    assert Site.select().exists()


def test_a_wrong_or_missing_code_approves_nothing(client, people, site):
    _, t = people
    request = ask(client, t["root"]).json
    assert approve(client, t["ann"], request["id"], "000000").status_code == 403
    assert approve(client, t["ann"], request["id"], 123456).status_code == 403
    state = client.simulate_get(f"/api/approvals/{request['id']}", headers=t["root"]).json
    assert state["state"] == "pending" and state["votes"] == []
    assert "auth.step_up_failed" in actions("auth.step_up_failed")


def test_two_approvers_when_the_setting_asks_for_two(people, site, deps, clock):
    seeds, t = people
    two = dataclasses.replace(deps, settings=dataclasses.replace(deps.settings, jit_approvers=2))
    client = falcon.testing.TestClient(create_app(two))
    request = ask(client, t["root"]).json
    assert request["approvals_needed"] == 2
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    assert approve(client, t["ann"], request["id"], code(seeds, "ann", clock, 1)).status_code == 409  # twice
    assert delete_site(client, t["root"], request["id"]).status_code == 403
    approve(client, t["bob"], request["id"], code(seeds, "bob", clock))
    assert delete_site(client, t["root"], request["id"]).status_code == 204


def test_a_failed_action_leaves_its_approval_unused(client, clock, people, site, deps):
    seeds, t = people
    from control_api.runs.queue import RunRequest
    from control_api.wiring import build_queue

    deploy = RunRequest("deploy_site", {"site": "acme"}, {}, site_id(), "acme")
    build_queue(deps).request(t["root_user"], deploy, None, ACTOR)
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    busy = delete_site(client, t["root"], request["id"])
    assert busy.status_code == 409 and "queued or running" in busy.json["description"]
    assert ApprovalRequest.get_by_id(request["id"]).consumed_at is None


def site_id() -> int:
    return Site.get(Site.slug == "acme").id


def test_two_uses_racing_consume_the_approval_once(client, clock, people, site, deps):
    seeds, t = people
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    results, start = [], threading.Barrier(2)

    def use():
        start.wait()
        results.append(delete_site(client, t["root"], request["id"]).status_code)
        deps.db.close()

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The loser is refused however far it got: the site gone (404), the approval used (409
    # at admission, 403 at the atomic consumption).
    assert results.count(204) == 1 and set(results) - {204} <= {403, 404, 409}
    assert actions("approval.consumed") == ["approval.consumed"]


def test_bad_requests_are_refused_and_store_nothing(client, people, site):
    _, t = people
    for body in ({"action": "site.create", "params": {"slug": "acme"}, "reason": "x"},
                 {"action": "site.delete", "params": {"slug": "acme", "extra": 1}, "reason": "x"},
                 {"action": "site.delete", "params": {"slug": "nope"}, "reason": "x"},
                 {"action": "host.delete", "params": {"host_id": 2**63}, "reason": "x"},
                 {"action": "host.delete", "params": {"host_id": True}, "reason": "x"},
                 {"action": "site.delete", "params": {"slug": "acme"}, "reason": ""}):
        assert client.simulate_post("/api/approvals", json=body, headers=t["root"]).status_code == 400, body
    assert not ApprovalRequest.select().exists()


def test_an_admin_cannot_ask_approve_or_read(client, people, site, admin, deps):
    _, t = people
    adm = bearer(build_credentials(deps).create_token(admin, "a", None, ACTOR)[0])
    assert ask(client, adm).status_code == 403
    request = ask(client, t["root"]).json
    assert approve(client, adm, request["id"], "123456").status_code == 403
    assert client.simulate_get("/api/approvals", headers=adm).status_code == 403


def test_the_requester_alone_may_cancel(client, people, site):
    _, t = people
    request = ask(client, t["root"]).json
    assert client.simulate_delete(f"/api/approvals/{request['id']}", headers=t["ann"]).status_code == 403
    assert client.simulate_delete(f"/api/approvals/{request['id']}", headers=t["root"]).status_code == 204
    listed = client.simulate_get("/api/approvals", headers=t["ann"]).json["requests"]
    assert [r["state"] for r in listed] == ["canceled"]


def test_the_digest_binds_action_and_exact_parameters():
    from control_api.approvals import action_digest

    base = action_digest("site.delete", {"slug": "acme"})
    assert base == action_digest("site.delete", {"slug": "acme"})
    assert base != action_digest("site.delete", {"slug": "acme2"})
    assert base != action_digest("host.delete", {"slug": "acme"})


def test_an_approval_id_in_other_digits_is_no_id(client, clock, people, site):
    seeds, t = people
    request = ask(client, t["root"]).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    arabic = "".join(chr(0x0660 + int(d)) for d in str(request["id"]))  # int() would read these
    refused = client.simulate_delete("/api/sites/acme", headers=dict(t["root"], **{"X-Approval": arabic}))
    assert refused.status_code in (400, 403) and Site.select().exists()


def host_key_line() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture
def ssh_host(client, people):
    from tests.control_api.sites.keys import openssh_key

    _, t = people
    made = client.simulate_post("/api/hosts", headers=t["root"], json={
        "name": "web-1", "address": "10.0.0.9", "ssh_private_key": openssh_key(),
        "ssh_host_key": host_key_line()})
    assert made.status_code == 201, made.text
    return made.json["id"]


def test_a_re_pin_is_approved_for_exactly_one_key(client, clock, people, ssh_host):
    seeds, t = people
    wanted, other = host_key_line(), host_key_line()
    path = f"/api/hosts/{ssh_host}/host-key"
    assert client.simulate_put(path, json={"ssh_host_key": wanted}, headers=t["root"]).status_code == 403
    request = ask(client, t["root"], "host.repin_key", {"host_id": ssh_host, "ssh_host_key": wanted}).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    with_approval = dict(t["root"], **{"X-Approval": str(request["id"])})
    assert client.simulate_put(path, json={"ssh_host_key": other}, headers=with_approval).status_code == 403
    # The same key with another comment is the same key: the digest is of its canonical form.
    done = client.simulate_put(path, json={"ssh_host_key": wanted + " renamed"}, headers=with_approval)
    assert done.status_code == 200, done.text
    assert wanted.split()[1] in json.dumps(done.json)


def test_a_credential_rotation_needs_an_approval(client, clock, people, ssh_host):
    seeds, t = people
    path = f"/api/hosts/{ssh_host}/rotate-credentials"
    assert client.simulate_post(path, headers=t["root"]).status_code == 403
    request = ask(client, t["root"], "host.rotate_credentials", {"host_id": ssh_host}).json
    approve(client, t["ann"], request["id"], code(seeds, "ann", clock))
    queued = client.simulate_post(path, headers=dict(t["root"], **{"X-Approval": str(request["id"])}))
    assert queued.status_code == 202 and queued.json["playbook"] == "rotate_credentials"
    assert actions("approval.consumed") == ["approval.consumed"]


def test_the_other_superadmins_are_mailed_a_request(people, site, deps, tmp_path):
    from tests.peers.smtp import SmtpServer

    _, t = people
    server = SmtpServer().start()
    try:
        mailing = dataclasses.replace(deps, settings=dataclasses.replace(deps.settings, smtp_url=server.url))
        client = falcon.testing.TestClient(create_app(mailing))
        request = ask(client, t["root"]).json
        mailed = sorted(m["To"] for m in server.inbox.messages)
        assert mailed == ["ann@example.test", "bob@example.test"]  # never the requester
        body = server.inbox.messages[0].get_payload()
        assert f"request {request['id']}" in body and "site.delete" in body and "wound up" in body
    finally:
        server.stop()


def test_a_request_is_made_even_when_mail_fails(people, site, deps):
    _, t = people
    dead = dataclasses.replace(deps, settings=dataclasses.replace(deps.settings, smtp_url="smtp://127.0.0.1:9"))
    client = falcon.testing.TestClient(create_app(dead))
    assert ask(client, t["root"]).status_code == 201

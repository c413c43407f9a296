"""Self-update, the control plane's half (control_api/release/updates.py) over the real API:
a genuine signed bundle is received, kept and audited; every refusal is a 4xx with its
reason, an audited release.refused, and leaves no file and no row; applying one writes
apply.json, after a step-up with FF_REQUIRE_STEP_UP=1 and under four-eyes approval with
FF_JIT_REQUIRED=1."""

from __future__ import annotations

import dataclasses
import io
import json

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.audit.log import Actor
from control_api.auth.totp import STEP_SECONDS, TotpService, code_at
from control_api.clock import unix_seconds
from control_api.models import AuditEvent
from control_api.release.models import Release
from control_api.release.updates import ReleaseTooLarge
from control_api.wiring import build_credentials, build_release_updates
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.auth.test_second_factor import cookie_of, enrol, login, make_client, now_code, second
from tests.control_api.resources.conftest import bearer
from tests.release import bundles
from tests.release.bundles import NEWER, make_bundle, signature_header

RAW = "application/gzip"


@pytest.fixture
def env(env, keys):
    return dict(env, FF_RELEASE_PUBLIC_KEY=keys.line, FF_MAX_RELEASE_MB="1")


@pytest.fixture
def updates_dir(settings):
    return settings.data_dir / "updates"


@pytest.fixture
def root(deps, superadmin):
    return bearer(build_credentials(deps).create_token(superadmin, "root", None, ACTOR)[0])


@pytest.fixture
def adm(deps, admin):
    return bearer(build_credentials(deps).create_token(admin, "adm", None, ACTOR)[0])


def upload(client, headers, tarball, *, signature: str | None = "same", body: bytes | None = None,
           content_type: str = RAW):
    sent = dict(headers, **{"Content-Type": content_type})
    if signature == "same":
        signature = signature_header(tarball)
    if signature is not None:
        sent["X-Weco-Signature"] = signature
    return client.simulate_post("/api/releases", body=tarball.read_bytes() if body is None else body,
                                headers=sent)


def events(action: str) -> list[dict]:
    return [json.loads(e.event_json) for e in AuditEvent.select().order_by(AuditEvent.seq)
            if e.action == action]


def nothing_kept(updates_dir) -> bool:
    return not Release.select().exists() and (not updates_dir.exists() or not any(updates_dir.iterdir()))


def test_a_genuine_bundle_is_received_kept_and_audited(client, root, keys, tmp_path, updates_dir):
    tarball = make_bundle(tmp_path / "out", keys)
    answer = upload(client, root, tarball)
    assert answer.status_code == 201, answer.text
    body = answer.json
    assert (body["version"], body["sha256"], body["tag"], body["state"]) == (
        NEWER, bundles.sha256(tarball), None, "received")
    assert answer.headers["location"] == f"/api/releases/{body['id']}"
    kept = updates_dir / tarball.name
    assert kept.read_bytes() == tarball.read_bytes() and kept.stat().st_mode & 0o777 == 0o600
    signature = f"{tarball.name}.minisig"
    assert (updates_dir / signature).read_text() == (tarball.parent / signature).read_text()
    assert sorted(p.name for p in updates_dir.iterdir()) == [tarball.name, f"{tarball.name}.minisig"]
    [event] = events("release.received")
    assert event["metadata"] == {"version": NEWER, "sha256": body["sha256"], "tag": ""}
    assert event["target"] == f"release:{body['id']}"
    listed = client.simulate_get("/api/releases", headers=root).json["releases"]
    assert [r["id"] for r in listed] == [body["id"]]
    # The same version again: refused, the first one kept as it was.
    again = upload(client, root, tarball)
    assert again.status_code == 409 and "already received" in again.json["description"]
    assert kept.read_bytes() == tarball.read_bytes() and Release.select().count() == 1


def _flip(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    return bytes(flipped)


def _refusal_cases(keys, other_keys, tmp_path):
    genuine = make_bundle(tmp_path / "genuine", keys)
    foreign = make_bundle(tmp_path / "foreign", other_keys)
    other_file = make_bundle(tmp_path / "named", keys, comment=f"file:weco-98.0.0.tar.gz version:{NEWER} "
                                                                f"tag:- sha256:{bundles.sha256(genuine)}")
    other_sha = make_bundle(tmp_path / "sha", keys, comment=f"file:weco-{NEWER}.tar.gz version:{NEWER} "
                                                            f"tag:- sha256:{'0' * 64}")
    not_pep440 = make_bundle(tmp_path / "pep", keys, comment=f"file:weco-{NEWER}.tar.gz version:{NEWER}-x "
                                                             f"tag:- sha256:{bundles.sha256(genuine)}")
    older = make_bundle(tmp_path / "older", keys, bundles.older())
    equal = make_bundle(tmp_path / "equal", keys, bundles.running())
    return {
        "another key": (foreign, {}, 422, "signed by key id"),
        "a flipped byte": (genuine, {"body": _flip(genuine.read_bytes())}, 422, "does not match the file"),
        "no signature header": (genuine, {"signature": None}, 400, "X-Weco-Signature"),
        "a malformed signature header": (genuine, {"signature": "not base64!"}, 400, "X-Weco-Signature"),
        "a header that is no .minisig": (genuine, {"signature": "aGVsbG8="}, 400, "expected 4 lines"),
        "a comment naming another file": (other_file, {}, 422, "made for 'weco-98.0.0.tar.gz'"),
        "a comment naming another sha256": (other_sha, {}, 422, "names SHA-256 000"),
        "a version that is not PEP 440": (not_pep440, {}, 422, "not a PEP 440 version"),
        "an older version": (older, {}, 409, "not newer than the running"),
        "the running version": (equal, {}, 409, "not newer than the running"),
        "another media type": (genuine, {"content_type": "application/octet-stream"}, 415,
                               "application/gzip"),
    }


CASES = ["another key", "a flipped byte", "no signature header", "a malformed signature header",
         "a header that is no .minisig", "a comment naming another file", "a comment naming another sha256",
         "a version that is not PEP 440", "an older version", "the running version", "another media type"]


@pytest.mark.parametrize("case", CASES)
def test_a_refused_upload_leaves_nothing_and_is_audited(case, client, root, keys, other_keys, tmp_path,
                                                        updates_dir):
    tarball, options, status, why = _refusal_cases(keys, other_keys, tmp_path)[case]
    answer = upload(client, root, tarball, **options)
    assert answer.status_code == status, answer.text
    assert why in answer.json["description"] and "\n" not in answer.json["description"]
    assert nothing_kept(updates_dir)
    [event] = events("release.refused")
    assert event["metadata"]["reason"] == answer.json["description"]


def test_without_a_release_key_self_update_is_refused(deps, root, keys, tmp_path, updates_dir):
    keyless = dataclasses.replace(deps, settings=dataclasses.replace(deps.settings, release_public_key=""))
    client = falcon.testing.TestClient(create_app(keyless))
    answer = upload(client, root, make_bundle(tmp_path / "out", keys))
    assert answer.status_code == 409 and "FF_RELEASE_PUBLIC_KEY is empty" in answer.json["description"]
    assert nothing_kept(updates_dir) and len(events("release.refused")) == 1


def test_a_declared_oversized_body_is_refused_before_it_is_read(client, root, keys, tmp_path, updates_dir):
    tarball = make_bundle(tmp_path / "out", keys)
    answer = upload(client, root, tarball, body=tarball.read_bytes() + b"\0" * (1 << 20))
    assert answer.status_code == 413
    assert nothing_kept(updates_dir)


def test_a_streamed_body_past_the_limit_is_cut_off_and_audited(deps, superadmin, keys, tmp_path, updates_dir):
    updates = build_release_updates(deps)
    tarball = make_bundle(tmp_path / "out", keys)
    endless = io.BytesIO(tarball.read_bytes() + b"\0" * (2 << 20))  # as a chunked body, no length
    with pytest.raises(ReleaseTooLarge):
        updates.receive(endless, RAW, signature_header(tarball), superadmin, Actor("test"))
    assert endless.tell() <= (1 << 20) + 1 + 65536  # never read far past the limit
    assert nothing_kept(updates_dir)
    assert "at most 1 MiB" in events("release.refused")[0]["metadata"]["reason"]


def test_a_plain_admin_may_neither_upload_list_nor_apply(client, adm, keys, tmp_path, updates_dir):
    tarball = make_bundle(tmp_path / "out", keys)
    assert upload(client, adm, tarball).status_code == 403
    assert client.simulate_get("/api/releases", headers=adm).status_code == 403
    assert client.simulate_post("/api/releases/1/apply", headers=adm).status_code == 403
    assert nothing_kept(updates_dir) and not events("release.refused")


def test_apply_writes_the_request_for_the_root_side_once(client, root, keys, tmp_path, updates_dir):
    tarball = make_bundle(tmp_path / "out", keys)
    received = upload(client, root, tarball).json
    assert client.simulate_post("/api/releases/999/apply", headers=root).status_code == 404
    answer = client.simulate_post(f"/api/releases/{received['id']}/apply", headers=root)
    assert answer.status_code == 202, answer.text
    assert answer.json["state"] == "apply_requested" and answer.json["apply_requested_at"]
    request = json.loads((updates_dir / "apply.json").read_text())
    assert request == {"id": received["id"], "version": NEWER, "sha256": received["sha256"]}
    assert [e["metadata"] for e in events("release.apply_requested")] == [
        {"version": NEWER, "sha256": received["sha256"]}]
    again = client.simulate_post(f"/api/releases/{received['id']}/apply", headers=root)
    assert again.status_code == 409 and len(events("release.apply_requested")) == 1


def test_with_four_eyes_apply_needs_another_superadmins_approval_of_this_bundle(
        deps, users, clock, superadmin, keys, tmp_path, updates_dir):
    jit = dataclasses.replace(deps, settings=dataclasses.replace(deps.settings, jit_required=True))
    client = falcon.testing.TestClient(create_app(jit))
    totp = TotpService(deps.keys)
    ann = users.create("ann@example.test", "superadmin", PASSWORD, ACTOR)
    seed = totp.begin(ann, clock.now())[0]
    totp.confirm(ann, clock.now())
    root = bearer(build_credentials(deps).create_token(superadmin, "root", None, ACTOR)[0])
    ann_token = bearer(build_credentials(deps).create_token(ann, "ann", None, ACTOR)[0])
    received = upload(client, root, make_bundle(tmp_path / "out", keys)).json
    path = f"/api/releases/{received['id']}/apply"

    refused = client.simulate_post(path, headers=root)
    assert refused.status_code == 403 and "four-eyes" in refused.json["description"]
    params = {"release_id": received["id"], "sha256": received["sha256"]}
    wrong = client.simulate_post("/api/approvals", headers=root, json={
        "action": "release.apply", "params": dict(params, sha256="0" * 64), "reason": "upgrade"})
    assert wrong.status_code == 400  # an approval names the bundle the row holds, or none
    asked = client.simulate_post("/api/approvals", headers=root, json={
        "action": "release.apply", "params": params, "reason": "upgrade to the new release"}).json
    with_approval = dict(root, **{"X-Approval": str(asked["id"])})
    assert client.simulate_post(path, headers=with_approval).status_code == 403  # not approved yet
    assert not (updates_dir / "apply.json").exists()
    code = code_at(seed, int(unix_seconds(clock.now()) // STEP_SECONDS))
    approved = client.simulate_post(f"/api/approvals/{asked['id']}/approve", headers=ann_token,
                                    json={"code": code})
    assert approved.status_code == 200 and approved.json["state"] == "approved"
    applied = client.simulate_post(path, headers=with_approval)
    assert applied.status_code == 202, applied.text
    assert json.loads((updates_dir / "apply.json").read_text())["sha256"] == received["sha256"]
    recorded = [e.action for e in AuditEvent.select().order_by(AuditEvent.seq)]
    assert [a for a in recorded if a in ("approval.consumed", "release.apply_requested")] == [
        "approval.consumed", "release.apply_requested"]


def test_with_step_up_required_apply_needs_a_fresh_step_up_for_release_apply(
        env, db, clock, fast_hasher, superadmin, keys, tmp_path, updates_dir):
    client = make_client(env, db, clock, fast_hasher, FF_REQUIRE_STEP_UP="1")
    email = "root@example.test"
    seed, _ = enrol(client, clock, cookie_of(login(client, email)))
    clock.advance(seconds=30)
    session = cookie_of(second(client, login(client, email).json["challenge"], "totp", now_code(clock, seed)))
    received = upload(client, session, make_bundle(tmp_path / "out", keys)).json
    path = f"/api/releases/{received['id']}/apply"

    def step_up(scope: str) -> dict:
        clock.advance(seconds=30)
        body = {"scope": scope, "code": now_code(clock, seed)}
        minted = client.simulate_post("/api/auth/step-up", json=body, headers=session)
        assert minted.status_code == 201, minted.text
        return {**session, "X-Step-Up-Token": minted.json["step_up_token"]}

    for headers in (session, step_up("token.revoke")):
        refused = client.simulate_post(path, headers=headers)
        assert (refused.status_code, refused.json["title"]) == (403, "Step-up required")
    assert not (updates_dir / "apply.json").exists() and not events("release.apply_requested")
    assert Release.get_by_id(received["id"]).state == "received"
    applied = client.simulate_post(path, headers=step_up("release.apply"))
    assert applied.status_code == 202, applied.text
    assert json.loads((updates_dir / "apply.json").read_text())["sha256"] == received["sha256"]

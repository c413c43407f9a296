"""Uploading PDFs through the API and managing a site's documents, end to end with the
real peers (clamd with our signatures, Ghostscript), on both stores: what is accepted,
stored (once), audited and refused, and that a refusal leaves nothing behind."""

from __future__ import annotations

import json

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.documents import pdfcheck
from control_api.documents.blobs import BlobStore
from control_api.documents.models import Document, DocumentFile
from control_api.models import AuditEvent
from control_api.settings import load_settings
from control_api.wiring import build_deps
from tests.control_api.documents import samples
from tests.peers.clamd import EICAR, Clamd


@pytest.fixture
def env(env, clamd):
    return dict(env, FF_CLAMD_SOCKET=clamd.socket, FF_MAX_UPLOAD_MB="8", FF_FLATTEN_TIMEOUT_SECONDS="3",
                FF_FLATTEN_MEMORY_MB="256")


@pytest.fixture
def sites(client, root):
    for slug in ("acme", "beta"):
        assert client.simulate_post("/api/sites", json={"slug": slug, "domain": f"{slug}.example.com"},
                                    headers=root).status_code == 201


@pytest.fixture
def blobs(settings):
    return BlobStore(settings.documents_dir)


def multipart(data: bytes, filename: str = "report.pdf", title: str | None = "Annual report",
              boundary: str = "weco-test-boundary") -> tuple[bytes, dict]:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
             f"Content-Type: application/pdf\r\n\r\n".encode() + data + b"\r\n"]
    if title is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n'.encode()
                     + title.encode() + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(client, headers, data: bytes, slug: str = "acme", **form):
    body, content_type = multipart(data, **form)
    return client.simulate_post(f"/api/sites/{slug}/documents", body=body,
                                headers={**headers, **content_type})


def upload_raw(client, headers, data: bytes, slug: str = "acme", **query):
    return client.simulate_post(f"/api/sites/{slug}/documents", body=data, params=query,
                                headers={**headers, "Content-Type": "application/pdf"})


def events(deps, prefix: str = "document.") -> list[tuple[str, dict]]:
    deps.audit.seal()
    rows = AuditEvent.select().where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq)
    return [(row.action, json.loads(row.event_json)["metadata"]) for row in rows]


def stored(blobs: BlobStore) -> list[str]:
    return sorted(path.name for path in (blobs.root / "sha256").glob("*/*"))


def assert_nothing_left(blobs: BlobStore) -> None:
    assert Document.select().count() == 0 and DocumentFile.select().count() == 0
    assert stored(blobs) == [] and blobs.tmp_entries() == []


def test_a_clean_pdf_is_accepted_and_stored_once_however_often_uploaded(client, root, sites, deps, blobs):
    data = samples.clean(pages=3)
    first = upload(client, root, data)
    assert first.status_code == 201, first.json
    doc = first.json
    assert (doc["title"], doc["filename"], doc["pages"], doc["scanned"], doc["position"]) == (
        "Annual report", "report.pdf", 3, True, 1)
    assert first.headers["location"] == f"/api/sites/acme/documents/{doc['id']}"
    assert stored(blobs) == sorted([doc["original_sha256"], doc["sha256"]])
    assert blobs.path(doc["sha256"]).stat().st_mode & 0o777 == 0o444
    assert pdfcheck.inspect(str(blobs.path(doc["sha256"]))) == {"pages": 3, "active": []}
    again = upload_raw(client, root, data, slug="beta", filename="copy.pdf", title="Same, elsewhere")
    assert again.status_code == 201 and again.json["sha256"] == doc["sha256"]
    twice = upload_raw(client, root, data, filename="again.pdf")
    assert twice.status_code == 409 and str(doc["id"]) in twice.json["description"]
    assert stored(blobs) == sorted([doc["original_sha256"], doc["sha256"]])  # still one copy each
    assert DocumentFile.select().count() == 1 and Document.select().count() == 2
    assert blobs.tmp_entries() == []
    uploads = [meta for action, meta in events(deps) if action == "document.upload"]
    digests = (doc["original_sha256"], doc["sha256"])
    assert [(m["original_sha256"], m["sha256"], m["stored_before"], m["scanned"]) for m in uploads] == [
        (*digests, False, True), (*digests, True, True)]


@pytest.mark.parametrize("make", [samples.with_javascript, samples.with_open_action, samples.with_form,
                                  samples.with_attachment, samples.with_launch])
def test_active_content_is_gone_from_what_is_stored(client, root, sites, blobs, make):
    result = upload(client, root, make())
    assert result.status_code == 201, result.json
    assert pdfcheck.inspect(str(blobs.path(result.json["sha256"])))["active"] == []
    assert pdfcheck.inspect(str(blobs.path(result.json["original_sha256"])))["active"] != []


@pytest.mark.parametrize("data", [EICAR, samples.with_eicar_stream()], ids=["raw", "in-a-pdf-stream"])
def test_eicar_is_refused_audited_and_quarantined(client, root, sites, deps, blobs, data):
    result = upload(client, root, data, filename="eicar.pdf")
    assert result.status_code == 422 and "Weco.Test.Eicar" in result.json["description"]
    assert_nothing_left(blobs)
    [(action, meta)] = events(deps)
    assert action == "document.rejected" and meta["reason"] == "virus" and meta["quarantined"]
    assert meta["signature"].startswith("Weco.Test.Eicar")
    quarantined = blobs.root / "quarantine" / meta["original_sha256"]
    assert quarantined.read_bytes() == data and quarantined.stat().st_mode & 0o777 == 0o400
    listed = client.simulate_get("/api/sites/acme/documents", headers=root).json
    assert listed == {"documents": []}


BAD = {
    "not-a-pdf": (b"MZ\x90\x00 this is an executable, named .pdf", {}, 422),
    "zero-bytes": (b"", {}, 422),
    "truncated": (samples.truncated(), {}, 422),
    "gs-runs-long": (samples.costly(), {}, 422),
    "eats-memory": (samples.array_bomb(), {}, 422),
    "traversal": (samples.clean(), {"filename": "../../etc/passwd.pdf"}, 400),
    "backslash": (samples.clean(), {"filename": "..\\boot.pdf"}, 400),
    "control-char": (samples.clean(), {"filename": "report\x1b[31m.pdf"}, 400),
    "newline": (samples.clean(), {"filename": "a\nb.pdf"}, 400),
    "rtl-override": (samples.clean(), {"filename": "report\u202efdp.exe.pdf"}, 400),
    "not-.pdf": (samples.clean(), {"filename": "report.exe"}, 400),
    "oversized": (samples.clean() + b"%" * (8 << 20), {}, 413),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_uploads_get_a_clear_4xx_and_leave_nothing(client, root, sites, blobs, deps, case):
    data, form, status = BAD[case]
    result = upload(client, root, data, **form)
    assert result.status_code == status, result.json
    assert result.json["title"] and result.json["description"]
    assert_nothing_left(blobs)
    assert not (blobs.root / "quarantine").exists() or not any((blobs.root / "quarantine").iterdir())
    if status == 422:
        [(action, meta)] = events(deps)
        assert action == "document.rejected" and meta["reason"] in ("not_pdf", "empty", "too_costly",
                                                                     "flatten_failed")


def make_client(env, db, clock, fast_hasher, **extra):
    settings = load_settings({**env, **extra})
    return falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))


def test_clamd_stopped_refuses_uploads_with_require_av(env, db, clock, fast_hasher, root, tmp_path, blobs):
    own = Clamd().start()
    socket_path = own.socket
    own.process.terminate()
    own.process.wait()  # stopped: its socket file stays, nobody listens
    client = make_client(env, db, clock, fast_hasher, FF_CLAMD_SOCKET=socket_path, FF_REQUIRE_AV="1")
    assert client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"},
                                headers=root).status_code == 201
    refused = upload(client, root, samples.clean())
    assert refused.status_code == 503 and "FF_REQUIRE_AV=1" in refused.json["description"]
    assert_nothing_left(blobs)
    lenient = make_client(env, db, clock, fast_hasher, FF_CLAMD_SOCKET=socket_path, FF_REQUIRE_AV="0")
    accepted = upload(lenient, root, samples.clean())
    assert accepted.status_code == 201 and accepted.json["scanned"] is False
    own.stop()
    deps = build_deps(load_settings(env), db, clock=clock)
    [(rejected, why), (uploaded, meta)] = events(deps)
    assert (rejected, why["reason"]) == ("document.rejected", "scanner_unavailable")
    assert uploaded == "document.upload" and not meta["scanned"]
    assert meta["scan"].startswith("not scanned: clamd is not reachable")


def test_documents_are_listed_shown_reordered_retitled_and_deleted_with_audit(client, root, sites, deps):
    ids = [upload(client, root, samples.clean(text=f"Doc {n}"), filename=f"d{n}.pdf",
                  title=f"Doc {n}").json["id"] for n in range(3)]
    listed = client.simulate_get("/api/sites/acme/documents", headers=root).json["documents"]
    assert [(d["id"], d["position"]) for d in listed] == [(ids[0], 1), (ids[1], 2), (ids[2], 3)]
    shown = client.simulate_get(f"/api/sites/acme/documents/{ids[1]}", headers=root)
    assert shown.status_code == 200 and shown.json["title"] == "Doc 1"
    assert client.simulate_get(f"/api/sites/beta/documents/{ids[1]}", headers=root).status_code == 404
    order = [ids[2], ids[0], ids[1]]
    moved = client.simulate_put("/api/sites/acme/documents/order", json={"ids": order}, headers=root)
    assert moved.status_code == 200 and [d["id"] for d in moved.json["documents"]] == order
    for bad, status in (([ids[0], ids[1]], 409), ([*ids, ids[0]], 409), ([ids[0], ids[1], 999], 409),
                        ("x", 400), ([True, ids[0], ids[1]], 400)):
        refused = client.simulate_put("/api/sites/acme/documents/order", json={"ids": bad}, headers=root)
        assert refused.status_code == status, bad
    now = client.simulate_get("/api/sites/acme/documents", headers=root).json["documents"]
    assert [d["id"] for d in now] == order  # refusals changed nothing
    renamed = client.simulate_patch(f"/api/sites/acme/documents/{ids[0]}", json={"title": "Renamed"},
                                    headers=root)
    assert renamed.status_code == 200 and renamed.json["title"] == "Renamed"
    for bad in ("", " ", "a\nb", "x" * 201, 5):
        assert client.simulate_patch(f"/api/sites/acme/documents/{ids[0]}", json={"title": bad},
                                     headers=root).status_code == 400
    assert client.simulate_delete(f"/api/sites/acme/documents/{ids[1]}", headers=root).status_code == 204
    assert client.simulate_get(f"/api/sites/acme/documents/{ids[1]}", headers=root).status_code == 404
    recorded = events(deps)
    assert [a for a, _ in recorded] == ["document.upload"] * 3 + ["document.reorder", "document.retitle",
                                                                  "document.delete"]
    retitle, delete = recorded[4][1], recorded[5][1]
    assert (retitle["from"], retitle["to"]) == ("Doc 0", "Renamed") and len(retitle["sha256"]) == 64
    assert delete["document"] == ids[1] and len(delete["original_sha256"]) == 64


def test_an_admin_uploads_only_to_granted_sites(client, root, adm, admin, sites, blobs):
    assert upload(client, adm, samples.clean()).status_code == 404  # not granted: not even seen
    assert client.simulate_get("/api/sites/acme/documents", headers=adm).status_code == 404
    assert_nothing_left(blobs)
    assert client.simulate_put(f"/api/sites/acme/grants/{admin.id}", headers=root).status_code == 201
    done = upload(client, adm, samples.clean())
    assert done.status_code == 201
    assert upload(client, adm, samples.clean(text="other"), slug="beta").status_code == 404
    assert client.simulate_get(f"/api/sites/beta/documents/{done.json['id']}", headers=adm).status_code == 404


def test_delete_needs_step_up_when_required(env, db, clock, fast_hasher, root, blobs):
    client = make_client(env, db, clock, fast_hasher, FF_REQUIRE_STEP_UP="1")
    assert client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"},
                                headers=root).status_code == 201
    document = upload(client, root, samples.clean()).json
    refused = client.simulate_delete(f"/api/sites/acme/documents/{document['id']}", headers=root)
    assert refused.status_code == 403 and refused.json["title"] == "Step-up required"
    assert Document.select().count() == 1


def test_malformed_uploads_are_refused(client, root, sites, blobs):
    good, headers = multipart(samples.clean())
    cases = [
        (good[:-20], headers, 400),  # no closing boundary
        (good, {"Content-Type": "multipart/form-data"}, 415),  # no boundary
        (good, {"Content-Type": "application/octet-stream"}, 415),
        (multipart(samples.clean(), title="\x00")[0], headers, 400),
        (good.replace(b'name="title"', b'name="other"'), headers, 400),
        (good.replace(b'name="title"', b'name="file"'), headers, 400),
        (multipart(samples.clean(), title=None)[0].replace(b'name="file"', b'name="title"'), headers, 400),
    ]
    for body, content_type, status in cases:
        result = client.simulate_post("/api/sites/acme/documents", body=body,
                                      headers={**root, **content_type})
        assert result.status_code == status, (body[:80], result.json)
    no_name = upload_raw(client, root, samples.clean())
    assert no_name.status_code == 400 and "filename" in no_name.json["description"]
    assert_nothing_left(blobs)
    titled = upload(client, root, samples.clean(), title=None, filename="Q3 results.pdf")
    assert titled.status_code == 201 and titled.json["title"] == "Q3 results"

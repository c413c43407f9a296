"""A site's release built from the document store: the index page, the tree of hard
links, the manifest from stored digests; and a deploy of uploaded PDFs through the
worker and the site_deploy role on a local host, whose helper still verifies every file."""

from __future__ import annotations

import hashlib
import html.parser
from pathlib import Path
from types import SimpleNamespace

import pytest

from control_api.documents import release
from control_api.documents.blobs import BlobStore
from control_api.models import Run, RunEvent
from control_api.wiring import build_catalog, build_credentials, build_worker
from tests.conftest import ACTOR
from tests.control_api.documents import samples
from tests.control_api.resources.conftest import bearer
from tests.control_api.resources.test_documents import upload

HOSTILE = '<script>alert(1)</script> & "quoted" <img src=x onerror=alert(2)>'


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_index_is_static_accessible_and_keeps_titles_as_text():
    site = SimpleNamespace(domain="acme.example.com")
    documents = [SimpleNamespace(title=HOSTILE, filename='a"b.pdf',
                                 file=SimpleNamespace(sha256="ab" * 32, size=123_456, pages=1)),
                 SimpleNamespace(title="Second", filename="second.pdf",
                                 file=SimpleNamespace(sha256="cd" * 32, size=999, pages=3))]
    page = release.index_html(site, documents).decode()
    parser = _Tags()
    parser.feed(page)
    tags = parser.tags
    assert ("html", {"lang": "en"}) in tags and any(t == "title" for t, _ in tags)
    assert [t for t, _ in tags].count("h1") == 1 and any(t == "main" for t, _ in tags)
    # Nothing the sites' CSP (default-src 'self') would block, nothing that runs.
    assert not {t for t, _ in tags} & {"script", "style", "iframe", "object", "embed", "form", "img", "base"}
    assert not any(name.startswith("on") or name == "style" for _, attrs in tags for name in attrs)
    links = [attrs for tag, attrs in tags if tag == "a"]
    assert [a["href"] for a in links] == [f"files/{'ab' * 32}.pdf", f"files/{'cd' * 32}.pdf"]
    assert links[0]["download"] == 'a"b.pdf'
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "(PDF, 123.5 KB, 1 page)" in page and "(PDF, 999 bytes, 3 pages)" in page


def test_no_documents_build_no_release(deps, db, tmp_path):
    site = build_catalog(deps).create_site({"slug": "empty", "domain": "empty.example.com"}, ACTOR)
    assert release.materialize(site, BlobStore(tmp_path / "store"), tmp_path / "out") is None


@pytest.fixture
def env(env, clamd):
    return dict(env, FF_CLAMD_SOCKET=clamd.socket)


@pytest.fixture
def root(deps, superadmin):
    return bearer(build_credentials(deps).create_token(superadmin, "root", None, ACTOR)[0])


@pytest.fixture
def served_site(deps, client, root, tmp_path):
    catalog = build_catalog(deps)
    host = catalog.create_host({"name": "here", "connection": "local", "vars": {
        "site_deploy_root": str(tmp_path / "served"), "site_deploy_nginx": False,
        "site_deploy_install_packages": False}}, ACTOR)
    site = catalog.create_site({"slug": "acme", "domain": "acme.example.com"}, ACTOR)
    catalog.attach(site, host, ACTOR)
    return site, tmp_path / "served" / "acme"


def deploy(client, root, deps) -> Run:
    queued = client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "acme"},
                                  headers=root)
    assert queued.status_code == 201, queued.json
    assert build_worker(deps, name="w-doc").run_once()
    return Run.get_by_id(queued.json["id"])


def test_uploaded_pdfs_are_deployed_from_the_store(deps, client, root, served_site, settings):
    _, served = served_site
    first = upload(client, root, samples.clean(pages=2, text="One"), filename="one.pdf", title=HOSTILE).json
    second = upload(client, root, samples.with_javascript(), filename="two.pdf", title="Two").json
    run = deploy(client, root, deps)
    assert run.status == "successful", run.error
    current = served / "current"
    blobs = BlobStore(settings.documents_dir)
    for document in (first, second):
        published = (current / "files" / f"{document['sha256']}.pdf").read_bytes()
        assert published == blobs.path(document["sha256"]).read_bytes()
        assert hashlib.sha256(published).hexdigest() == document["sha256"]
    page = (current / "index.html").read_text()
    assert page.index("&lt;script&gt;") < page.index(">Two</a>")  # the site's order, titles as text
    assert sorted(p.name for p in (current / "files").iterdir()) == sorted(
        f"{d['sha256']}.pdf" for d in (first, second))
    # The manifest the host verified came from the store (the worker wrote it for the run).
    manifest = (Path(settings.data_dir) / "runs" / str(run.id) / "site" / "manifest.sha256").read_text()
    assert f"{first['sha256']}  files/{first['sha256']}.pdf\n" in manifest


def test_the_host_still_verifies_what_the_store_claims(deps, client, root, served_site, settings):
    """A stored file changed behind the store's back: its manifest line (the digest taken
    when it was stored) no longer matches, and the host refuses the release."""
    _, served = served_site
    document = upload(client, root, samples.clean(), filename="one.pdf").json
    stored = BlobStore(settings.documents_dir).path(document["sha256"])
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"\n% tampered\n")
    run = deploy(client, root, deps)
    assert run.status == "failed"
    assert RunEvent.select().where((RunEvent.run == run.id) & (RunEvent.event == "runner_on_failed")).exists()
    assert "SHA-256 differs from the manifest" in run.error and document["sha256"] in run.error
    assert not (served / "current").exists()


def test_a_stored_file_missing_on_the_worker_fails_the_run_saying_where(deps, client, root, served_site,
                                                                        settings):
    """A worker that cannot read the store (a worker machine without the shared store, say)
    says in the run's own record which file of which store it lacks; nothing is deployed."""
    _, served = served_site
    document = upload(client, root, samples.clean(), filename="one.pdf").json
    BlobStore(settings.documents_dir).path(document["sha256"]).unlink()
    run = deploy(client, root, deps)
    assert run.status == "error"
    assert f"the document store {settings.documents_dir} has no file {document['sha256']}" in run.error
    assert not (served / "current").exists()

"""A site's release, built from the document store: the flattened PDFs in the site's
order plus a generated index page, and the SHA-256 manifest the host verifies before it
switches to the release.

The manifest comes from the stored digests (each PDF was hashed once, when it was
stored), so a deploy hashes no PDF on the controller: only the index page, a few KB
generated here. The tree is made of hard links into the store (same filesystem, no
copy). The index is static, accessible HTML (a language, a title, one heading, a list
of links whose text is the document's title, each with its size and page count) with
no script, no style and no inline anything, so it passes the sites' own CSP
(`default-src 'self'`, roles/nginx_tls). Titles and filenames are escaped: they are
data an admin typed.
"""

from __future__ import annotations

import errno
import hashlib
import html
import os
import shutil
from pathlib import Path

from control_api.documents.blobs import BlobStore
from control_api.documents.models import Document
from control_api.documents.service import site_documents
from control_api.models import Site

INDEX = "index.html"
FILES = "files"


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1000 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def index_html(site: Site, documents: list[Document]) -> bytes:
    domain = html.escape(site.domain)
    items = []
    for document in documents:
        file = document.file
        pages = f"{file.pages} page{'s' if file.pages != 1 else ''}"
        items.append(f'    <li><a href="{FILES}/{file.sha256}.pdf" type="application/pdf" '
                     f'download="{html.escape(document.filename)}">{html.escape(document.title)}</a> '
                     f"(PDF, {_size(file.size)}, {pages})</li>")
    body = "\n".join(items) if items else "    <li>No documents are published yet.</li>"
    return (f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Disclosures: {domain}</title>
</head>
<body>
<main>
  <h1>Disclosures: {domain}</h1>
  <ol>
{body}
  </ol>
</main>
</body>
</html>
""").encode()


class StoreIncomplete(Exception):
    """A document's stored file is not there: this machine does not see the whole store."""


def build(site: Site, documents: list[Document], blobs: BlobStore, out: Path) -> str:
    """Write the release tree into the empty directory `out`; return its manifest
    (`<sha256>  <path>` lines sorted by path, as sha256sum --check reads them)."""
    (out / FILES).mkdir(parents=True, mode=0o755)
    entries: dict[str, str] = {}
    for document in documents:
        name = f"{FILES}/{document.file.sha256}.pdf"
        if name not in entries:
            try:
                _link_or_copy(blobs.path(document.file.sha256), out / name)
            except FileNotFoundError:
                raise StoreIncomplete(
                    f"the document store {blobs.root} has no file {document.file.sha256} (document "
                    f"{document.id} of site {site.slug}): a worker deploys only from a store it can "
                    "read whole (on a worker machine, FF_DOCUMENT_STORE_DIR shared with the admin VM)"
                ) from None
            entries[name] = document.file.sha256
    index = index_html(site, documents)
    (out / INDEX).write_bytes(index)
    entries[INDEX] = hashlib.sha256(index).hexdigest()
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items()))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # the store on another filesystem than the runs
            raise
        shutil.copyfile(source, target)


def materialize(site: Site, blobs: BlobStore, directory: Path) -> tuple[Path, Path] | None:
    """For a site with documents: (its release tree, its manifest file) under `directory`
    (the run's own), built from the store. None for a site without any, which deploys
    its FF_SITE_SOURCES_DIR directory as before."""
    documents = site_documents(site)
    if not documents:
        return None
    tree, manifest = directory / "tree", directory / "manifest.sha256"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    manifest.write_text(build(site, documents, blobs, tree))
    return tree, manifest

"""A site's documents: uploading one through the pipeline into the store, listing,
retitling, reordering and deleting them. Every change commits with its audit event,
which carries the document's hashes (the original's and the published copy's); a
refused upload records `document.rejected` with the reason (and the signature and a
quarantined copy when the scanner found one).

Content is kept once: `document_files` maps an original's SHA-256 to its flattened
copy, so the same PDF uploaded again, to any site, is scanned again (signatures change)
but neither flattened nor stored again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.clock import SystemClock
from control_api.documents import validate
from control_api.documents.blobs import BlobStore
from control_api.documents.errors import (
    BadUpload,
    DocumentConflict,
    FlattenUnavailable,
    NoSuchDocument,
    ScannerUnavailable,
    UploadRejected,
)
from control_api.documents.models import Document, DocumentFile
from control_api.documents.pipeline import FlattenImpossible, Pipeline, Rejected, ScanImpossible
from control_api.documents.receive import Received
from control_api.models import Site, User

log = logging.getLogger(__name__)


def site_documents(site: Site) -> list[Document]:
    return list(Document.select(Document, DocumentFile).join(DocumentFile)
                .where(Document.site == site).order_by(Document.position, Document.id))


def hashes(document: Document) -> dict:
    return {"original_sha256": document.file.original_sha256, "sha256": document.file.sha256}


class DocumentService:
    def __init__(self, audit: AuditLog, clock: SystemClock, blobs: BlobStore, pipeline: Pipeline) -> None:
        self.audit, self.clock, self.blobs, self.pipeline = audit, clock, blobs, pipeline

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        with self.blobs.workspace() as directory:
            yield directory

    # -- upload ---------------------------------------------------------------------------

    def upload(self, site: Site, user: User, received: Received, actor: Actor) -> Document:
        filename = validate.filename(received.filename)
        title = (validate.title(received.title) if received.title is not None
                 else validate.title_from_filename(filename))
        existing = (Document.select().where(Document.site == site, Document.file == received.sha256).first())
        if existing is not None:
            raise DocumentConflict(f"this PDF is already document {existing.id} of site '{site.slug}'")
        target = f"site:{site.slug}"
        facts = {"filename": filename, "original_sha256": received.sha256, "original_size": received.size}
        try:
            if received.size == 0:
                raise Rejected("empty", "the file is empty")
            # Scanned first, whatever it is: malware named .pdf is reported as malware, and
            # no parser reads a file the scanner flagged.
            scan = self.pipeline.scan(received.path)
            known = self._known(received.sha256)
            if known is None:
                original = self.pipeline.check(received.path, received.size)
            flat = None if known is not None else self.pipeline.flatten(
                received.path, original["pages"], original["active"])
        except Rejected as exc:
            if exc.reason == "virus":
                self.blobs.quarantine(received.path, received.sha256)
                facts.update(signature=exc.signature, quarantined=True)
            self.audit.record_alone(actor, "document.rejected", target,
                                    dict(facts, reason=exc.reason, detail=str(exc)[:300]))
            raise UploadRejected(str(exc)) from None
        except ScanImpossible as exc:
            self.audit.record_alone(actor, "document.rejected", target,
                                    dict(facts, reason="scanner_unavailable", detail=str(exc)[:300]))
            raise ScannerUnavailable(f"{exc}; uploads are refused while FF_REQUIRE_AV=1") from None
        except FlattenImpossible as exc:
            log.error("flattening unavailable: %s", exc)
            raise FlattenUnavailable("Ghostscript cannot run on this server; tell its operator") from None
        if flat is not None:
            self.blobs.put(received.path, received.sha256)
            self.blobs.put(flat.path, flat.sha256)
        return self._insert(site, user, received, filename, title, flat, scan, actor)

    def _known(self, original_sha256: str) -> DocumentFile | None:
        known = DocumentFile.get_or_none(DocumentFile.original_sha256 == original_sha256)
        if known is not None and self.blobs.has(known.sha256) and self.blobs.has(known.original_sha256):
            return known
        return None

    def _insert(self, site, user, received, filename, title, flat, scan, actor) -> Document:
        try:
            with self.audit.mutation():
                file = DocumentFile.get_or_none(DocumentFile.original_sha256 == received.sha256)
                if file is None:
                    if flat is None:  # the stored files went away since _known: start again
                        raise BadUpload("the store changed during the upload; send it again")
                    file = DocumentFile.create(original_sha256=received.sha256, original_size=received.size,
                                               sha256=flat.sha256, size=flat.size, pages=flat.pages,
                                               created_at=self.clock.now())
                elif flat is not None and not self.blobs.has(file.sha256):  # its copy was lost: ours
                    file.sha256, file.size, file.pages = flat.sha256, flat.size, flat.pages
                    file.save()
                last = Document.select(peewee.fn.MAX(Document.position)).where(Document.site == site).scalar()
                document = Document.create(site=site, position=(last or 0) + 1, title=title,
                                           filename=filename, file=file, scanned=scan.scanned,
                                           uploaded_by=user, created_at=self.clock.now())
                self.audit.record(actor, "document.upload", f"site:{site.slug}", {
                    "document": document.id, "title": title, "filename": filename,
                    "original_sha256": file.original_sha256, "sha256": file.sha256, "size": file.size,
                    "pages": file.pages, "scanned": scan.scanned, "scan": scan.note,
                    "removed": list(flat.removed) if flat else [], "stored_before": flat is None})
        except peewee.IntegrityError:
            # A parallel upload of the same PDF to this site, or of the same new content
            # (document_files' key) won the race: the store is consistent, say so.
            raise DocumentConflict("the same PDF was uploaded at the same moment; list the site's "
                                   "documents and retry if it is missing") from None
        return document

    # -- changes --------------------------------------------------------------------------

    def find(self, site: Site, document_id: int) -> Document:
        document = (Document.select(Document, DocumentFile).join(DocumentFile)
                    .where(Document.site == site, Document.id == document_id).first())
        if document is None:
            raise NoSuchDocument(f"site '{site.slug}' has no document {document_id}")
        return document

    def retitle(self, document: Document, title: object, actor: Actor) -> Document:
        title = validate.title(title)
        with self.audit.mutation():
            before = document.title
            document.title = title
            document.save(only=[Document.title])
            self.audit.record(actor, "document.retitle", f"site:{document.site.slug}",
                              {"document": document.id, "from": before, "to": title, **hashes(document)})
        return document

    def reorder(self, site: Site, order: object, actor: Actor) -> list[Document]:
        with self.audit.mutation():
            documents = site_documents(site)
            ids = [d.id for d in documents]
            if not isinstance(order, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                      for i in order):
                raise BadUpload("'ids' must be a list of document ids")
            if sorted(order) != sorted(ids) or len(set(order)) != len(order):
                raise DocumentConflict("'ids' must list each of the site's document ids exactly once, in the "
                                       f"new order (now: {ids[:100]})")
            by_id = {d.id: d for d in documents}
            for position, document_id in enumerate(order, start=1):
                document = by_id[document_id]
                if document.position != position:
                    document.position = position
                    document.save(only=[Document.position])
            self.audit.record(actor, "document.reorder", f"site:{site.slug}",
                              {"order": order, "sha256": [by_id[i].file.sha256 for i in order]})
        return site_documents(site)

    def delete(self, document: Document, actor: Actor) -> None:
        """The document leaves the site; its stored files stay (earlier releases on the
        hosts were made from them, and other sites may use them)."""
        with self.audit.mutation():
            document.delete_instance()
            self.audit.record(actor, "document.delete", f"site:{document.site.slug}",
                              {"document": document.id, "title": document.title, **hashes(document)})

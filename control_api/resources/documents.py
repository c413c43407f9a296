"""A site's documents over HTTP: upload (multipart/form-data or a raw application/pdf
body, streamed to disk), list, show, retitle, reorder and delete. Who may: a superadmin,
or an admin granted the site; any other site is a 404. The work is the service's
(control_api/documents/service.py)."""

from __future__ import annotations

import falcon

from control_api.auth.stepup import StepUp
from control_api.authz import authenticated, destructive, site_guard
from control_api.body import read_json
from control_api.documents.errors import UnsupportedUpload
from control_api.documents.models import Document
from control_api.documents.receive import MULTIPART_SLACK, boundary_of, receive_multipart, receive_raw
from control_api.documents.service import DocumentService, site_documents
from control_api.resources.common import actor_of, iso
from control_api.upload import body_stream


def document_json(document: Document) -> dict:
    file = document.file
    return {"id": document.id, "site": document.site.slug, "position": document.position,
            "title": document.title, "filename": document.filename, "sha256": file.sha256,
            "original_sha256": file.original_sha256, "size": file.size,
            "original_size": file.original_size, "pages": file.pages, "scanned": document.scanned,
            "created_at": iso(document.created_at)}


class Documents:
    def __init__(self, documents: DocumentService, max_upload_bytes: int) -> None:
        self.documents, self.max_upload_bytes = documents, max_upload_bytes
        # Read by middleware.BodyLimit instead of FF_MAX_BODY_BYTES, for uploads only.
        self.upload_body_limit = max_upload_bytes + MULTIPART_SLACK

    @authenticated
    @site_guard
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        site = req.context.site
        resp.media = {"documents": [document_json(d) for d in site_documents(site)]}

    @authenticated
    @site_guard
    def on_post(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        user = req.context.principal.user
        site = req.context.site
        media_type = (req.content_type or "").partition(";")[0].strip().lower()
        if media_type not in ("multipart/form-data", "application/pdf"):
            raise UnsupportedUpload("send the PDF as multipart/form-data (parts 'file' and 'title') "
                                    "or as an application/pdf body with ?filename= (and ?title=)")
        stream = body_stream(req)
        with self.documents.workspace() as directory:
            if media_type == "application/pdf":
                received = receive_raw(stream, directory, self.max_upload_bytes,
                                       req.get_param("filename"), req.get_param("title"))
            else:
                received = receive_multipart(stream, directory, self.max_upload_bytes,
                                             boundary_of(req.content_type))
            document = self.documents.upload(site, user, received, actor_of(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/sites/{site.slug}/documents/{document.id}"
        resp.media = document_json(document)


class DocumentItem:
    def __init__(self, documents: DocumentService, step_up: StepUp) -> None:
        self.documents, self.step_up = documents, step_up

    def _find(self, req: falcon.Request, slug: str, document_id: int) -> Document:
        return self.documents.find(req.context.site, document_id)

    @authenticated
    @site_guard
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str, document_id: int) -> None:
        resp.media = document_json(self._find(req, slug, document_id))

    @authenticated
    @site_guard
    def on_patch(self, req: falcon.Request, resp: falcon.Response, slug: str, document_id: int) -> None:
        document = self._find(req, slug, document_id)
        data = read_json(req, ("title",))
        resp.media = document_json(self.documents.retitle(document, data.get("title"), actor_of(req)))

    @authenticated
    @site_guard
    @destructive("document.delete")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str, document_id: int) -> None:
        self.documents.delete(self._find(req, slug, document_id), actor_of(req))
        resp.status = falcon.HTTP_204


class DocumentOrder:
    def __init__(self, documents: DocumentService) -> None:
        self.documents = documents

    @authenticated
    @site_guard
    def on_put(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        site = req.context.site
        data = read_json(req, ("ids",))
        documents = self.documents.reorder(site, data.get("ids"), actor_of(req))
        resp.media = {"documents": [document_json(d) for d in documents]}

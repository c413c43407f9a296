"""The refusals an upload or a document change can get, as ApiErrors (one handler maps them)."""

from __future__ import annotations

from control_api.body import BodyTooLarge, UnsupportedMediaType
from control_api.errors import ApiError, Conflict, InvalidInput, NotFound


class BadUpload(InvalidInput):
    """Malformed upload: a multipart body that does not parse, a missing or extra part,
    an unusable filename or title."""


class UnsupportedUpload(UnsupportedMediaType):
    """415, as for any body of a type we do not read."""


class UploadTooLarge(BodyTooLarge):
    title = "Upload too large"


class UploadRejected(ApiError):
    """The content itself is refused: not a PDF, broken, infected, or not made safe."""

    status = 422
    title = "Document refused"


class ScannerUnavailable(ApiError):
    status = 503
    title = "Virus scanner unavailable"


class FlattenUnavailable(ApiError):
    status = 503
    title = "PDF flattening unavailable"


class DocumentConflict(Conflict):
    pass


class NoSuchDocument(NotFound):
    title = "No such document"

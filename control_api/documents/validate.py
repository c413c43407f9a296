"""What a document's filename and title may be. Both are data that reach the store, the
audit log and the generated index page (escaped there); neither ever names a file on
disk (stored files are named by their SHA-256), and refusing odd ones keeps them from
misleading a reader or a log."""

from __future__ import annotations

import unicodedata

from control_api.documents.errors import BadUpload

TITLE_MAX = 200
FILENAME_MAX_BYTES = 255


def _has_control(value: str) -> bool:
    # Cc: C0/C1 controls (newlines, escapes); Cf: invisible format characters such as
    # right-to-left overrides, which disguise a name; Zl/Zp: line and paragraph separators;
    # Cs: lone surrogates (no store takes them).
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for ch in value)


def filename(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise BadUpload("the PDF needs a filename (the file part's filename, or ?filename=)")
    if len(value.encode("utf-8", "surrogatepass")) > FILENAME_MAX_BYTES:
        raise BadUpload(f"the filename must be at most {FILENAME_MAX_BYTES} bytes")
    if _has_control(value):
        raise BadUpload("the filename must hold no control or invisible formatting characters")
    if "/" in value or "\\" in value or value.startswith(".") or ".." in value:
        raise BadUpload("the filename must be a plain name: no '/', '\\', '..' or leading '.'")
    if value != value.strip() or not value.lower().endswith(".pdf") or len(value) < 5:
        raise BadUpload("the filename must end in '.pdf' and have no leading or trailing spaces")
    return value


def title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadUpload("'title' must be a non-empty string")
    value = value.strip()
    if len(value) > TITLE_MAX:
        raise BadUpload(f"'title' must be at most {TITLE_MAX} characters")
    if _has_control(value):
        raise BadUpload("'title' must hold no control or invisible formatting characters")
    return value


def title_from_filename(name: str) -> str:
    return title(name[:-4].strip() or name)

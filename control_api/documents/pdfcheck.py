"""What a PDF holds, and removing what may act on a reader's machine (pikepdf over qpdf).

`inspect` opens a file strictly (no repair of a damaged cross-reference table: a
truncated or broken PDF is refused, not guessed at), counts its pages and lists the
active content it holds: JavaScript (/JS, /JavaScript), automatic actions (/OpenAction,
/AA), forms (/AcroForm, /XFA), attachments (/EmbeddedFiles, /EF, file-attachment
annotations), /Launch and /RichMedia, and actions that send or fetch data. `strip`
removes every one of them from Ghostscript's output, which keeps some (a /Launch link
survives pdfwrite). Both run in the bounded child of sandbox.py, never in the server's
own process; the caller re-inspects what `strip` wrote and refuses it unless nothing
active is left.
"""

from __future__ import annotations

from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from control_api.documents.sandbox import CheckFailed

ACTIVE_KEYS = frozenset({"/JS", "/JavaScript", "/OpenAction", "/AA", "/AcroForm", "/XFA", "/EmbeddedFiles",
                         "/EF", "/Launch", "/RichMedia", "/RichMediaContent", "/RichMediaSettings"})
# Action types (/S) that run code, start programs, or send or fetch data.
ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/RichMediaExecute", "/ImportData", "/SubmitForm",
                            "/ResetForm", "/GoToE", "/Rendition", "/Movie", "/Sound", "/SetOCGState",
                            "/Hide", "/Trans", "/GoTo3DView"})
ACTIVE_ANNOTATIONS = frozenset({"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D",
                                "/Widget"})
ACTIVE_TYPES = frozenset({"/EmbeddedFile"})


def _walk(pdf: pikepdf.Pdf):
    """Every dictionary in the file (stream dictionaries too), each indirect one once."""
    seen: set[tuple[int, int]] = set()
    stack: list = [pdf.trailer, *pdf.objects]
    while stack:
        item = stack.pop()
        if isinstance(item, Stream):
            item = item.stream_dict
        if isinstance(item, Dictionary | Array) and item.is_indirect:
            if item.objgen in seen:
                continue
            seen.add(item.objgen)
        if isinstance(item, Dictionary):
            yield item
            children = (item.get(key) for key in item)
        elif isinstance(item, Array):
            children = iter(item)
        else:
            continue
        stack.extend(child for child in children
                     if isinstance(child, Dictionary | Array | Stream) and not child.is_indirect)


def _findings(pdf: pikepdf.Pdf) -> list[str]:
    found: set[str] = set()
    for item in _walk(pdf):
        found.update(key for key in item if key in ACTIVE_KEYS)
        action, subtype, kind = item.get("/S"), item.get("/Subtype"), item.get("/Type")
        if isinstance(action, Name) and str(action) in ACTIVE_ACTIONS:
            found.add(f"action {action}")
        if isinstance(subtype, Name) and str(subtype) in ACTIVE_ANNOTATIONS and "/Rect" in item:
            found.add(f"annotation {subtype}")
        if isinstance(kind, Name) and str(kind) in ACTIVE_TYPES:
            found.add(f"object {kind}")
    return sorted(found)


def _open(path: str) -> pikepdf.Pdf:
    try:
        return pikepdf.open(path, attempt_recovery=False)
    except pikepdf.PasswordError:
        raise CheckFailed("the PDF is encrypted with a password") from None
    except (pikepdf.PdfError, ValueError, OSError) as exc:
        raise CheckFailed(f"not a readable PDF ({str(exc).split(': ', 1)[-1][:200]})") from None


def inspect(path: str) -> dict:
    """{"pages": N, "active": [what it holds]}; CheckFailed when it is no usable PDF."""
    with _open(path) as pdf:
        pages = len(pdf.pages)
        if pages < 1:
            raise CheckFailed("the PDF has no page")
        found = _findings(pdf)
        # qpdf reads past damage, and past an object it could not allocate, with a warning
        # and a null in its place: either way this is not the document it claims to be.
        warnings = pdf.get_warnings()
        if warnings:
            raise CheckFailed(f"the PDF is damaged ({str(warnings[0])[:200]})")
        return {"pages": pages, "active": found}


def strip(source: str, target: str) -> dict:
    """Write `source` without its active content to `target`; {"removed": [...]}."""
    removed: set[str] = set()
    with _open(source) as pdf:
        for page in pdf.pages:
            annots = page.obj.get("/Annots")
            if isinstance(annots, Array):
                kept = [a for a in annots if not (isinstance(a, Dictionary)
                                                  and str(a.get("/Subtype")) in ACTIVE_ANNOTATIONS)]
                if len(kept) != len(annots):
                    removed.add("annotations")
                    page.obj.Annots = Array(kept)
        for item in list(_walk(pdf)):
            for key in [k for k in item if k in ACTIVE_KEYS]:
                del item[key]
                removed.add(key)
            action = item.get("/A")
            if isinstance(action, Dictionary) and str(action.get("/S")) in ACTIVE_ACTIONS:
                del item["/A"]
                removed.add(f"action {action.get('/S')}")
            if str(item.get("/Type")) in ACTIVE_TYPES and not item.is_indirect:
                removed.add("/EmbeddedFile")
        pdf.remove_unreferenced_resources()
        pdf.save(target, compress_streams=True, linearize=False)
    Path(target).chmod(0o600)
    return {"removed": sorted(removed)}

"""PDFs made for the document tests and the benchmark, with pikepdf: a clean one, and
one for each kind of active content the pipeline must remove, plus hostile ones."""

from __future__ import annotations

import io
import zlib

import pikepdf
from pikepdf import Array, Dictionary, Name, String

from tests.peers.clamd import EICAR, MARKER


def _pdf(pages: int = 2, text: str = "Disclosure", filler: int = 0) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    font = Dictionary(F1=Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    for number in range(1, pages + 1):
        pdf.add_blank_page(page_size=(595, 842))
        lines = [f"BT /F1 18 Tf 72 760 Td ({text}, page {number}) Tj ET"]
        # Lines of numbers, so a benchmark's PDFs have a realistic size.
        lines += [f"BT /F1 8 Tf 72 {700 - (i % 80) * 8} Td ({i:08d} {text} {number}) Tj ET"
                  for i in range(filler)]
        page = pdf.pages[-1]
        page.Contents = pdf.make_stream("\n".join(lines).encode())
        page.Resources = Dictionary(Font=font)
    return pdf


def _bytes(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out, compress_streams=True)
    return out.getvalue()


def clean(pages: int = 2, text: str = "Disclosure", filler: int = 0) -> bytes:
    return _bytes(_pdf(pages, text, filler))


def with_javascript() -> bytes:
    pdf = _pdf()
    pdf.Root.OpenAction = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String("app.alert('open')")))
    script = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String("app.alert('named')")))
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("a"), script])))
    pdf.pages[0].AA = Dictionary(O=Dictionary(S=Name.JavaScript, JS=String("app.alert('page')")))
    return _bytes(pdf)


def with_open_action() -> bytes:
    pdf = _pdf()
    pdf.Root.OpenAction = Array([pdf.pages[1].obj, Name.Fit])
    return _bytes(pdf)


def with_form() -> bytes:
    pdf = _pdf()
    field = pdf.make_indirect(Dictionary(FT=Name.Tx, T=String("name"), V=String("value"), Type=Name.Annot,
                                         Subtype=Name.Widget, Rect=Array([72, 600, 300, 620]),
                                         P=pdf.pages[0].obj))
    pdf.pages[0].Annots = Array([field])
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]))
    return _bytes(pdf)


def with_attachment() -> bytes:
    pdf = _pdf()
    pdf.attachments["payload.txt"] = pikepdf.AttachedFileSpec(pdf, b"attached bytes")
    return _bytes(pdf)


def with_launch() -> bytes:
    pdf = _pdf()
    link = pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=Array([72, 500, 300, 520]),
                                        A=Dictionary(S=Name.Launch, F=String("calc.exe"))))
    pdf.pages[0].Annots = Array([link])
    return _bytes(pdf)


def with_eicar_stream() -> bytes:
    """EICAR inside a (compressed) PDF stream: only a scanner that reads PDFs finds it."""
    pdf = _pdf()
    pdf.Root.Payload = pdf.make_stream(EICAR)
    return _bytes(pdf)


def with_marker() -> bytes:
    """The test-only signature in a compressed content stream."""
    pdf = _pdf()
    pdf.pages[0].Contents = pdf.make_stream(b"BT /F1 12 Tf 72 700 Td (" + MARKER + b") Tj ET")
    return _bytes(pdf)


def truncated() -> bytes:
    data = clean()
    return data[: len(data) * 2 // 3]


def array_bomb(elements: int = 3_000_000) -> bytes:
    """A small page and one object holding millions of numbers: parsing it takes hundreds
    of MB (about 540 MB for 3 million in qpdf), where a real document needs a few."""
    parts, offsets = [b"%PDF-1.7\n"], []
    bodies = [b"<< /Type /Catalog /Pages 2 0 R /Extra 4 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
              b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>",
              b"[" + b"0 " * elements + b"]"]
    for number, body in enumerate(bodies, start=1):
        offsets.append(sum(map(len, parts)))
        parts.append(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = sum(map(len, parts))
    parts.append(b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets))
    parts.append(b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return b"".join(parts)


def many_pages(pages: int = 8000) -> bytes:
    """A valid PDF of thousands of pages sharing one tiny content stream: Ghostscript's
    pdfwrite keeps per-page state, about 11 KB a page (8,000 pages: 88 MB, 13 s)."""
    parts, offsets = [b"%PDF-1.7\n"], []

    def add(body: bytes) -> None:
        offsets.append(sum(map(len, parts)))
        parts.append(b"%d 0 obj\n%s\nendobj\n" % (len(offsets), body))

    add(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % (number + 4) for number in range(pages))
    add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages))
    add(b"<< /Length 14 >>\nstream\n0 0 m 1 1 l S\nendstream")
    for _ in range(pages):
        add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> /Contents 3 0 R >>")
    xref = sum(map(len, parts))
    parts.append(b"xref\n0 %d\n0000000000 65535 f \n" % (pages + 4)
                 + b"".join(b"%010d 00000 n \n" % o for o in offsets))
    parts.append(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (pages + 4, xref))
    return b"".join(parts)


def costly(ops: int = 4_000_000) -> bytes:
    """A valid PDF whose page, once inflated, is millions of drawing operators: Ghostscript
    works at it far longer (and with more memory) than any real page needs. The page's
    stream is written already compressed, so the file stays small."""
    pdf = _pdf(pages=1)
    body = b"0 0 m 1 1 l S\n" * ops
    stream = pdf.make_stream(zlib.compress(body, 9))
    stream.Filter = Name.FlateDecode
    pdf.pages[0].Contents = stream
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()

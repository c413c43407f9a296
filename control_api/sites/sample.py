"""A sample disclosure site (an index page and small, valid PDFs) for the demo and
the benchmarks: `python -m control_api.sites.sample DIR [COUNT] [BYTES_EACH]`."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path


def pdf(title: str, size: int = 2048) -> bytes:
    """A one-page PDF showing `title`, padded with a comment stream to about `size` bytes."""
    text = title.replace("\\", "").replace("(", "").replace(")", "")
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    # Deterministic filler (a PDF comment), so sizes are realistic and content unique.
    seed = hashlib.sha256(title.encode()).digest()
    while len(out) < size - 200:
        seed = hashlib.sha256(seed).digest()
        out += b"% " + seed.hex().encode() + b"\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write_sample_site(directory: Path, count: int = 3, size: int = 2048, label: str = "") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    docs = directory / "documents"
    docs.mkdir(exist_ok=True)
    names = [f"disclosure-{n:04d}.pdf" for n in range(1, count + 1)]
    for name in names:
        (docs / name).write_bytes(pdf(f"{label}Regulatory disclosure {name}", size))
    links = "\n".join(f'<li><a href="documents/{name}">{name}</a></li>' for name in names)
    (directory / "index.html").write_text(
        f"<!doctype html>\n<html><head><meta charset=utf-8><title>Disclosures</title></head>\n"
        f"<body><h1>{label}Disclosures</h1><ul>\n{links}\n</ul></body></html>\n")
    return [docs / name for name in names]


if __name__ == "__main__":
    target = Path(sys.argv[1])
    write_sample_site(target, int(sys.argv[2]) if len(sys.argv) > 2 else 3,
                      int(sys.argv[3]) if len(sys.argv) > 3 else 2048)
    print(target)

"""Write the sample sites the site_deploy scenario deploys (run on the controller).

    make_site.py OUT

OUT/v1 is a small site (HTML pages and generated PDFs). v2 and v3 each change one PDF
(reports/report-2.pdf) and nothing else; big is v2 plus a large PDF, for a transfer
slow enough to be killed half-way; evil holds a symlink a site may not publish. Every
variant is written afresh, so unchanged files have identical bytes but new
modification times, as when the worker materialises a site for each deploy.
"""

from __future__ import annotations

import os
import pathlib
import sys


def pdf(title: str, payload_size: int) -> bytes:
    """A valid one-page PDF showing `title`, padded with an incompressible stream."""
    text = f"BT /F1 24 Tf 72 760 Td ({title}) Tj ET".encode()
    payload = os.urandom(payload_size)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(payload), payload),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write(top: pathlib.Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def main(out: pathlib.Path) -> None:
    v1 = {
        "index.html": b"<!doctype html><title>Demo fund</title><h1>Disclosures</h1>"
                      b"<a href='reports/report-1.pdf'>2024</a>\n",
        "about/index.html": b"<!doctype html><title>About</title><p>Demo fund SPV.</p>\n",
        "reports/report-1.pdf": pdf("Report 2024", 300_000),
        "reports/report-2.pdf": pdf("Report 2025", 200_000),
        "reports/report-3.pdf": pdf("Prospectus", 600_000),
    }
    v2 = dict(v1, **{"reports/report-2.pdf": pdf("Report 2025, amended", 200_000)})
    v3 = dict(v2, **{"reports/report-2.pdf": pdf("Report 2025, amended twice", 200_000)})
    big = dict(v2, **{"reports/archive.pdf": pdf("Archive", 16_000_000)})
    for name, files in {"v1": v1, "v2": v2, "v3": v3, "big": big, "evil": v1}.items():
        write(out / name, files)
    (out / "evil" / "reports" / "passwd.pdf").symlink_to("/etc/passwd")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))

"""Write the sample sites the site_deploy scenario deploys (run on the controller).

    make_site.py OUT

OUT/v1 is a small site (HTML pages and generated PDFs). v2 and v3 each change one PDF
(reports/report-2.pdf) and nothing else; big is v2 plus a large PDF, for a transfer
slow enough to be killed half-way; evil holds a symlink a site may not publish. Every
variant is written afresh, so unchanged files have identical bytes but new
modification times, as when the worker materialises a site for each deploy.
"""

from __future__ import annotations

import pathlib
import sys

from control_api.sites.sample import pdf


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

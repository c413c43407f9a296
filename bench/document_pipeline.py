"""Uploading PDFs through the API against doing the same work by hand, and what a large
upload costs the API worker's memory.

1. N distinct PDFs (default 50) uploaded one after another through `weco serve` (raw
   application/pdf bodies), each scanned by clamd, checked, flattened by Ghostscript and
   checked again, stored and audited; against running, for the same files,
   `clamdscan --stream` and `gs -dSAFER -sDEVICE=pdfwrite` by hand (goal: ours <= 1.2x).
2. A 100 MB PDF uploaded to a server with one worker process: the rise of that worker's
   peak resident memory (VmHWM) over the upload (goal: < 30 MB; the body is streamed to
   disk, and the PDF checks run in forked children whose memory is their own).

clamd is Debian's, started with the tests' own signature database (tests/peers/clamd.py).

    .venv/bin/python -m bench.document_pipeline [--pdfs 50] [--filler 600 | --scanned BYTES] [--big-mb 100]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pikepdf
import requests

from bench.document_deploy import noisy_pdf
from tests.control_api.documents import samples
from tests.peers.clamd import Clamd
from tests.peers.server import WecoServer, superadmin_token, worker_pids


def by_hand(files: list[Path], clamd_conf: Path, out: Path) -> float:
    started = time.perf_counter()
    for path in files:
        scan = subprocess.run(["clamdscan", f"--config-file={clamd_conf}", "--stream", "--no-summary",
                               str(path)], capture_output=True, text=True)
        assert scan.returncode == 0, scan.stdout + scan.stderr
        subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite",
                        f"-sOutputFile={out / path.name}", "-f", str(path)], check=True, capture_output=True)
    return time.perf_counter() - started


def upload(base: str, token: str, slug: str, path: Path) -> dict:
    with open(path, "rb") as body:  # a file object: requests streams it
        response = requests.post(f"{base}/api/sites/{slug}/documents", data=body,
                                 params={"filename": path.name},
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/pdf"}, timeout=600)
    assert response.status_code == 201, response.text
    return response.json()


def ours(base: str, token: str, slug: str, files: list[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        upload(base, token, slug, path)
    return time.perf_counter() - started


def big_pdf(path: Path, megabytes: int) -> None:
    """A page and an incompressible 'megabytes' MB stream (what a scanned annex weighs)."""
    pdf = pikepdf.Pdf.open(io.BytesIO(samples.clean(pages=1)))
    pdf.Root.Annex = pdf.make_stream(os.urandom(megabytes << 20))
    pdf.save(path, compress_streams=False)


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdfs", type=int, default=50)
    parser.add_argument("--filler", type=int, default=600, help="lines of text per page (size)")
    parser.add_argument("--scanned", type=int, default=0, metavar="BYTES",
                        help="instead of text pages, one page with a JPEG of noise of about BYTES each")
    parser.add_argument("--big-mb", type=int, default=100)
    args = parser.parse_args()
    clamd = Clamd().start()
    try:
        with tempfile.TemporaryDirectory() as work:
            work_dir = Path(work)
            sources, out = work_dir / "pdfs", work_dir / "by-hand"
            sources.mkdir()
            out.mkdir()
            files = []
            for number in range(args.pdfs):
                path = sources / f"disclosure-{number:03d}.pdf"
                path.write_bytes(noisy_pdf(number, args.scanned) if args.scanned else
                                 samples.clean(pages=4, text=f"Disclosure {number}", filler=args.filler))
                files.append(path)
            total = sum(p.stat().st_size for p in files)
            env = {"FF_ENV": "dev", "FF_DATA_DIR": str(work_dir / "var"), "FF_CLAMD_SOCKET": clamd.socket,
                   "FF_MAX_UPLOAD_MB": str(args.big_mb + 10), "FF_EMBEDDED_WORKER": "0"}
            token = superadmin_token(env)
            server = WecoServer(env, workers=1, threads=4).start()
            try:
                headers = {"Authorization": f"Bearer {token}"}
                for slug in ("bench", "big"):
                    site = {"slug": slug, "domain": f"{slug}.example.test"}
                    requests.post(f"{server.base}/api/sites", json=site, headers=headers,
                                  timeout=30).raise_for_status()
                warm = sources.parent / "warm.pdf"
                warm.write_bytes(samples.clean(text="warm-up"))
                upload(server.base, token, "big", warm)  # first-use costs (imports, store) out of the figures
                hand = by_hand(files, clamd.dir / "clamd.conf", out)
                mine = ours(server.base, token, "bench", files)

                requests.get(f"{server.base}/api/me", headers=headers, timeout=30)
                pid = next(iter(worker_pids(server._read_log(), "/api/me")))
                big = work_dir / "big.pdf"
                big_pdf(big, args.big_mb)
                before_hwm, before_rss = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
                started = time.perf_counter()
                upload(server.base, token, "big", big)
                big_seconds = time.perf_counter() - started
                after_hwm = status_kb(pid, "VmHWM")
            finally:
                server.stop()
    finally:
        clamd.stop()
    shape = "1 scanned page" if args.scanned else "4 text pages"
    print(f"{args.pdfs} PDFs, {total / 1e6:.1f} MB in all ({total / args.pdfs / 1e3:.0f} KB each, {shape})")
    print(f"by hand (clamdscan --stream, then gs pdfwrite, per file): {hand:.2f} s")
    print(f"through the API (upload, scan, check, flatten, check, store, audit): {mine:.2f} s")
    print(f"ratio ours/by hand: {mine / hand:.2f} (goal <= 1.20)")
    print(f"{args.big_mb} MB upload: {big_seconds:.2f} s; API worker (pid {pid}) peak RSS "
          f"{before_hwm / 1024:.1f} MB -> {after_hwm / 1024:.1f} MB (RSS before {before_rss / 1024:.1f} MB): "
          f"rise {(after_hwm - before_hwm) / 1024:.1f} MB (goal < 30 MB)")


if __name__ == "__main__":
    main()

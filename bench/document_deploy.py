"""The deploy benchmark again, now from the document store: 500 PDFs (about 200 MB)
uploaded through the API (scanned, flattened, stored by SHA-256), then deployed to 3
test hosts, against a raw rsync of the same release tree to the same hosts (goal: ratio
<= 1.5). The deploy builds its tree from hard links and its manifest from the stored
digests (the controller hashes no PDF); each host still verifies every file.

Each PDF carries a JPEG of noise (Ghostscript passes JPEG data through), so the
flattened copies keep their size. Hosts are real systemd-nspawn Debian targets, with
nginx running as install_hosts.yml leaves a site host.

Each round wipes the site from the hosts, deploys it (a first deploy), then rsyncs the
same tree raw, one host after another and to the three in parallel; the ratio is of the
medians, as this machine's figures swing by a fifth from one minute to the next.

    .venv/bin/python -m bench.document_deploy [--pdfs 500] [--size 400000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pikepdf
import requests
from pikepdf import Dictionary, Name
from PIL import Image

from bench.site_deploy import Api, raw_rsyncs
from tests.control_api.documents import samples
from tests.peers.clamd import Clamd
from tests.peers.server import WecoServer, superadmin_token
from tests.peers.testhosts import booted, harness_key


def noisy_pdf(number: int, size: int) -> bytes:
    """One page showing a JPEG of noise of about `size` bytes (distinct per number)."""
    side = int((size / 1.2) ** 0.5)  # noise at quality 95: about 1.2 bytes a pixel
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=95)
    pdf = pikepdf.Pdf.open(io.BytesIO(samples.clean(pages=1, text=f"Disclosure {number}")))
    stream = pdf.make_stream(jpeg.getvalue())
    stream.Type, stream.Subtype, stream.Filter = Name.XObject, Name.Image, Name.DCTDecode
    stream.Width, stream.Height, stream.ColorSpace, stream.BitsPerComponent = side, side, Name.DeviceRGB, 8
    page = pdf.pages[0]
    page.Resources.XObject = Dictionary(Im0=stream)
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\nq 400 0 0 400 100 200 cm /Im0 Do Q")
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def timeline(run_dir: Path) -> list[str]:
    """Where the deploy's time went, from the run's ansible-runner artifacts: for each
    task, when its first host started and its last host ended, in seconds from the
    playbook's start (a task's span covers every host)."""
    spans: dict[str, list[float]] = {}
    first = last = None
    for path in run_dir.glob("artifacts/*/job_events/*.json"):
        event = json.loads(path.read_text())
        created = dt.datetime.fromisoformat(event["created"]).timestamp()
        first = created if first is None else min(first, created)
        last = created if last is None else max(last, created)
        data = event.get("event_data") or {}
        if data.get("task") and data.get("start") and data.get("end"):
            start = dt.datetime.fromisoformat(data["start"]).timestamp()
            end = dt.datetime.fromisoformat(data["end"]).timestamp()
            span = spans.setdefault(data["task"], [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    if first is None:
        return ["(no job events in the run's artifacts)"]
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    return [f"{start - first:6.2f} .. {end - first:6.2f} ({end - start:5.2f} s) {task}"
            for task, (start, end) in ordered] + [f"{last - first:6.2f}    the playbook's last event"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdfs", type=int, default=500)
    parser.add_argument("--size", type=int, default=400_000, help="bytes per PDF")
    parser.add_argument("--rounds", type=int, default=3, help="deploys and raw rsyncs, alternating")
    args = parser.parse_args()
    key = harness_key()
    clamd = Clamd().start()
    try:
        with tempfile.TemporaryDirectory() as data_dir, booted("dd", 70, 3) as hosts:
            data = Path(data_dir)
            env = {"FF_ENV": "dev", "FF_DATA_DIR": data_dir, "FF_CLAMD_SOCKET": clamd.socket}
            token = superadmin_token(env)
            server = WecoServer(env).start()
            try:
                api = Api(server, token)
                api.call("POST", "/api/sites", json={"slug": "bench", "domain": "bench.example.test"})
                for host in hosts:
                    # As install_hosts.yml leaves a site host: nginx running. (A first deploy to
                    # a host where it is stopped starts it: about 1 s more, once.)
                    host.ssh("systemctl enable --now --quiet nginx")
                    made = api.call("POST", "/api/hosts", json={
                        "name": host.name, "address": host.address, "ssh_private_key": Path(key).read_text(),
                        "ssh_host_key": host.host_key_line(), "vars": {"site_deploy_tls": False}})
                    api.call("PUT", f"/api/sites/bench/hosts/{made['id']}")

                def send(number: int) -> dict:
                    response = requests.post(f"{server.base}/api/sites/bench/documents",
                                             data=noisy_pdf(number, args.size),
                                             params={"filename": f"disclosure-{number:04d}.pdf"},
                                             headers={**api.headers, "Content-Type": "application/pdf"},
                                             timeout=300)
                    assert response.status_code == 201, response.text
                    return response.json()

                started = time.perf_counter()
                with ThreadPoolExecutor(4) as pool:
                    documents = list(pool.map(send, range(args.pdfs)))
                uploading = time.perf_counter() - started
                total = sum(d["size"] for d in documents)

                rounds = []
                for _ in range(args.rounds):
                    # Each round is a first deploy again: nothing of the site (nor the
                    # helper, nor the vhost) on the hosts, and nothing in rsync's targets.
                    for host in hosts:
                        host.ssh("rm -rf /srv/sites /etc/nginx/sites-enabled/weco-site-bench.conf "
                                 "/srv/raw-sequential /srv/raw-parallel")
                    ours, run = api.deploy("bench")
                    tree = data / "runs" / str(run["id"]) / "site" / "tree"
                    sequential, parallel = raw_rsyncs(tree, hosts, key)
                    rounds.append((ours, sequential, parallel, timeline(data / "runs" / str(run["id"]))))
            finally:
                server.stop()
    finally:
        clamd.stop()
    print(f"uploaded {args.pdfs} PDFs through the API (4 at a time): {uploading:.1f} s "
          f"({uploading / args.pdfs * 1000:.0f} ms each)")
    print(f"release from the store: {len(documents)} PDFs + index, {total / 1e6:.1f} MB, to 3 hosts")
    for number, (ours, sequential, parallel, _) in enumerate(rounds, 1):
        print(f"round {number}: ours {ours:.2f} s, raw rsync one host after another {sequential:.2f} s, "
              f"3 hosts in parallel {parallel:.2f} s: ratios {ours / sequential:.2f}, {ours / parallel:.2f}")
    ours, sequential, parallel = (statistics.median(r[i] for r in rounds) for i in range(3))
    print(f"medians over {len(rounds)} rounds: API-triggered deploy from the store, POST to finished, "
          f"{ours:.2f} s; raw rsync one host after another {sequential:.2f} s, "
          f"3 hosts in parallel {parallel:.2f} s")
    print(f"ratio ours/raw sequential: {ours / sequential:.2f}; ours/raw parallel: {ours / parallel:.2f} "
          f"(goal <= 1.5)")
    middle = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
    print("where the median deploy's time went (seconds from the playbook's first event):")
    print("\n".join("  " + line for line in middle[3]))


if __name__ == "__main__":
    main()

"""The release bundle's size, and the offline install of an admin VM from it with
`install.sh --admin`, against a plain `apt-get install` + `pip install --no-index` of the
same files on an identical bare target, in the same run.

Both targets are bare Debian 12 test hosts (molecule/_hosts/base-bare.sh: systemd, sshd
and python3) with no route out, booted side by side. Copying the files in is not timed on
either side. The baseline installs exactly the bundle's Debian packages (debs/wanted.list,
from its own flat repository) and every wheel of its wheelhouse into a virtualenv, and
configures nothing; ours also verifies the digest and signature, installs ansible-core
into the installer's virtualenv, and runs the install playbook (disk-encryption gate,
egress allowlist, PostgreSQL and its roles, migrations, units, TLS, nginx).

    .venv/bin/python -m bench.release_install [--bundle DIR]

DIR is `scripts/release build`'s output; without it a bundle of HEAD is built with a
throwaway key (needs root, as the build does).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from control_api.release import signing
from tests.peers.testhosts import ROOT, TestHost, booted

ADMIN_VARS = {"control_api_superadmin_email": "admin@weco.test",
              "control_api_superadmin_password_file": "/root/superadmin.txt",
              "control_api_worker_instances": 1, "nginx_tls_listen_ipv6": False,
              "egress_allowlist_destinations": []}
PLAIN = """set -e
cd /root/plain
tar -xf debs.tar && tar -xf wheelhouse.tar
echo 'deb [trusted=yes] file:/root/plain/debs ./' > sources.list
mkdir parts
opts="-q -o Dir::Etc::SourceList=/root/plain/sources.list -o Dir::Etc::SourceParts=/root/plain/parts"
apt-get $opts update > /dev/null
DEBIAN_FRONTEND=noninteractive apt-get $opts install -y --no-install-recommends \
  $(cat debs/wanted.list) > /dev/null
python3 -m venv /opt/plain
/opt/plain/bin/pip install -q --no-index --require-hashes --find-links wheelhouse \
  -r wheelhouse/requirements.txt
"""


def build_bundle(work: pathlib.Path) -> pathlib.Path:
    keys = work / "keys"
    keys.mkdir()
    signing.generate_keypair(keys / "bench.pub", keys / "bench.key", password=False)
    argv = [ROOT / "scripts/release", "build", work / "out", "--secret-key", keys / "bench.key",
            "--public-key", keys / "bench.pub"]
    built = subprocess.run(argv, capture_output=True, text=True, check=True)
    return pathlib.Path(built.stdout.strip().splitlines()[-1])


def timed(host: TestHost, command: str) -> float:
    started = time.perf_counter()
    done = host.ssh(command, check=False, timeout=3600)
    if done.returncode:
        raise SystemExit(f"{host.name}: {command} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=pathlib.Path, help="scripts/release build's output directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-release-") as work:
        work = pathlib.Path(work)
        tarball = next(args.bundle.glob("weco-*.tar.gz")) if args.bundle else build_bundle(work)
        size = tarball.stat().st_size
        with tarfile.open(tarball) as bundle:
            top = bundle.getnames()[0]
            bundle.extractall(work / "x", members=[bundle.getmember(f"{top}/{n}") for n in ("debs.tar",
                                                                                             "wheelhouse.tar")],
                              filter="data")
        (work / "vars.json").write_text(json.dumps(ADMIN_VARS))
        with booted("rb", 66, 2, base="bare") as (ours, plain):
            ours.copy_in([tarball, pathlib.Path(f"{tarball}.minisig"), tarball.parent / "install.sh",
                          work / "vars.json"], "/root/delivery")
            plain.copy_in([work / "x" / top / "debs.tar", work / "x" / top / "wheelhouse.tar"], "/root/plain")
            with ThreadPoolExecutor(2) as pool:
                install = pool.submit(timed, ours, "cd /root/delivery && FF_ENV=dev FF_ALLOW_UNENCRYPTED=1 "
                                                   "./install.sh --admin --vars vars.json > /dev/null")
                baseline = pool.submit(timed, plain, PLAIN)
                ours_s, plain_s = install.result(), baseline.result()
    print(f"bundle {tarball.name}: {size / 2**20:.1f} MiB")
    print(f"install.sh --admin (verify, ansible-core, install playbook): {ours_s:7.1f} s")
    print(f"plain apt-get install + pip install --no-index of the same files: {plain_s:7.1f} s")
    print(f"ratio ours/plain: {ours_s / plain_s:.2f}")


if __name__ == "__main__":
    main()

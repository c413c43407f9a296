"""A private ACME CA (RFC 8555) for the nginx_tls scenario: serles-acme signing with openssl.

Test hosts are air-gapped and no DNS knows them, so the http-01 check resolves the
names given with --host NAME=ADDRESS itself. Certificates are signed by a throwaway CA
in --dir, keeping the subjectAltName certbot asked for.

    acme_server.py --dir DIR --listen 10.200.32.1 --port-file DIR/port --host nx-le.weco.test=10.200.32.2

It listens on a free port (written to --port-file) and exits once --listen is no longer
an address of this machine, i.e. when the test host's link is torn down, so a run that
is killed before its destroy step leaves no server behind.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time

_HOSTS: dict[str, str] = {}
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    name = host.decode() if isinstance(host, bytes) else host
    return _real_getaddrinfo(_HOSTS.get(name, host), *args, **kwargs)


class Backend:
    """serles backend: the CA in [weco]dir signs the CSR, copying its extensions (the SANs)."""

    def __init__(self, config) -> None:  # type: ignore[no-untyped-def]
        self.dir = pathlib.Path(config["weco"]["dir"])

    def sign(self, csr: bytes, subject_dn: str, alt_names: list[str], email: str) -> tuple[str, None]:
        with tempfile.TemporaryDirectory() as tmp:
            csr_file = pathlib.Path(tmp, "req.csr")
            csr_file.write_bytes(csr)
            ext = pathlib.Path(tmp, "ext.cnf")
            ext.write_text("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n")
            leaf = subprocess.run(
                ["openssl", "x509", "-req", "-in", str(csr_file), "-CA", str(self.dir / "ca.crt"),
                 "-CAkey", str(self.dir / "ca.key"), "-set_serial", "0x" + os.urandom(16).hex(),
                 "-days", "90", "-sha256", "-copy_extensions", "copy", "-extfile", str(ext)],
                check=True, capture_output=True, text=True).stdout
        return leaf + (self.dir / "ca.crt").read_text(), None


def _exit_when_address_goes(address: str) -> None:
    while True:
        time.sleep(2)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((address, 0))
        except OSError:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True, type=pathlib.Path)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port-file", required=True, type=pathlib.Path)
    parser.add_argument("--host", action="append", default=[], help="NAME=ADDRESS for http-01")
    args = parser.parse_args()
    _HOSTS.update(item.split("=", 1) for item in args.host)
    socket.getaddrinfo = _getaddrinfo

    directory = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "ca.crt").exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.crt"), "-days", "30",
             "-subj", "/CN=nx test ACME CA"], check=True, capture_output=True)
    config = directory / "serles.ini"
    config.write_text(
        "[serles]\n"
        f"database = sqlite:///{directory / 'serles.db'}\n"
        "backend = acme_server:Backend\n"
        "subjectNameTemplate = CN={SAN[0]}\n"
        "[weco]\n"
        f"dir = {directory}\n")
    os.environ["CONFIG"] = str(config)

    from serles import create_app  # imported late: serles reads CONFIG when imported
    from werkzeug.serving import make_server

    server = make_server(args.listen, 0, create_app(), threaded=True)
    args.port_file.write_text(f"{server.server_port}\n")
    threading.Thread(target=_exit_when_address_goes, args=(args.listen,), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()

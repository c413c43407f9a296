"""`weco evidence`: the signed evidence pack for auditors, its key, and its verifier."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from control_api.audit import keys
from control_api.audit.chain import AuditCryptoError, WitnessPublic
from control_api.cli.args import bounded_int
from control_api.cli.common import CommandError, cli_actor, open_deps, reason
from control_api.evidence.contents import audit_report, write_contents
from control_api.evidence.pack import verify_pack, write_pack
from control_api.evidence.signing import EvidenceError, PackSigner, load_public, public_pem, write_key_pair
from control_api.settings import Settings, SettingsError


def signer(settings: Settings) -> PackSigner:
    if settings.evidence_signing_key:
        return PackSigner.from_file(Path(settings.evidence_signing_key))
    if not settings.is_dev:
        raise SettingsError("FF_EVIDENCE_SIGNING_KEY is required when FF_ENV=production "
                            "(create one with `weco evidence keygen --out DIR`)")
    private = settings.data_dir / "evidence" / "signing.key"
    if not private.exists():
        write_key_pair(private, private.with_suffix(".pub"))
    return PackSigner.from_file(private)


def cmd_evidence_keygen(settings: Settings, args) -> None:
    directory = Path(args.out)
    try:
        write_key_pair(directory / "signing.key", directory / "signing.pub")
    except EvidenceError as exc:
        raise CommandError(str(exc)) from None
    print(f"evidence signing key: {directory / 'signing.key'} (0600; set FF_EVIDENCE_SIGNING_KEY to it)")
    print(f"public key:           {directory / 'signing.pub'} (give it to auditors: --pub)")


def cmd_evidence_pack(settings: Settings, args) -> None:
    try:
        pack_signer = signer(settings)
    except EvidenceError as exc:
        raise CommandError(str(exc)) from None
    witness = keys.load_witness(settings)
    if public_pem(pack_signer.public) == witness.public.pem():
        raise CommandError("the evidence signing key is the audit witness key: give packs a key of their own")
    witnesses = [witness.public]
    for path in args.witness_pub or ():
        try:
            witnesses.append(WitnessPublic.from_pem(Path(path).read_bytes()))
        except (OSError, AuditCryptoError) as exc:
            raise CommandError(f"--witness-pub {path}: {reason(exc)}") from None
    for flag, path in (("--sbom", args.sbom), ("--test-results", args.test_results)):
        if path and not Path(path).is_file():
            raise CommandError(f"{flag} {path}: no such file")
    out = Path(args.out)
    if out.exists():
        raise CommandError(f"--out {out}: already exists")
    deps = open_deps(settings)
    deps.audit.seal()
    now = deps.clock.now()
    report = audit_report(witnesses, keys.load_chain_key(settings), keys.checkpoint_file(settings).path)
    with tempfile.TemporaryDirectory(prefix="weco-evidence-") as work:
        files = write_contents(Path(work), settings, now, args.days, report,
                               Path(args.sbom) if args.sbom else None,
                               Path(args.test_results) if args.test_results else None)
        try:
            sums_hash = write_pack(out, files, pack_signer)
        except EvidenceError as exc:
            raise CommandError(str(exc)) from None
    deps.audit.record_alone(cli_actor(), "evidence.pack", str(out),
                            {"sha256sums": sums_hash, "files": sorted(files), "audit_ok": report["ok"]})
    print(f"evidence pack: {out} ({len(files)} files, signed by key {pack_signer.key_id}; "
          f"SHA256SUMS {sums_hash})")
    if not report["ok"]:
        print(f"note: the audit log does not verify: {report['failure']} (in the pack's report)",
              file=sys.stderr)


def cmd_evidence_verify(settings: Settings, args) -> None:
    try:
        public = load_public(Path(args.pub).read_bytes(), f"--pub {args.pub}")
    except OSError as exc:
        raise CommandError(f"--pub {args.pub}: {reason(exc)}") from None
    try:
        names = verify_pack(Path(args.pack), public)
    except EvidenceError as exc:
        raise CommandError(f"evidence pack REFUSED: {exc}") from None
    print(f"evidence pack OK: {args.pack}: {len(names)} files match SHA256SUMS, signature verifies")


def register(groups) -> None:
    evidence = groups.add_parser("evidence", help="the signed evidence pack").add_subparsers(required=True)
    keygen = evidence.add_parser("keygen", help="write an evidence signing key pair (private half 0600)")
    keygen.add_argument("--out", required=True, help="directory for signing.key and signing.pub")
    keygen.set_defaults(fn=cmd_evidence_keygen)
    pack = evidence.add_parser("pack", help="write a signed evidence pack (.tar.gz)")
    pack.add_argument("--out", required=True, metavar="FILE.tar.gz")
    pack.add_argument("--days", type=bounded_int(1, 3650), default=30,
                      help="audit export window (default 30)")
    pack.add_argument("--witness-pub", action="append", help="more witness public keys (rotated ones)")
    pack.add_argument("--sbom", help="the release's SBOM (default: SBOM.cdx.json of the release, if any)")
    pack.add_argument("--test-results", help="a test run's results (JUnit XML) to include")
    pack.set_defaults(fn=cmd_evidence_pack)
    verify = evidence.add_parser("verify", help="check a pack's checksums and signature")
    verify.add_argument("pack")
    verify.add_argument("--pub", required=True, help="the evidence signing public key (PEM)")
    verify.set_defaults(fn=cmd_evidence_verify)

"""`scripts/release`: one command from a commit to a signed release bundle.

    scripts/release build OUT --secret-key SEC --public-key PUB [--commit REV]
    scripts/release keygen PUB SEC [--unencrypted]

OUT receives weco-V.tar.gz, its .minisig, weco-V.sbom.json and install.sh (with the
tarball's SHA-256 and the public key baked in). The tarball holds weco-V/: the Ansible
collection, the wheelhouse and the flat Debian repository (scripts/build-offline), the SBOM,
the installer's requirements, SECURITY.md, install.sh and SHA256SUMS. V is the tag's version
on a commit tagged vV, else the project's version plus +g<commit>. Two builds of one
commit are the same bytes: everything is made from `git archive` of the commit, with the
commit's time as every mtime.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import tomllib

from control_api.release import bundle, minisign, sbom, signing

ROOT = pathlib.Path(__file__).resolve().parents[2]


class ReleaseError(Exception):
    """The release cannot be built; the message says why."""


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise ReleaseError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def release_identity(commit: str) -> tuple[str, str, str, int]:
    """(commit sha, version, tag or "", commit time) of a commit."""
    sha = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
    project = tomllib.loads(_git("show", f"{sha}:pyproject.toml"))["project"]["version"]
    tags = [t for t in _git("tag", "--points-at", sha, "--list", "v*").split() if t]
    tag = f"v{project}" if f"v{project}" in tags else ""
    if tags and not tag:
        raise ReleaseError(f"{sha[:12]} is tagged {', '.join(tags)} but pyproject.toml says {project}")
    version = project if tag else f"{project}+g{sha[:12]}"
    return sha, version, tag, int(_git("log", "-1", "--format=%ct", sha))


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    if result.returncode:
        raise ReleaseError(f"{pathlib.Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


def stage_release(work: pathlib.Path, sha: str, version: str, tag: str, epoch: int,
                  public_key: str) -> pathlib.Path:
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    offline, collection = work / "offline", work / "collection"
    for script, into in (("build-offline", offline), ("build-collection", collection)):
        _run([str(ROOT / "scripts" / script), str(into), "--version", version, "--commit", sha], env)
    stage = work / f"weco-{version}"
    stage.mkdir()
    for name in ("RELEASE", "wheelhouse.tar", "debs.tar"):
        shutil.copyfile(offline / name, stage / name)
    shutil.copyfile(collection / f"weco-platform-{version}.tar.gz", stage / f"weco-platform-{version}.tar.gz")
    document = sbom.build(offline / "wheelhouse", offline / "debs", version, epoch)
    sbom.validate(document)
    sbom.write(document, stage / "SBOM.cdx.json")
    (stage / "installer-requirements.txt").write_text(
        bundle.requirements_closure(offline / "wheelhouse", "ansible-core"))
    (stage / "SECURITY.md").write_text(_git("show", f"{sha}:SECURITY.md") + "\n")
    installer = stage / "install.sh"
    installer.write_text(render_installer(sha, version=version, tag=tag, public_key=public_key))
    installer.chmod(0o755)
    bundle.write_sha256sums(stage)
    return stage


def render_installer(sha: str, **values: str) -> str:
    """install.sh as the commit has it (not as this checkout's files are now)."""
    return bundle.render_installer(template=_git("show", f"{sha}:control_api/release/install.sh.in") + "\n",
                                   verifier=_git("show", f"{sha}:control_api/release/minisign.py"), **values)


def build(out: pathlib.Path, secret_key: pathlib.Path, public_key_file: pathlib.Path,
          commit: str) -> pathlib.Path:
    sha, version, tag, epoch = release_identity(commit)
    public_key = signing.public_key_line(public_key_file)
    out.mkdir(parents=True, exist_ok=True)
    tarball = out / f"weco-{version}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="weco-release-") as work:
        stage = stage_release(pathlib.Path(work), sha, version, tag, epoch, public_key)
        bundle.write_tarball(stage, tarball, epoch)
        shutil.copyfile(stage / "SBOM.cdx.json", out / f"weco-{version}.sbom.json")
    digest = bundle.sha256_file(tarball)
    signature = signing.sign(tarball, secret_key, f"file:{tarball.name} version:{version} "
                             f"tag:{tag or '-'} sha256:{digest}")
    # The bundle must verify exactly as install.sh will verify it, with the key it bakes in.
    minisign.verify_file(public_key, tarball, signature.read_text())
    installer = out / "install.sh"
    installer.write_text(render_installer(sha, version=version, tag=tag, public_key=public_key,
                                          tarball_sha256=digest))
    installer.chmod(0o755)
    return tarball


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/release", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="build and sign the bundle of a commit")
    make.add_argument("out", type=pathlib.Path)
    make.add_argument("--secret-key", type=pathlib.Path, required=True)
    make.add_argument("--public-key", type=pathlib.Path, required=True)
    make.add_argument("--commit", default="HEAD")
    keygen = commands.add_parser("keygen", help="make a minisign key pair for signing releases")
    keygen.add_argument("public", type=pathlib.Path)
    keygen.add_argument("secret", type=pathlib.Path)
    keygen.add_argument("--unencrypted", action="store_true",
                        help="no password on the secret key (test and CI keys only)")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            signing.generate_keypair(args.public, args.secret, password=not args.unencrypted)
            print(signing.public_key_line(args.public))
        else:
            print(build(args.out, args.secret_key, args.public_key, args.commit))
    except (ReleaseError, bundle.BundleError, sbom.SbomError, signing.SigningError,
            minisign.SignatureError) as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The release bundle's CycloneDX 1.6 SBOM: every wheel and Debian package it ships, with SHA-256.

Build-time only: the generator (cyclonedx-bom's `cyclonedx-py requirements`) and the schema
(cyclonedx-python-lib's bundled copy) are dev dependencies, imported inside the functions that
need them, so importing control_api never needs them.

    python -m control_api.release.sbom build --wheelhouse W --debs D --version V --epoch N --out FILE
    python -m control_api.release.sbom validate FILE
"""

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from control_api.release.bundle import sha256_file

PRODUCT = "weco"
SPEC_VERSION = "1.6"
DISTRO = "debian-12"
# serialNumber is uuid5(this namespace, the document's canonical JSON): same content, same serial.
_SERIAL_NAMESPACE = uuid.UUID("64fc675d-fb4d-4b61-94d3-cc39d2429773")
_DEB_FIELDS = ("Package", "Version", "Architecture", "Filename", "SHA256")


class SbomError(Exception):
    """The inputs or the document are not what a release SBOM needs; the message is one line."""


def build(wheelhouse: Path, debs: Path, version: str, epoch: int) -> dict:
    """The SBOM of a build-offline output: the weco wheel as metadata.component (with the
    weco-ansible tarball inside it), every other wheel and every .deb as components; validated."""
    wheelhouse, debs = Path(wheelhouse), Path(debs)
    if not isinstance(epoch, int) or epoch < 0:
        raise SbomError(f"the epoch must be a non-negative integer (SOURCE_DATE_EPOCH), not {epoch!r}")
    generated = _generate(wheelhouse / "requirements.txt", epoch)
    wheels = _wheels(wheelhouse, generated.get("components", []))
    root = _root(wheelhouse, wheels.pop(PRODUCT, None), version)
    components = sorted([*wheels.values(), *_debs(debs)], key=lambda c: c["purl"])
    refs = [c["bom-ref"] for c in components]
    if len(set(refs)) != len(refs):
        raise SbomError("two components have the same purl")
    doc = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": generated["metadata"]["tools"],
            "component": root,
        },
        "components": components,
        # The release ships all of them; their own dependency graph is not recorded (an
        # entry with no dependsOn would claim "none", so components get no entries).
        "dependencies": [{"ref": root["bom-ref"], "dependsOn": refs}],
    }
    doc["serialNumber"] = _serial(doc)
    validate(doc)
    return doc


def dumps(doc: dict) -> str:
    """The document's one serialisation: sorted keys, two-space indent, a final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(doc: dict, path) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(doc), encoding="utf-8")
    os.replace(tmp, path)  # never a half-written SBOM under the final name
    return path


def validate(document) -> None:
    """Raise SbomError unless `document` (a dict, or a path to JSON) is valid CycloneDX 1.6,
    checked with cyclonedx-python-lib's bundled strict schema (no network)."""
    where, text = _as_text(document)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SbomError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("specVersion") != SPEC_VERSION:
        found = data.get("specVersion") if isinstance(data, dict) else type(data).__name__
        raise SbomError(f"{where}: specVersion is {found!r}, not {SPEC_VERSION!r}")
    errors = _validator().validate_str(text, all_errors=True)
    if errors is not None:
        from jsonschema.exceptions import best_match

        error = best_match(e.data for e in errors)
        message = _one_line(error.message, 160)
        raise SbomError(f"{where}: not valid CycloneDX {SPEC_VERSION} at {error.json_path}: {message}")


def installed_vs_sbom(doc, pip_freeze_text: str, dpkg_query_text: str,
                      base: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """What a target has installed that the SBOM does not list, as sorted (kind, name, version)
    with kind "pypi" or "deb". pip_freeze_text is `pip freeze` in the target's venv (which leaves
    out the venv's own pip and setuptools); dpkg_query_text is
    `dpkg-query -W -f '${Package} ${Version}\\n'`; `base` names the Debian packages the bare OS
    image already had, which are not the release's."""
    if not isinstance(doc, dict):
        doc = json.loads(_as_text(doc)[1])
    wheels, debs = _listed(doc)
    base = set(base)
    extra = []
    for name, ver in _pip_freeze(pip_freeze_text):
        if not any(ver is None or _same_version(ver, v) for v in wheels.get(name, ())) \
                and not _seeded_by_debian(name, ver, debs):
            extra.append(("pypi", name, ver or ""))
    for line in dpkg_query_text.splitlines():
        name, _, ver = line.strip().partition(" ")
        name, ver = name.split(":", 1)[0], ver.strip()  # ${binary:Package} adds ":arch"
        if name and ver and name not in base and ver not in debs.get(name, ()):
            extra.append(("deb", name, ver))
    return sorted(set(extra))


# --- the Python side: the generator's components, checked against the wheels on disk ---------

def _generate(requirements: Path, epoch: int) -> dict:
    if not requirements.is_file():
        raise SbomError(f"{requirements}: no such file")
    # --output-reproducible drops the random serial and takes the timestamp from
    # SOURCE_DATE_EPOCH; the final document is validated once, in build().
    cmd = [sys.executable, "-m", "cyclonedx_py", "requirements", str(requirements),
           "--spec-version", SPEC_VERSION, "--output-format", "JSON", "--output-reproducible",
           "--no-validate", "--output-file", "-"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        said = _one_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "", 200)
        if "No module named cyclonedx_py" in proc.stderr:
            said = "cyclonedx-bom is not installed (a dev dependency)"
        raise SbomError(f"cyclonedx-py failed on {requirements}: {said or f'exit {proc.returncode}'}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise SbomError(f"cyclonedx-py wrote no JSON for {requirements} ({exc})") from None


def _wheels(wheelhouse: Path, generated: list[dict]) -> dict[str, dict]:
    """Each wheel's component by normalised name; every wheel must be a requirements.txt line
    whose --hash is the file's SHA-256, and every line a wheel."""
    listed: dict[tuple[str, str], dict] = {}
    for comp in generated:
        key = (canonicalize_name(comp["name"]), _norm_version(comp.get("version", "")))
        if key in listed:
            raise SbomError(f"requirements.txt lists {comp['name']}=={comp.get('version')} twice")
        listed[key] = comp
    found: dict[str, dict] = {}
    for path in sorted(wheelhouse.glob("*.whl")):
        try:
            name, ver, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename as exc:
            raise SbomError(f"{path}: not a wheel file name ({exc})") from None
        comp = listed.pop((name, str(ver)), None)
        if comp is None:
            raise SbomError(f"{path.name} is in the wheelhouse but not in requirements.txt")
        if name in found:
            raise SbomError(f"the wheelhouse has two wheels of {name}")
        found[name] = _wheel_component(path, comp)
    if listed:
        name, ver = sorted(listed)[0]
        raise SbomError(f"requirements.txt lists {name}=={ver} but the wheelhouse has no such wheel")
    return found


def _wheel_component(path: Path, comp: dict) -> dict:
    # The generator puts a line's --hash values on an "implicit dist url" reference (a PyPI
    # guess); the wheel came from the wheelhouse, so its hash goes on the component itself.
    listed = {h["content"].lower() for ref in comp.get("externalReferences", [])
              for h in ref.get("hashes", []) if h.get("alg") == "SHA-256"}
    if not listed:
        raise SbomError(f"requirements.txt gives no --hash=sha256 for {path.name}")
    digest = sha256_file(path)
    if digest not in listed:
        raise SbomError(f"{path.name}: SHA-256 {digest} is not requirements.txt's {min(listed)}")
    return {"type": "library", "bom-ref": comp["purl"], "name": comp["name"],
            "version": comp["version"], "purl": comp["purl"],
            "hashes": [{"alg": "SHA-256", "content": digest}]}


def _root(wheelhouse: Path, wheel: dict | None, version: str) -> dict:
    """The weco wheel as the SBOM's subject, the weco-ansible tarball (playbooks, roles) inside."""
    if wheel is None:
        raise SbomError(f"the wheelhouse has no {PRODUCT} wheel")
    if not _same_version(wheel["version"], version):
        raise SbomError(f"the {PRODUCT} wheel is version {wheel['version']}, not {version}")
    root = {"type": "application", "bom-ref": f"{PRODUCT}@{version}", "name": PRODUCT,
            "version": version, "hashes": wheel["hashes"]}
    tarballs = sorted(wheelhouse.glob(f"{PRODUCT}-ansible-*.tar.gz"))
    if [p.name for p in tarballs] not in ([], [f"{PRODUCT}-ansible-{version}.tar.gz"]):
        raise SbomError(f"the wheelhouse's ansible tarball is not {PRODUCT}-ansible-{version}.tar.gz")
    if tarballs:
        root["components"] = [{"type": "file", "bom-ref": f"{PRODUCT}-ansible@{version}",
                               "name": tarballs[0].name, "version": version,
                               "hashes": [{"alg": "SHA-256", "content": sha256_file(tarballs[0])}]}]
    return root


# --- the Debian side: the flat repository's Packages index, checked against the .debs ---------

def _debs(debs: Path) -> list[dict]:
    index = debs / "Packages"
    if not index.is_file():
        raise SbomError(f"{index}: no such file")
    components, named = [], set()
    for para in _deb822(index.read_text(encoding="utf-8")):
        missing = [f for f in _DEB_FIELDS if not para.get(f)]
        if missing:
            raise SbomError(f"{index}: {para.get('Package', 'a paragraph')} has no {missing[0]}")
        path = debs / para["Filename"]
        if path.resolve().parent != debs.resolve():
            raise SbomError(f"{index}: {para['Filename']} is not in {debs} (a flat repository)")
        if not path.is_file():
            raise SbomError(f"{index} lists {para['Filename']}, which is not in {debs}")
        digest = sha256_file(path)
        if digest != para["SHA256"].lower():
            raise SbomError(f"{path.name}: SHA-256 {digest} is not the Packages index's {para['SHA256']}")
        named.add(path.name)
        components.append(_deb_component(para, digest))
    unlisted = sorted(p.name for p in debs.glob("*.deb") if p.name not in named)
    if unlisted:
        raise SbomError(f"{unlisted[0]} is in {debs} but not in its Packages index")
    return components


def _deb_component(para: dict[str, str], digest: str) -> dict:
    from packageurl import PackageURL  # cyclonedx-python-lib's own dependency

    purl = PackageURL(type="deb", namespace="debian", name=para["Package"], version=para["Version"],
                      qualifiers={"arch": para["Architecture"], "distro": DISTRO}).to_string()
    return {"type": "library", "bom-ref": purl, "name": para["Package"], "version": para["Version"],
            "purl": purl, "hashes": [{"alg": "SHA-256", "content": digest}]}


def _deb822(text: str) -> list[dict[str, str]]:
    """Paragraphs of single-line fields (continuation lines, e.g. Description's, are skipped)."""
    paras = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields = {}
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if fields:
            paras.append(fields)
    return paras


# --- helpers ---------------------------------------------------------------------------------

# A virtualenv's own pip and setuptools (`pip freeze --all` shows them) are the wheels that
# Debian's python3-venv seeds it with, from these packages' /usr/share/python-wheels.
SEEDED_BY_DEBIAN = {"pip": "python3-pip-whl", "setuptools": "python3-setuptools-whl"}


def _seeded_by_debian(name: str, version: str | None, debs: dict[str, list[str]]) -> bool:
    package = SEEDED_BY_DEBIAN.get(name)
    return bool(package and version) and any(
        _same_version(version, _upstream(v)) for v in debs.get(package, ()))


def _upstream(debian_version: str) -> str:
    """The upstream part of a Debian version: 1:23.0.1+dfsg-1 -> 23.0.1."""
    upstream = debian_version.split(":", 1)[-1].rsplit("-", 1)[0]
    return re.split(r"\+(?:dfsg|ds)", upstream)[0]


def _listed(doc: dict) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    wheels: dict[str, list[str]] = {}
    debs: dict[str, list[str]] = {}
    root = doc.get("metadata", {}).get("component")
    if root:
        wheels.setdefault(canonicalize_name(root["name"]), []).append(root.get("version", ""))
    for comp in doc.get("components", []):
        purl = comp.get("purl", "")
        if purl.startswith("pkg:pypi/"):
            wheels.setdefault(canonicalize_name(comp["name"]), []).append(comp.get("version", ""))
        elif purl.startswith("pkg:deb/"):
            debs.setdefault(comp["name"], []).append(comp.get("version", ""))
    return wheels, debs


def _pip_freeze(text: str) -> list[tuple[str, str | None]]:
    """(normalised name, version) per line; None when pip names a direct URL without a wheel
    file name to read the version from."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-e "):
            out.append((line, None))  # an editable checkout is never the release's
            continue
        if m := re.match(r"([A-Za-z0-9._-]+)\s*===?\s*(\S+)", line):
            out.append((canonicalize_name(m[1]), m[2]))
        elif m := re.match(r"([A-Za-z0-9._-]+)\s*@\s*(\S+)", line):
            try:
                _, ver, _, _ = parse_wheel_filename(m[2].rsplit("/", 1)[-1])
                out.append((canonicalize_name(m[1]), str(ver)))
            except InvalidWheelFilename:
                out.append((canonicalize_name(m[1]), None))
    return out


def _same_version(a: str, b: str) -> bool:
    return _norm_version(a) == _norm_version(b)


def _norm_version(v: str) -> str:
    try:
        return str(Version(v))
    except InvalidVersion:
        return v


def _serial(doc: dict) -> str:
    canonical = json.dumps({k: v for k, v in doc.items() if k != "serialNumber"},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, canonical)}"


def _as_text(document) -> tuple[str, str]:
    if isinstance(document, dict):
        return "the SBOM", json.dumps(document)
    try:
        return str(document), Path(document).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SbomError(f"{document}: cannot read ({exc.__class__.__name__}: {exc})") from None


@functools.cache
def _validator():
    # One per process: building it compiles the schema and its format checkers (seconds).
    try:
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
    except ImportError as exc:
        raise SbomError(f"cyclonedx-python-lib[json-validation] is not installed ({exc})") from None
    return JsonStrictValidator(SchemaVersion.V1_6)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- CLI ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control_api.release.sbom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build, validate and write the release SBOM")
    b.add_argument("--wheelhouse", required=True, type=Path)
    b.add_argument("--debs", required=True, type=Path)
    b.add_argument("--version", required=True)
    b.add_argument("--epoch", required=True, type=int, help="the release's SOURCE_DATE_EPOCH")
    b.add_argument("--out", required=True, type=Path)
    v = sub.add_parser("validate", help="check a file against the CycloneDX 1.6 schema")
    v.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            doc = build(args.wheelhouse, args.debs, args.version, args.epoch)
            write(doc, args.out)
            print(f"{args.out}: CycloneDX {SPEC_VERSION}, {len(doc['components'])} components, "
                  f"{doc['serialNumber']}")
        else:
            validate(args.file)
            print(f"{args.file}: valid CycloneDX {SPEC_VERSION}")
    except SbomError as exc:
        print(f"sbom: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

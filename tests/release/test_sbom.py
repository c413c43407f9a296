"""The release SBOM over a real (tiny) wheelhouse and flat Debian repository, built offline:
wheels from `pip wheel`, .debs from `dpkg-deb --build`, the index from `dpkg-scanpackages`."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from control_api.release import sbom

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_700_000_000
# (project name, version, module): the weco wheel is the SBOM's subject; Beta.Pkg's name
# normalises (PEP 503) and its version has a post-release.
WHEELS = [("weco", "0.1.0", "weco_tiny"), ("alpha-lib", "1.0", "alpha_lib"),
          ("Beta.Pkg", "2.0.post1", "beta_pkg")]
# (package, version, architecture): tiny-b's epoch and "+" must be encoded in its purl.
DEBS = [("tiny-a", "1.0-1", "all"), ("tiny-b", "1:2.0+b1-1", "amd64")]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_wheels(src: Path, wheelhouse: Path) -> None:
    dirs = []
    for name, version, module in WHEELS:
        d = src / module
        d.mkdir(parents=True)
        (d / f"{module}.py").write_text(f"VERSION = {version!r}\n")
        (d / "pyproject.toml").write_text(
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            f'[tool.setuptools]\npy-modules = ["{module}"]\n')
        dirs.append(str(d))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-build-isolation", "-w", str(wheelhouse), *dirs],
                   check=True, env={**os.environ, "SOURCE_DATE_EPOCH": "0"}, capture_output=True)
    # As scripts/build-offline writes it: one `name==version --hash` line per wheel.
    lines = []
    for whl in sorted(wheelhouse.glob("*.whl")):
        name, version = whl.name.split("-")[:2]
        lines.append(f"{name}=={version} --hash=sha256:{_sha256(whl)}\n")
    (wheelhouse / "requirements.txt").write_text("".join(lines))
    with tarfile.open(wheelhouse / "weco-ansible-0.1.0.tar.gz", "w:gz") as tar:
        tar.add(src / "weco_tiny" / "weco_tiny.py", arcname="playbooks/site.yml")


def _make_debs(src: Path, debs: Path) -> None:
    for name, version, arch in DEBS:
        root = src / f"{name}-root"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "usr/share/doc" / name).mkdir(parents=True)
        (root / "usr/share/doc" / name / "README").write_text(f"{name} {version}\n")
        (root / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
            f"Maintainer: Test <test@invalid>\nDescription: a tiny test package\n two lines long\n")
        deb = debs / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"  # apt's file name
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                       check=True, capture_output=True)
    with open(debs / "Packages", "w") as out:
        subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=debs,
                       stdout=out, stderr=subprocess.DEVNULL, check=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    if shutil.which("dpkg-scanpackages") is None:
        pytest.fail("dpkg-scanpackages is missing: scripts/setup --dev installs dpkg-dev")
    base = tmp_path_factory.mktemp("release")
    wheelhouse, debs = base / "wheelhouse", base / "debs"
    wheelhouse.mkdir()
    debs.mkdir()
    _make_wheels(base / "src", wheelhouse)
    _make_debs(base / "src", debs)
    return wheelhouse, debs


@pytest.fixture(scope="module")
def doc(inputs):
    return sbom.build(*inputs, "0.1.0", EPOCH)


@pytest.fixture
def copies(inputs, tmp_path):
    """Inputs a test may tamper with."""
    wheelhouse, debs = tmp_path / "wheelhouse", tmp_path / "debs"
    shutil.copytree(inputs[0], wheelhouse)
    shutil.copytree(inputs[1], debs)
    return wheelhouse, debs


def test_the_sbom_lists_every_wheel_and_deb_with_its_version_and_sha256(inputs, doc):
    wheelhouse, debs = inputs
    sbom.validate(doc)
    by_purl = {c["purl"]: c for c in doc["components"]}
    for name, version, _ in WHEELS[1:]:
        whl = next(wheelhouse.glob(f"{name.lower().replace('-', '_').replace('.', '_')}-{version}-*.whl"))
        norm = name.lower().replace(".", "-")
        comp = by_purl[f"pkg:pypi/{norm}@{version}"]
        assert comp["version"] == version
        assert comp["hashes"] == [{"alg": "SHA-256", "content": _sha256(whl)}]
    for name, version, arch in DEBS:
        deb = debs / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
        [comp] = [c for c in doc["components"] if c["name"] == name]
        assert (comp["type"], comp["version"]) == ("library", version)
        assert comp["hashes"] == [{"alg": "SHA-256", "content": _sha256(deb)}]
    assert len(doc["components"]) == len(WHEELS) - 1 + len(DEBS)
    root = doc["metadata"]["component"]
    weco = next(wheelhouse.glob("weco-0.1.0-*.whl"))
    assert (root["type"], root["name"], root["version"]) == ("application", "weco", "0.1.0")
    assert root["hashes"] == [{"alg": "SHA-256", "content": _sha256(weco)}]
    [tarball] = root["components"]
    assert tarball["hashes"][0]["content"] == _sha256(wheelhouse / "weco-ansible-0.1.0.tar.gz")
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert [c["name"] for c in doc["metadata"]["tools"]["components"]] == ["cyclonedx-py",
                                                                        "cyclonedx-python-lib"]


def test_deb_purls_are_encoded_and_components_sorted_by_purl(doc):
    purls = [c["purl"] for c in doc["components"]]
    assert purls == sorted(purls)
    assert "pkg:deb/debian/tiny-b@1:2.0%2Bb1-1?arch=amd64&distro=debian-12" in purls
    assert "pkg:deb/debian/tiny-a@1.0-1?arch=all&distro=debian-12" in purls


def test_two_builds_are_byte_identical_and_the_serial_follows_the_content(inputs, doc, tmp_path):
    again = sbom.build(*inputs, "0.1.0", EPOCH)
    first = sbom.write(doc, tmp_path / "a.json").read_bytes()
    assert sbom.write(again, tmp_path / "b.json").read_bytes() == first
    assert doc["serialNumber"].startswith("urn:uuid:")
    later = sbom.build(*inputs, "0.1.0", EPOCH + 1)
    assert later["serialNumber"] != doc["serialNumber"]
    sbom.validate(tmp_path / "a.json")


def test_a_deb_whose_hash_differs_from_the_packages_index_is_refused(copies):
    wheelhouse, debs = copies
    deb = next(debs.glob("tiny-a_*.deb"))
    with open(deb, "ab") as f:
        f.write(b"\0")
    with pytest.raises(sbom.SbomError, match=r"tiny-a_.*\.deb: SHA-256 .* is not the Packages index's"):
        sbom.build(wheelhouse, debs, "0.1.0", EPOCH)


def test_a_deb_on_disk_but_not_in_the_packages_index_is_refused(copies):
    wheelhouse, debs = copies
    shutil.copy(next(debs.glob("tiny-a_*.deb")), debs / "stowaway_1.0_all.deb")
    with pytest.raises(sbom.SbomError, match=r"stowaway_1\.0_all\.deb is in .* but not in its Packages"):
        sbom.build(wheelhouse, debs, "0.1.0", EPOCH)


def test_a_wheel_missing_from_requirements_txt_is_refused(copies):
    wheelhouse, debs = copies
    req = wheelhouse / "requirements.txt"
    req.write_text("".join(x for x in req.read_text().splitlines(True) if not x.startswith("alpha_lib")))
    with pytest.raises(sbom.SbomError, match=r"alpha_lib-1\.0-.*\.whl is in the wheelhouse but not in "
                                             r"requirements\.txt"):
        sbom.build(wheelhouse, debs, "0.1.0", EPOCH)


def test_a_wheel_whose_hash_differs_from_requirements_txt_is_refused(copies):
    wheelhouse, debs = copies
    whl = next(wheelhouse.glob("alpha_lib-*.whl"))
    with open(whl, "ab") as f:
        f.write(b"\0")
    with pytest.raises(sbom.SbomError, match=r"alpha_lib-1\.0-.*\.whl: SHA-256 .* is not requirements"):
        sbom.build(wheelhouse, debs, "0.1.0", EPOCH)


def test_a_requirement_without_its_wheel_and_a_wrong_release_version_are_refused(copies):
    wheelhouse, debs = copies
    with pytest.raises(sbom.SbomError, match=r"the weco wheel is version 0\.1\.0, not 0\.2\.0"):
        sbom.build(wheelhouse, debs, "0.2.0", EPOCH)
    next(wheelhouse.glob("beta_pkg-*.whl")).unlink()
    with pytest.raises(sbom.SbomError, match=r"lists beta-pkg==2\.0\.post1 but the wheelhouse has no"):
        sbom.build(wheelhouse, debs, "0.1.0", EPOCH)


def _broken(doc, change):
    broken = json.loads(json.dumps(doc))
    change(broken)
    return broken


def test_validate_refuses_documents_the_1_6_schema_refuses(doc, tmp_path):
    def short_hash(d):
        d["components"][0]["hashes"][0]["content"] = "abc123"

    def no_name(d):
        del d["components"][0]["name"]

    def unknown_field(d):
        d["components"][0]["colour"] = "blue"  # the strict schema allows no extra properties

    for change, said in [(short_hash, r"components\[0\]\.hashes\[0\]\.content"),
                         (no_name, r"components\[0\]: 'name' is a required property"),
                         (unknown_field, r"components\[0\]: Additional properties")]:
        with pytest.raises(sbom.SbomError, match=said) as err:
            sbom.validate(_broken(doc, change))
        assert "\n" not in str(err.value)
    with pytest.raises(sbom.SbomError, match=r"specVersion is '1\.5', not '1\.6'"):
        sbom.validate(_broken(doc, lambda d: d.update(specVersion="1.5")))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(sbom.SbomError, match=r"garbage\.json: not JSON"):
        sbom.validate(garbage)


def _cli(*args, prefix=()):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*prefix, sys.executable, "-m", "control_api.release.sbom", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def test_the_cli_builds_and_validates_offline_with_one_line_answers(inputs, doc, tmp_path):
    # No network: the generator and the schema must both work inside an empty network namespace.
    offline = ("unshare", "--net") if _cli("--help", prefix=("unshare", "--net")).returncode == 0 else ()
    out = tmp_path / "SBOM.cdx.json"
    built = _cli("build", "--wheelhouse", str(inputs[0]), "--debs", str(inputs[1]), "--version", "0.1.0",
                 "--epoch", str(EPOCH), "--out", str(out), prefix=offline)
    assert (built.returncode, built.stderr) == (0, "")
    assert built.stdout.count("\n") == 1 and "4 components" in built.stdout
    assert out.read_text() == sbom.dumps(doc)
    checked = _cli("validate", str(out), prefix=offline)
    assert (checked.returncode, checked.stdout) == (0, f"{out}: valid CycloneDX 1.6\n")
    out.write_text(out.read_text().replace('"type": "library"', '"type": "gadget"', 1))
    refused = _cli("validate", str(out), prefix=offline)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("sbom: ") and refused.stderr.count("\n") == 1
    assert "Traceback" not in refused.stderr
    missing = _cli("build", "--wheelhouse", str(tmp_path / "nowhere"), "--debs", str(inputs[1]),
                   "--version", "0.1.0", "--epoch", "0", "--out", str(tmp_path / "x.json"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert not (tmp_path / "x.json").exists()


def test_importing_the_module_needs_no_cyclonedx():
    code = ("import sys, control_api.release.sbom; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cyclonedx', 'packageurl')))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert ran.stdout == "[]\n"


def test_installed_vs_sbom_finds_what_the_sbom_does_not_list(doc):
    pip_freeze = ("alpha_lib==1.0\nbeta.pkg==2.0.post1\nweco==0.1.0\n"
                  "evil-helper==6.6\n"  # installed behind the release's back
                  "Alpha-Lib==1.1\n"  # a listed name at another version
                  "weco @ file:///opt/weco/wheelhouse/weco-0.1.0-py3-none-any.whl\n")
    dpkg_query = "tiny-a 1.0-1\ntiny-b:amd64 1:2.0+b1-1\nbash 5.2.15-2+b2\nnetcat-openbsd 1.219-1\nrc-only \n"
    found = sbom.installed_vs_sbom(doc, pip_freeze, dpkg_query, base={"bash"})
    assert found == [("deb", "netcat-openbsd", "1.219-1"), ("pypi", "alpha-lib", "1.1"),
                     ("pypi", "evil-helper", "6.6")]
    assert sbom.installed_vs_sbom(doc, "", "bash 5.2.15-2+b2\n") == [("deb", "bash", "5.2.15-2+b2")]
    assert sbom.installed_vs_sbom(doc, "alpha-lib==1.0\n", "tiny-a 1.0-1\n", base={"bash"}) == []


def test_a_venvs_own_pip_and_setuptools_are_covered_by_the_debian_packages_that_seed_them():
    doc = {"metadata": {}, "components": [
        {"name": "python3-pip-whl", "version": "23.0.1+dfsg-1",
         "purl": "pkg:deb/debian/python3-pip-whl@23.0.1%2Bdfsg-1?arch=all&distro=debian-12"},
        {"name": "python3-setuptools-whl", "version": "66.1.1-1",
         "purl": "pkg:deb/debian/python3-setuptools-whl@66.1.1-1?arch=all&distro=debian-12"}]}
    assert sbom.installed_vs_sbom(doc, "pip==23.0.1\nsetuptools==66.1.1\n", "") == []
    assert sbom.installed_vs_sbom(doc, "pip==24.0\n", "") == [("pypi", "pip", "24.0")]
    assert sbom.installed_vs_sbom({"metadata": {}, "components": []}, "pip==23.0.1\n", "") == [
        ("pypi", "pip", "23.0.1")]

"""One source for each pattern a value meets before it reaches the site_deploy role:
control_api/sites/patterns.py. The role's checks (vars/main.yml), its argument specs,
the host-side helper and the API all carry the same strings, and agree on values."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import yaml

from control_api.runs.playbooks import PLAYBOOKS, extra_vars
from control_api.sites import patterns, validate
from control_api.sites.validate import InvalidInput

ROLE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "site_deploy"


def role_vars() -> dict:
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def helper():
    path = ROLE / "files" / "weco_site_release.py"
    spec = importlib.util.spec_from_file_location("weco_site_release", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_role_checks_with_the_same_patterns():
    found = role_vars()
    assert found["site_deploy_pattern_slug"] == patterns.SLUG
    assert found["site_deploy_pattern_release_id"] == patterns.RELEASE_ID
    assert found["site_deploy_pattern_root"] == patterns.DEPLOY_ROOT
    assert found["site_deploy_pattern_domain"] == patterns.DOMAIN
    checks = yaml.safe_dump(found["site_deploy_site_checks"] + found["site_deploy_deploy_checks"])
    for name in ("slug", "release_id", "root", "domain"):
        assert f"match(site_deploy_pattern_{name})" in checks


def test_the_helper_checks_with_the_same_patterns():
    module = helper()
    assert module.SLUG.pattern == patterns.SLUG
    assert module.RELEASE.pattern == patterns.RELEASE_ID


def test_the_argument_specs_document_the_same_patterns():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for entry in ("main", "rollback"):
        options = specs[entry]["options"]
        assert patterns.SLUG in options["site_slug"]["description"]
        assert patterns.DEPLOY_ROOT in options["site_deploy_root"]["description"]
        description = options["site_release_id"]["description"]
        assert patterns.RELEASE_ID in (description if isinstance(description, str) else description[0])
    assert patterns.DOMAIN in specs["main"]["options"]["site_domain"]["description"]


SAMPLES = ["acme", "a", "a-b", "-a", "a-", "A", "a\n", "acme\n", "", "a" * 63, "a" * 64, "r1.2_3-x",
           ".r", "/srv/sites", "/srv/sites\n", "/", "/srv/sites/", "/srv/a b", "/srv/{{ x }}",
           "example.com", "a.example.com", "A.example.com", "example.com.", "{{ lookup('pipe','id') }}"]


def api_accepts(check, value) -> bool:
    try:
        check(value)
        return True
    except InvalidInput:
        return False


@pytest.mark.parametrize("value", SAMPLES)
def test_whatever_the_api_accepts_the_role_and_the_helper_accept(value):
    module = helper()
    if api_accepts(validate.slug, value):
        assert patterns.matches(patterns.SLUG, value) and module.SLUG.match(value)
    if api_accepts(validate.domain, value):
        assert patterns.matches(patterns.DOMAIN, value)
    if api_accepts(validate.host_vars, {"site_deploy_root": value}):
        assert patterns.matches(patterns.DEPLOY_ROOT, value)
    if api_accepts(lambda v: extra_vars(PLAYBOOKS["rollback_site"], {"release_id": v}), value):
        assert patterns.matches(patterns.RELEASE_ID, value) and module.RELEASE.match(value)


def test_a_trailing_newline_matches_nothing():
    for pattern, value in ((patterns.SLUG, "acme\n"), (patterns.RELEASE_ID, "r1\n"),
                           (patterns.DEPLOY_ROOT, "/srv/sites\n"), (patterns.DOMAIN, "example.com\n")):
        assert not patterns.matches(pattern, value)

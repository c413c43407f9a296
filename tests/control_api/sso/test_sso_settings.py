"""The FF_SAML_*, FF_OIDC_* and FF_SSO_* settings (control_api/settings.py): checked at
start-up with one line naming the variable; what SAML and OIDC cannot work without is
required; no cleartext outside dev; no symmetric or "none" ID token algorithm."""

from __future__ import annotations

import json

import pytest

from control_api.settings import SettingsError, load_settings


@pytest.fixture
def files(tmp_path):
    group_map = tmp_path / "groups.json"
    group_map.write_text(json.dumps({"groups": {"g": {"role": "admin"}}}))
    metadata = tmp_path / "idp.xml"
    metadata.write_text("<EntityDescriptor/>")
    key, cert = tmp_path / "sp.key", tmp_path / "sp.crt"
    key.write_text("k")
    cert.write_text("c")
    return {"FF_SSO_GROUP_MAP": str(group_map), "FF_SAML_IDP_METADATA": str(metadata),
            "FF_SAML_SP_KEY": str(key), "FF_SAML_SP_CERT": str(cert),
            "FF_SSO_BASE_URL": "https://admin.example.test"}


def test_saml_settings_load_and_the_entity_id_defaults_to_the_metadata_url(files):
    settings = load_settings({"FF_ENV": "dev", **files})
    assert settings.saml_sp_entity_id == "https://admin.example.test/api/auth/saml/metadata"
    assert settings.saml_idp_initiated is False and settings.saml_groups_attribute == "groups"


@pytest.mark.parametrize("missing", ["FF_SSO_BASE_URL", "FF_SSO_GROUP_MAP", "FF_SAML_SP_KEY",
                                     "FF_SAML_SP_CERT"])
def test_saml_without_what_it_needs_is_refused(files, missing):
    with pytest.raises(SettingsError, match=missing):
        load_settings({"FF_ENV": "dev", **{k: v for k, v in files.items() if k != missing}})


@pytest.mark.parametrize(("name", "value"), [
    ("FF_SAML_IDP_METADATA", "/nonexistent/idp.xml"),
    ("FF_SSO_BASE_URL", "ftp://admin.example.test"),
    ("FF_SSO_BASE_URL", "https://admin.example.test/?x=1"),
    ("FF_SAML_IDP_INITIATED", "yes"),
    ("FF_OIDC_ALGORITHMS", "RS256,HS256"),
    ("FF_OIDC_ALGORITHMS", "none"),
    ("FF_OIDC_ALGORITHMS", ""),
    ("FF_OIDC_SCOPES", "email profile"),
    ("FF_OIDC_SCOPES", 'openid "quoted"'),
    ("FF_OIDC_ISSUER", "not a url"),
])
def test_a_bad_value_is_refused_naming_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({"FF_ENV": "dev", name: value})


def test_a_malformed_group_map_stops_start_up(files, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"groups": {"g": {"role": "owner"}}}))
    with pytest.raises(SettingsError, match="FF_SSO_GROUP_MAP"):
        load_settings({"FF_ENV": "dev", **files, "FF_SSO_GROUP_MAP": str(bad)})


def test_cleartext_is_for_dev_only(files):
    with pytest.raises(SettingsError, match="FF_SSO_BASE_URL: http:// is allowed only with FF_ENV=dev"):
        load_settings({**files, "FF_SSO_BASE_URL": "http://admin.example.test", "FF_AUDIT_SECRET": "x" * 64})
    oidc = {"FF_SSO_GROUP_MAP": files["FF_SSO_GROUP_MAP"], "FF_SSO_BASE_URL": "https://admin.example.test",
            "FF_OIDC_ISSUER": "http://op.example.test", "FF_OIDC_CLIENT_ID": "weco"}
    with pytest.raises(SettingsError, match="FF_OIDC_ISSUER: http:// is allowed only with FF_ENV=dev"):
        load_settings(oidc)
    assert load_settings({**oidc, "FF_ENV": "dev"}).oidc_issuer == "http://op.example.test"


def test_oidc_needs_a_client_id(files):
    with pytest.raises(SettingsError, match="FF_OIDC_CLIENT_ID"):
        load_settings({"FF_ENV": "dev", "FF_SSO_GROUP_MAP": files["FF_SSO_GROUP_MAP"],
                       "FF_SSO_BASE_URL": "https://a.example.test", "FF_OIDC_ISSUER": "https://op.example.test"})

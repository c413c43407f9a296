"""The FF_SAML_*, FF_OIDC_* and FF_SSO_* settings (control_api/settings.py): checked at
start-up with one line naming the variable; what SAML and OIDC cannot work without is
required; no cleartext outside dev; no symmetric or "none" ID token algorithm."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from control_api.settings import SettingsError, load_settings
from tests.conftest import run_weco


@pytest.fixture
def files(tmp_path, saml_peers):
    group_map = tmp_path / "groups.json"
    group_map.write_text(json.dumps({"groups": {"g": {"role": "admin"}}}))
    return {"FF_SSO_GROUP_MAP": str(group_map), "FF_SAML_IDP_METADATA": str(saml_peers.metadata),
            "FF_SAML_SP_KEY": str(saml_peers.sp_key), "FF_SAML_SP_CERT": str(saml_peers.sp_cert),
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


def test_saml_files_are_checked_at_start_up(files, saml_peers, tmp_path):
    not_metadata = tmp_path / "idp.xml"
    not_metadata.write_text("<EntityDescriptor/>")
    ec_key = tmp_path / "ec.key"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM")
    for change, message in [
        ({"FF_SAML_IDP_METADATA": str(not_metadata)}, "must describe exactly one IdP, not 0"),
        ({"FF_SAML_SP_KEY": str(garbage)}, "FF_SAML_SP_KEY is not an unencrypted PEM private key"),
        ({"FF_SAML_SP_KEY": str(ec_key)}, "FF_SAML_SP_KEY must be an RSA key"),
        ({"FF_SAML_SP_CERT": str(garbage)}, "FF_SAML_SP_CERT is not a PEM certificate"),
        ({"FF_SAML_SP_CERT": str(saml_peers.idp.cert)},
         "FF_SAML_SP_CERT is not the certificate of FF_SAML_SP_KEY"),
    ]:
        with pytest.raises(SettingsError, match=message):
            load_settings({"FF_ENV": "dev", **files, **change})


def test_weco_refuses_to_start_on_a_bad_saml_file_with_one_line(files, tmp_path):
    not_metadata = tmp_path / "idp.xml"
    not_metadata.write_text("<EntityDescriptor/>")
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"), **files,
           "FF_SAML_IDP_METADATA": str(not_metadata)}
    result = run_weco(env, "config", "show")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "FF_SAML_IDP_METADATA" in result.stderr

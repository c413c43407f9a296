"""Shared SSO fixtures: a pysaml2 IdP (and a rogue one with its own key, same entity id),
an authlib OpenID Provider on 127.0.0.1, the SP's key and the group map, made once per
session; an app per test (on each backend) with SAML and OIDC turned on."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from pathlib import Path

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.models import AuditEvent
from control_api.settings import load_settings
from control_api.sites.catalog import SiteCatalog
from control_api.wiring import build_catalog, build_deps
from tests.conftest import ACTOR
from tests.peers.oidc_op import CLIENT_ID, CLIENT_SECRET, OpenIdProvider
from tests.peers.saml_idp import SamlIdp, key_and_cert

BASE_URL = "http://127.0.0.1:8080"
ACS = BASE_URL + "/api/auth/saml/acs"
SP_ENTITY_ID = BASE_URL + "/api/auth/saml/metadata"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GROUP_MAP = {"groups": {
    "weco-admins": {"role": "admin", "sites": ["acme"]},
    "weco-root": {"role": "superadmin"},
    "weco-beta": {"role": "admin", "sites": ["beta", "ghost"]},
}}


@dataclasses.dataclass
class SamlPeers:
    idp: SamlIdp
    rogue: SamlIdp  # the same entity id, its own key: what an attacker without the IdP's key has
    metadata: Path
    sp_key: Path
    sp_cert: Path
    group_map: Path


@pytest.fixture(scope="session")
def saml_peers(tmp_path_factory) -> SamlPeers:
    base = tmp_path_factory.mktemp("saml")
    idp, rogue = SamlIdp(base / "idp", "idp"), SamlIdp(base / "rogue", "rogue")
    metadata = base / "idp-metadata.xml"
    metadata.write_bytes(idp.metadata())
    sp_key, sp_cert = key_and_cert(base / "sp", "sp")
    group_map = base / "groups.json"
    group_map.write_text(json.dumps(GROUP_MAP))
    return SamlPeers(idp, rogue, metadata, sp_key, sp_cert, group_map)


@pytest.fixture(scope="session")
def op(tmp_path_factory):
    provider = OpenIdProvider()
    provider.register_redirect_uri(BASE_URL + "/api/auth/oidc/callback")
    provider.secret_file = tmp_path_factory.mktemp("oidc") / "client-secret"
    provider.secret_file.write_text(CLIENT_SECRET)
    yield provider
    provider.stop()


@pytest.fixture
def sso_env(env, saml_peers, op) -> dict:
    return dict(env, FF_SSO_BASE_URL=BASE_URL, FF_SSO_GROUP_MAP=str(saml_peers.group_map),
                FF_SAML_IDP_METADATA=str(saml_peers.metadata), FF_SAML_SP_KEY=str(saml_peers.sp_key),
                FF_SAML_SP_CERT=str(saml_peers.sp_cert), FF_OIDC_ISSUER=op.issuer,
                FF_OIDC_CLIENT_ID=CLIENT_ID,
                FF_OIDC_CLIENT_SECRET_FILE=str(op.secret_file), FF_OIDC_SCOPES="openid email groups")


@pytest.fixture
def make_client(sso_env, db, clock, fast_hasher, saml_peers):
    """An app with SSO on (plus `extra` settings), its IdPs trusting its SP metadata."""

    def make(**extra: str) -> falcon.testing.TestClient:
        deps = build_deps(load_settings({**sso_env, **extra}), db, clock=clock, hasher=fast_hasher)
        client = falcon.testing.TestClient(create_app(deps))
        client.deps = deps
        metadata = client.simulate_get("/api/auth/saml/metadata")
        assert metadata.status_code == 200, metadata.text
        for idp in (saml_peers.idp, saml_peers.rogue):
            if idp.server is None:
                idp.trust_sp(metadata.content)
        return client

    return make


@pytest.fixture
def sso(make_client):
    return make_client()


@pytest.fixture
def catalog(sso) -> SiteCatalog:
    return build_catalog(sso.deps)


def saml_start(client) -> tuple[str, str]:
    """(the IdP redirect URL, the binding cookie's value) of a new SP-initiated login."""
    answer = client.simulate_get("/api/auth/saml/login")
    assert answer.status_code == 303, answer.text
    return answer.headers["location"], answer.cookies["weco_saml"].value


def saml_post(client, response_b64: str, cookie: str | None):
    headers = dict(FORM, Cookie=f"weco_saml={cookie}") if cookie else FORM
    return client.simulate_post("/api/auth/saml/acs", headers=headers,
                                body=urllib.parse.urlencode({"SAMLResponse": response_b64}))


def actions() -> list[str]:
    return [row.action for row in AuditEvent.select().order_by(AuditEvent.seq)]


def events(action: str) -> list[dict]:
    return [json.loads(row.event_json) for row in AuditEvent.select().where(AuditEvent.action == action)
            .order_by(AuditEvent.seq)]


__all__ = ["ACS", "ACTOR", "SP_ENTITY_ID", "actions", "events", "saml_post", "saml_start"]

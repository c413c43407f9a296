"""The OIDC relying party against a real authlib OpenID Provider: code flow with PKCE S256,
just-in-time accounts, a signing-key rotation in the middle of a test, and the refusals
the issue lists (wrong state, wrong nonce, alg none, expired token, wrong audience,
replayed code), plus HMAC-with-the-public-key, azp, an unknown kid and the issuer."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse

import pytest
import requests

from control_api.models import Session, User
from control_api.sso.models import SsoIdentity
from tests.control_api.sso.conftest import BASE_URL, events
from tests.peers.oidc_op import CLIENT_ID, OpenIdProvider


def start(client) -> tuple[str, str]:
    answer = client.simulate_get("/api/auth/oidc/login")
    assert answer.status_code == 303, answer.text
    return answer.headers["location"], answer.cookies["weco_oidc"].value


def callback(client, query: str, cookie: str | None):
    headers = {"Cookie": f"weco_oidc={cookie}"} if cookie else {}
    return client.simulate_get("/api/auth/oidc/callback", query_string=query, headers=headers)


def login(client, op, tamper=None):
    location, cookie = start(client)
    op.tamper = tamper
    back = op.authorize(location)
    return callback(client, urllib.parse.urlsplit(back).query, cookie)


def refused(answer, reason: str) -> None:
    assert answer.status_code == 401, answer.text
    assert reason in answer.json["description"], answer.json
    assert Session.select().count() == 0 and User.select().count() == 0
    assert reason in events("sso.token_refused")[-1]["metadata"]["reason"]


@pytest.fixture(autouse=True)
def fresh_user(op):
    op.user = {"sub": "op-user-1", "email": "olivia@example.test", "groups": ["weco-admins"]}
    op.tamper = None


def test_the_authorization_request_uses_pkce_s256_and_binds_state_and_nonce_to_the_cookie(sso, op):
    location, cookie = start(sso)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == BASE_URL + "/api/auth/oidc/callback"
    assert query["client_id"] == CLIENT_ID and "openid" in query["scope"].split()
    assert query["state"] and query["nonce"] and cookie not in (query["state"], query["nonce"])
    second_location, _ = start(sso)
    second = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(second_location).query))
    assert {second["state"], second["nonce"], second["code_challenge"]}.isdisjoint(
        {query["state"], query["nonce"], query["code_challenge"]})
    headers = sso.simulate_get("/api/auth/oidc/login").headers["set-cookie"]
    assert "HttpOnly" in headers and "SameSite=Lax" in headers and "Max-Age=600" in headers


def test_the_provider_enforces_pkce_s256(op):
    """The peer is strict, so the happy path proves the RP really sends S256 PKCE."""
    plain = (f"{op.issuer}/authorize?response_type=code&client_id={CLIENT_ID}&scope=openid&nonce=n&state=s"
             f"&redirect_uri={urllib.parse.quote(BASE_URL + '/api/auth/oidc/callback')}")
    for extra in ("", "&code_challenge=abc&code_challenge_method=plain"):
        answer = requests.get(plain + extra, allow_redirects=False, timeout=10)
        assert "code=" not in answer.headers.get("Location", ""), answer.text


def test_login_makes_the_account_and_survives_a_key_rotation_with_one_jwks_fetch(sso, op):
    first = login(sso, op)
    assert first.status_code == 200, first.text
    user = User.get(User.email == "olivia@example.test")
    assert first.json["user"]["role"] == "admin" and user.password_hash == "!sso"
    link = SsoIdentity.get(SsoIdentity.user == user)
    assert (link.protocol, link.issuer, link.subject) == ("oidc", op.issuer, "op-user-1")
    assert events("auth.login")[-1]["metadata"]["method"] == "oidc"
    fetches = op.jwks_fetches
    assert login(sso, op).status_code == 200
    assert op.jwks_fetches == fetches  # the cached keys did
    op.rotate()  # the provider now signs with a key the RP has never seen
    rotated = login(sso, op)
    assert rotated.status_code == 200, rotated.text
    assert op.jwks_fetches == fetches + 1
    assert User.select().count() == 1 and Session.select().count() == 3


def test_a_kid_still_unknown_after_one_refresh_is_refused(sso, op):
    assert login(sso, op).status_code == 200
    before = op.jwks_fetches

    def stray_kid(header, claims):
        return dict(header, kid="not-a-key-of-this-provider"), claims

    answer = login(sso, op, stray_kid)
    assert answer.status_code == 401 and "did not verify" in answer.json["description"]
    assert op.jwks_fetches == before + 1


def test_a_wrong_state_is_refused(sso, op):
    location, cookie = start(sso)
    back = urllib.parse.urlsplit(op.authorize(location)).query
    params = dict(urllib.parse.parse_qsl(back))
    forged = urllib.parse.urlencode(dict(params, state="attacker-state"))
    refused(callback(sso, forged, cookie), "the state is not the one")
    # Nor does a right state without the browser's cookie, or with another login's cookie.
    refused(callback(sso, back, None), "the state is not the one")
    refused(callback(sso, back, start(sso)[1]), "the state is not the one")


@pytest.mark.parametrize(("case", "tamper", "reason"), [
    ("wrong nonce", lambda h, c: (h, dict(c, nonce="another-login")), "Invalid claim: 'nonce'"),
    ("no nonce", lambda h, c: (h, {k: v for k, v in c.items() if k != "nonce"}), "Missing claim: 'nonce'"),
    ("alg none", lambda h, c: (dict(h, alg="none"), c), "algorithm 'none' is not allowed"),
    ("HMAC with the public key", lambda h, c: (dict(h, alg="HS256"), c), "algorithm 'HS256' is not allowed"),
    ("expired", lambda h, c: (h, dict(c, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
     "expired"),
    ("wrong audience", lambda h, c: (h, dict(c, aud=["another-client"])), "Invalid claim: 'aud'"),
    ("wrong issuer", lambda h, c: (h, dict(c, iss="https://evil.example.test")), "Invalid claim: 'iss'"),
    ("azp of another client", lambda h, c: (h, dict(c, aud=[CLIENT_ID, "other"], azp="other")),
     "authorized party"),
    ("several audiences, no azp", lambda h, c: (h, dict(c, aud=[CLIENT_ID, "other"])), "authorized party"),
])
def test_a_bad_id_token_is_refused(sso, op, case, tamper, reason):
    refused(login(sso, op, tamper), reason)


def test_a_token_signed_by_another_key_under_the_providers_kid_is_refused(sso, op):
    assert login(sso, op).status_code == 200  # the RP holds the provider's keys
    forger = OpenIdProvider._new_key()

    def forged(header, claims):
        return header, dict(claims, sub="someone-else"), forger

    answer = login(sso, op, forged)
    assert answer.status_code == 401 and "signature did not verify" in answer.json["description"]
    assert SsoIdentity.select().where(SsoIdentity.subject == "someone-else").count() == 0


def test_an_id_token_is_accepted_once(sso, op):
    """A provider that issued the same ID token (same jti) twice: the second is refused."""
    def same_jti(header, claims):
        return header, dict(claims, jti="one-jti")

    assert login(sso, op, same_jti).status_code == 200
    again = login(sso, op, same_jti)
    assert again.status_code == 401 and "already used (replay)" in again.json["description"]
    assert Session.select().count() == 1


def test_a_replayed_code_is_refused(sso, op):
    location, cookie = start(sso)
    query = urllib.parse.urlsplit(op.authorize(location)).query
    assert callback(sso, query, cookie).status_code == 200
    sessions, exchanges = Session.select().count(), op.token_requests
    # The same callback again: the login is used up, the code is not even sent.
    again = callback(sso, query, cookie)
    assert again.status_code == 401 and "already completed" in again.json["description"]
    assert op.token_requests == exchanges
    # The code in a fresh login of the attacker's: the provider refuses the used code.
    _, fresh_cookie = start(sso)
    code = dict(urllib.parse.parse_qsl(query))["code"]
    fresh_state = _state_of(sso, fresh_cookie)
    stolen = callback(sso, urllib.parse.urlencode({"code": code, "state": fresh_state}), fresh_cookie)
    assert stolen.status_code == 401 and "refused the code" in stolen.json["description"]
    assert op.token_requests == exchanges + 1
    assert Session.select().count() == sessions


def _state_of(client, cookie: str) -> str:
    from control_api.sso.pending import derive

    return derive(cookie, "state")


def test_an_error_from_the_provider_ends_the_login(sso, op):
    location, cookie = start(sso)
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["state"]
    answer = callback(sso, urllib.parse.urlencode({"error": "access_denied", "state": state}), cookie)
    assert answer.status_code == 401 and "access_denied" in answer.json["description"]


@pytest.mark.parametrize(("query", "status"), [
    ("", 400), ("code=x", 400), ("state=" + "x" * 5000 + "&code=y", 400), ("state=x", 401),
])
def test_a_malformed_callback_gets_a_clear_error(sso, query, status):
    answer = sso.simulate_get("/api/auth/oidc/callback", query_string=query)
    assert answer.status_code == status and set(answer.json) == {"title", "description"}


def test_a_provider_whose_discovery_names_another_issuer_is_refused(make_client, op, tmp_path):
    document = requests.get(op.issuer + "/.well-known/openid-configuration", timeout=10).json()
    path = tmp_path / "discovery.json"
    path.write_text(json.dumps(dict(document, issuer="https://evil.example.test")))
    client = make_client(FF_OIDC_DISCOVERY_FILE=str(path))
    assert client.simulate_get("/api/auth/oidc/login").status_code == 502
    path.write_text(json.dumps(document))  # from a file (air-gapped), the flow works
    ok = make_client(FF_OIDC_DISCOVERY_FILE=str(path))
    assert login(ok, op).status_code == 200


def test_the_verifier_sent_matches_the_challenge(sso, op, monkeypatch):
    """RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(code_verifier)), checked here from
    the two requests as the provider saw them."""
    location, cookie = start(sso)
    challenge = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code_challenge"]
    from control_api.sso.pending import derive

    verifier = derive(cookie, "verifier")
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge

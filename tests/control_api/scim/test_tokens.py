"""The SCIM credential: made by `weco scim token create`, stored as its SHA-256 only,
never an admin token and never usable as one, refused when wrong or revoked (audited),
and throttled per address in the store."""

from __future__ import annotations

import hashlib

from control_api.auth.throttle import ADDRESS_LIMIT
from control_api.scim.models import ScimToken
from control_api.wiring import build_credentials, build_scim_tokens
from tests.conftest import ACTOR
from tests.control_api.scim.conftest import ERROR, SCIM, Scim, events, user_body


def _refused(answer, status):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == SCIM and answer.json["schemas"] == [ERROR]


def test_no_wrong_or_admin_token_is_refused_and_audited(client, admin, deps):
    admin_token, _ = build_credentials(deps).create_token(admin, "ci", None, ACTOR)
    for headers in ({}, {"Authorization": "Bearer wecoscim_wrong"},
                    {"Authorization": f"Bearer {admin_token}"}, {"Authorization": "Basic YTpi"}):
        answer = client.simulate_get("/scim/v2/Users", headers=headers)
        _refused(answer, 401)
        assert answer.headers["www-authenticate"] == 'Bearer realm="scim"'
    assert len(events("scim.auth_failed")) == 4


def test_the_scim_token_is_no_admin_credential(client, scim_token):
    answer = client.simulate_get("/api/me", headers={"Authorization": f"Bearer {scim_token}"})
    assert answer.status_code == 401


def test_a_revoked_token_is_refused(client, deps):
    tokens = build_scim_tokens(deps)
    value, token = tokens.create("okta", ACTOR)
    scim = Scim(client, value)
    assert scim.get("/Users").status_code == 200
    assert tokens.revoke(token.id, ACTOR) and not tokens.revoke(token.id, ACTOR)
    _refused(scim.get("/Users"), 401)
    assert events("scim.auth_failed")[-1]["metadata"]["reason"] == "revoked"


def test_failures_are_throttled_per_address_and_a_right_token_does_not_count(client, scim_token):
    scim = Scim(client, scim_token)
    for _ in range(5):
        assert scim.get("/ServiceProviderConfig").status_code == 200  # successes give their slot back
    wrong = {"Authorization": "Bearer wecoscim_guess"}
    for _ in range(ADDRESS_LIMIT):
        _refused(client.simulate_get("/scim/v2/Users", headers=wrong), 401)
    over = client.simulate_get("/scim/v2/Users", headers=wrong)
    _refused(over, 429)
    assert int(over.headers["retry-after"]) > 0
    # the limit holds for the address, whatever it sends now
    _refused(scim.post("/Users", user_body()), 429)
    assert len(events("scim.auth_failed")) == ADDRESS_LIMIT


def test_weco_scim_token_commands(weco, store):
    made = weco("scim", "token", "create", "entra")
    assert made.returncode == 0, made.stderr
    value = made.stdout.split("give it to the IdP now): ")[1].strip()
    assert value.startswith("wecoscim_") and len(value) > 40
    with store.bind_ctx([ScimToken]):
        row = ScimToken.get(ScimToken.name == "entra")
        assert row.token_hash == hashlib.sha256(value.encode()).hexdigest()  # only its digest is kept
    twice = weco("scim", "token", "create", "entra")
    assert twice.returncode == 1 and "exists already" in twice.stderr and "Traceback" not in twice.stderr
    listed = weco("scim", "token", "list")
    assert "entra\tactive" in listed.stdout and value not in listed.stdout
    assert weco("scim", "token", "revoke", str(row.id)).returncode == 0
    again = weco("scim", "token", "revoke", str(row.id))
    assert again.returncode == 1 and "no active SCIM token" in again.stderr
    assert "entra\trevoked" in weco("scim", "token", "list").stdout


def test_a_bad_token_name_is_refused(weco):
    for name in ("", " ", "x" * 101, "a\nb"):
        answer = weco("scim", "token", "create", name)
        assert answer.returncode == 1 and "1..100 printable" in answer.stderr, name
    assert "entra" not in weco("scim", "token", "list").stdout

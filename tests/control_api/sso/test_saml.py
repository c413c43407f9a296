"""The SAML service provider against a real pysaml2 IdP: metadata, SP-initiated login,
just-in-time accounts and group mapping, and every refusal the issue lists (unsigned,
wrong audience, expired, replayed, signature wrapping, a comment in the NameID, the wrong
IdP certificate), each leaving no session, no account and an audit event."""

from __future__ import annotations

import base64
import datetime as dt
import re
import subprocess
import urllib.parse

import pytest
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT, samlp
from saml2.saml import NameID
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1

from control_api.models import Session, SiteGrant, User
from control_api.sso.models import SsoIdentity
from control_api.wiring import build_credentials
from tests.conftest import ACTOR
from tests.control_api.sso.conftest import ACS, SP_ENTITY_ID, actions, events, saml_post, saml_start
from tests.peers.saml_idp import IDP_ENTITY_ID

NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}


def login(client, idp, subject="alice-1", email="alice@example.test", groups=("weco-admins",), **kw):
    location, cookie = saml_start(client)
    return saml_post(client, idp.answer(location, subject, email, list(groups), **kw), cookie)


def refused(answer, reason: str) -> None:
    assert answer.status_code == 401, answer.text
    assert reason in answer.json["description"], answer.json
    assert "weco_session" not in answer.cookies
    assert Session.select().count() == 0
    assert User.select().count() == 0
    assert reason in events("sso.assertion_refused")[-1]["metadata"]["reason"]


# -- metadata and the AuthnRequest ---------------------------------------------------


def test_metadata_is_signed_with_the_sp_key_over_sha256_and_names_the_acs(sso, saml_peers, tmp_path):
    answer = sso.simulate_get("/api/auth/saml/metadata")
    assert answer.headers["content-type"] == "application/samlmetadata+xml"
    document = etree.fromstring(answer.content)
    assert document.get("entityID") == SP_ENTITY_ID
    acs = document.find(".//{urn:oasis:names:tc:SAML:2.0:metadata}AssertionConsumerService")
    assert acs.get("Location") == ACS and acs.get("Binding").endswith("HTTP-POST")
    method = document.find(".//ds:SignatureMethod", NS).get("Algorithm")
    assert method == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    path = tmp_path / "metadata.xml"
    path.write_bytes(answer.content)
    check = ["xmlsec1", "--verify", "--enabled-key-data", "raw-x509-cert", "--id-attr:ID",
             "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", "--pubkey-cert-pem"]
    assert subprocess.run([*check, str(saml_peers.sp_cert), str(path)], capture_output=True).returncode == 0
    # Against another certificate it does not verify: the signature is real.
    assert subprocess.run([*check, str(saml_peers.idp.cert), str(path)], capture_output=True).returncode != 0


def test_login_redirects_with_an_authn_request_signed_rsa_sha256(sso):
    location, _ = saml_start(sso)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert location.startswith("https://idp.example.test/saml/sso?")
    assert query["SigAlg"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" and query["Signature"]
    answer = sso.simulate_get("/api/auth/saml/login")
    assert "HttpOnly" in answer.headers["set-cookie"] and "Max-Age=600" in answer.headers["set-cookie"]


def test_sso_is_off_without_its_settings(client):
    for path in ("/api/auth/saml/metadata", "/api/auth/saml/login", "/api/auth/oidc/login"):
        assert client.simulate_get(path).status_code == 404
    answer = client.simulate_post("/api/auth/saml/acs", body="SAMLResponse=x",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 404


# -- success: just-in-time account, groups, session --------------------------------------


def test_first_login_makes_the_account_just_in_time_with_its_groups_role_and_grants(sso, saml_peers, catalog):
    site = catalog.create_site({"slug": "acme", "domain": "acme.example.test"}, ACTOR)
    answer = login(sso, saml_peers.idp)
    assert answer.status_code == 200, answer.text
    user = User.get(User.email == "alice@example.test")
    assert answer.json["user"] == {"id": user.id, "email": "alice@example.test", "role": "admin"}
    assert user.password_hash == "!sso"  # no password: a password login can never succeed
    assert SiteGrant.get_or_none(site=site, user=user) is not None
    link = SsoIdentity.get(SsoIdentity.user == user)
    assert (link.protocol, link.issuer, link.subject) == ("saml", IDP_ENTITY_ID, "alice-1")
    # The session works like a password login's: same cookie, CSRF token, /api/me.
    session = answer.cookies["weco_session"].value
    me = sso.simulate_get("/api/me", headers={"Cookie": f"weco_session={session}"})
    assert me.status_code == 200 and me.json["user"]["email"] == "alice@example.test"
    assert me.json["csrf_token"] == answer.json["csrf_token"]
    wanted = ["sso.user_created", "site.grant", "auth.login"]
    assert [a for a in actions() if a in wanted] == wanted
    login_event = events("auth.login")[-1]["metadata"]
    assert login_event["method"] == "saml" and login_event["issuer"] == IDP_ENTITY_ID
    assert sso.simulate_post("/api/auth/login", json={"email": "alice@example.test", "password": "!sso"}
                             ).status_code == 401


def test_a_later_login_moves_the_role_and_grants_to_what_the_groups_say(sso, saml_peers, catalog):
    acme = catalog.create_site({"slug": "acme", "domain": "acme.example.test"}, ACTOR)
    beta = catalog.create_site({"slug": "beta", "domain": "beta.example.test"}, ACTOR)
    assert login(sso, saml_peers.idp).status_code == 200
    moved = login(sso, saml_peers.idp, groups=("weco-root", "weco-beta", "not-mapped"))
    assert moved.status_code == 200, moved.text
    user = User.get(User.email == "alice@example.test")
    assert user.role == "superadmin" and User.select().count() == 1
    assert SiteGrant.get_or_none(site=acme, user=user) is None
    assert SiteGrant.get_or_none(site=beta, user=user) is not None
    change = events("user.role_change")[-1]["metadata"]
    assert change["from"] == "admin" and change["to"] == "superadmin" and change["source"] == "saml"
    assert "site.revoke" in actions()
    assert events("auth.login")[-1]["metadata"]["sites_unknown"] == ["ghost"]


def test_no_mapped_group_is_refused_and_audited(sso, saml_peers):
    answer = login(sso, saml_peers.idp, groups=("somewhere-else",))
    assert answer.status_code == 403
    assert User.select().count() == 0 and Session.select().count() == 0
    assert events("sso.login_refused")[-1]["metadata"]["reason"].startswith("no group")


def test_an_idp_cannot_take_over_a_local_account_by_its_email(sso, saml_peers, admin):
    answer = login(sso, saml_peers.idp, email=admin.email)
    assert answer.status_code == 403 and "already exists" in answer.json["description"]
    assert Session.select().count() == 0 and SsoIdentity.select().count() == 0
    assert User.get_by_id(admin.id).role == "admin"


def test_a_disabled_linked_account_is_refused(sso, saml_peers, users):
    assert login(sso, saml_peers.idp).status_code == 200
    user = User.get(User.email == "alice@example.test")
    users.disable(user, ACTOR, build_credentials(sso.deps))
    answer = login(sso, saml_peers.idp)
    assert answer.status_code == 403 and "disabled" in answer.json["description"]


# -- refusals ---------------------------------------------------------------------------


def test_an_unsigned_assertion_is_refused(sso, saml_peers):
    refused(login(sso, saml_peers.idp, sign=False), "the assertion must carry exactly one signature")


def test_an_assertion_for_another_audience_is_refused(sso, saml_peers):
    def other_audience(response):
        response.assertion[0].conditions.audience_restriction[0].audience[0].text = "https://other-sp.test"

    refused(login(sso, saml_peers.idp, edit=other_audience), "the response did not verify")


def test_an_expired_assertion_is_refused(sso, saml_peers):
    def expired(response):
        past = "2020-01-01T00:00:00Z"
        response.assertion[0].conditions.not_on_or_after = past
        for confirmation in response.assertion[0].subject.subject_confirmation:
            confirmation.subject_confirmation_data.not_on_or_after = past

    refused(login(sso, saml_peers.idp, edit=expired), "the response did not verify")


@pytest.mark.parametrize(("ahead", "accepted"), [(30, True), (300, False)])
def test_the_validity_window_allows_a_small_clock_skew_only(sso, saml_peers, ahead, accepted):
    """An IdP clock 30 s ahead is tolerated (60 s skew); 5 minutes ahead is not."""
    def early(response):
        when = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ahead)).strftime("%Y-%m-%dT%H:%M:%SZ")
        response.assertion[0].conditions.not_before = when

    answer = login(sso, saml_peers.idp, edit=early)
    if accepted:
        assert answer.status_code == 200, answer.text
    else:
        refused(answer, "the response did not verify")


def test_an_assertion_for_another_recipient_is_refused(sso, saml_peers):
    def elsewhere(response):
        for confirmation in response.assertion[0].subject.subject_confirmation:
            confirmation.subject_confirmation_data.recipient = "https://other-sp.test/acs"

    refused(login(sso, saml_peers.idp, edit=elsewhere), "the response did not verify")


def test_the_wrong_idp_certificate_is_refused_even_when_the_message_carries_it(sso, saml_peers):
    location, cookie = saml_start(sso)
    forged = saml_peers.rogue.answer(location, "root-1", "mallory@example.test", ["weco-root"])
    assert b"X509Certificate" in base64.b64decode(forged)  # it embeds its own certificate
    refused(saml_post(sso, forged, cookie), "the response did not verify")


def test_a_sha1_signature_is_refused(sso, saml_peers):
    location, cookie = saml_start(sso)
    idp = saml_peers.idp

    def sha1(response):
        assertion = response.assertion[0]
        assertion.signature = pre_signature_part(assertion.id, idp.server.sec.my_cert, 1,
                                                 sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1)

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    request = idp.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                             sigalg=query["SigAlg"], signature=query["Signature"])
    xml = idp.server.create_authn_response(
        {"groups": ["weco-admins"]}, request.message.id, ACS, SP_ENTITY_ID,
        name_id=NameID(text="alice-1"),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_assertion=False)
    response = samlp.response_from_string(str(xml))
    sha1(response)
    signed = idp.server.sec.sign_statement(str(response), "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                                           node_id=response.assertion[0].id)
    refused(saml_post(sso, base64.b64encode(signed.encode()).decode(), cookie), "the signature's algorithm")


def test_a_response_to_another_login_is_refused(sso, saml_peers):
    location, _ = saml_start(sso)
    _, other_cookie = saml_start(sso)
    refused(saml_post(sso, saml_peers.idp.answer(location, "alice-1", None, ["weco-admins"]), other_cookie),
            "the response does not answer the login")


def test_a_replayed_response_is_refused(sso, saml_peers):
    location, cookie = saml_start(sso)
    response = saml_peers.idp.answer(location, "alice-1", "alice@example.test", ["weco-admins"])
    assert saml_post(sso, response, cookie).status_code == 200
    sessions = Session.select().count()
    again = saml_post(sso, response, cookie)
    assert again.status_code == 401 and "does not answer the login" in again.json["description"]
    assert Session.select().count() == sessions


def test_idp_initiated_login_is_refused_unless_enabled(sso, saml_peers):
    unsolicited = saml_peers.idp.respond(None, ACS, SP_ENTITY_ID, "alice-1", "alice@example.test",
                                         ["weco-admins"])
    refused(saml_post(sso, unsolicited, None), "IdP-initiated login is not enabled")


def test_idp_initiated_login_when_enabled_accepts_each_assertion_once(make_client, saml_peers):
    client = make_client(FF_SAML_IDP_INITIATED="1")
    unsolicited = saml_peers.idp.respond(None, ACS, SP_ENTITY_ID, "alice-1", "alice@example.test",
                                         ["weco-admins"])
    assert saml_post(client, unsolicited, None).status_code == 200
    replayed = saml_post(client, unsolicited, None)
    assert replayed.status_code == 401 and "already used (replay)" in replayed.json["description"]
    assert Session.select().count() == 1
    # Enabled or not, a response naming a request must answer this browser's login.
    location, _ = saml_start(client)
    stray = saml_peers.idp.answer(location, "alice-1", None, ["weco-admins"])
    assert saml_post(client, stray, None).status_code == 401


# -- the XML itself: comments and signature wrapping ------------------------------------


def signed_xml(client, idp, subject="alice-1", groups=("weco-admins",)) -> tuple[bytes, str]:
    location, cookie = saml_start(client)
    return base64.b64decode(idp.answer(location, subject, "alice@example.test", list(groups))), cookie


def post_xml(client, document: bytes, cookie: str):
    return saml_post(client, base64.b64encode(document).decode(), cookie)


def test_a_comment_inside_the_nameid_is_refused(sso, saml_peers):
    """CVE-2017-11427: exclusive c14n drops comments, so the signature over
    "victim.example.test.evil" still verifies once a comment splits it; a reader that
    takes the first text node would log in "victim.example.test"."""
    document, cookie = signed_xml(sso, saml_peers.idp, subject="victim.example.test.evil")
    tampered = document.replace(b"victim.example.test.evil", b"victim.example.test<!---->.evil")
    assert tampered != document
    refused(post_xml(sso, tampered, cookie), "the SAML response holds a comment")


def _evil_assertion(document: bytes) -> tuple[etree._Element, etree._Element, etree._Element]:
    root = etree.fromstring(document)
    signed = root.find("saml:Assertion", NS)
    evil = etree.fromstring(etree.tostring(signed))
    evil.remove(evil.find("ds:Signature", NS))
    evil.find("saml:Subject/saml:NameID", NS).text = "root-1"
    for value in evil.iterfind(".//saml:AttributeValue", NS):
        value.text = "weco-root"
    return root, signed, evil


def test_wrapping_an_unsigned_assertion_beside_the_signed_one_is_refused(sso, saml_peers):
    document, cookie = signed_xml(sso, saml_peers.idp)
    root, signed, evil = _evil_assertion(document)
    evil.set("ID", "_evil")
    root.insert(list(root).index(signed), evil)
    refused(post_xml(sso, etree.tostring(root), cookie), "the SAML response must hold exactly one assertion")


def test_wrapping_the_signed_assertion_inside_the_forged_one_is_refused(sso, saml_peers):
    """CVE-2024-45409's shape: the forged assertion takes the signed one's place and ID,
    and carries the genuine one (and its valid signature) inside itself."""
    document, cookie = signed_xml(sso, saml_peers.idp)
    root, signed, evil = _evil_assertion(document)
    root.replace(signed, evil)
    extensions = etree.SubElement(evil, "{urn:oasis:names:tc:SAML:2.0:assertion}Advice")
    extensions.append(signed)
    refused(post_xml(sso, etree.tostring(root), cookie), "two elements of the SAML response share an ID")


def test_wrapping_with_the_genuine_signature_moved_onto_the_forgery_is_refused(sso, saml_peers):
    """The forged assertion alone, with the signed one's ID and its signature: the digest
    no longer matches, and nothing else is there to be read."""
    document, cookie = signed_xml(sso, saml_peers.idp)
    root, signed, evil = _evil_assertion(document)
    evil.insert(1, signed.find("ds:Signature", NS))
    root.replace(signed, evil)
    refused(post_xml(sso, etree.tostring(root), cookie), "the response did not verify")


def test_a_second_assertion_in_an_extension_is_refused(sso, saml_peers):
    document, cookie = signed_xml(sso, saml_peers.idp)
    root, signed, evil = _evil_assertion(document)
    evil.set("ID", "_evil")
    extensions = etree.Element("{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
    extensions.append(signed)
    root.insert(1, extensions)
    root.append(evil)
    refused(post_xml(sso, etree.tostring(root), cookie), "the SAML response must hold exactly one assertion")


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><samlp:Response '
    b'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>',
    b"<not-xml",
    b'<r xmlns="urn:other"/>',
])
def test_hostile_or_broken_xml_is_refused_before_any_check(sso, body):
    _, cookie = saml_start(sso)
    answer = post_xml(sso, body, cookie)
    assert answer.status_code == 401 and re.search(r"forbidden XML|not well-formed|not a SAML", answer.text)
    assert Session.select().count() == 0


@pytest.mark.parametrize(("body", "content_type", "status"), [
    ("SAMLResponse=%%%", "application/x-www-form-urlencoded", 401),
    ("RelayState=x", "application/x-www-form-urlencoded", 400),
    ("SAMLResponse=a&SAMLResponse=b", "application/x-www-form-urlencoded", 400),
    ("SAMLResponse=a&Other=b", "application/x-www-form-urlencoded", 400),
    ('{"SAMLResponse": "x"}', "application/json", 415),
])
def test_malformed_acs_posts_get_a_clear_error(sso, body, content_type, status):
    answer = sso.simulate_post("/api/auth/saml/acs", body=body, headers={"Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert set(answer.json) == {"title", "description"}


def test_the_acs_takes_a_cross_site_post_and_ignores_a_session_cookie(sso, saml_peers):
    location, cookie = saml_start(sso)
    response = saml_peers.idp.answer(location, "alice-1", "alice@example.test", ["weco-admins"])
    answer = sso.simulate_post("/api/auth/saml/acs", body=urllib.parse.urlencode({"SAMLResponse": response}),
                               headers={"Content-Type": "application/x-www-form-urlencoded",
                                        "Sec-Fetch-Site": "cross-site", "Origin": "https://idp.example.test",
                                        "Cookie": f"weco_saml={cookie}; weco_session=stale"})
    assert answer.status_code == 200, answer.text
    # Any other unsafe route still refuses a cross-site request.
    other = sso.simulate_post("/api/auth/login", json={"email": "a@b.cd", "password": "x"},
                              headers={"Sec-Fetch-Site": "cross-site"})
    assert other.status_code == 403

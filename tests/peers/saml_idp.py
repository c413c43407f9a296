"""A real SAML 2.0 identity provider, in process: pysaml2's own IdP server classes
(saml2.server.Server) with xmlsec1, signing with RSA-SHA256 (pysaml2 defaults to SHA-1).

It answers the SP's signed AuthnRequest (HTTP-Redirect, its signature checked against the
SP metadata the API publishes) with a Response for the HTTP-POST binding. Tests that need a
response pysaml2 would never make (expired, another audience, unsigned...) edit the
Response object before the IdP signs it, or edit the signed XML afterwards, as an attacker
would."""

from __future__ import annotations

import base64
import datetime as dt
import urllib.parse
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

IDP_ENTITY_ID = "https://idp.example.test/saml"
SSO_URL = "https://idp.example.test/saml/sso"


def key_and_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A 2048-bit RSA key (0600) and a self-signed certificate for it, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class SamlIdp:
    def __init__(self, directory: Path, name: str = "idp") -> None:
        self.dir = directory
        self.key, self.cert = key_and_cert(directory, name)
        self.sp_metadata = directory / f"{name}-sp-metadata.xml"
        self.server: Server | None = None

    def _config(self, with_sp: bool) -> IdPConfig:
        config = IdPConfig()
        config.load({
            "entityid": IDP_ENTITY_ID,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": str(self.key),
            "cert_file": str(self.cert),
            "metadata": {"local": [str(self.sp_metadata)]} if with_sp else {},
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(SSO_URL, BINDING_HTTP_REDIRECT)]},
                "want_authn_requests_signed": True,
                "sign_assertion": True,
                "sign_response": False,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}},
            }},
        })
        return config

    def metadata(self) -> bytes:
        """This IdP's metadata (its signing certificate and SSO endpoint), for the SP."""
        return str(entity_descriptor(self._config(with_sp=False))).encode("utf-8")

    def trust_sp(self, sp_metadata: bytes) -> None:
        self.sp_metadata.write_bytes(sp_metadata)
        self.server = Server(config=self._config(with_sp=True))

    def answer(self, redirect_url: str, subject: str, email: str | None, groups: list[str],
               edit=None, sign: bool = True) -> str:
        """The base64 SAMLResponse the IdP's page would post for this AuthnRequest.
        `edit(response)` may change the Response object before the assertion is signed."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect_url).query))
        request = self.server.parse_authn_request(
            query["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=query.get("RelayState"),
            sigalg=query.get("SigAlg"), signature=query.get("Signature"))
        args = self.server.response_args(request.message, [BINDING_HTTP_POST])
        return self.respond(args["in_response_to"], args["destination"], args["sp_entity_id"],
                            subject, email, groups, edit, sign)

    def respond(self, in_response_to: str | None, destination: str, sp_entity_id: str, subject: str,
                email: str | None, groups: list[str], edit=None, sign: bool = True) -> str:
        identity = {"groups": groups}
        if email:
            identity["email"] = [email]
        xml = self.server.create_authn_response(
            identity, in_response_to, destination, sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                   "authn_auth": IDP_ENTITY_ID},
            sign_assertion=False, sign_response=False)
        response = samlp.response_from_string(str(xml))
        if in_response_to is None:
            response.in_response_to = None
            for confirmation in response.assertion[0].subject.subject_confirmation:
                confirmation.subject_confirmation_data.in_response_to = None
        if edit is not None:
            edit(response)
        if not sign:
            return base64.b64encode(str(response).encode("utf-8")).decode("ascii")
        return base64.b64encode(self.sign_assertion(response).encode("utf-8")).decode("ascii")

    def sign_assertion(self, response) -> str:
        assertion = response.assertion[0]
        assertion.signature = pre_signature_part(assertion.id, self.server.sec.my_cert, 1,
                                                 sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        return self.server.sec.sign_statement(
            str(response), "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", node_id=assertion.id)


def post_form(response_b64: str) -> str:
    return urllib.parse.urlencode({"SAMLResponse": response_b64})


__all__ = ["IDP_ENTITY_ID", "SSO_URL", "SamlIdp", "key_and_cert", "post_form"]

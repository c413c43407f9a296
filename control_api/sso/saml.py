"""The SAML 2.0 service provider (SAML 2.0 Core, Bindings §3.4 HTTP-Redirect and §3.5
HTTP-POST, Profiles §4.1 Web Browser SSO), on pysaml2 with xmlsec1.

- Metadata: our EntityDescriptor, signed with the SP key (RSA-SHA256; pysaml2's default
  would be SHA-1).
- Login (SP-initiated, HTTP-Redirect): a signed AuthnRequest; its id is kept against a
  cookie only this browser holds (pending.py).
- ACS (HTTP-POST): the Response must first have the shape saml_xml.check_response
  requires (one assertion, signed over itself, no comment, allowed algorithms); then
  pysaml2 checks the assertion's signature against the certificates of the IdP metadata
  file only (never a certificate the message carries: xmlsec1 runs with
  --enabled-key-data raw-x509-cert and the metadata's certificate as the key), the
  audience, the recipient and destination (our ACS), the validity window (with
  CLOCK_SKEW) and that InResponseTo is the request this browser's cookie started.
  IdP-initiated responses (no InResponseTo) are refused unless FF_SAML_IDP_INITIATED=1.
  The assertion id is accepted once. Identity and groups are read from that one signed
  assertion, which pysaml2 verified.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import logging

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.sigver import security_context
from saml2.time_util import str_to_time
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import Principal
from control_api.clock import SystemClock
from control_api.errors import ApiError
from control_api.models import User
from control_api.sso.accounts import IdpIdentity, SsoAccounts
from control_api.sso.groups import GroupMapError, clean_groups
from control_api.sso.pending import PendingLogins
from control_api.sso.saml_xml import UnsafeResponse, check_response

log = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 60  # NotBefore / NotOnOrAfter tolerance between the IdP's clock and ours
ACS_PATH = "/api/auth/saml/acs"
METADATA_PATH = "/api/auth/saml/metadata"
EMAIL_ATTRIBUTES = ("email", "mail", "emailAddress",
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")


class SamlFailed(ApiError):
    """The response was refused; the reason is audited and told (it names no secret)."""

    status = 401
    title = "SAML login failed"


@dataclasses.dataclass(frozen=True)
class SamlSettings:
    idp_metadata: str
    sp_entity_id: str
    base_url: str
    key_file: str
    cert_file: str
    idp_initiated: bool
    groups_attribute: str

    @property
    def acs_url(self) -> str:
        return self.base_url + ACS_PATH


def sp_config(settings: SamlSettings, allow_unsolicited: bool) -> SPConfig:
    config = SPConfig()
    config.load({
        "entityid": settings.sp_entity_id,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": settings.key_file,
        "cert_file": settings.cert_file,
        "metadata": {"local": [settings.idp_metadata]},
        "accepted_time_diff": CLOCK_SKEW_SECONDS,
        "only_use_keys_in_metadata": True,
        "allow_unknown_attributes": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(settings.acs_url, BINDING_HTTP_POST)]},
            "authn_requests_signed": True,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "allow_unsolicited": allow_unsolicited,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
        }},
    })
    return config


def idp_entity_id(config: SPConfig) -> str:
    """The one IdP the metadata file describes (start-up refuses none or several)."""
    idps = list(config.metadata.identity_providers())
    if len(idps) != 1:
        raise ValueError(f"FF_SAML_IDP_METADATA must describe exactly one IdP, not {len(idps)}")
    return idps[0]


def check_files(metadata: str, key_file: str, cert_file: str) -> None:
    """At start-up: the IdP metadata describes one IdP with a signing certificate, and the
    SP key is an RSA key whose certificate is the one given. ValueError says what is wrong."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from saml2.attribute_converter import ac_factory
    from saml2.config import Config
    from saml2.mdstore import MetadataStore

    store = MetadataStore(ac_factory(), Config())
    try:
        store.load("local", metadata)
        idps = list(store.identity_providers())
    except Exception as exc:  # pysaml2 raises many types for a file that is not metadata
        raise ValueError(f"FF_SAML_IDP_METADATA is not SAML metadata ({type(exc).__name__})") from None
    if len(idps) != 1:
        raise ValueError(f"FF_SAML_IDP_METADATA must describe exactly one IdP, not {len(idps)}")
    if not store.certs(idps[0], "idpsso", "signing"):
        raise ValueError("FF_SAML_IDP_METADATA names no signing certificate for its IdP")
    try:
        with open(key_file, "rb") as handle:
            key = load_pem_private_key(handle.read(), None)
    except (OSError, ValueError, TypeError):
        raise ValueError("FF_SAML_SP_KEY is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("FF_SAML_SP_KEY must be an RSA key of 2048 bits or more (it signs RSA-SHA256)")
    try:
        with open(cert_file, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        raise ValueError("FF_SAML_SP_CERT is not a PEM certificate") from None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise ValueError("FF_SAML_SP_CERT is not the certificate of FF_SAML_SP_KEY")


class SamlServiceProvider:
    def __init__(self, settings: SamlSettings, accounts: SsoAccounts, pending: PendingLogins,
                 audit: AuditLog, clock: SystemClock) -> None:
        self.settings, self.accounts, self.pending = settings, accounts, pending
        self.audit, self.clock = audit, clock
        self.client = Saml2Client(config=sp_config(settings, allow_unsolicited=False))
        self.idp = idp_entity_id(self.client.config)
        # A second client only for IdP-initiated responses, only when they are allowed.
        self.unsolicited = (Saml2Client(config=sp_config(settings, allow_unsolicited=True))
                            if settings.idp_initiated else None)

    def metadata(self) -> bytes:
        config = self.client.config
        descriptor = entity_descriptor(config)
        _, signed = sign_entity_descriptor(descriptor, None, security_context(config),
                                           sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        return signed.encode("utf-8") if isinstance(signed, str) else signed

    def login(self) -> tuple[str, str]:
        """(the IdP URL to redirect the browser to, the value of the binding cookie)."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp, binding=BINDING_HTTP_REDIRECT, sign=True,
            sigalg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        location = dict(info["headers"])["Location"]
        return location, self.pending.start("saml", request_id)

    def acs(self, encoded: str, cookie: str | None, actor: Actor,
            previous: Principal | None) -> tuple[str, User]:
        try:
            document = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            self._refuse(actor, "SAMLResponse is not base64")
        try:
            shape = check_response(document)
        except UnsafeResponse as exc:
            self._refuse(actor, str(exc))
        if shape.in_response_to is not None:
            expected = self.pending.peek("saml", cookie)
            if expected is None or expected != shape.in_response_to:
                self._refuse(actor, "the response does not answer the login this browser started "
                                    "(missing, expired or used login cookie)")
            client, outstanding = self.client, {expected: "/"}
        elif self.unsolicited is not None:
            client, outstanding = self.unsolicited, {}
        else:
            self._refuse(actor, "IdP-initiated login is not enabled (FF_SAML_IDP_INITIATED)")
        response = self._verified(client, encoded, outstanding, actor)
        assertion = response.assertion
        if assertion is None or assertion.id != shape.assertion_id or response.name_id is None:
            self._refuse(actor, "the response has no usable assertion")
        who = self._identity(response, shape, actor)
        with self.audit.db.atomic():
            fresh = shape.in_response_to is None or self.pending.use("saml", cookie)
            first = fresh and self.pending.first_use("saml", who.issuer, assertion.id,
                                                     _until(assertion, self.clock))
        if not fresh:
            self._refuse(actor, "this login was already completed")
        if not first:
            self._refuse(actor, "this assertion was already used (replay)", {"assertion": assertion.id})
        return self.accounts.sign_in(who, actor, previous)

    def _verified(self, client: Saml2Client, encoded: str, outstanding: dict, actor: Actor):
        try:
            # conv_info: without it pysaml2 accepts any Recipient (verify_recipient returns True).
            response = client.parse_authn_request_response(
                encoded, BINDING_HTTP_POST, outstanding, conv_info={"entity_id": self.settings.sp_entity_id})
        except Exception as exc:  # pysaml2 raises many unrelated types; each one is a refusal
            log.info("SAML response refused by pysaml2: %s: %s", type(exc).__name__, exc)
            self._refuse(actor, f"the response did not verify ({type(exc).__name__})")
        if response is None:
            self._refuse(actor, "the response did not verify")
        # Checked here too, strictly: the Response's Destination and every bearer confirmation's
        # Recipient must be our ACS (SAML Bindings §3.5.5.2, Profiles §4.1.4.2), never absent.
        acs = self.settings.acs_url
        if response.response.destination != acs:
            self._refuse(actor, "the response's Destination is not our ACS")
        confirmations = response.assertion.subject.subject_confirmation if response.assertion.subject else []
        if not confirmations or any(c.subject_confirmation_data is None
                                    or c.subject_confirmation_data.recipient != acs for c in confirmations):
            self._refuse(actor, "the assertion's Recipient is not our ACS")
        return response

    def _identity(self, response, shape, actor: Actor) -> IdpIdentity:
        name_id = response.name_id
        attributes = response.ava or {}
        email = next((attributes[k][0] for k in EMAIL_ATTRIBUTES if attributes.get(k)), None)
        if email is None and name_id.format == NAMEID_FORMAT_EMAILADDRESS:
            email = name_id.text
        try:
            groups = clean_groups(attributes.get(self.settings.groups_attribute))
        except GroupMapError as exc:
            self._refuse(actor, str(exc))
        issuer = response.issuer() or shape.issuer or self.idp
        if issuer != self.idp:
            self._refuse(actor, "the assertion's issuer is not the configured IdP")
        subject = (name_id.text or "").strip()
        if not subject or len(subject) > 256:
            self._refuse(actor, "the NameID must be 1 to 256 characters")
        return IdpIdentity("saml", issuer, subject, email, tuple(groups),
                           {"assertion": response.assertion.id,
                            "in_response_to": shape.in_response_to or "(idp-initiated)"})

    def _refuse(self, actor: Actor, reason: str, extra: dict | None = None):
        self.audit.record_alone(actor, "sso.assertion_refused", f"saml:{self.idp}",
                                {"reason": reason, **(extra or {})})
        raise SamlFailed(reason)


def _until(assertion, clock: SystemClock) -> dt.datetime:
    """When the assertion stops being valid: its ids are kept until then (plus the skew)."""
    limit = None
    if assertion.conditions is not None and assertion.conditions.not_on_or_after:
        limit = assertion.conditions.not_on_or_after
    if limit:
        stamp = str_to_time(limit)
        return dt.datetime(*stamp[:6]) + dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
    return clock.now() + dt.timedelta(days=1)

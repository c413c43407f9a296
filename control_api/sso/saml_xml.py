"""The shape a SAML Response must have before any signature is checked or any value read
(SAML 2.0 Core §5 and the XML Signature profile it sets; OWASP's SAML Security Cheat
Sheet). Whatever does not have it is refused, so the checks that follow (pysaml2 and
xmlsec1) only ever see one assertion, signed over itself:

- no DTD, no entity, no comment and no processing instruction anywhere: a comment in a
  NameID is how CVE-2017-11427 made a signed "admin@x.test<!-- -->.evil" read as
  "admin@x.test" (exclusive c14n drops comments, so the signature still verifies);
- exactly one <Assertion>, a direct child of the <Response>, and no <EncryptedAssertion>:
  signature wrapping (CVE-2024-45409 and its family) needs a second assertion, or the
  signed one moved under another element, for the reader to take the unsigned one;
- every ID attribute unique in the document, so a reference names one element;
- the assertion's own enveloped <Signature> with one Reference to "#" + its ID, and every
  signature's SignatureMethod and DigestMethod on the allowlist (no SHA-1, no MD5);
- signatures only where SAML puts them (a child of the Response or of the Assertion).
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from defusedxml.ElementTree import DefusedXMLParser

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
MAX_RESPONSE_BYTES = 65_000  # real responses are a few KiB; base64 keeps the form under 1 MiB

SIGNATURE_ALGORITHMS = frozenset({
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
})
DIGEST_ALGORITHMS = frozenset({
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
})


class UnsafeResponse(ValueError):
    """The Response does not have the shape required above; str() says what is wrong."""


@dataclasses.dataclass(frozen=True)
class ResponseShape:
    in_response_to: str | None  # the Response's, or None for an IdP-initiated one
    assertion_id: str
    issuer: str | None


def check_response(document: bytes) -> ResponseShape:
    if len(document) > MAX_RESPONSE_BYTES:
        raise UnsafeResponse(f"the SAML response is larger than {MAX_RESPONSE_BYTES} bytes")
    root = _parse(document)
    if root.tag != f"{{{SAMLP}}}Response":
        raise UnsafeResponse("the document is not a SAML Response")
    ids: set[str] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            raise UnsafeResponse("the SAML response holds a comment or a processing instruction")
        if "ID" in element.attrib:
            if element.attrib["ID"] in ids:
                raise UnsafeResponse("two elements of the SAML response share an ID")
            ids.add(element.attrib["ID"])
    if root.findall(f".//{{{SAML}}}EncryptedAssertion"):
        raise UnsafeResponse("encrypted assertions are not accepted")
    assertions = list(root.iter(f"{{{SAML}}}Assertion"))
    if len(assertions) != 1 or root.find(f"{{{SAML}}}Assertion") is not assertions[0]:
        raise UnsafeResponse("the SAML response must hold exactly one assertion, directly in the Response")
    assertion = assertions[0]
    allowed_parents = {id(root), id(assertion)}
    for parent in root.iter():
        for child in parent:
            if child.tag == f"{{{DS}}}Signature":
                if id(parent) not in allowed_parents:
                    raise UnsafeResponse("a signature sits where SAML puts none")
                _check_algorithms(child)
    _check_enveloped(assertion)
    in_response_to = root.attrib.get("InResponseTo")
    for data in assertion.iter(f"{{{SAML}}}SubjectConfirmationData"):
        if data.attrib.get("InResponseTo", in_response_to) != in_response_to:
            raise UnsafeResponse("the assertion answers another request than the response")
    issuer = root.find(f"{{{SAML}}}Issuer")
    return ResponseShape(in_response_to, assertion.attrib.get("ID", ""),
                         issuer.text.strip() if issuer is not None and issuer.text else None)


def _parse(document: bytes) -> ET.Element:
    builder = ET.TreeBuilder(insert_comments=True, insert_pis=True)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(document)
        return parser.close()
    except ET.ParseError:
        raise UnsafeResponse("the SAML response is not well-formed XML") from None
    except ValueError as exc:  # defusedxml's DTDForbidden, EntitiesForbidden, ...
        raise UnsafeResponse(f"the SAML response uses a forbidden XML feature "
                             f"({type(exc).__name__})") from None


def _check_enveloped(assertion: ET.Element) -> None:
    signatures = assertion.findall(f"{{{DS}}}Signature")
    if len(signatures) != 1:
        raise UnsafeResponse("the assertion must carry exactly one signature of its own")
    references = signatures[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(references) != 1 or references[0].attrib.get("URI") != "#" + assertion.attrib.get("ID", "\0"):
        raise UnsafeResponse("the assertion's signature must reference the assertion itself")


def _check_algorithms(signature: ET.Element) -> None:
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    if method is None or method.attrib.get("Algorithm") not in SIGNATURE_ALGORITHMS:
        raise UnsafeResponse("the signature's algorithm is not allowed (RSA or ECDSA with SHA-256 or better)")
    digests = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}DigestMethod")
    if not digests or any(d.attrib.get("Algorithm") not in DIGEST_ALGORITHMS for d in digests):
        raise UnsafeResponse("the signature's digest algorithm is not allowed (SHA-256 or better)")

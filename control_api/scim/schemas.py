"""What /scim/v2 publishes about itself (RFC 7643 sections 5-7): ServiceProviderConfig,
ResourceTypes and Schemas, and the attributes each resource type keeps.

Only the attributes listed here are stored; others a client sends are ignored, as
RFC 7644 section 3.3 allows for attributes the service provider does not support."""

from __future__ import annotations

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_RESULTS = 200


def _attr(name, type_="string", *, multi=False, required=False, mutability="readWrite",
          returned="default", uniqueness="none", case_exact=False, sub=None, description=""):
    out = {"name": name, "type": type_, "multiValued": multi, "description": description or name,
           "required": required, "caseExact": case_exact, "mutability": mutability,
           "returned": returned, "uniqueness": uniqueness}
    if sub is not None:
        out["subAttributes"] = sub
    if type_ == "reference":
        out["referenceTypes"] = ["User", "Group"]
    return out


_NAME_SUB = [_attr("formatted"), _attr("familyName"), _attr("givenName")]
_EMAIL_SUB = [_attr("value"), _attr("type"), _attr("primary", "boolean")]
_MEMBER_SUB = [_attr("value", mutability="immutable"), _attr("$ref", "reference", mutability="immutable"),
               _attr("display", mutability="readOnly"),
               {**_attr("type", mutability="immutable"), "canonicalValues": ["User"]}]

USER_ATTRIBUTES = [
    _attr("userName", required=True, uniqueness="server",
          description="The account's email address, unique here"),
    _attr("name", "complex", sub=_NAME_SUB),
    _attr("displayName"),
    _attr("active", "boolean", required=True,
          description="false disables the account and ends its sessions and tokens"),
    _attr("emails", "complex", multi=True, sub=_EMAIL_SUB),
    _attr("groups", "complex", multi=True, mutability="readOnly",
          sub=[_attr("value", mutability="readOnly"), _attr("display", mutability="readOnly"),
               _attr("$ref", "reference", mutability="readOnly")]),
]
GROUP_ATTRIBUTES = [
    _attr("displayName", required=True, uniqueness="server",
          description="The group's name, as FF_SSO_GROUP_MAP names it"),
    _attr("members", "complex", multi=True, sub=_MEMBER_SUB),
]
ENTERPRISE_ATTRIBUTES = [_attr("employeeNumber"), _attr("department")]


def attribute_names(attributes: list[dict], common: bool = True) -> dict[str, set[str]]:
    """Lower-cased top-level names -> their lower-cased sub-attribute names."""
    out = {a["name"].lower(): {s["name"].lower() for s in a.get("subAttributes", [])} for a in attributes}
    if common:
        out.update({"id": set(), "externalid": set(),
                    "meta": {"created", "lastmodified", "resourcetype", "location", "version"}})
    return out


USER_NAMES = {**attribute_names(USER_ATTRIBUTES),
              **{f"{ENTERPRISE.lower()}:{k}": v
                 for k, v in attribute_names(ENTERPRISE_ATTRIBUTES, False).items()}}
GROUP_NAMES = attribute_names(GROUP_ATTRIBUTES)


def _schema(urn: str, name: str, attributes: list[dict], base: str) -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": urn, "name": name,
            "description": name, "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{urn}"}}


def schemas(base: str) -> list[dict]:
    return [_schema(USER, "User", USER_ATTRIBUTES, base), _schema(GROUP, "Group", GROUP_ATTRIBUTES, base),
            _schema(ENTERPRISE, "EnterpriseUser", ENTERPRISE_ATTRIBUTES, base)]


def resource_types(base: str) -> list[dict]:
    common = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]}
    return [
        {**common, "id": "User", "name": "User", "endpoint": "/Users", "description": "An operator account",
         "schema": USER, "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"}},
        {**common, "id": "Group", "name": "Group", "endpoint": "/Groups",
         "description": "An IdP group; FF_SSO_GROUP_MAP gives its members a role and grants",
         "schema": GROUP, "schemaExtensions": [],
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"}},
    ]


def service_provider_config(base: str) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "SCIM bearer token", "primary": True,
            "description": "A token made by `weco scim token create`, sent as 'Authorization: Bearer ...'"}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }

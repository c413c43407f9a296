"""SCIM 2.0 provisioning (RFC 7643 schema, RFC 7644 protocol) under /scim/v2: a
customer's IdP pushes joiners, movers and leavers with a credential of its own."""

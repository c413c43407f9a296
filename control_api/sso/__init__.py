"""Single sign-on: a SAML 2.0 service provider and an OpenID Connect relying party that
mint sessions through the CredentialService as password logins do, just-in-time
accounts linked by the IdP's subject, and the IdP-group mapping to role and grants."""

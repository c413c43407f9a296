"""Single sign-on over HTTP: SAML metadata, login and ACS; OIDC login and callback. The
session cookie is set exactly as a password login sets it (CookiePolicy); the login's
binding cookie lives ten minutes and is cleared when the login ends.

The SAML ACS is posted by the IdP's page (a cross-site form POST): its binding cookie is
SameSite=None (with Secure, so only in production; in dev the IdP and the API share a
site, localhost, and Lax does). The OIDC callback is a top-level GET: SameSite=Lax."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from control_api.auth.credentials import csrf_token_for
from control_api.authz import public
from control_api.body import InvalidRequest, UnsupportedMediaType, read_form
from control_api.errors import NotFound
from control_api.resources.auth import CookiePolicy
from control_api.resources.common import actor_of
from control_api.sso.oidc import OidcRelyingParty
from control_api.sso.pending import LOGIN_TTL

if TYPE_CHECKING:  # pysaml2 is imported only where SAML is configured (wiring.build_sso)
    from control_api.sso.saml import SamlServiceProvider

_FORM = "application/x-www-form-urlencoded"
_MAX_SAML_RESPONSE = 86_700  # base64 of saml_xml.MAX_RESPONSE_BYTES
_MAX_PARAM = 4096


class BindingCookie:
    """The cookie that ties a login's return to the browser that started it."""

    def __init__(self, protocol: str, secure: bool, cross_site_post: bool) -> None:
        self.name = f"__Host-weco_{protocol}" if secure else f"weco_{protocol}"
        self.secure = secure
        self.same_site = "None" if cross_site_post and secure else "Lax"

    def set(self, resp: falcon.Response, value: str) -> None:
        resp.set_cookie(self.name, value, max_age=int(LOGIN_TTL.total_seconds()), path="/",
                        secure=self.secure, http_only=True, same_site=self.same_site)

    def read(self, req: falcon.Request) -> str | None:
        values = req.get_cookie_values(self.name) or []
        return values[0] if len(values) == 1 and len(values[0]) <= 128 else None

    def clear(self, resp: falcon.Response) -> None:
        resp.unset_cookie(self.name, path="/", same_site=self.same_site)


def _needs(service, name: str):
    if service is None:
        raise NotFound(f"{name} single sign-on is not configured here", title="Not configured")
    return service


def _signed_in(resp: falcon.Response, cookie: CookiePolicy, session_value: str, user) -> None:
    cookie.set(resp, session_value)
    resp.media = {"user": user.public(), "csrf_token": csrf_token_for(session_value)}


class SamlMetadata:
    def __init__(self, saml: SamlServiceProvider | None) -> None:
        self.saml = saml

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = _needs(self.saml, "SAML").metadata()
        resp.content_type = "application/samlmetadata+xml"


class SamlLogin:
    def __init__(self, saml: SamlServiceProvider | None, secure: bool) -> None:
        self.saml = saml
        self.binding = BindingCookie("saml", secure, cross_site_post=True)

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        location, value = _needs(self.saml, "SAML").login()
        self.binding.set(resp, value)
        resp.status = falcon.HTTP_303
        resp.location = location


class SamlAcs:
    def __init__(self, saml: SamlServiceProvider | None, cookie: CookiePolicy, secure: bool) -> None:
        self.saml, self.cookie = saml, cookie
        self.binding = BindingCookie("saml", secure, cross_site_post=True)

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        saml = _needs(self.saml, "SAML")
        if (req.content_type or "").partition(";")[0].strip().lower() != _FORM:
            raise UnsupportedMediaType(f"the IdP posts the SAML response as {_FORM}")
        form = read_form(req, _MAX_SAML_RESPONSE + 4096, 4)
        if not set(form) <= {"SAMLResponse", "RelayState"}:
            raise InvalidRequest("the form takes SAMLResponse and RelayState only")
        values = form.get("SAMLResponse") or []
        if len(values) != 1 or not values[0] or len(values[0]) > _MAX_SAML_RESPONSE:
            raise InvalidRequest(f"send exactly one SAMLResponse of at most {_MAX_SAML_RESPONSE} characters")
        value, user = saml.acs(values[0], self.binding.read(req), actor_of(req), req.context.principal)
        self.binding.clear(resp)
        _signed_in(resp, self.cookie, value, user)


class OidcLogin:
    def __init__(self, oidc: OidcRelyingParty | None, secure: bool) -> None:
        self.oidc = oidc
        self.binding = BindingCookie("oidc", secure, cross_site_post=False)

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        location, value = _needs(self.oidc, "OpenID Connect").login()
        self.binding.set(resp, value)
        resp.status = falcon.HTTP_303
        resp.location = location


class OidcCallback:
    def __init__(self, oidc: OidcRelyingParty | None, cookie: CookiePolicy, secure: bool) -> None:
        self.oidc, self.cookie = oidc, cookie
        self.binding = BindingCookie("oidc", secure, cross_site_post=False)

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        oidc = _needs(self.oidc, "OpenID Connect")
        params = {}
        for name in ("code", "state", "error"):
            value = req.get_param(name)
            if value is not None:
                if len(value) > _MAX_PARAM:
                    raise InvalidRequest(f"'{name}' is longer than {_MAX_PARAM} characters")
                params[name] = value
        if "state" not in params:
            raise InvalidRequest("the callback needs 'state' (and 'code' or 'error')")
        value, user = oidc.callback(params, self.binding.read(req), actor_of(req), req.context.principal)
        self.binding.clear(resp)
        _signed_in(resp, self.cookie, value, user)

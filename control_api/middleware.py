"""Cross-cutting request work: request id and access log, security headers, body
limit, the store connection, and resolving who is calling (with CSRF protection)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

import falcon
import peewee

from control_api import body
from control_api.auth.credentials import CredentialService
from control_api.clock import SecretTokens
from control_api.db import dialect
from control_api.logs import request_id_var

access_log = logging.getLogger("control_api.access")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
# The SAML ACS is the one unsafe route another site posts to by design (the IdP's page
# submits a form: SAML Bindings §3.5). It is served anonymously, whatever cookie the
# browser sends, and is protected by the signed assertion and the login's binding cookie.
CROSS_SITE_POST_PATHS = frozenset({"/api/auth/saml/acs"})

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # API answers carry session-bound data: no cache may keep them.
    "Cache-Control": "no-store",
}


class RequestContext:
    """Request id on the response and every log line; one access line per request."""

    def __init__(self, tokens: SecretTokens) -> None:
        self.tokens = tokens

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.request_id = self.tokens.request_id()
        req.context.started = time.perf_counter()
        req.context.principal = None
        req.context.token = request_id_var.set(req.context.request_id)

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        resp.set_header("X-Request-Id", req.context.request_id)
        principal = req.context.principal
        access_log.info(
            "%s %s %s",
            req.method,
            req.path,
            resp.status_code,
            extra={
                "method": req.method,
                "path": req.path,
                "status": resp.status_code,
                "duration_ms": round((time.perf_counter() - req.context.started) * 1000, 2),
                "remote_addr": req.context.get("client_ip", req.remote_addr),
                "user_id": principal.user.id if principal else None,
            },
        )
        request_id_var.reset(req.context.token)


class ClientAddress:
    """req.context.client_ip: the socket's peer, unless that peer is a trusted proxy;
    then the nearest X-Forwarded-For entry that is not one. A client can never pick
    the address it is throttled and audited as."""

    def __init__(self, trusted: tuple) -> None:
        self.trusted = trusted

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        address = req.remote_addr or ""
        if self.trusted and self._is_trusted(address):
            forwarded = [part.strip() for part in (req.get_header("X-Forwarded-For") or "").split(",")]
            for hop in reversed([part for part in forwarded if part]):
                address = hop
                if not self._is_trusted(hop):
                    break
        req.context.client_ip = address


class SecurityHeaders:
    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)


class ValidText:
    """Path, query and headers hold no NUL or lone surrogate before anything reads them."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        body.check_text(req)


UPLOAD_TYPES = ("multipart/form-data", "application/pdf", "application/gzip")
SCIM_PREFIX = "/scim/v2/"  # server-to-server provisioning, authenticated by control_api/scim/tokens.py


class BodyLimit:
    """FF_MAX_BODY_BYTES for every body, except an upload (a PDF, a multipart form, a release
    bundle) sent to a resource that takes one: its own `upload_body_limit` (FF_MAX_UPLOAD_MB,
    FF_MAX_RELEASE_MB), checked once the route is known."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    @staticmethod
    def _is_upload(req: falcon.Request) -> bool:
        return (req.content_type or "").partition(";")[0].strip().lower() in UPLOAD_TYPES

    def _refuse(self, limit: int) -> None:
        raise falcon.HTTPContentTooLarge(title="Body too large",
                                         description=f"the body must be at most {limit} bytes")

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.max_body_bytes = self.max_bytes
        too_large = req.content_length is not None and req.content_length > self.max_bytes
        if too_large and not self._is_upload(req):
            self._refuse(self.max_bytes)

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params: dict) -> None:
        limit = getattr(resource, "upload_body_limit", None) if self._is_upload(req) else None
        if req.content_length is not None and req.content_length > (limit or self.max_bytes):
            self._refuse(limit or self.max_bytes)


class StoreConnection:
    """Ends the request's use of the store; peewee opens a connection on first use, so a
    request that needs no store never waits for one.

    On PostgreSQL the connection goes back to the pool, which pings one that sat idle
    (the server may have restarted since). On SQLite there is no server to lose, so the
    thread keeps its connection for its next request: handing it back and taking it
    again was a sixth of an authenticated read (measured in-process: 9 of 54 us). A
    transaction a request left open is rolled back either way (the pool does it at
    check-in)."""

    def __init__(self, db: peewee.Database) -> None:
        self.db = db
        self.keep = dialect(db) == "sqlite"

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        if self.db.is_closed():
            return
        if self.keep and not self.db.connection().in_transaction:
            return
        self.db.close()


def foreign_origin(req: falcon.Request) -> bool:
    """An Origin header that names another host or port than the request's Host ("null"
    included). Schemes are not compared: behind a proxy that ends TLS the app sees http
    where the browser says https; the proxy must pass the Host header through."""
    origin = req.get_header("Origin")
    if origin is None:
        return False
    _, separator, netloc = origin.partition("://")
    return not separator or netloc.rstrip("/").lower() != req.netloc.lower()


class Authentication:
    """Sets req.context.principal from a Bearer token or the session cookie.

    A Bearer header that does not verify is a hard 401 (a script must not silently
    run anonymous); a stale cookie just means anonymous. Cookie-authenticated unsafe
    requests must echo the session's CSRF token, and no unsafe request may come from
    another site (Sec-Fetch-Site) or another origin (Origin), which also covers login
    CSRF.
    """

    def __init__(self, credentials: CredentialService, cookie_name: str) -> None:
        self.credentials = credentials
        self.cookie_name = cookie_name

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path.startswith(SCIM_PREFIX):
            return  # SCIM's own bearer token, never a user's: checked by authz.scim
        unsafe = req.method not in SAFE_METHODS
        if unsafe and req.path in CROSS_SITE_POST_PATHS and req.get_header("Authorization") is None:
            return  # anonymous (see CROSS_SITE_POST_PATHS)
        if unsafe and (req.get_header("Sec-Fetch-Site") or "").lower() == "cross-site":
            raise falcon.HTTPForbidden(
                title="Cross-site request refused",
                description="state-changing requests must come from the same site",
            )
        if unsafe and foreign_origin(req):
            # For browsers that send no Sec-Fetch-Site (older ones, some embedded views).
            raise falcon.HTTPForbidden(
                title="Cross-origin request refused",
                description="state-changing requests must come from the origin they are sent to",
            )
        authorization = req.get_header("Authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            principal = None
            if scheme.lower() == "bearer" and value.strip():
                principal = self.credentials.token_principal(value.strip())
            if principal is None:
                raise falcon.HTTPUnauthorized(
                    title="Invalid token",
                    description="the API token is unknown, expired or revoked",
                    challenges=["Bearer"],
                )
            req.context.principal = principal
            return
        values = req.get_cookie_values(self.cookie_name) or []
        principal = self.credentials.session_principal(values[0]) if values else None
        if principal is None:
            return
        if unsafe:
            sent = req.get_header(CSRF_HEADER) or ""
            if not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
                raise falcon.HTTPForbidden(
                    title="CSRF token missing or wrong",
                    description=f"cookie-authenticated {req.method} requests must send the "
                    f"session's CSRF token in {CSRF_HEADER}",
                )
        req.context.principal = principal

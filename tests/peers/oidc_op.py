"""A real OpenID Provider on 127.0.0.1, built from authlib's server components (its Flask
AuthorizationServer, AuthorizationCodeGrant, CodeChallenge and OpenIDCode), served by
werkzeug in a thread: discovery, JWKS, an authorization endpoint that signs in
`self.user` at once (no login page), and a token endpoint issuing ID tokens signed RS256.

It enforces what the RP must do: PKCE with S256 only (plain is refused, and a missing
challenge too), a nonce on every authentication request, the redirect URI registered,
client_secret_basic, and each code used once (authlib deletes it on use).

`rotate()` makes a new signing key with a new kid, and JWKS then lists only it (a
rotation with no overlap, the hardest case for a relying party). `tamper(header, claims)`
may rewrite the next ID token as a hostile or broken provider would; "alg": "none" and an
HMAC keyed with the public key's PEM are signed by hand, since no library will."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import threading
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.models import ClientMixin
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import WSGIRequestHandler, make_server

CLIENT_ID = "weco-control-api"
CLIENT_SECRET = "op-test-secret-0123456789"  # a test peer's own secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclasses.dataclass
class _Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile", "groups"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "client_secret_basic" if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclasses.dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class _S256Only(CodeChallenge):
    """authlib requires PKCE of public clients only; this provider requires it of every
    client, with S256 (RFC 9700 §2.1.1 recommends it for confidential clients too)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required")
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        return super().validate_code_verifier(grant, result)


class OpenIdProvider:
    def __init__(self) -> None:
        self.codes: dict[str, _Code] = {}
        self.nonces: set[str] = set()
        self.user = {"sub": "op-user-1", "email": "olivia@example.test", "groups": ["weco-admins"]}
        self.tamper = None  # callable(header, claims) -> (header, claims[, signing key]), applied once
        self.jwks_fetches = 0
        self.token_requests = 0
        self.key = self._new_key()
        self.client = _Client(CLIENT_ID, CLIENT_SECRET, [])
        self.app = self._flask_app()
        self._http = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.issuer = f"http://127.0.0.1:{self._http.server_port}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()

    @staticmethod
    def _new_key() -> RSAKey:
        parameters = {"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        return RSAKey.generate_key(2048, parameters=parameters)

    def rotate(self) -> None:
        self.key = self._new_key()

    def register_redirect_uri(self, uri: str) -> None:
        self.client.redirect_uris = [uri]

    # -- ID tokens ------------------------------------------------------------------

    def id_token(self, code: _Code) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        claims = {"iss": self.issuer, "aud": [CLIENT_ID], "iat": now, "exp": now + 300,
                  "auth_time": code.auth_time, "sub": code.user["sub"], "jti": secrets.token_hex(12)}
        if code.nonce:
            claims["nonce"] = code.nonce
        if "email" in code.scope.split() and code.user.get("email"):
            claims["email"] = code.user["email"]
            claims["email_verified"] = True
        if "groups" in code.user:
            claims["groups"] = code.user["groups"]
        key = self.key
        if self.tamper is not None:
            header, claims, *other = self.tamper(header, claims)
            key = other[0] if other else key
            self.tamper = None
        return self.sign(header, claims, key)

    def sign(self, header: dict, claims: dict, key: RSAKey) -> str:
        if header["alg"] == "none":
            return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
        if header["alg"].startswith("HS"):  # keyed with the public key's PEM: the classic confusion
            secret = self.key.as_pem(private=False)
            signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{_b64(mac)}"
        return jwt.encode(header, claims, key, algorithms=[header["alg"]], default_type=None)

    # -- the server -------------------------------------------------------------------

    def _flask_app(self) -> Flask:
        provider = self
        app = Flask("weco-test-op")

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

            def save_authorization_code(self, code, req):
                payload = req.payload
                provider.codes[code] = _Code(
                    code, req.client.client_id, payload.redirect_uri, req.scope, dict(provider.user),
                    payload.data.get("nonce"), payload.data.get("code_challenge"),
                    payload.data.get("code_challenge_method"), int(time.time()))

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item is not None and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class Identity(OpenIDCode):
            def exists_nonce(self, nonce, req):
                if nonce in provider.nonces:
                    return True
                provider.nonces.add(nonce)
                return False

            def generate_user_info(self, user, scope):
                return UserInfo(sub=user["sub"])

            def encode_id_token(self, token, req):
                return provider.id_token(req.authorization_code)

        server = AuthorizationServer(app, query_client=lambda cid: self.client if cid == CLIENT_ID else None,
                                     save_token=lambda token, req: None)
        server.register_grant(CodeGrant, [_S256Only(required=True), Identity(require_nonce=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            })

        @app.get("/jwks")
        def jwks():
            provider.jwks_fetches += 1
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize():
            return server.create_authorization_response(grant_user=dict(provider.user))

        @app.post("/token")
        def token():
            provider.token_requests += 1
            return server.create_token_response()

        return app

    def authorize(self, location: str) -> str:
        """Follow the RP's redirect to /authorize as the browser would; the redirect back."""
        import requests

        answer = requests.get(location, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, (answer.status_code, answer.text[:300])
        return answer.headers["Location"]


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "OpenIdProvider"]

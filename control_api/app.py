"""create_app: the HTTP app, its middleware and routes. Services come from wiring."""

from __future__ import annotations

import falcon

from control_api import authz, body, errors, middleware, wiring
from control_api.resources import (
    account,
    approvals,
    audit,
    auth,
    documents,
    explain,
    health,
    hosts,
    openapi,
    releases,
    runs,
    scim,
    sites,
    tokens,
    users,
    webauthn,
)
from control_api.resources import host_keys as host_keys_api
from control_api.resources import sso as sso_api
from control_api.wiring import Deps


def create_app(deps: Deps) -> falcon.App:
    settings = deps.settings
    svc = wiring.build_services(deps)
    credentials, step_up = svc.credentials, svc.step_up
    cookie = auth.CookiePolicy(secure=not settings.is_dev, max_age=settings.session_max_hours * 3600)

    app = falcon.App(
        middleware=[
            middleware.RequestContext(deps.tokens),
            middleware.ClientAddress(settings.trusted_proxies),
            middleware.SecurityHeaders(),
            middleware.ValidText(),
            middleware.BodyLimit(settings.max_body_bytes),
            middleware.StoreConnection(deps.db),
            middleware.Authentication(credentials, cookie.name),
        ]
    )
    errors.install(app)
    app.router_options.converters["id"] = body.StoreId

    app.add_route("/healthz", health.Health())
    app.add_route("/readyz", health.Ready(deps.db))
    app.add_route("/api/openapi.json", openapi.OpenApi(openapi.load_document()))
    app.add_route("/api/auth/login", auth.Login(svc.logins, cookie))
    app.add_route("/api/auth/login/second-factor", auth.SecondFactor(svc.logins, cookie))
    app.add_route("/api/auth/login/email-code", auth.EmailCode(svc.logins))
    app.add_route("/api/auth/logout", auth.Logout(svc.logins, cookie))
    app.add_route("/api/auth/step-up", account.StepUpTokens(step_up))
    app.add_route("/api/me", auth.Me())
    app.add_route("/api/me/password", account.Password(svc.accounts, cookie))
    app.add_route("/api/me/totp", account.Totp(svc.accounts, step_up, cookie))
    app.add_route("/api/me/totp/confirm", account.TotpConfirm(svc.accounts, cookie))
    app.add_route("/api/me/email-codes", account.EmailCodes(svc.accounts, step_up, cookie))
    add_webauthn_routes(app, svc, cookie)
    app.add_route("/api/me/sessions", account.MySessions(credentials))
    app.add_route("/api/me/sessions/{session_id:id}", account.MySession(credentials))
    app.add_route("/api/sessions/{session_id:id}", account.AnySession(credentials, step_up))
    app.add_route("/api/users", users.Users())
    app.add_route("/api/tokens", tokens.Tokens(svc.issuer, step_up))
    app.add_route("/api/tokens/{token_id:id}", tokens.Token(credentials, step_up))
    app.add_route("/api/audit", audit.Audit())
    app.add_route("/api/authz/explain", explain.Explain(settings.jit_required))
    app.add_route("/api/approvals", approvals.ApprovalRequests(svc.approvals))
    app.add_route("/api/approvals/{approval_id:id}", approvals.ApprovalRequestItem(svc.approvals))
    app.add_route("/api/approvals/{approval_id:id}/approve", approvals.ApprovalVotes(svc.approvals))
    add_site_routes(app, deps, svc)
    add_document_routes(app, deps, svc)

    add_host_key_routes(app, deps, svc)
    updates = wiring.build_release_updates(deps)
    app.add_route("/api/releases", releases.Releases(updates))
    app.add_route("/api/releases/{release_id:id}/apply",
                  releases.ReleaseApply(updates, step_up, svc.approvals))
    scim.add_routes(app, wiring.build_scim(deps, svc.credentials, svc.catalog),
                    wiring.build_scim_tokens(deps))
    add_sso_routes(app, deps, svc, cookie)

    check_declared(app)
    return app


def add_webauthn_routes(app: falcon.App, svc: wiring.Services, cookie: auth.CookiePolicy) -> None:
    passkeys, flows = svc.passkeys, svc.passkey_flows
    app.add_route("/api/me/webauthn/registration/options", webauthn.RegistrationOptions(passkeys))
    app.add_route("/api/me/webauthn/registration", webauthn.Registration(passkeys))
    app.add_route("/api/me/webauthn/credentials", webauthn.Credentials(passkeys))
    app.add_route("/api/me/webauthn/credentials/{credential_id:id}",
                  webauthn.CredentialItem(passkeys, svc.step_up))
    app.add_route("/api/auth/login/webauthn/options", webauthn.SecondFactorOptions(flows))
    app.add_route("/api/auth/login/webauthn", webauthn.SecondFactor(flows, cookie))
    app.add_route("/api/auth/passkey/options", webauthn.PasswordlessOptions(flows))
    app.add_route("/api/auth/passkey", webauthn.Passwordless(flows, cookie))
    app.add_route("/api/auth/step-up/webauthn/options", webauthn.StepUpOptions(flows))
    app.add_route("/api/auth/step-up/webauthn", webauthn.StepUp(flows))


def add_site_routes(app: falcon.App, deps: Deps, svc: wiring.Services) -> None:
    catalog, queue, step_up = svc.catalog, svc.queue, svc.step_up
    app.add_route("/api/sites", sites.Sites(catalog))
    app.add_route("/api/sites/{slug}", sites.SiteItem(catalog, step_up, svc.approvals))
    app.add_route("/api/sites/{slug}/hosts/{host_id:id}", sites.SiteHostLink(catalog))
    app.add_route("/api/sites/{slug}/grants/{user_id:id}", sites.SiteGrantLink(catalog))
    app.add_route("/api/hosts", hosts.Hosts(catalog))
    app.add_route("/api/hosts/{host_id:id}", hosts.HostItem(catalog, step_up, svc.approvals))
    app.add_route("/api/hosts/{host_id:id}/grants/{user_id:id}", hosts.HostGrantLink(catalog))
    app.add_route("/api/runs", runs.Runs(queue))
    app.add_route("/api/runs/{run_id:id}", runs.RunItem())
    app.add_route("/api/runs/{run_id:id}/cancel", runs.RunCancel(queue))
    app.add_route("/api/runs/{run_id:id}/events", runs.RunEvents())
    app.add_route("/api/runs/{run_id:id}/events/stream",
                  runs.RunEventStream(deps.db, deps.settings.event_stream_max_seconds))


def add_host_key_routes(app: falcon.App, deps: Deps, svc: wiring.Services) -> None:
    host_keys = wiring.build_host_keys(deps)
    app.add_route("/api/hosts/{host_id:id}/host-key",
                  host_keys_api.HostKey(host_keys, svc.step_up, svc.approvals))
    app.add_route("/api/hosts/{host_id:id}/host-key/scan", host_keys_api.HostKeyScan(host_keys))
    app.add_route("/api/hosts/{host_id:id}/host-key/confirm", host_keys_api.HostKeyConfirm(host_keys))
    app.add_route("/api/hosts/{host_id:id}/rotate-credentials",
                  host_keys_api.HostCredentialRotation(wiring.build_rotations(deps), svc.step_up,
                                                       svc.approvals))


def add_document_routes(app: falcon.App, deps: Deps, svc: wiring.Services) -> None:
    upload_bytes = deps.settings.max_upload_mb << 20
    app.add_route("/api/sites/{slug}/documents", documents.Documents(svc.documents, upload_bytes))
    app.add_route("/api/sites/{slug}/documents/order", documents.DocumentOrder(svc.documents))
    app.add_route("/api/sites/{slug}/documents/{document_id:id}",
                  documents.DocumentItem(svc.documents, svc.step_up))


def add_sso_routes(app: falcon.App, deps: Deps, svc: wiring.Services, cookie: auth.CookiePolicy) -> None:
    sso = wiring.build_sso(deps, svc.credentials, svc.catalog)
    secure = not deps.settings.is_dev
    app.add_route("/api/auth/saml/metadata", sso_api.SamlMetadata(sso.saml))
    app.add_route("/api/auth/saml/login", sso_api.SamlLogin(sso.saml, secure))
    app.add_route("/api/auth/saml/acs", sso_api.SamlAcs(sso.saml, cookie, secure))
    app.add_route("/api/auth/oidc/login", sso_api.OidcLogin(sso.oidc, secure))
    app.add_route("/api/auth/oidc/callback", sso_api.OidcCallback(sso.oidc, cookie, secure))


def check_declared(app: falcon.App) -> None:
    """Refuse to serve a route that does not say who may call it, or that names a site
    or a host without the guard that checks the caller's grant on it."""
    missing = authz.undeclared_routes(app)
    if missing:
        raise RuntimeError(f"routes without an access declaration: {', '.join(missing)}")
    unguarded = authz.unguarded_routes(app)
    if unguarded:
        raise RuntimeError(f"routes without a site or host guard: {', '.join(unguarded)}")



"""create_app: wiring only. Builds the services from their collaborators and routes."""

from __future__ import annotations

import dataclasses
import datetime as dt

import falcon
import peewee

from control_api import authz, body, errors, middleware
from control_api.audit import keys
from control_api.audit.log import AuditLog
from control_api.auth.account import AccountService
from control_api.auth.credentials import CredentialService
from control_api.auth.guard import CredentialGuard
from control_api.auth.login import LoginService
from control_api.auth.mailer import SmtpMailer
from control_api.auth.passwords import PasswordHasher
from control_api.auth.refusals import RefusalLog
from control_api.auth.sealed import SealedMode, SealedPolicy
from control_api.auth.second_factor import SecondFactors
from control_api.auth.stepup import StepUp
from control_api.auth.throttle import LoginThrottle
from control_api.auth.token_issuer import TokenIssuer
from control_api.auth.totp import TotpService
from control_api.auth.users import UserService
from control_api.clock import SecretTokens, SystemClock
from control_api.masterkey import MasterKeys
from control_api.resources import account, audit, auth, health, hosts, openapi, runs, sites, tokens, users
from control_api.runs.adapter import AnsibleRunnerAdapter
from control_api.runs.queue import RunQueue
from control_api.runs.worker import Worker, WorkerConfig
from control_api.settings import Settings
from control_api.sites.catalog import SiteCatalog


@dataclasses.dataclass
class Deps:
    settings: Settings
    db: peewee.Database
    audit: AuditLog
    keys: MasterKeys
    clock: SystemClock = dataclasses.field(default_factory=SystemClock)
    tokens: SecretTokens = dataclasses.field(default_factory=SecretTokens)
    hasher: PasswordHasher | None = None


def build_audit_log(
    settings: Settings, db: peewee.Database, clock: SystemClock, seal_after_commit: bool = True
) -> AuditLog:
    """The audit log with its keys; raises SettingsError when production lacks one and
    AuditKeyError when one is missing or unsafe.
    A server passes seal_after_commit=False and runs a background sealer instead."""
    return AuditLog(
        db,
        clock,
        keys.load_chain_key(settings),
        keys.load_witness(settings),
        keys.checkpoint_file(settings),
        settings.audit_checkpoint_every,
        seal_after_commit=seal_after_commit,
    )


def build_deps(settings: Settings, db: peewee.Database, seal_after_commit: bool = True,
               **overrides) -> Deps:
    clock = overrides.pop("clock", None) or SystemClock()
    audit = build_audit_log(settings, db, clock, seal_after_commit)
    return Deps(settings, db, audit, MasterKeys(settings, db, audit, clock), clock, **overrides)


def build_credentials(deps: Deps) -> CredentialService:
    return CredentialService(
        deps.audit,
        deps.clock,
        deps.tokens,
        idle=dt.timedelta(minutes=deps.settings.session_idle_minutes),
        lifetime=dt.timedelta(hours=deps.settings.session_max_hours),
        token_lifetime=dt.timedelta(days=deps.settings.token_max_days),
        sealed=build_sealed(deps),
    )


def build_sealed(deps: Deps) -> SealedMode:
    settings = deps.settings
    grace = dt.timedelta(days=settings.sealed_mode_grace_days)
    return SealedMode(SealedPolicy(settings.sealed_mode == "1", grace), deps.clock)


def build_guard(deps: Deps) -> CredentialGuard:
    return CredentialGuard(LoginThrottle(deps.db, deps.clock), RefusalLog(deps.db, deps.audit, deps.clock),
                           deps.audit)


def build_users(deps: Deps) -> UserService:
    return UserService(deps.audit, deps.hasher or PasswordHasher(), deps.clock)


def build_second_factors(deps: Deps, totp: TotpService) -> SecondFactors:
    settings = deps.settings
    mailer = (SmtpMailer(settings.smtp_url, settings.smtp_from, ca_file=settings.smtp_ca_file or None)
              if settings.smtp_url else None)
    return SecondFactors(totp, mailer, deps.clock, deps.tokens, settings.totp_only == "1")


def build_logins(deps: Deps, credentials: CredentialService, second: SecondFactors,
                 guard: CredentialGuard) -> LoginService:
    return LoginService(build_users(deps), credentials, deps.audit, guard, second, build_sealed(deps))


def build_catalog(deps: Deps) -> SiteCatalog:
    return SiteCatalog(deps.audit, deps.keys, deps.clock, development=deps.settings.is_dev)


def build_queue(deps: Deps) -> RunQueue:
    return RunQueue(deps.db, deps.audit, deps.clock, dt.timedelta(seconds=deps.settings.run_lease_seconds))


def create_app(deps: Deps) -> falcon.App:
    settings = deps.settings
    credentials = build_credentials(deps)
    totp = TotpService(deps.keys)
    second, guard = build_second_factors(deps, totp), build_guard(deps)
    logins = build_logins(deps, credentials, second, guard)
    step_up = StepUp(settings.require_step_up == "1", totp, guard, deps.audit, deps.clock, deps.tokens)
    accounts = AccountService(deps.audit, deps.hasher or PasswordHasher(), credentials, totp, guard,
                              deps.clock, settings.totp_only == "1", settings.sealed_mode == "1")
    issuer = TokenIssuer(credentials, second, build_sealed(deps))
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
    app.add_route("/api/auth/login", auth.Login(logins, cookie))
    app.add_route("/api/auth/login/second-factor", auth.SecondFactor(logins, cookie))
    app.add_route("/api/auth/login/email-code", auth.EmailCode(logins))
    app.add_route("/api/auth/logout", auth.Logout(logins, cookie))
    app.add_route("/api/auth/step-up", account.StepUpTokens(step_up))
    app.add_route("/api/me", auth.Me())
    app.add_route("/api/me/password", account.Password(accounts, cookie))
    app.add_route("/api/me/totp", account.Totp(accounts, step_up, cookie))
    app.add_route("/api/me/totp/confirm", account.TotpConfirm(accounts, cookie))
    app.add_route("/api/me/email-codes", account.EmailCodes(accounts, step_up, cookie))
    app.add_route("/api/me/sessions", account.MySessions())
    app.add_route("/api/me/sessions/{session_id:id}", account.MySession(credentials))
    app.add_route("/api/sessions/{session_id:id}", account.AnySession(credentials, step_up))
    app.add_route("/api/users", users.Users())
    app.add_route("/api/tokens", tokens.Tokens(issuer, step_up))
    app.add_route("/api/tokens/{token_id:id}", tokens.Token(credentials, step_up))
    app.add_route("/api/audit", audit.Audit())
    add_site_routes(app, deps, step_up)

    check_declared(app)
    return app


def add_site_routes(app: falcon.App, deps: Deps, step_up: StepUp) -> None:
    catalog, queue = build_catalog(deps), build_queue(deps)
    app.add_route("/api/sites", sites.Sites(catalog))
    app.add_route("/api/sites/{slug}", sites.SiteItem(catalog, step_up))
    app.add_route("/api/sites/{slug}/hosts/{host_id:id}", sites.SiteHostLink(catalog))
    app.add_route("/api/sites/{slug}/grants/{user_id:id}", sites.SiteGrantLink(catalog))
    app.add_route("/api/hosts", hosts.Hosts(catalog))
    app.add_route("/api/hosts/{host_id:id}", hosts.HostItem(catalog, step_up))
    app.add_route("/api/runs", runs.Runs(queue))
    app.add_route("/api/runs/{run_id:id}", runs.RunItem())
    app.add_route("/api/runs/{run_id:id}/cancel", runs.RunCancel(queue))
    app.add_route("/api/runs/{run_id:id}/events", runs.RunEvents())
    app.add_route("/api/runs/{run_id:id}/events/stream",
                  runs.RunEventStream(deps.db, deps.settings.event_stream_max_seconds))


def check_declared(app: falcon.App) -> None:
    """Refuse to serve a route that does not say who may call it."""
    missing = authz.undeclared_routes(app)
    if missing:
        raise RuntimeError(f"routes without an access declaration: {', '.join(missing)}")


def role_env(settings: Settings) -> dict[str, str]:
    """The settings the roles read (as FF_* variables), from the worker's own settings."""
    return {"FF_ENV": settings.env, "FF_ALLOW_UNENCRYPTED": settings.allow_unencrypted,
            "FF_DISK_ENCRYPTION": settings.disk_encryption, "FF_ACME_SERVER": settings.acme_server}


def build_worker(deps: Deps, name: str | None = None) -> Worker:
    settings = deps.settings
    config = WorkerConfig(data_dir=settings.data_dir.resolve(), project_dir=settings.project_dir,
                          site_sources_dir=settings.sources_dir.resolve(),
                          timeout=settings.run_timeout_seconds,
                          heartbeat_seconds=settings.run_lease_seconds / 3,
                          sweep_seconds=min(5.0, settings.run_lease_seconds / 3),
                          role_env=role_env(settings))
    return Worker(build_queue(deps), build_catalog(deps), AnsibleRunnerAdapter(), config, name)

"""Wiring: every service built from its collaborators, in one place, for the HTTP app,
the CLI and the workers alike. Nothing here reads the environment; settings arrive
already parsed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import TYPE_CHECKING

import peewee

from control_api.approvals import ApprovalPolicy, Approvals
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
from control_api.auth.sso_only import SsoOnly
from control_api.auth.stepup import StepUp
from control_api.auth.throttle import LoginThrottle
from control_api.auth.token_issuer import TokenIssuer
from control_api.auth.totp import TotpService
from control_api.auth.users import UserService
from control_api.clock import SecretTokens, SystemClock
from control_api.documents.blobs import BlobStore
from control_api.documents.clamd import ClamdScanner
from control_api.documents.pipeline import Limits, Pipeline
from control_api.documents.service import DocumentService
from control_api.hosts.pinning import HostKeys
from control_api.hosts.rotation import RotationRequests
from control_api.license.caps import LicenseCaps
from control_api.license.store import LicenseStore, trusted_key
from control_api.masterkey import MasterKeys
from control_api.release.updates import ReleaseUpdates
from control_api.release.verify import running_version
from control_api.runs.adapter import AnsibleRunnerAdapter
from control_api.runs.queue import RunQueue
from control_api.runs.worker import Worker, WorkerConfig
from control_api.scim.service import ScimService
from control_api.scim.tokens import ScimTokens
from control_api.settings import Settings
from control_api.sites.catalog import SiteCatalog
from control_api.sso.accounts import SsoAccounts
from control_api.sso.groups import GroupMap, GroupSync
from control_api.sso.oidc import OidcRelyingParty, OidcSettings
from control_api.sso.pending import PendingLogins
from control_api.webauthn.ceremonies import Ceremonies, RelyingParty
from control_api.webauthn.flows import PasskeyFlows
from control_api.webauthn.service import Passkeys, has_passkey

if TYPE_CHECKING:
    from control_api.sso.saml import SamlServiceProvider


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
        sso_only=SsoOnly(deps.settings.sso_only),
    )


def build_sealed(deps: Deps) -> SealedMode:
    settings = deps.settings
    grace = dt.timedelta(days=settings.sealed_mode_grace_days)
    return SealedMode(SealedPolicy(settings.sealed_mode, grace), deps.clock)


def build_guard(deps: Deps) -> CredentialGuard:
    return CredentialGuard(LoginThrottle(deps.db, deps.clock), RefusalLog(deps.db, deps.audit, deps.clock),
                           deps.audit)


def build_users(deps: Deps) -> UserService:
    return UserService(deps.audit, deps.hasher or PasswordHasher(), deps.clock, build_caps(deps))


def build_licenses(deps: Deps) -> LicenseStore:
    settings = deps.settings
    return LicenseStore(deps.audit, deps.clock, trusted_key(settings),
                        dt.timedelta(days=settings.license_grace_days), settings.is_dev)


def build_caps(deps: Deps) -> LicenseCaps:
    return LicenseCaps(deps.db, deps.audit, build_licenses(deps))


def build_second_factors(deps: Deps, totp: TotpService) -> SecondFactors:
    settings = deps.settings
    return SecondFactors(totp, build_mailer(settings), deps.clock, deps.tokens, settings.totp_only,
                         functools.partial(has_passkey, build_relying_party(settings)))


def build_relying_party(settings: Settings) -> RelyingParty:
    return RelyingParty(settings.webauthn_rp_id, settings.webauthn_origins)


def build_passkeys(deps: Deps, credentials: CredentialService, guard: CredentialGuard,
                   totp: TotpService) -> Passkeys:
    ceremonies = Ceremonies(build_relying_party(deps.settings), deps.clock)
    return Passkeys(ceremonies, deps.audit, credentials, guard, deps.hasher or PasswordHasher(), totp,
                    deps.settings.sealed_mode)


def build_logins(deps: Deps, credentials: CredentialService, second: SecondFactors,
                 guard: CredentialGuard) -> LoginService:
    return LoginService(build_users(deps), credentials, deps.audit, guard, second, build_sealed(deps))


def build_mailer(settings: Settings) -> SmtpMailer | None:
    if not settings.smtp_url:
        return None
    return SmtpMailer(settings.smtp_url, settings.smtp_from, ca_file=settings.smtp_ca_file or None)


def build_approvals(deps: Deps, totp: TotpService, guard: CredentialGuard) -> Approvals:
    settings = deps.settings
    policy = ApprovalPolicy(settings.jit_required, dt.timedelta(minutes=settings.jit_ttl_minutes),
                            settings.jit_approvers)
    return Approvals(policy, deps.audit, deps.clock, totp, guard, build_mailer(settings))


@dataclasses.dataclass(frozen=True)
class SsoServices:
    saml: SamlServiceProvider | None
    oidc: OidcRelyingParty | None


def build_sso(deps: Deps, credentials: CredentialService, catalog: SiteCatalog) -> SsoServices:
    """The SAML SP and the OIDC RP, each only when its settings turn it on."""
    settings = deps.settings
    if not (settings.saml_idp_metadata or settings.oidc_issuer):
        return SsoServices(None, None)
    groups = GroupMap.load(settings.sso_group_map)
    accounts = SsoAccounts(credentials, groups, GroupSync(groups, catalog, deps.audit), deps.audit,
                           build_caps(deps), deps.clock)
    pending = PendingLogins(deps.clock, deps.tokens)
    saml = oidc = None
    if settings.saml_idp_metadata:
        # Imported here: pysaml2 loads its XML schemas on import (0.7 s), a cost every CLI
        # command and server worker would pay without SAML.
        from control_api.sso.saml import SamlServiceProvider, SamlSettings

        saml = SamlServiceProvider(
            SamlSettings(settings.saml_idp_metadata, settings.saml_sp_entity_id, settings.sso_base_url,
                         settings.saml_sp_key, settings.saml_sp_cert, settings.saml_idp_initiated,
                         settings.saml_groups_attribute),
            accounts, pending, deps.audit, deps.clock)
    if settings.oidc_issuer:
        secret = ""
        if settings.oidc_client_secret_file:
            with open(settings.oidc_client_secret_file, encoding="utf-8") as handle:
                secret = handle.read().strip()
        oidc = OidcRelyingParty(
            OidcSettings(settings.oidc_issuer, settings.oidc_discovery_file, settings.oidc_client_id, secret,
                         settings.oidc_scopes, settings.oidc_groups_claim, settings.oidc_algorithms,
                         settings.sso_base_url, settings.oidc_ca_file),
            accounts, pending, deps.audit, deps.clock)
    return SsoServices(saml, oidc)


def build_scim_tokens(deps: Deps) -> ScimTokens:
    return ScimTokens(deps.audit, deps.clock, deps.tokens, LoginThrottle(deps.db, deps.clock))


def build_scim(deps: Deps, credentials: CredentialService, catalog: SiteCatalog) -> ScimService:
    """SCIM provisioning; its groups take the role and grants FF_SSO_GROUP_MAP gives."""
    groups = GroupMap.load(deps.settings.sso_group_map)
    return ScimService(deps.audit, deps.clock, build_users(deps), credentials, groups,
                       GroupSync(groups, catalog, deps.audit), build_caps(deps))


def build_catalog(deps: Deps) -> SiteCatalog:
    return SiteCatalog(deps.audit, deps.keys, deps.clock, development=deps.settings.is_dev,
                       caps=build_caps(deps))


def build_queue(deps: Deps) -> RunQueue:
    return RunQueue(deps.db, deps.audit, deps.clock, dt.timedelta(seconds=deps.settings.run_lease_seconds))


@dataclasses.dataclass(frozen=True)
class Services:
    """What the HTTP resources call; built once per app."""
    credentials: CredentialService
    logins: LoginService
    step_up: StepUp
    accounts: AccountService
    issuer: TokenIssuer
    catalog: SiteCatalog
    queue: RunQueue
    approvals: Approvals
    documents: DocumentService
    passkeys: Passkeys
    passkey_flows: PasskeyFlows


def build_documents(deps: Deps) -> DocumentService:
    settings = deps.settings
    limits = Limits(seconds=settings.flatten_timeout_seconds, memory_bytes=settings.flatten_memory_mb << 20)
    # clamd reads inside PDFs (inflating their streams): give it a minute even when flattening gets less.
    scanner = ClamdScanner(settings.clamd_socket, timeout=max(60, settings.flatten_timeout_seconds))
    pipeline = Pipeline(scanner,
                        settings.require_av, limits)
    return DocumentService(deps.audit, deps.clock, BlobStore(settings.documents_dir), pipeline)


def build_services(deps: Deps) -> Services:
    settings = deps.settings
    credentials = build_credentials(deps)
    totp = TotpService(deps.keys)
    second, guard = build_second_factors(deps, totp), build_guard(deps)
    step_up = StepUp(settings.require_step_up, totp, guard, deps.audit, deps.clock, deps.tokens)
    accounts = AccountService(deps.audit, deps.hasher or PasswordHasher(), credentials, totp, guard,
                              deps.clock, settings.totp_only, settings.sealed_mode)
    logins = build_logins(deps, credentials, second, guard)
    passkeys = build_passkeys(deps, credentials, guard, totp)
    return Services(
        credentials=credentials,
        logins=logins,
        step_up=step_up,
        accounts=accounts,
        issuer=TokenIssuer(credentials, second, build_sealed(deps)),
        catalog=build_catalog(deps),
        queue=build_queue(deps),
        approvals=build_approvals(deps, totp, guard),
        documents=build_documents(deps),
        passkeys=passkeys,
        passkey_flows=PasskeyFlows(passkeys, logins, guard, step_up),
    )


def build_release_updates(deps: Deps) -> ReleaseUpdates:
    settings = deps.settings
    return ReleaseUpdates(deps.audit, deps.clock, settings.data_dir / "updates", settings.release_public_key,
                          settings.max_release_mb << 20, running_version())


def build_host_keys(deps: Deps) -> HostKeys:
    return HostKeys(deps.audit)


def build_rotations(deps: Deps) -> RotationRequests:
    return RotationRequests(build_queue(deps))


def role_env(settings: Settings) -> dict[str, str]:
    """The settings the roles read (as FF_* variables), from the worker's own settings."""
    return {"FF_ENV": settings.env, "FF_ALLOW_UNENCRYPTED": "1" if settings.allow_unencrypted else "0",
            "FF_DISK_ENCRYPTION": settings.disk_encryption, "FF_ACME_SERVER": settings.acme_server}


def build_worker(deps: Deps, name: str | None = None) -> Worker:
    settings = deps.settings
    config = WorkerConfig(data_dir=settings.data_dir.resolve(), project_dir=settings.project_dir,
                          site_sources_dir=settings.sources_dir.resolve(),
                          documents_dir=settings.documents_dir.resolve(),
                          offline_dir=settings.offline_repository,
                          timeout=settings.run_timeout_seconds,
                          heartbeat_seconds=settings.run_lease_seconds / 3,
                          sweep_seconds=min(5.0, settings.run_lease_seconds / 3),
                          role_env=role_env(settings))
    return Worker(build_queue(deps), build_catalog(deps), AnsibleRunnerAdapter(), config, name)

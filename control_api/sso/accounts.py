"""From a verified IdP identity to a session: the account linked to the IdP's subject
(made just in time on its first login), its role and grants set from its groups, and a
session minted by the CredentialService exactly as a password login's is. Audited.

Accounts are linked by (protocol, issuer, subject), never by email: an IdP that asserts
the email of an existing local account does not take it over (refused, and audited).
The one exception is an account the IdP itself provisioned over SCIM (it has no
password, and the customer's IdP made it): its first SSO login with that address links
it, once per protocol and issuer (`sso.identity_linked`).
Just-in-time accounts have no password (a value no password hash ever has), count
against the license's account cap, and carry the groups' role.
"""

from __future__ import annotations

import dataclasses

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService, Principal
from control_api.auth.users import email_key, find_by_email, validate_email
from control_api.clock import SystemClock
from control_api.errors import ApiError
from control_api.license.caps import LicenseCaps, audit_cap_refusals
from control_api.models import User
from control_api.scim.models import ScimUser
from control_api.sso.groups import GroupMap, GroupSync
from control_api.sso.models import SsoIdentity

# Never a password hash (those are "bcrypt-sha256$..."): PasswordHasher.verify is False for it.
NO_PASSWORD = "!sso"  # noqa: S105 (a marker that matches no password, not a secret)


class SsoRefused(ApiError):
    """A verified identity that may not log in here; the reason is audited, the client is
    told only what it may know."""

    status = 403
    title = "Single sign-on refused"


@dataclasses.dataclass(frozen=True)
class IdpIdentity:
    protocol: str  # "saml" | "oidc"
    issuer: str
    subject: str
    email: str | None
    groups: tuple[str, ...]
    detail: dict  # for the audit event: the assertion id, the session index, ...


class SsoAccounts:
    def __init__(self, credentials: CredentialService, groups: GroupMap, sync: GroupSync,
                 audit: AuditLog, caps: LicenseCaps, clock: SystemClock) -> None:
        self.credentials, self.groups, self.sync = credentials, groups, sync
        self.audit, self.caps, self.clock = audit, caps, clock

    @audit_cap_refusals
    def sign_in(self, who: IdpIdentity, actor: Actor, previous: Principal | None) -> tuple[str, User]:
        """A new session for the account this identity is linked to (made now if new)."""
        entitlement = self.groups.entitlement(who.groups)
        target = f"{who.protocol}:{who.issuer}"
        if entitlement.role is None:
            self._refuse(actor, target, who, "no group of this identity is in FF_SSO_GROUP_MAP",
                         "your identity provider's groups give no access here")
        try:
            with self.audit.mutation():
                user, created = self._account(who, actor, target)
                if user.disabled_at is not None:
                    raise _Refusal("the linked account is disabled", "this account is disabled")
                user_actor = Actor(f"user:{user.id}", actor.source_ip, actor.user_agent)
                changes = self.sync.apply(user, entitlement, user_actor, who.protocol)
                SsoIdentity.update(last_login_at=self.clock.now()).where(
                    (SsoIdentity.user == user) & (SsoIdentity.protocol == who.protocol)
                    & (SsoIdentity.issuer == who.issuer) & (SsoIdentity.subject == who.subject)).execute()
                if previous is not None and previous.via == "session":
                    self.credentials.end_session(previous.credential_id, actor, "auth.session_replaced")
                value, _ = self.credentials.start_session(
                    user, user_actor,
                    {"method": who.protocol, "issuer": who.issuer, "subject": who.subject,
                     "groups": list(entitlement.groups), "created": created, **changes, **who.detail})
        except _Refusal as refusal:
            self._refuse(actor, target, who, refusal.reason, refusal.told)
        return value, user

    def _account(self, who: IdpIdentity, actor: Actor, target: str) -> tuple[User, bool]:
        link = (SsoIdentity.select(SsoIdentity, User).join(User)
                .where((SsoIdentity.protocol == who.protocol) & (SsoIdentity.issuer == who.issuer)
                       & (SsoIdentity.subject == who.subject)).first())
        if link is not None:
            return link.user, False
        if not who.email:
            raise _Refusal("the identity carries no email", "your identity provider sent no email address")
        try:
            email = validate_email(who.email)
        except ValueError:
            raise _Refusal("the identity's email is not valid",
                           "your identity provider's email is not valid") from None
        existing = find_by_email(email)
        if existing is not None:
            return self._link_provisioned(existing, who, actor), False
        self.caps.reserve("admins", actor)
        now = self.clock.now()
        try:
            with self.audit.db.atomic():  # a savepoint: a racing twin login loses cleanly
                user = User.create(email=email, email_key=email_key(email), role="admin",
                                   password_hash=NO_PASSWORD, created_at=now)
                SsoIdentity.create(user=user, protocol=who.protocol, issuer=who.issuer,
                                   subject=who.subject, created_at=now)
        except peewee.IntegrityError:
            raise _Refusal("a concurrent login made this account", "try again") from None
        self.audit.record(actor, "sso.user_created", f"user:{user.id}",
                          {"email": email, "protocol": who.protocol, "issuer": who.issuer,
                           "subject": who.subject})
        return user, True

    def _link_provisioned(self, user: User, who: IdpIdentity, actor: Actor) -> User:
        provisioned = ScimUser.select().where(ScimUser.user == user).exists()
        linked = SsoIdentity.select().where(
            (SsoIdentity.user == user) & (SsoIdentity.protocol == who.protocol)
            & (SsoIdentity.issuer == who.issuer)).exists()
        if not provisioned or linked:
            raise _Refusal("an account with this email exists and is not linked to this identity",
                           "an account with this email already exists here; ask a superadmin")
        try:
            with self.audit.db.atomic():
                SsoIdentity.create(user=user, protocol=who.protocol, issuer=who.issuer, subject=who.subject,
                                   created_at=self.clock.now())
        except peewee.IntegrityError:
            raise _Refusal("a concurrent login linked this account", "try again") from None
        self.audit.record(actor, "sso.identity_linked", f"user:{user.id}",
                          {"email": user.email, "protocol": who.protocol, "issuer": who.issuer,
                           "subject": who.subject, "provisioned_by": "scim"})
        return user

    def _refuse(self, actor: Actor, target: str, who: IdpIdentity, reason: str, told: str):
        self.audit.record_alone(actor, "sso.login_refused", target,
                                {"reason": reason, "subject": who.subject, "email": who.email,
                                 "groups": list(who.groups)[:50]})
        raise SsoRefused(told)


class _Refusal(Exception):
    def __init__(self, reason: str, told: str) -> None:
        super().__init__(reason)
        self.reason, self.told = reason, told

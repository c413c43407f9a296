"""A user's passkeys: registering them (the WebAuthn registration ceremony, §7.1),
listing, renaming and removing them, and judging an assertion against the stored
credential (§7.2 steps 21-24), all audited.

- Several credentials per user; each credential id belongs to one account.
- Registering needs a cookie session, and either the current password (a throttled
  credential check) or a session opened less than REAUTH_WINDOW ago: an API token
  cannot add a login credential, and neither can a session left open at a desk.
  The first passkey of an account without a second factor ends every other session
  and token (as enrolling TOTP does: what was made without a second factor does not
  inherit it).
- Removing one needs a step-up token (checked by the route, always) and ends every
  session and token of the account, as removing TOTP does; under sealed mode the last
  strong factor (TOTP or a passkey) cannot be removed.
- An assertion whose signature counter did not move past the stored one, when either is
  non-zero, comes from a cloned authenticator or a replay (§6.1.1): refused, and
  recorded as `auth.webauthn_sign_count_regression` (critical).
- The backup-eligible flag (BE) is fixed for a credential's life (§6.3.3): an
  assertion whose BE differs from the registered one, or that claims to be backed up
  (BS) for a credential registered device-bound, is refused and recorded as
  `auth.webauthn_flags_refused` (critical). BS may change on a backup-eligible one.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import NoReturn

import peewee
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.structs import CredentialDeviceType

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService, Principal
from control_api.auth.guard import CredentialGuard, password_check
from control_api.auth.passwords import PasswordHasher
from control_api.auth.totp import TotpService
from control_api.auth.users import email_key
from control_api.errors import ApiError, Conflict, InvalidInput, NotFound
from control_api.models import Session, User
from control_api.webauthn.ceremonies import (
    Ceremonies,
    NotVerified,
    RelyingParty,
    client_challenge,
    raw_credential_id,
    transports_of,
)
from control_api.webauthn.models import WebauthnCredential, WebauthnUser

REAUTH_WINDOW = dt.timedelta(minutes=5)
MAX_CREDENTIALS = 20  # per user
NAME_MAX = 64


def has_passkey(rp: RelyingParty, user: User) -> bool:
    """Whether a login of `user` may use a passkey (the second-factor methods ask)."""
    return rp.enabled and WebauthnCredential.select().where(WebauthnCredential.user == user).exists()


class RegistrationRefused(ApiError):
    status = 400
    title = "Passkey refused"


class Reauthenticate(ApiError):
    status = 403
    title = "Re-authentication required"


def credential_json(credential: WebauthnCredential) -> dict:
    def iso(value):
        return value.isoformat() + "Z" if value else None

    return {"id": credential.id, "name": credential.name, "created_at": iso(credential.created_at),
            "last_used_at": iso(credential.last_used_at), "aaguid": credential.aaguid,
            "transports": json.loads(credential.transports), "backup_eligible": credential.backup_eligible,
            "backed_up": credential.backed_up}


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidInput(f"'name' must be printable text of 1 to {NAME_MAX} characters")
    return name.strip()


class Passkeys:
    def __init__(self, ceremonies: Ceremonies, audit: AuditLog, credentials: CredentialService,
                 guard: CredentialGuard, hasher: PasswordHasher, totp: TotpService, sealed: bool) -> None:
        self.ceremonies, self.audit, self.credentials = ceremonies, audit, credentials
        self.guard, self.hasher, self.totp, self.sealed = guard, hasher, totp, sealed
        self.clock = ceremonies.clock

    @property
    def enabled(self) -> bool:
        return self.ceremonies.rp.enabled

    def of(self, user: User) -> list[WebauthnCredential]:
        return list(WebauthnCredential.select().where(WebauthnCredential.user == user)
                    .order_by(WebauthnCredential.id))

    def user_handle(self, user: User) -> bytes:
        """The user's random WebAuthn handle, made on first use."""
        row = WebauthnUser.get_or_none(WebauthnUser.user == user)
        if row is None:
            WebauthnUser.insert(user=user, user_handle=bytes_to_base64url(secrets.token_bytes(32))) \
                .on_conflict_ignore().execute()
            row = WebauthnUser.get(WebauthnUser.user == user)
        return base64url_to_bytes(row.user_handle)

    # -- registration -------------------------------------------------------------

    def registration_options(self, principal: Principal, password: str | None, actor: Actor) -> dict:
        self.ceremonies.require()
        user = principal.user
        if principal.via != "session":
            raise Reauthenticate("passkeys are registered from a login session, not with an API token")
        if password is not None:
            check = password_check("reauth", email_key(user.email), f"user:{user.id}", user.break_glass)
            if not self.guard.run(check, actor, lambda: self.hasher.verify(password, user.password_hash),
                                  proves_account=False, metadata={"factor": "password"}):
                raise Reauthenticate("the current password is not right")
        else:
            opened = Session.get_by_id(principal.credential_id).created_at
            if self.clock.now() - opened >= REAUTH_WINDOW:
                raise Reauthenticate("send the current 'password', or log in again: a passkey is added "
                                     f"within {REAUTH_WINDOW.seconds // 60} minutes of a login")
        existing = self.of(user)
        if len(existing) >= MAX_CREDENTIALS:
            raise Conflict(f"an account holds at most {MAX_CREDENTIALS} passkeys: remove one first")
        challenge = self.ceremonies.issue("register", actor.source_ip, user=user,
                                          session_id=principal.credential_id)
        return self.ceremonies.creation_options(challenge, self.user_handle(user), user.email,
                                                [c.credential_id for c in existing])

    def register(self, principal: Principal, credential: object, name: object,
                 actor: Actor) -> WebauthnCredential:
        self.ceremonies.require()
        name = check_name(name)
        challenge = client_challenge(credential)
        user = principal.user
        found = self.ceremonies.consume(challenge, "register")
        if found is None or found.user_id != user.id or found.session_id != principal.credential_id:
            self._refuse(actor, user, "the registration challenge is unknown, used, expired or another "
                                      "session's: start again")
        try:
            verified = self.ceremonies.verify_registration(credential, challenge)
        except NotVerified as exc:
            self._refuse(actor, user, str(exc))
        eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
        had_second_factor = self.totp.credential(user) is not None or user.email_2fa_at is not None \
            or bool(self.of(user))
        try:
            with self.audit.mutation():
                row = WebauthnCredential.create(
                    user=user, credential_id=bytes_to_base64url(verified.credential_id),
                    public_key=bytes_to_base64url(verified.credential_public_key),
                    sign_count=verified.sign_count, aaguid=verified.aaguid,
                    fmt=str(getattr(verified.fmt, "value", verified.fmt)),
                    transports=json.dumps(transports_of(credential)), backup_eligible=eligible,
                    backed_up=verified.credential_backed_up, name=name, created_at=self.clock.now())
                self.audit.record(actor, "auth.webauthn_registered", f"user:{user.id}", {
                    "credential": row.id, "name": name, "aaguid": row.aaguid, "fmt": row.fmt,
                    "backup_eligible": eligible, "backed_up": row.backed_up, "sign_count": row.sign_count})
                if not had_second_factor:
                    self.credentials.end_all_access(user, actor, "second factor enrolled")
        except peewee.IntegrityError:
            raise Conflict("this passkey is already registered, or you have one of this name") from None
        return row

    def _refuse(self, actor: Actor, user: User, reason: str) -> NoReturn:
        self.audit.record_alone(actor, "auth.webauthn_registration_refused", f"user:{user.id}",
                                {"reason": reason})
        raise RegistrationRefused(f"the passkey was not registered: {reason}")

    # -- management ---------------------------------------------------------------

    def _own(self, user: User, credential_id: int) -> WebauthnCredential:
        found = WebauthnCredential.get_or_none((WebauthnCredential.id == credential_id)
                                               & (WebauthnCredential.user == user))
        if found is None:
            raise NotFound("you have no passkey with this id", title="No such passkey")
        return found

    def rename(self, user: User, credential_id: int, name: object, actor: Actor) -> WebauthnCredential:
        found, name = self._own(user, credential_id), check_name(name)
        try:
            with self.audit.mutation():
                WebauthnCredential.update(name=name).where(WebauthnCredential.id == found.id).execute()
                self.audit.record(actor, "auth.webauthn_renamed", f"user:{user.id}",
                                  {"credential": found.id, "from": found.name, "to": name})
        except peewee.IntegrityError:
            raise Conflict("you already have a passkey of this name") from None
        return WebauthnCredential.get_by_id(found.id)

    def remove(self, user: User, credential_id: int, actor: Actor) -> None:
        found = self._own(user, credential_id)
        if self.sealed and self.totp.credential(user) is None and len(self.of(user)) == 1:
            raise Conflict("sealed mode: this is your last passkey and you have no TOTP; enrol another "
                           "factor first")
        with self.audit.mutation():
            WebauthnCredential.delete().where(WebauthnCredential.id == found.id).execute()
            self.audit.record(actor, "auth.webauthn_removed", f"user:{user.id}",
                              {"credential": found.id, "name": found.name})
            self.credentials.end_all_access(user, actor, "second factor removed")

    # -- assertions ---------------------------------------------------------------

    def judge(self, row: WebauthnCredential, credential: dict, challenge: bytes, actor: Actor) -> None:
        """Verify an assertion made with `row` and move its counter; NotVerified if it fails
        (a counter regression and a flag change are also recorded as critical alerts)."""
        verified = self.ceremonies.verify_assertion(credential, challenge, base64url_to_bytes(row.public_key))
        eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
        target = f"user:{row.user_id}"
        if eligible != row.backup_eligible or (verified.credential_backed_up and not row.backup_eligible):
            reason = ("registered device-bound, now claims to be backed up" if not row.backup_eligible
                      else "registered backup-eligible, now claims not to be")
            self.audit.record_alone(actor, "auth.webauthn_flags_refused", target, {
                "severity": "critical", "credential": row.id, "reason": reason,
                "registered": {"backup_eligible": row.backup_eligible, "backed_up": row.backed_up},
                "asserted": {"backup_eligible": eligible, "backed_up": verified.credential_backed_up}})
            raise NotVerified(f"the passkey's backup flags changed: {reason}")
        new, stored = verified.new_sign_count, row.sign_count
        if (new > 0 or stored > 0) and new <= stored:
            self.audit.record_alone(actor, "auth.webauthn_sign_count_regression", target, {
                "severity": "critical", "credential": row.id, "stored": stored, "asserted": new,
                "notice": "a cloned authenticator or a replayed assertion"})
            raise NotVerified(f"the signature counter went from {stored} to {new}: a cloned authenticator?")
        # Compare-and-set: of two uses racing with one counter value, one moves it.
        moved = WebauthnCredential.update(
            sign_count=new, backed_up=verified.credential_backed_up, last_used_at=self.clock.now(),
        ).where((WebauthnCredential.id == row.id) & (WebauthnCredential.sign_count == stored)).execute()
        if moved != 1:
            raise NotVerified("another use of this passkey moved its counter meanwhile")

    def credential_of(self, credential: dict) -> WebauthnCredential | None:
        """The stored credential a response names (by its raw id), if any."""
        return WebauthnCredential.select(WebauthnCredential, User).join(User).where(
            WebauthnCredential.credential_id == raw_credential_id(credential)).first()

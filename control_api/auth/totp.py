"""TOTP second factor (RFC 6238 over RFC 4226) and single-use recovery codes.

Seeds are stored encrypted (AAD bound to the user). A code is accepted for the
current 30-second step or one step either side, and each step only once: the last
accepted step is stored, so a replayed or older code fails. Recovery codes are 10
random codes shown once and stored as SHA-256 digests (they carry 60 bits each).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyotp

from control_api.crypto import Aad
from control_api.masterkey import MasterKeys
from control_api.models import RecoveryCode, TotpCredential, User

STEP_SECONDS = 30
ISSUER = "WECO"
RECOVERY_CODES = 10


def code_at(seed_b32: str, step: int, digits: int = 6, digest=hashlib.sha1) -> str:
    return pyotp.TOTP(seed_b32, digits=digits, digest=digest, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def _aad(user_id: int) -> Aad:
    return Aad("totp_credentials", "seed", user_id)


def _digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


class TotpService:
    def __init__(self, keys: MasterKeys) -> None:
        self.keys = keys

    def begin(self, user: User, now_created) -> tuple[str, str]:
        """A new, unconfirmed seed for `user`: (seed, otpauth URI)."""
        seed = pyotp.random_base32(32)
        encrypted = self.keys.encrypt(seed.encode(), aad=_aad(user.id))
        TotpCredential.delete().where(TotpCredential.user == user).execute()
        TotpCredential.create(user=user, seed=encrypted, created_at=now_created)
        uri = pyotp.TOTP(seed).provisioning_uri(name=user.email, issuer_name=ISSUER)
        return seed, uri

    def credential(self, user: User, confirmed: bool = True) -> TotpCredential | None:
        query = TotpCredential.select().where(TotpCredential.user == user)
        if confirmed:
            query = query.where(TotpCredential.confirmed_at.is_null(False))
        return query.first()

    def check(self, user: User, code: str, unix_time: float, confirmed: bool = True) -> bool:
        """True once per time step for a right code; records the step it used."""
        credential = self.credential(user, confirmed)
        if credential is None or not code.isdigit() or len(code) != 6:
            return False
        seed = self.keys.decrypt(credential.seed, aad=_aad(user.id)).decode()
        now_step = int(unix_time // STEP_SECONDS)
        for step in (now_step - 1, now_step, now_step + 1):
            if step > credential.last_step and hmac.compare_digest(code_at(seed, step), code):
                # Compare-and-set: two requests racing with one code cannot both win.
                won = TotpCredential.update(last_step=step).where(
                    (TotpCredential.user == user) & (TotpCredential.last_step < step)).execute()
                return won == 1
        return False

    def confirm(self, user: User, now) -> list[str]:
        TotpCredential.update(confirmed_at=now).where(TotpCredential.user == user).execute()
        return self.new_recovery_codes(user)

    def new_recovery_codes(self, user: User) -> list[str]:
        RecoveryCode.delete().where(RecoveryCode.user == user).execute()
        codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}-{secrets.token_hex(2)}"
                 for _ in range(RECOVERY_CODES)]
        RecoveryCode.insert_many([{"user": user, "code_hash": _digest(c)} for c in codes]).execute()
        return codes

    def use_recovery_code(self, user: User, code: str, now) -> bool:
        used = RecoveryCode.update(used_at=now).where(
            (RecoveryCode.user == user) & (RecoveryCode.code_hash == _digest(code))
            & RecoveryCode.used_at.is_null()).execute()
        return used == 1

    def remove(self, user: User) -> None:
        TotpCredential.delete().where(TotpCredential.user == user).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user).execute()

"""The second step of a login: short-lived challenges, and the factors that answer
them (TOTP, a recovery code, a code sent by email, or a passkey: control_api/webauthn).

A challenge's lifetime runs from its creation: 5 minutes, or 10 once an email code is
asked for (mail can be slow), however often a code is resent. It carries the user's
credential epoch from the password check, so a credential change made meanwhile
(which also deletes pending challenges) leaves it unusable."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable

from control_api.auth.credentials import digest
from control_api.auth.mailer import MailError, SmtpMailer
from control_api.auth.totp import TotpService
from control_api.clock import SecretTokens, SystemClock, unix_seconds
from control_api.errors import ApiError
from control_api.models import LoginChallenge, RecoveryCode, User

CHALLENGE_LIFETIME = dt.timedelta(minutes=5)
CHALLENGE_ATTEMPTS = 5
EMAIL_CODE_LIFETIME = dt.timedelta(minutes=10)  # from the challenge's creation, not from the mail
RESEND_AFTER = dt.timedelta(seconds=60)  # one mail a minute per challenge, at most


class SecondFactorError(ApiError):
    """The challenge or the code is not good; the description is safe to show."""

    status = 401
    title = "Second factor refused"


_SPENT = "the login challenge is unknown, used up or expired: log in again"


def _email_code_hash(challenge_id: int, code: str) -> str:
    return hmac.new(f"weco/email-code/v1/{challenge_id}".encode(), code.encode(), hashlib.sha256).hexdigest()


class SecondFactors:
    """The factors themselves. Which ones a login may use (sealed mode narrows them) is
    the caller's decision, made once: LoginService checks before calling in here."""

    def __init__(self, totp: TotpService, mailer: SmtpMailer | None, clock: SystemClock,
                 tokens: SecretTokens, totp_only: bool,
                 has_passkey: Callable[[User], bool] | None = None) -> None:
        self.totp, self.mailer, self.clock, self.tokens = totp, mailer, clock, tokens
        self.totp_only = totp_only
        self.has_passkey = has_passkey or (lambda user: False)

    def methods(self, user: User) -> list[str]:
        methods = []
        if self.totp.credential(user) is not None:
            methods.append("totp")
            unused = RecoveryCode.select().where((RecoveryCode.user == user) & RecoveryCode.used_at.is_null())
            if unused.exists():
                methods.append("recovery_code")
        if user.email_2fa_at is not None and not self.totp_only and self.mailer is not None:
            methods.append("email_code")
        if self.has_passkey(user):
            methods.append("webauthn")  # answered at /api/auth/login/webauthn, never with a code
        return methods

    def open_challenge(self, user: User) -> str:
        """A challenge for `user`, as read when its password was checked (its epoch)."""
        value = self.tokens.token(32)
        now = self.clock.now()
        LoginChallenge.create(token_hash=digest(value), user=user, created_at=now,
                              expires_at=now + CHALLENGE_LIFETIME, credential_epoch=user.credential_epoch)
        return value

    def challenge(self, value: str) -> LoginChallenge:
        found = (LoginChallenge.select(LoginChallenge, User).join(User)
                 .where(LoginChallenge.token_hash == digest(value)).first())
        if (found is None or found.used_at is not None or found.expires_at <= self.clock.now()
                or found.attempts >= CHALLENGE_ATTEMPTS or found.created_at is None
                or found.credential_epoch != found.user.credential_epoch):
            raise SecondFactorError(_SPENT)
        return found

    def send_email_code(self, challenge: LoginChallenge) -> None:
        now = self.clock.now()
        too_soon = SecondFactorError(f"a code was sent less than {RESEND_AFTER.seconds} seconds ago")
        if challenge.email_code_sent_at and now - challenge.email_code_sent_at < RESEND_AFTER:
            raise too_soon
        code = f"{secrets.randbelow(10**6):06d}"
        # The code and its challenge live until 10 minutes after the challenge was made
        # (mail can be slow); resending never moves that, so no challenge lives longer.
        until = challenge.created_at + EMAIL_CODE_LIFETIME
        # The same conditions again, atomically: of concurrent sends, one mails a code.
        sent = LoginChallenge.update(
            email_code_hash=_email_code_hash(challenge.id, code), email_code_expires_at=until,
            email_code_sent_at=now, expires_at=until,
        ).where(
            (LoginChallenge.id == challenge.id) & LoginChallenge.used_at.is_null()
            & (LoginChallenge.expires_at > now)
            & (LoginChallenge.email_code_sent_at.is_null()
               | (LoginChallenge.email_code_sent_at <= now - RESEND_AFTER))).execute()
        if sent != 1:
            raise too_soon if self._live(challenge.id, now) else SecondFactorError(_SPENT)
        minutes = -(-int((until - now).total_seconds()) // 60)
        minutes_left = f"{minutes} minute" + ("s" if minutes != 1 else "")
        try:
            self.mailer.send(challenge.user.email, "Your WECO login code",
                             f"Your one-time login code is {code}. It expires in {minutes_left}.\n"
                             "If you did not try to log in, tell your security team.")
        except MailError as exc:
            raise SecondFactorError(str(exc)) from None

    @staticmethod
    def _live(challenge_id: int, now: dt.datetime) -> bool:
        return LoginChallenge.select().where(
            (LoginChallenge.id == challenge_id) & LoginChallenge.used_at.is_null()
            & (LoginChallenge.expires_at > now)).exists()

    def reserve(self, challenge: LoginChallenge) -> bool:
        """Take one of the challenge's tries, atomically, before any code is checked: of
        any number of concurrent answers (on any worker) at most CHALLENGE_ATTEMPTS win."""
        taken = LoginChallenge.update(attempts=LoginChallenge.attempts + 1).where(
            (LoginChallenge.id == challenge.id) & (LoginChallenge.attempts < CHALLENGE_ATTEMPTS)
            & LoginChallenge.used_at.is_null() & (LoginChallenge.expires_at > self.clock.now())).execute()
        return taken == 1

    def answer(self, challenge: LoginChallenge, method: str, code: str) -> bool:
        """Check one answer, whose try `reserve` took; the right one ends the challenge."""
        now = self.clock.now()
        user = challenge.user
        if method == "totp":
            ok = self.totp.check(user, code, unix_seconds(now))
        elif method == "recovery_code":
            ok = self.totp.use_recovery_code(user, code, now)
        elif method == "email_code":
            fresh = LoginChallenge.get_by_id(challenge.id)
            ok = (fresh.email_code_hash is not None and fresh.email_code_expires_at > now
                  and hmac.compare_digest(fresh.email_code_hash, _email_code_hash(challenge.id, code)))
        else:
            ok = False  # a passkey is not a code: see control_api/webauthn/flows.py
        return self.close(challenge) if ok else False

    def close(self, challenge: LoginChallenge) -> bool:
        """End a challenge its right answer met; False if another answer ended it first."""
        used = LoginChallenge.update(used_at=self.clock.now()).where(
            (LoginChallenge.id == challenge.id) & LoginChallenge.used_at.is_null()).execute()
        return used == 1

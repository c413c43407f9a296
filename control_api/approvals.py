"""Four-eyes approval of destructive actions (FF_JIT_REQUIRED=1).

A superadmin asks to take one action with its exact parameters; the request is bound
to a digest of the canonical action and parameters. Other superadmins approve it, each
proving a second factor with a fresh TOTP code; the requester can never approve their
own request, by any path. The action, sent with `X-Approval: ID`, consumes the request
in its own transaction, once: an approval for other parameters, a replay, an expired
request, a withdrawn or too few approvals are refused, and every refusal is audited.
Nothing is deleted: a request and every vote on it stay in the store and the chain.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable

import peewee

from control_api import authz
from control_api.audit.log import Actor, AuditLog
from control_api.auth.guard import Check, CredentialGuard
from control_api.auth.mailer import MailError, SmtpMailer
from control_api.auth.totp import TotpService
from control_api.auth.users import email_key
from control_api.body import STORE_INT_MAX
from control_api.clock import SystemClock, unix_seconds
from control_api.errors import Conflict, Forbidden, InvalidInput, NotFound
from control_api.hosts import hostkeys
from control_api.models import ApprovalRequest, ApprovalVote, Host, Site, User
from control_api.release.models import Release
from control_api.sites import patterns

log = logging.getLogger(__name__)

HEADER = "X-Approval"
REASON_MAX = 500


def _store_id(value: object) -> int:
    if type(value) is not int or not 1 <= value <= STORE_INT_MAX:  # never a bool
        raise ValueError
    return value


def _slug(value: object) -> str:
    if not patterns.matches(patterns.SLUG, value):
        raise ValueError
    return value


def _sha256(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError
    return value


def _host_key(value: object) -> str:
    return hostkeys.parse(value).line  # its canonical form: what the re-pin stores


# The actions that need approval, and the parameters that name exactly what they do,
# each with the check that makes it canonical (so the digest is of what will be done).
COVERED: dict[str, dict[str, Callable[[object], object]]] = {
    "site.delete": {"slug": _slug},
    "host.delete": {"host_id": _store_id},
    "host.rotate_credentials": {"host_id": _store_id},
    "host.repin_key": {"host_id": _store_id, "ssh_host_key": _host_key},
    # Self-update: the received release row and the SHA-256 of the bundle it holds.
    "release.apply": {"release_id": _store_id, "sha256": _sha256},
}


class ApprovalRefused(Forbidden):
    title = "Approval refused"


@dataclasses.dataclass(frozen=True)
class ApprovalPolicy:
    required: bool
    ttl: dt.timedelta
    approvals_needed: int


def action_digest(action: str, params: dict) -> str:
    """SHA-256 of the canonical action and parameters, under a label of its own."""
    canonical = json.dumps({"action": action, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(b"weco/approval/v1\x00" + canonical.encode()).hexdigest()


def check_params(action: object, params: object) -> tuple[str, dict]:
    """The action and its parameters in canonical form, or InvalidInput."""
    if not isinstance(action, str) or action not in COVERED:
        raise InvalidInput(f"'action' must be one of: {', '.join(sorted(COVERED))}")
    shape = COVERED[action]
    problem = f"'params' of {action} must be exactly: {', '.join(shape)}, each as its route takes it"
    if not isinstance(params, dict) or set(params) != set(shape):
        raise InvalidInput(problem)
    try:
        return action, {name: canonical(params[name]) for name, canonical in shape.items()}
    except ValueError:  # InvalidInput is one too
        raise InvalidInput(problem) from None


class Approvals:
    def __init__(self, policy: ApprovalPolicy, audit: AuditLog, clock: SystemClock, totp: TotpService,
                 guard: CredentialGuard, mailer: SmtpMailer | None) -> None:
        self.policy, self.audit, self.clock = policy, audit, clock
        self.totp, self.guard, self.mailer = totp, guard, mailer

    header = HEADER

    @property
    def required(self) -> bool:
        return self.policy.required

    # -- the request's life ---------------------------------------------------------

    def request(self, user: User, action: object, params: object, reason: object,
                actor: Actor) -> ApprovalRequest:
        action, params = check_params(action, params)
        if not isinstance(reason, str) or not 1 <= len(reason) <= REASON_MAX:
            raise InvalidInput(f"'reason' must be 1-{REASON_MAX} characters: say why, for the approvers")
        _target_exists(action, params)
        now = self.clock.now()
        with self.audit.mutation():
            request = ApprovalRequest.create(
                action=action, params_json=json.dumps(params, sort_keys=True),
                digest=action_digest(action, params), reason=reason, requested_by=user,
                approvals_needed=self.policy.approvals_needed, created_at=now,
                expires_at=now + self.policy.ttl)
            self.audit.record(actor, "approval.request", f"approval:{request.id}",
                              {"action": action, "params": params, "digest": request.digest})
        self._tell_approvers(request, user)
        return request

    def approve(self, approver: User, request_id: int, code: object, actor: Actor) -> ApprovalRequest:
        request = self._open(request_id, actor)
        if request.requested_by_id == approver.id:
            self._refuse(actor, request, "the requester approved their own request",
                         "you cannot approve your own request: another superadmin must")
        if self.totp.credential(approver) is None:
            self._refuse(actor, request, "the approver has no TOTP", "approving needs TOTP: enrol it first")
        check = Check("step_up", email_key(approver.email), f"user:{approver.id}")
        now = self.clock.now()
        if not isinstance(code, str) or not self.guard.run(
                check, actor, lambda: self.totp.check(approver, code, unix_seconds(now)), proves_account=True,
                metadata={"scope": "approval.approve"}):
            raise ApprovalRefused("the TOTP code is not right")
        with self.audit.mutation():
            if _live_votes(request).where(ApprovalVote.approver == approver).exists():
                raise Conflict("you have already approved this request")
            ApprovalVote.create(request=request, approver=approver, approved_at=now)
            self.audit.record(actor, "approval.approve", f"approval:{request.id}",
                              {"digest": request.digest, "approvals": _live_votes(request).count(),
                               "needed": request.approvals_needed})
        return request

    def withdraw(self, approver: User, request_id: int, actor: Actor) -> None:
        request = self._open(request_id, actor)
        with self.audit.mutation():
            changed = (ApprovalVote.update(withdrawn_at=self.clock.now())
                       .where(ApprovalVote.request == request, ApprovalVote.approver == approver,
                              ApprovalVote.withdrawn_at.is_null()).execute())
            if not changed:
                raise NotFound("you have no approval on this request to withdraw", title="No such approval")
            self.audit.record(actor, "approval.withdraw", f"approval:{request.id}",
                              {"digest": request.digest})

    def cancel(self, requester: User, request_id: int, actor: Actor) -> None:
        request = self._open(request_id, actor)
        if request.requested_by_id != requester.id:
            raise ApprovalRefused("only the superadmin who asked may cancel a request")
        with self.audit.mutation():
            request.canceled_at = self.clock.now()
            request.save(only=[ApprovalRequest.canceled_at])
            self.audit.record(actor, "approval.cancel", f"approval:{request.id}", {"digest": request.digest})

    # -- the action it approves -----------------------------------------------------

    def admit(self, user: User, action: str, params: dict, header: str | None, actor: Actor) -> int:
        """The id of a request that approves exactly this action by this user now, or
        ApprovalRefused (audited). Consume it with `consume` in the action's transaction."""
        if header is None or not (header.isascii() and header.isdigit()) or len(header) > 18:
            raise ApprovalRefused(f"{action} needs four-eyes approval: POST /api/approvals, have another "
                                  f"superadmin approve it, then send its id in {HEADER}")
        request = self._open(int(header), actor)
        params = check_params(action, params)[1]
        if request.requested_by_id != user.id:
            self._refuse(actor, request, "used by someone other than its requester",
                         "an approval is used only by the superadmin who asked for it")
        if request.action != action or request.digest != action_digest(action, params):
            self._refuse(actor, request, "used for another action or other parameters",
                         "this approval is for another action or other parameters")
        votes = _live_votes(request).count()
        if votes < request.approvals_needed:
            self._refuse(actor, request, "not approved enough",
                         f"this request has {votes} of the {request.approvals_needed} approvals it needs")
        return request.id

    def consume(self, request_id: int, actor: Actor) -> None:
        """Mark the request used, once; only inside the action's own audit.mutation()."""
        now = self.clock.now()
        used = (ApprovalRequest.update(consumed_at=now)
                .where(ApprovalRequest.id == request_id, ApprovalRequest.consumed_at.is_null(),
                       ApprovalRequest.canceled_at.is_null(), ApprovalRequest.expires_at > now).execute())
        if used != 1:  # another request used it first, or it lapsed in between
            raise ApprovalRefused("this approval has already been used or has expired")
        self.audit.record(actor, "approval.consumed", f"approval:{request_id}", {})

    # -- reading --------------------------------------------------------------------

    def find(self, request_id: int) -> ApprovalRequest:
        request = ApprovalRequest.get_or_none(ApprovalRequest.id == request_id)
        if request is None:
            raise NotFound(f"there is no approval request {request_id}", title="No such approval request")
        return request

    def recent(self, limit: int) -> list[ApprovalRequest]:
        return list(ApprovalRequest.select().order_by(ApprovalRequest.id.desc()).limit(limit))

    def state(self, request: ApprovalRequest) -> str:
        if request.consumed_at is not None:
            return "consumed"
        if request.canceled_at is not None:
            return "canceled"
        if request.expires_at <= self.clock.now():
            return "expired"
        return "approved" if _live_votes(request).count() >= request.approvals_needed else "pending"

    def votes(self, request: ApprovalRequest) -> list[ApprovalVote]:
        return list(ApprovalVote.select().where(ApprovalVote.request == request).order_by(ApprovalVote.id))

    # -- helpers --------------------------------------------------------------------

    def _open(self, request_id: int, actor: Actor) -> ApprovalRequest:
        """The request, still open to votes and use; its expiry is audited once, when found."""
        request = self.find(request_id)
        state = self.state(request)
        if state == "expired":
            self._record_expiry(request, actor)
        if state in ("consumed", "canceled", "expired"):
            self._refuse(actor, request, f"the request is {state}", f"this request is {state}", Conflict)
        return request

    def _record_expiry(self, request: ApprovalRequest, actor: Actor) -> None:
        with self.audit.mutation():
            marked = (ApprovalRequest.update(expiry_recorded_at=self.clock.now())
                      .where(ApprovalRequest.id == request.id, ApprovalRequest.expiry_recorded_at.is_null())
                      .execute())
            if marked:
                self.audit.record(actor, "approval.expired", f"approval:{request.id}",
                                  {"expired_at": request.expires_at.isoformat() + "Z"})

    def _refuse(self, actor: Actor, request: ApprovalRequest, why: str, message: str,
                error: type[Exception] = ApprovalRefused) -> None:
        self.audit.record_alone(actor, "approval.refused", f"approval:{request.id}",
                                {"action": request.action, "why": why})
        raise error(message)

    def _tell_approvers(self, request: ApprovalRequest, requester: User) -> None:
        """Mail the other superadmins, when mail is set up; a mail failure is logged, not fatal."""
        if self.mailer is None:
            return
        others = authz.active_superadmins().where(User.id != requester.id)
        body = (f"{requester.email} asks to {request.action} {request.params_json}.\n"
                f"Reason: {request.reason}\nApproval request {request.id}, open until "
                f"{request.expires_at.isoformat()}Z.\n")
        for user in others:
            try:
                self.mailer.send(user.email, f"WECO: approval requested ({request.action})", body)
            except MailError as exc:
                log.warning("approval request %s: could not mail %s: %s", request.id, user.id, exc)


def _live_votes(request: ApprovalRequest) -> peewee.ModelSelect:
    """Votes not withdrawn, by superadmins still enabled, never the requester's own."""
    approvers = authz.active_superadmins().where(User.id != request.requested_by_id).select(User.id)
    return ApprovalVote.select().where(ApprovalVote.request == request, ApprovalVote.withdrawn_at.is_null(),
                                       ApprovalVote.approver.in_(approvers))


def _target_exists(action: str, params: dict) -> None:
    if "slug" in params and not Site.select().where(Site.slug == params["slug"]).exists():
        raise InvalidInput(f"there is no site '{params['slug']}'")
    if "host_id" in params and not Host.select().where(Host.id == params["host_id"]).exists():
        raise InvalidInput(f"there is no host {params['host_id']}")
    if "release_id" in params and not Release.select().where(
            Release.id == params["release_id"], Release.sha256 == params["sha256"]).exists():
        raise InvalidInput(f"there is no release {params['release_id']} with SHA-256 {params['sha256']}")

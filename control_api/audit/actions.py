"""Every action the audit log records, and when: the one list that the README's table
is generated from (`scripts/readme-audit-actions`) and that a test holds equal to the
actions the code records (tests/control_api/audit/test_actions.py)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Action:
    name: str
    when: str  # one line, Markdown


ACTIONS: tuple[Action, ...] = (
    Action("db.upgrade", "`weco db upgrade` applied migrations (their versions), in their transaction."),
    Action("user.create", "`weco user create` made an account."),
    Action("user.disable", "An account was disabled (`weco user disable`, or a SCIM leaver)."),
    Action("user.break_glass_created", "`weco break-glass create` made the emergency superadmin (critical)."),
    Action("auth.login", "A session started (password, and the second factor if any)."),
    Action("auth.login_failed", "A wrong password at login, with the email tried (critical for "
                                "break-glass, marked when answered 429 by its look-alike lock), or a "
                                "passkey refused at a passwordless login (method webauthn, why)."),
    Action("auth.password_ok", "A right password; the second factor is asked next."),
    Action("auth.second_factor_failed", "A wrong second-factor code or a refused passkey at login."),
    Action("auth.recovery_code_used", "A TOTP recovery code was spent at login."),
    Action("auth.email_code_sent", "An email one-time code was sent."),
    Action("auth.login_refused_sealed", "Sealed mode refused an account without TOTP after its "
                                        "grace period."),
    Action("auth.break_glass_login", "The break-glass account logged in (critical; `sso_only` says "
                                     "whether FF_SSO_ONLY=1 was on)."),
    Action("auth.lockout", "An account was locked for 15 minutes after 5 failed checks."),
    Action("auth.login_throttled", "The first throttled credential check from an address in a 15-minute "
                                   "window (limit, kind of check, account)."),
    Action("auth.throttle_window_closed", "A throttle window ended: its exact count of refusals, in all and "
                                          "by limit (actor `system:throttle`)."),
    Action("auth.step_up", "A step-up token was minted for one scope (method totp or webauthn)."),
    Action("auth.step_up_failed", "A wrong TOTP code or a refused passkey at step-up."),
    Action("auth.reauth_failed", "A wrong current password or code, asked again before a change."),
    Action("auth.password_changed", "A user changed their password."),
    Action("auth.2fa_enrolment_started", "TOTP enrolment began (secret issued, not yet confirmed)."),
    Action("auth.2fa_enrolled", "A second factor was enrolled (TOTP confirmed, or email codes on)."),
    Action("auth.2fa_removed", "A second factor was removed."),
    Action("auth.logout", "A session was ended by its user."),
    Action("auth.session_replaced", "A login ended the session the browser already had."),
    Action("auth.session_revoked", "A session was ended by its owner or a superadmin."),
    Action("auth.sessions_ended", "Every session of an account ended and its pending logins (challenges) "
                                  "were deleted, with both counts (password or factor change, disable)."),
    Action("auth.tokens_revoked", "Every API token of an account was revoked (same causes)."),
    Action("auth.webauthn_registered", "A passkey was registered (name, AAGUID, attestation format, "
                                       "backup-eligible and backed-up flags, counter)."),
    Action("auth.webauthn_registration_refused", "A passkey registration did not verify (why: no user "
                                                 "verification, another origin or RP id, a used challenge)."),
    Action("auth.webauthn_renamed", "A passkey was renamed (old and new names)."),
    Action("auth.webauthn_removed", "A passkey was removed (with a step-up token); the account's sessions "
                                    "and tokens end with it."),
    Action("auth.webauthn_sign_count_regression", "A passkey assertion's signature counter did not move "
                                                  "past the stored one: a cloned authenticator or a replay "
                                                  "(critical; refused)."),
    Action("auth.webauthn_flags_refused", "A passkey assertion's backup flags disagree with the registered "
                                          "credential, e.g. device-bound now claiming to be synced "
                                          "(critical; refused)."),
    Action("auth.login_refused_sso_only", "FF_SSO_ONLY=1 refused a right password (or a session opened by "
                                          "one) of an account other than break-glass."),
    Action("sso.user_created", "A first single sign-on made an account just in time (email, protocol, "
                               "issuer, subject)."),
    Action("sso.identity_linked", "A first single sign-on linked an account the IdP provisioned over SCIM "
                                  "(email, protocol, issuer, subject)."),
    Action("sso.login_refused", "A verified SSO identity was refused: no mapped group, no or a taken "
                                "email, a disabled account (reason, subject, email, groups)."),
    Action("sso.assertion_refused", "A SAML response was refused (reason: signature, audience, validity, "
                                    "replay, shape, an unstarted or used login...)."),
    Action("sso.token_refused", "An OIDC callback was refused (reason: state, code, ID token signature "
                                "or claims, replay...)."),
    Action("user.role_change", "An IdP-managed account's role changed to what its groups give (from, to, "
                               "source, groups)."),
    Action("scim.token_created", "`weco scim token create` made a SCIM provisioning token (name)."),
    Action("scim.token_revoked", "`weco scim token revoke` revoked a SCIM provisioning token."),
    Action("scim.auth_failed", "A /scim/v2 request came with no, an unknown or a revoked SCIM token "
                               "(counted against the address)."),
    Action("scim.user_created", "The IdP provisioned an account over SCIM (scim_id, userName, externalId, "
                                "email, active)."),
    Action("scim.user_replaced", "The IdP replaced a SCIM User (PUT): its attributes as stored."),
    Action("scim.user_patched", "The IdP patched a SCIM User (PATCH): its attributes as stored."),
    Action("scim.user_reactivated", "The IdP set a disabled SCIM User active again (its old sessions and "
                                    "tokens stay revoked)."),
    Action("scim.user_deleted", "The IdP deleted a SCIM User: the account is disabled, its grants revoked "
                                "and its SCIM record removed."),
    Action("scim.group_created", "The IdP pushed a SCIM Group (displayName, whether FF_SSO_GROUP_MAP "
                                 "maps it)."),
    Action("scim.group_replaced", "The IdP replaced a SCIM Group (PUT)."),
    Action("scim.group_patched", "The IdP patched a SCIM Group (PATCH)."),
    Action("scim.group_members", "A SCIM Group's members changed (added, removed); their role and grants "
                                 "follow as `user.role_change` and grant events."),
    Action("scim.group_deleted", "The IdP deleted a SCIM Group; its former members' access is recomputed."),
    Action("token.create", "An API token was made (through the API or `weco token create`)."),
    Action("token.revoke", "An API token was revoked."),
    Action("site.create", "A site was created."),
    Action("site.delete", "A site was deleted."),
    Action("site.host_attach", "A host was attached to a site."),
    Action("site.host_detach", "A host was detached from a site."),
    Action("site.grant", "An admin was granted a site."),
    Action("site.revoke", "An admin's grant on a site was revoked."),
    Action("document.upload", "A PDF was added to a site: title, filename, both SHA-256 digests (original "
                              "and flattened), pages, whether it was scanned (or why not), what "
                              "flattening removed."),
    Action("document.rejected", "An upload was refused for its content (not a PDF, broken, a virus: with the "
                                "signature and a quarantined copy, not made safe) or for want of a scanner."),
    Action("document.retitle", "A document's title changed (old and new, with its digests)."),
    Action("document.reorder", "A site's documents were put in a new order."),
    Action("document.delete", "A document left its site (its stored files stay, for earlier releases)."),
    Action("host.create", "A host was registered (its key's fingerprint, never the key)."),
    Action("host.delete", "A host was deleted."),
    Action("host.host_key_scan", "A host's SSH host key was scanned (ssh-keyscan) and kept as pending: its "
                                 "fingerprint, and whether it matches the pinned one."),
    Action("host.host_key_pin", "A scanned host key was confirmed by its fingerprint and pinned."),
    Action("host.host_key_repin", "A host's pinned SSH host key was set or replaced (new and previous "
                                  "fingerprints)."),
    Action("host.host_key_mismatch", "A run met a host presenting another SSH host key than its pinned one "
                                     "(critical: run, pinned and offered fingerprints); nothing ran on it."),
    Action("host.credentials_rotate", "A credential rotation swapped in a host's new SSH key (its "
                                      "fingerprint and the previous one, the run, whether it finished an "
                                      "interrupted rotation)."),
    Action("host.credentials_staged_dropped", "A rotation dropped the staged key an interrupted one left, "
                                              "which the host refuses."),
    Action("host.grant", "An admin was granted a host."),
    Action("host.revoke", "An admin's grant on a host was revoked."),
    Action("approval.request", "A superadmin asked for four-eyes approval of one action (its parameters "
                               "and their digest)."),
    Action("approval.approve", "Another superadmin approved a request with a fresh TOTP code (votes so "
                               "far, and how many it needs)."),
    Action("approval.withdraw", "An approver withdrew their approval before it was used."),
    Action("approval.cancel", "The requester canceled their request."),
    Action("approval.consumed", "An approved request was used by the action it names, in the action's "
                                "own transaction."),
    Action("approval.expired", "A request was found past its FF_JIT_TTL_MINUTES (recorded once)."),
    Action("approval.refused", "An approval was refused (its own requester approving, another user, "
                               "other parameters, too few approvals, a used, canceled or expired request)."),
    Action("run.request", "A run was queued (playbook, target, extra variables)."),
    Action("run.start", "A worker claimed a run."),
    Action("run.finish", "A run ended: status, exit code and error."),
    Action("run.cancel", "A run was canceled, queued or running."),
    Action("run.lost", "A run was marked lost: its worker stopped renewing the lease."),
    Action("anomaly.failed_login_burst", "10 `auth.login_failed` within 60 s for one account (target the "
                                         "account) or over all accounts (target `all`), with those rows."),
    Action("anomaly.bearer_rotation_storm", "5 `token.create`/`token.revoke` within 5 minutes by one actor "
                                            "(target the actor), with those rows."),
    Action("anomaly.off_hours_deploy", "A deploy or rollback run was requested outside FF_BUSINESS_HOURS "
                                       "(its local time)."),
    Action("anomaly.break_glass", "The break-glass account was created, logged in, or failed a login."),
    Action("anomaly.host_key_mismatch", "A run failed on ssh's host-key refusal (the run events that "
                                        "show it)."),
    Action("anomaly.audit_quarantine", "The sealer quarantined a queued audit row."),
    Action("anomaly.verification_failed", "The watcher found a sealed row whose link or MAC does not hold "
                                          "(target `audit_events:SEQ`)."),
    Action("master_secret.init", "`weco master-secret init` stored a new master secret with a provider."),
    Action("master_secret.register", "The store recorded a master key it did not know (the first "
                                     "process to load it)."),
    Action("master_secret.rotate.start", "A master-secret rotation began towards a new key."),
    Action("master_secret.rotate.batch", "A batch of one column was re-encrypted under the new key."),
    Action("master_secret.rotate.finish", "A rotation ended; the old key is retired."),
    Action("audit.quarantine", "The sealer set a queued row aside (target `audit_queue:ID`, with the "
                               "reason; actor `system:audit-sealer`)."),
    Action("backup.create", "`weco backup create` wrote an encrypted backup (where, bytes, rows, "
                            "audit head)."),
    Action("backup.restore", "`weco backup restore` filled an empty store from a backup (recorded in "
                             "that store)."),
    Action("backup.drill", "`weco backup drill` restored the newest backup into a scratch store and "
                           "checked it: result, seconds, rows, failure."),
    Action("license.install", "`weco license install` installed a license: customer, tier, caps, expiry, "
                              "its signing key's id and the license it replaces."),
    Action("license.revocations_install", "`weco license install` installed a newer signed revocation list "
                                          "(its ids' count, whether it revokes the installed license)."),
    Action("license.cap_refused", "Creating a site, host or account was refused at the license's cap "
                                  "(kind, cap, count, license state)."),
    Action("release.received", "A superadmin uploaded a release bundle that verified under "
                               "FF_RELEASE_PUBLIC_KEY (version, SHA-256, tag); it is kept for self-update."),
    Action("release.refused", "An uploaded release bundle was refused (the one-line reason; its SHA-256, "
                              "size and signed version when known); nothing was kept."),
    Action("release.apply_requested", "A superadmin asked for a received release to be applied (version, "
                                      "SHA-256); with FF_JIT_REQUIRED=1, after another's approval."),
    Action("release.applied", "The root unit weco-update verified the release again and install.sh "
                              "upgraded this admin VM to it (actor `system:weco-update`)."),
    Action("release.apply_failed", "The root unit refused an apply request (a hostile or malformed "
                                   "request, a changed bundle, a bad signature, not newer) or install.sh "
                                   "failed: the one-line error."),
    Action("evidence.pack", "`weco evidence pack` wrote a signed evidence pack (file, its checksum "
                            "list's hash)."),
)

NAMES = frozenset(action.name for action in ACTIONS)


def markdown_table() -> str:
    """The README's table of recorded actions."""
    lines = ["| Action | Recorded when |", "|---|---|"]
    lines += [f"| `{action.name}` | {action.when} |" for action in ACTIONS]
    return "\n".join(lines) + "\n"

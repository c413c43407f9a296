"""Every control of the security policy, as this release stands. The one source of
SECURITY.md (`scripts/security-md`), the evidence pack's controls.md and threat model.

Rules, enforced by tests/control_api/controls/ and, in a full test run, by
tests/controls_gate.py: a Shipped control names code that exists and tests that exist,
and each of those tests ran and passed in that run; every other control says in `note`
what is missing. `title` is the policy's own name for the control, so the registry can
be held against the policy's list (tests/control_api/controls/policy_controls.txt).
"""

from __future__ import annotations

import dataclasses

STATUSES = ("Shipped", "Partial", "Planned", "Out of scope")
SECTIONS = {
    "2.1": "Authentication",
    "2.2": "Authorization",
    "2.3": "Encryption at rest",
    "2.4": "Encryption in transit",
    "2.5": "Audit and integrity",
    "2.6": "Supply chain",
    "2.7": "Outbound network calls",
}


@dataclasses.dataclass(frozen=True)
class Control:
    section: str
    title: str
    status: str
    note: str  # Shipped: how it works here, in a line; otherwise what is missing
    settings: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()  # pytest node ids without parameters: FILE::FUNCTION


T_PW = "tests/control_api/auth/test_passwords.py"
# tests/release/bundle_scenario.py on bare hosts, run beside the suite and waited for here:
T_BUNDLE = "tests/release/test_bundle_scenario.py::test_the_bundle_scenario_passes_on_bare_hosts"
T_DOC = "tests/control_api/resources/test_documents.py"
T_TH = "tests/control_api/auth/test_throttle.py"
T_SCIM = "tests/control_api/scim"
T_2F = "tests/control_api/auth/test_second_factor.py"
T_AZ = "tests/control_api/test_authz.py"
T_MOL = "tests/roles/test_molecule_scenarios.py::test_molecule_scenario"
T_BK = "tests/control_api/backup"
T_LIC = "tests/control_api/license"
T_SAML = "tests/control_api/sso/test_saml.py"
T_OIDC = "tests/control_api/sso/test_oidc.py"
T_WA = "tests/control_api/webauthn/test_passkeys.py"
T_SSO = "tests/control_api/auth/test_sso_only.py"

CONTROLS: tuple[Control, ...] = (
    # 2.1 Authentication
    Control("2.1", "Email + bcrypt password (cost 12, min 12 chars)", "Shipped",
            "bcrypt cost 12; passwords of 12 to 72 bytes, longer ones refused clearly; common passwords "
            "refused.",
            (), ("control_api/auth/passwords.py",),
            (f"{T_PW}::test_production_hasher_uses_bcrypt_cost_12",
             f"{T_PW}::test_fewer_than_12_characters_is_refused",
             f"{T_PW}::test_more_than_max_is_refused_clearly_and_never_verifies")),
    Control("2.1", "Account lockout: 5 attempts → 15-minute lock", "Shipped",
            "Counted in the store, so it holds across workers and restarts.",
            (), ("control_api/auth/throttle.py",),
            (f"{T_TH}::test_five_failures_lock_the_account_for_fifteen_minutes",
             "tests/control_api/auth/test_throttle_workers.py::test_lockout_and_ip_limit_hold_across_workers_and_a_restart")),
    Control("2.1", "Per-IP rate limit: 10 attempts / 15 min", "Shipped",
            "In the store (not one process's memory); X-Forwarded-For only from FF_TRUSTED_PROXIES; IPv6 "
            "per /64.",
            ("FF_TRUSTED_PROXIES",), ("control_api/auth/throttle.py",),
            (f"{T_TH}::test_ten_attempts_per_address_per_window",
             f"{T_TH}::test_a_forwarded_header_is_ignored_unless_the_peer_is_a_trusted_proxy")),
    Control("2.1", "Email 2FA (one-time code via SMTP)", "Shipped",
            "Single-use, expiring codes; TLS to the relay unless it is on this machine.",
            ("FF_SMTP_URL", "FF_SMTP_FROM", "FF_SMTP_CA_FILE"),
            ("control_api/auth/second_factor.py", "control_api/auth/mailer.py"),
            (f"{T_2F}::test_email_codes_delivered_by_smtp_expire_and_are_single_use",)),
    Control("2.1", "TOTP 2FA (RFC 6238 — authenticator app)", "Shipped",
            "RFC 6238 vectors, replay refused, AES-GCM-encrypted seeds, single-use recovery codes; "
            "FF_TOTP_ONLY=1 refuses email codes.",
            ("FF_TOTP_ONLY",), ("control_api/auth/totp.py",),
            (f"{T_2F}::test_rfc6238_appendix_b", f"{T_2F}::test_totp_login_and_replay",
             f"{T_2F}::test_recovery_codes_work_once", f"{T_2F}::test_totp_only_refuses_email_enrolment")),
    Control("2.1", "WebAuthn / FIDO2 passkeys (AAL3)", "Shipped",
            "py_webauthn with userVerification=required, RP id and origins from settings, single-use "
            "challenges; several passkeys per user; second factor, step-up and passwordless login; a "
            "counter regression or a changed backup flag refused and alerted.",
            ("FF_WEBAUTHN_RP_ID", "FF_WEBAUTHN_ORIGINS"),
            ("control_api/webauthn/ceremonies.py", "control_api/webauthn/service.py",
             "control_api/webauthn/flows.py"),
            (f"{T_WA}::test_several_passkeys_registered_listed_renamed_and_used_without_a_password",
             f"{T_WA}::test_refused_without_user_verification_from_another_origin_or_rp_id_and_replayed",
             f"{T_WA}::test_a_cloned_authenticator_is_refused_and_alerted",
             f"{T_WA}::test_backup_flags_must_match_the_registered_credential",
             f"{T_WA}::test_second_factor_step_up_and_removal_with_another_users_credential_refused",
             f"{T_WA}::test_sealed_mode_counts_a_passkey_like_totp")),
    Control("2.1", "Sealed-mode MFA enforcement", "Shipped",
            "FF_SEALED_MODE=1 (needs FF_TOTP_ONLY=1): no session without TOTP after the grace period.",
            ("FF_SEALED_MODE", "FF_SEALED_MODE_GRACE_DAYS", "FF_TOTP_ONLY"), ("control_api/auth/sealed.py",),
            (f"{T_2F}::test_sealed_mode_grace_then_refusal", f"{T_2F}::test_sealed_mode_needs_totp_only")),
    Control("2.1", "Step-up auth on destructive routes", "Shipped",
            "FF_REQUIRE_STEP_UP=1: a 5-minute token from a fresh TOTP code, bound to session and scope.",
            ("FF_REQUIRE_STEP_UP",), ("control_api/auth/stepup.py",),
            (f"{T_2F}::test_step_up_is_scoped_and_expires",
             f"{T_2F}::test_destructive_routes_declare_their_step_up_scope")),
    Control("2.1", "WebAuthn / FIDO2 / hardware key", "Shipped",
            "Roaming security keys and platform authenticators alike, through the same WebAuthn ceremonies "
            "(user verification required); attestation is not checked against a vendor list.",
            ("FF_WEBAUTHN_RP_ID", "FF_WEBAUTHN_ORIGINS"), ("control_api/webauthn/ceremonies.py",),
            (f"{T_WA}::test_several_passkeys_registered_listed_renamed_and_used_without_a_password",
             f"{T_WA}::test_refused_without_user_verification_from_another_origin_or_rp_id_and_replayed")),
    Control("2.1", "SSO — SAML 2.0 SP", "Shipped",
            "pysaml2 + xmlsec1: signed metadata at /api/auth/saml/metadata, signed AuthnRequest, ACS taking "
            "one assertion signed by the metadata's certificate only (no comment, no wrapping, SHA-256+), "
            "audience, recipient, validity, InResponseTo bound to a cookie, each assertion once; JIT users "
            "linked by subject, groups to role and grants.",
            ("FF_SSO_BASE_URL", "FF_SSO_GROUP_MAP", "FF_SAML_IDP_METADATA", "FF_SAML_SP_ENTITY_ID",
             "FF_SAML_SP_KEY", "FF_SAML_SP_CERT", "FF_SAML_IDP_INITIATED", "FF_SAML_GROUPS_ATTRIBUTE"),
            ("control_api/sso/saml.py", "control_api/sso/saml_xml.py", "control_api/sso/accounts.py",
             "control_api/sso/groups.py"),
            (f"{T_SAML}::test_metadata_is_signed_with_the_sp_key_over_sha256_and_names_the_acs",
             f"{T_SAML}::test_first_login_makes_the_account_just_in_time_with_its_groups_role_and_grants",
             f"{T_SAML}::test_a_later_login_moves_the_role_and_grants_to_what_the_groups_say",
             f"{T_SAML}::test_an_unsigned_assertion_is_refused",
             f"{T_SAML}::test_the_wrong_idp_certificate_is_refused_even_when_the_message_carries_it",
             f"{T_SAML}::test_wrapping_the_signed_assertion_inside_the_forged_one_is_refused",
             f"{T_SAML}::test_a_comment_inside_the_nameid_is_refused",
             f"{T_SAML}::test_a_replayed_response_is_refused")),
    Control("2.1", "SSO — OIDC RP (PKCE S256)", "Shipped",
            "authlib + joserfc: code flow with PKCE S256; state, nonce and verifier bound to a single-use "
            "cookie; ID token checked (iss, aud, azp, exp, nonce, asymmetric algorithms only); an unknown "
            "kid refreshes the JWKS once (key rotation).",
            ("FF_SSO_BASE_URL", "FF_SSO_GROUP_MAP", "FF_OIDC_ISSUER", "FF_OIDC_DISCOVERY_FILE",
             "FF_OIDC_CLIENT_ID", "FF_OIDC_CLIENT_SECRET_FILE", "FF_OIDC_SCOPES", "FF_OIDC_GROUPS_CLAIM",
             "FF_OIDC_ALGORITHMS", "FF_OIDC_CA_FILE"),
            ("control_api/sso/oidc.py", "control_api/sso/pending.py", "control_api/sso/accounts.py"),
            (f"{T_OIDC}::test_the_authorization_request_uses_pkce_s256_and_binds_state_and_nonce_to_the_cookie",
             f"{T_OIDC}::test_login_makes_the_account_and_survives_a_key_rotation_with_one_jwks_fetch",
             f"{T_OIDC}::test_a_wrong_state_is_refused",
             f"{T_OIDC}::test_a_bad_id_token_is_refused",
             f"{T_OIDC}::test_a_replayed_code_is_refused")),
    Control("2.1", "SCIM 2.0 provisioning", "Shipped",
            "/scim/v2 (RFC 7643/7644): discovery, Users and Groups with filters, paging and PATCH as "
            "Entra ID "
            "and Okta send them; a dedicated SCIM bearer token (hashed, throttled per address, audited); "
            "groups give role and grants through FF_SSO_GROUP_MAP; a leaver (active=false or DELETE) loses "
            "every session and token in the same transaction; errors in the SCIM schema with scimType; "
            "checked by scim2-tester.",
            ("FF_SSO_GROUP_MAP",),
            ("control_api/scim/service.py", "control_api/scim/filters.py", "control_api/scim/patch.py",
             "control_api/scim/tokens.py", "control_api/resources/scim.py"),
            (f"{T_SCIM}/test_conformance.py::test_scim2_tester_finds_nothing_wrong",
             f"{T_SCIM}/test_users.py::test_filters_the_idps_send",
             f"{T_SCIM}/test_users.py::test_paging_as_okta_tests_a_connection",
             f"{T_SCIM}/test_users.py::test_patch_as_entra_sends_it",
             f"{T_SCIM}/test_users.py::test_a_leaver_by_entra_patch_loses_every_session_and_token_at_once",
             f"{T_SCIM}/test_users.py::test_a_leaver_by_okta_active_false_and_by_delete",
             f"{T_SCIM}/test_groups.py::test_groups_map_to_role_and_grants",
             f"{T_SCIM}/test_errors.py::test_a_bad_filter_is_invalid_filter",
             f"{T_SCIM}/test_errors.py::test_a_bad_patch_is_refused_and_changes_nothing",
             f"{T_SCIM}/test_errors.py::test_a_user_with_the_wrong_schema_is_invalid_syntax",
             f"{T_SCIM}/test_tokens.py::test_no_wrong_or_admin_token_is_refused_and_audited",
             f"{T_SCIM}/test_tokens.py::test_failures_are_throttled_per_address_and_a_right_token_does_not_count",
             f"{T_SCIM}/test_tokens.py::test_weco_scim_token_commands")),
    Control("2.1", "FF_SSO_ONLY sealed mode", "Shipped",
            "FF_SSO_ONLY=1: password logins, password sessions and tokens minted from them refused; only "
            "SAML, OIDC and passkeys mint sessions; break-glass only with password and second factor, "
            "always a critical event, no tokens.",
            ("FF_SSO_ONLY",), ("control_api/auth/sso_only.py",),
            (f"{T_SSO}::test_password_logins_and_their_tokens_are_refused_passkeys_are_not",
             f"{T_SSO}::test_a_password_session_from_before_the_switch_stops_working",
             f"{T_SSO}::test_break_glass_logs_in_with_password_and_totp_only_and_is_alerted")),
    # 2.2 Authorization
    Control("2.2", "Two roles: superadmin / admin", "Shipped",
            "Every route declares its access; the app refuses an undeclared route.",
            (), ("control_api/authz.py",),
            (f"{T_AZ}::test_every_route_of_the_real_app_declares_its_access",
             f"{T_AZ}::test_an_admin_may_use_only_granted_sites_and_a_superadmin_every_one")),
    Control("2.2", "License-tier caps enforced at DB-write time", "Shipped",
            "Ed25519-signed JWT licence (customer, tier, caps on sites, hosts and accounts, expiry); each "
            "create counts against its cap inside its own transaction, serialised per kind; expiry has a "
            "grace, a signed revocation list falls back to community caps; logins and rollbacks never "
            "consult it.",
            ("FF_LICENSE_PUBLIC_KEY", "FF_LICENSE_GRACE_DAYS"),
            ("control_api/license/token.py", "control_api/license/caps.py", "control_api/license/store.py"),
            (f"{T_LIC}/test_caps_concurrent.py::test_sites",
             f"{T_LIC}/test_caps_concurrent.py::test_accounts_from_16_processes",
             f"{T_LIC}/test_caps.py::test_the_site_cap_refuses_over_the_api_with_403_and_audits_it",
             f"{T_LIC}/test_caps.py::test_grace_keeps_the_caps_then_the_community_caps_stop_growth_only",
             f"{T_LIC}/test_store.py::test_a_bad_license_is_refused_and_changes_nothing",
             f"{T_LIC}/test_token.py::test_hs256_keyed_with_the_public_key_is_refused")),
    Control("2.2", "Per-site / per-host RBAC grants", "Shipped",
            "Site and host grants; every route naming a site or host opens with its guard (the app "
            "refuses one without); GET /api/authz/explain answers from the same policy.",
            (), ("control_api/authz.py",),
            (f"{T_AZ}::test_an_admin_may_use_only_granted_sites_and_a_superadmin_every_one",
             f"{T_AZ}::test_an_admin_sees_and_uses_only_granted_hosts",
             f"{T_AZ}::test_every_route_naming_a_site_or_host_has_its_guard")),
    Control("2.2", "4-eyes JIT for destructive actions", "Shipped",
            "FF_JIT_REQUIRED=1: another superadmin approves (with a TOTP code) a request bound to the "
            "digest of the exact action; single use, time-boxed. Covers site.delete, host.delete, "
            "host.rotate_credentials, host.repin_key and release.apply (self-update, bound to the "
            "received bundle's SHA-256).",
            ("FF_JIT_REQUIRED", "FF_JIT_TTL_MINUTES", "FF_JIT_APPROVERS"), ("control_api/approvals.py",
                                                                            "control_api/release/updates.py"),
            ("tests/control_api/test_approvals.py::test_another_superadmin_approves_and_the_requester_deletes_once",
             "tests/control_api/test_approvals.py::test_no_path_lets_the_requester_approve_their_own_request",
             "tests/control_api/test_approvals.py::test_a_replayed_approval_is_refused",
             "tests/control_api/test_approvals.py::test_an_expired_request_is_refused_and_its_history_kept",
             "tests/release/test_updates.py::"
             "test_with_four_eyes_apply_needs_another_superadmins_approval_of_this_bundle")),
    Control("2.2", "Break-glass account", "Shipped",
            "`weco break-glass create` prints a random password, TOTP secret and recovery codes once; "
            "its logins are critical audit events.",
            (), ("control_api/cli/accounts.py",),
            (f"{T_2F}::test_break_glass_output_logs_in_and_is_audited",)),
    # 2.3 Encryption at rest
    Control("2.3", "AES-256-GCM with AAD binding on all sensitive columns (host SSH keys, host bearers, "
                   "2FA seeds)",
            "Shipped",
            "Host SSH keys and TOTP seeds (this release has no host bearers); `weco check security` refuses "
            "encrypt/decrypt calls without AAD.",
            (), ("control_api/crypto.py", "control_api/checks.py"),
            ("tests/control_api/test_crypto.py::test_wrong_aad_is_refused",
             "tests/control_api/test_checks.py::test_the_lint_catches_each_deliberate_violation",
             "tests/control_api/resources/test_sites_hosts.py::test_the_ssh_key_is_stored_encrypted_and_bound_to_its_row",
             f"{T_2F}::test_seeds_are_stored_encrypted_and_bound_to_their_user")),
    Control("2.3", "Master key (MASTER_SECRET) — pluggable provider chain", "Shipped",
            "file:, env-cmd:, vault:, aws-kms:, gcp-kms:; FF_KEY_LOCAL_FORBID=1 refuses local ones; "
            "`weco master-secret rotate` resumes after a crash.",
            ("FF_MASTER_SECRET_PROVIDER", "FF_MASTER_SECRET_ROTATION_PROVIDER", "FF_KEY_LOCAL_FORBID"),
            ("keyproviders/", "control_api/masterkey.py", "control_api/rotation.py"),
            ("tests/control_api/test_masterkey.py::test_local_forbid_refuses_the_default",
             "tests/control_api/test_masterkey.py::test_vault_provider_end_to_end_and_a_clear_start_up_error_when_down",
             "tests/control_api/test_rotation.py::test_rotation_killed_half_way_then_resumed")),
    Control("2.3", "Audit chain HMAC + Ed25519 witness", "Shipped",
            "Every row HMAC-chained under FF_AUDIT_SECRET and signed by a witness kept apart from it; "
            "`weco audit verify`; the sealed chain forwarded off the machine (FF_AUDIT_SIEM_URL).",
            ("FF_AUDIT_SECRET", "FF_AUDIT_WITNESS_KEY", "FF_AUDIT_SIEM_URL"),
            ("control_api/audit/chain.py", "control_api/audit/verify.py", "control_api/siem/forwarder.py"),
            ("tests/control_api/audit/test_tamper.py::test_rewritten_chain_without_the_witness_key",
             "tests/control_api/siem/test_forwarder.py::test_every_row_reaches_rsyslog_over_tls_and_checks_out",
             "tests/control_api/siem/test_outage.py::test_outage_and_sigkill_lose_nothing")),
    Control("2.3", "Backup encryption with separate KEK", "Shipped",
            "`weco backup create`: AES-256-GCM chunks under a scrypt key from FF_BACKUP_PASSPHRASE_FILE; a "
            "passphrase equal to the master or audit secret is refused; `weco backup drill` proves restores.",
            ("FF_BACKUP_PASSPHRASE_FILE",),
            ("control_api/backup/stream.py", "control_api/backup/passphrase.py"),
            (f"{T_BK}/test_stream.py::test_negative_vectors_are_refused_with_their_diagnostic",
             f"{T_BK}/test_restore_drill.py::test_backup_wipe_restore_then_verify_login_and_deploy",
             f"{T_BK}/test_restore_drill.py::test_bad_backups_and_passphrases_are_refused_with_one_line")),
    Control("2.3", "Full-disk encryption (LUKS / BitLocker)", "Out of scope",
            "Customer responsibility, set when the machine is made; the LUKS gate (2.4) refuses hosts "
            "without it."),
    # 2.4 Encryption in transit
    Control("2.4", "TLS 1.2+ on admin nginx (Mozilla intermediate config)", "Shipped",
            "The nginx_tls role; its molecule scenario checks the served TLS configuration.",
            (), ("roles/nginx_tls/",), (T_MOL,)),
    Control("2.4", "Admin → host: SSH local port-forward; host-api binds 127.0.0.1 only", "Out of scope",
            "This design has no host-side API: the control API reaches hosts only through Ansible over SSH."),
    Control("2.4", "HSTS, X-Frame-Options, X-Content-Type-Options, Referrer-Policy", "Shipped",
            "On every API answer and in the nginx vhost templates.",
            (), ("control_api/middleware.py", "roles/nginx_tls/templates/weco-security-headers.conf.j2"),
            ("tests/control_api/test_errors.py::test_security_headers_and_request_id_on_every_response",
             T_MOL)),
    Control("2.4", "Full-disk encryption gate (refuse install if LUKS not detected)", "Shipped",
            "The luks_gate role; FF_ALLOW_UNENCRYPTED=1 is refused in production.",
            ("FF_ALLOW_UNENCRYPTED", "FF_DISK_ENCRYPTION"), ("roles/luks_gate/",), (T_MOL,)),
    Control("2.4", "Mandatory HTTPS gate", "Shipped",
            "nginx_tls_https_mode: letsencrypt, selfsigned or provided; `none` only in development.",
            ("FF_ACME_SERVER",), ("roles/nginx_tls/",), (T_MOL,)),
    Control("2.4", "Cloudflare WAF integration (customer-side)", "Planned",
            "Missing: no Cloudflare real-IP configuration in the nginx role."),
    Control("2.4", "Egress allowlist (iptables)", "Shipped",
            "The egress_allowlist role; its molecule scenario proves other destinations are refused.",
            (), ("roles/egress_allowlist/",), (T_MOL,)),
    # 2.5 Audit and integrity
    Control("2.5", "Append-only audit log: every mutating action recorded with actor, target, IP, "
                   "timestamp, metadata",
            "Shipped",
            "A mutation and its event commit together; triggers (and on PostgreSQL the weco_app role) refuse "
            "UPDATE/DELETE.",
            (), ("control_api/audit/log.py", "control_api/audit/actions.py"),
            ("tests/control_api/audit/test_append_only.py::test_update_and_delete_are_refused",
             "tests/control_api/audit/test_log.py::test_a_mutation_and_its_events_commit_together",
             "tests/control_api/audit/test_log.py::test_no_mutation_when_the_event_cannot_be_signed")),
    Control("2.5", "Audit-export — HMAC chain + Ed25519 witness", "Shipped",
            "`weco audit export` and `weco audit verify --witness-pub` name the first broken row.",
            (), ("control_api/audit/export.py", "control_api/audit/verify.py"),
            ("tests/control_api/test_cli_audit.py::test_export_verifies_offline_and_catches_an_edited_line",
             "tests/control_api/audit/test_tamper.py::test_deleted_row",
             "tests/control_api/audit/test_tamper.py::test_edited_event")),
    Control("2.5", "Anomaly detection rules", "Shipped",
            "Failed-login burst (10/60 s), token rotation storm (5/5 min), off-hours deploy; recorded as "
            "anomaly.* events and forwarded with the chain.",
            ("FF_BUSINESS_HOURS",), ("control_api/anomaly/rules.py",),
            ("tests/control_api/anomaly/test_detector.py::test_nine_failed_logins_in_a_minute_are_no_burst_the_tenth_is",
             "tests/control_api/anomaly/test_detector.py::test_four_token_changes_in_five_minutes_are_no_storm_the_fifth_is",
             "tests/control_api/anomaly/test_detector.py::test_off_hours_deploy_at_the_edges_of_business_hours_in_another_time_zone")),
    Control("2.5", "Evidence pack (compliance binder export)", "Shipped",
            "`weco evidence pack`: audit-verify report, audit export, SBOM when shipped, redacted settings, "
            "controls, threat model, restore drills, checksums, signed by a key of its own; `weco "
            "evidence verify`.",
            ("FF_EVIDENCE_SIGNING_KEY",), ("control_api/evidence/",),
            ("tests/control_api/evidence/test_pack.py::test_a_pack_verifies_and_a_changed_byte_is_refused",)),
    Control("2.5", "ClamAV upload scan + Ghostscript flatten", "Shipped",
            "Every upload is scanned by clamd (INSTREAM, unix socket), parsed strictly, and re-rendered by "
            "gs -dSAFER pdfwrite (no network, rlimits, timeout); JavaScript, OpenAction/AA, forms, "
            "attachments, Launch and RichMedia are removed and the result checked again. A virus is a 422 "
            "with document.rejected and a quarantined copy; FF_REQUIRE_AV=1 refuses uploads clamd cannot "
            "scan.",
            ("FF_REQUIRE_AV", "FF_CLAMD_SOCKET", "FF_MAX_UPLOAD_MB", "FF_FLATTEN_TIMEOUT_SECONDS",
             "FF_FLATTEN_MEMORY_MB"), ("control_api/documents/",),
            (f"{T_DOC}::test_eicar_is_refused_audited_and_quarantined",
             f"{T_DOC}::test_active_content_is_gone_from_what_is_stored",
             f"{T_DOC}::test_clamd_stopped_refuses_uploads_with_require_av",
             "tests/control_api/documents/test_pipeline.py::test_ghostscript_has_no_network",
             "tests/control_api/documents/test_pipeline.py::test_ghostscript_that_runs_long_is_stopped_at_its_timeout")),
    Control("2.5", "WORM / immutable backend for audit storage", "Partial",
            "Missing: audit rows are not streamed to WORM storage. Backups (audit table and checkpoints "
            "included) go to S3 under compliance-mode Object Lock.",
            ("FF_BACKUP_S3_ENDPOINT", "FF_BACKUP_RETENTION_DAYS"), ("control_api/backup/targets.py",),
            (f"{T_BK}/test_s3_object_lock.py::test_a_locked_backup_cannot_be_deleted_before_expiry",)),
    Control("2.5", "Append-only host-api audit at /var/log/ff-host-audit.jsonl", "Partial",
            "Missing: a host-side API (this design has none). The site release helper appends each "
            "prepare, activate, rollback and prune to /var/log/weco-host-audit.jsonl.",
            (), ("roles/site_deploy/files/weco_site_release.py",), (T_MOL,)),
    # 2.6 Supply chain
    Control("2.6", "Minisign-signed release tarball", "Shipped",
            "`scripts/release build` signs weco-V.tar.gz with minisign (the trusted comment names the file, "
            "version, tag and SHA-256); install.sh carries the public key and checks the signature with our "
            "stdlib-only verifier before extracting anything, as the control plane can.",
            (), ("control_api/release/minisign.py", "control_api/release/signing.py",
                                       "control_api/release/build.py", "control_api/release/install.sh.in"),
            ("tests/release/test_minisign.py::test_minisign_cli_agrees_on_each_vector",
             "tests/release/test_minisign.py::test_another_keys_signature_with_a_forged_key_id_fails_the_ed25519_check",
             "tests/release/test_installer.py::test_a_signature_from_another_key_is_refused",
             "tests/release/test_installer.py::test_a_missing_signature_is_refused",
             T_BUNDLE)),
    Control("2.6", "SHA-256 of tarball + install.sh self-check", "Shipped",
            "install.sh beside the tarball holds its SHA-256 and refuses a mismatch in one line before "
            "writing anything, then checks every file against the tarball's SHA256SUMS; "
            "FF_ALLOW_UNVERIFIED=1 is honoured only on untagged development builds.",
            (), ("control_api/release/install.sh.in", "control_api/release/bundle.py"),
            ("tests/release/test_installer.py::test_one_flipped_byte_is_refused_by_the_digest_and_by_the_signature",
             "tests/release/test_installer.py::"
             "test_allow_unverified_is_refused_on_a_tagged_release_and_honoured_on_a_development_build",
             T_BUNDLE)),
    Control("2.6", "SBOM (CycloneDX) per release", "Shipped",
            "SBOM.cdx.json inside the tarball and weco-V.sbom.json beside it: CycloneDX 1.6 from "
            "cyclonedx-py plus every Debian package, each with its checked SHA-256, validated against the "
            "1.6 schema; the scenario compares it with pip freeze and dpkg on an installed admin VM.",
            (), ("control_api/release/sbom.py",),
            ("tests/release/test_sbom.py::test_validate_refuses_documents_the_1_6_schema_refuses",
             "tests/release/test_sbom.py::test_the_sbom_lists_every_wheel_and_deb_with_its_version_and_sha256",
             T_BUNDLE)),
    Control("2.6", "CI workflows shipped inside release tarball", "Planned",
            "Missing: no release tarball yet (CI is `.ci/run`, which runs the README's test command)."),
    Control("2.6", "Dependabot / Snyk / npm-audit gating", "Planned",
            "Missing: no dependency-vulnerability gate in CI (dependencies are pinned in "
            "requirements*.lock)."),
    Control("2.6", "Source snapshot pushed to public dist repo per release", "Planned",
            "Missing: no release process publishes source snapshots yet."),
    # 2.7 Outbound calls
    Control("2.7", "No outbound calls at runtime", "Partial",
            "Missing: a watch over every runtime path (only a login, a host install and a deploy are "
            "watched: the bundle scenario sees no hit on the installed admin VM's egress reject counters). "
            "The API calls only what settings name (key providers, SMTP, S3 backups); the egress allowlist "
            "bounds hosts.",
            (), ("roles/egress_allowlist/",), (T_MOL, T_BUNDLE)),
    Control("2.7", "Install-time outbound calls replaceable (air-gap)", "Shipped",
            "There are none to replace: install.sh installs from the signed tarball alone (its wheelhouse, "
            "its Debian repository, its collection) on targets with no route out.",
            (), ("roles/offline_repo/", "scripts/build-offline", "control_api/release/install.sh.in"),
            (T_MOL, T_BUNDLE)),
)

THREATS: tuple[tuple[str, str], ...] = (
    ("Public-site tamper", "an attacker modifies a published disclosure (PDF replacement, content edit, "
     "defacement). Mitigations here: append-only, chained and witnessed audit log; atomic site deploys "
     "with a "
     "rollback directory; one run per site at a time; encrypted backups on Object Lock storage."),
    ("Admin-VM compromise", "credential theft, account takeover, lateral movement. Mitigations here: bcrypt "
     "cost 12, store-backed rate limits and lockout, email codes and TOTP, sealed mode, step-up, per-row "
     "encrypted host keys, master secret from a KMS, backups under a separate passphrase."),
    ("Supply chain", "a backdoored dependency or release. Mitigations here: exact pins and locks, offline "
     "installs from what the controller ships, a minisign-signed release whose installer checks "
     "its digest and signature before extracting, a CycloneDX SBOM per release (2.6)."),
    ("Licence/JWT abuse", "a pirated or replayed licence. Mitigations here: Ed25519-signed licences verified "
     "under the key shipped in the release (the signing key stays on the issuer's offline machine), "
     "expiry, signed revocation lists that only move forward, caps enforced in the database "
     "transaction (2.2). Not DRM: whoever controls the admin VM can change its code."),
)

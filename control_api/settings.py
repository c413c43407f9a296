"""Every FF_* setting of the control API: declared once, validated once, frozen.

Nothing else in the package reads the environment. A bad value stops start-up with
one line naming the variable and what it allows; an FF_* variable that is not
declared here is refused too, so a mistyped security switch (say FF_SEALED_MOD=1)
can never be silently ignored.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"


class SettingsError(Exception):
    """A setting has a value that is not allowed; str() is the one-line diagnostic."""


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    default: str
    allowed: str
    description: str
    parse: Callable[[str], Any]
    secret: bool = False


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError
        return raw

    return parse


def _switch(raw: str) -> bool:
    """An on/off setting: "1" or "0", parsed to a bool once here."""
    if raw not in ("0", "1"):
        raise ValueError
    return raw == "1"


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not re.fullmatch(r"[0-9]+", raw):
            raise ValueError
        value = int(raw)
        if not low <= value <= high:
            raise ValueError
        return value

    return parse


def _nonempty(raw: str) -> str:
    if not raw:
        raise ValueError
    return raw


def _optional_secret(raw: str) -> str:
    if raw and len(raw.encode("utf-8")) < 32:
        raise ValueError
    return raw


def _networks(raw: str) -> tuple:
    return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())


def _smtp_url(raw: str) -> str:
    if raw and (urlsplit(raw).scheme not in ("smtp", "smtp+starttls", "smtps") or not urlsplit(raw).hostname):
        raise ValueError
    return raw


def _plain_smtp_leaves_the_host(url: str) -> bool:
    """True for an smtp:// URL whose codes (or credentials) would cross a network in clear."""
    parts = urlsplit(url)
    if parts.scheme != "smtp":
        return False
    if parts.username or parts.password:
        return True
    if parts.hostname == "localhost":
        return False
    try:
        return not ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return True


def _ca_file(raw: str) -> str:
    """Empty, or a readable file of PEM CA certificates that ssl can load."""
    if raw:
        try:
            ssl.create_default_context(cafile=raw)
        except (OSError, ValueError):  # missing, unreadable, a directory, or not PEM
            raise ValueError from None
    return raw


def _base_url(raw: str) -> str:
    """Empty, or an http(s) origin with an optional path, without query or fragment."""
    if raw:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError
        return raw.rstrip("/")
    return raw


def _readable_file(raw: str) -> str:
    if raw and not (os.access(raw, os.R_OK) and Path(raw).is_file()):
        raise ValueError
    return raw


def _release_key(raw: str) -> str:
    """Empty, or a minisign public key's base64 line (what install.sh bakes in)."""
    if raw:
        from control_api.release.bundle import PUBLIC_KEY_PATTERN
        from control_api.release.minisign import SignatureError, parse_public_key

        try:
            if not PUBLIC_KEY_PATTERN.match(raw):
                raise ValueError
            parse_public_key(raw)
        except SignatureError:
            raise ValueError from None
    return raw


def _group_map(raw: str) -> str:
    from control_api.sso.groups import GroupMap, GroupMapError

    try:
        GroupMap.load(raw)
    except GroupMapError:
        raise ValueError from None
    return raw


def _scopes(raw: str) -> str:
    if "openid" not in raw.split() or not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e ]+", raw):
        raise ValueError
    return raw


_JWS_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def _jws_algorithms(raw: str) -> tuple:
    names = tuple(part.strip() for part in raw.split(","))
    if not names or not all(name in _JWS_ALGORITHMS for name in names):
        raise ValueError
    return names


def _check_sso(values: dict) -> None:
    """SAML and OIDC each need the settings they cannot work without; cleartext only in dev."""
    saml, oidc = values["saml_idp_metadata"], values["oidc_issuer"]
    dev = values["env"] == "dev"
    if saml or oidc:
        for name in ("sso_base_url", "sso_group_map"):
            if not values[name]:
                raise SettingsError(f"FF_{name.upper()} is required when SAML or OIDC is on")
        if values["sso_base_url"].startswith("http:") and not dev:
            raise SettingsError("FF_SSO_BASE_URL: http:// is allowed only with FF_ENV=dev")
    if saml:
        for name in ("saml_sp_key", "saml_sp_cert"):
            if not values[name]:
                raise SettingsError(f"FF_{name.upper()} is required with FF_SAML_IDP_METADATA")
        if not values["saml_sp_entity_id"]:
            values["saml_sp_entity_id"] = values["sso_base_url"] + "/api/auth/saml/metadata"
        from control_api.sso.saml import check_files

        try:
            check_files(saml, values["saml_sp_key"], values["saml_sp_cert"])
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    if oidc:
        if not values["oidc_client_id"]:
            raise SettingsError("FF_OIDC_CLIENT_ID is required with FF_OIDC_ISSUER")
        if oidc.startswith("http:") and not dev:
            raise SettingsError("FF_OIDC_ISSUER: http:// is allowed only with FF_ENV=dev")


def _provider_uris(raw: str) -> str:
    """Empty, one key-provider URI, or a JSON list of them (keyproviders resolves them)."""
    from keyproviders.resolver import SCHEMES, KeyProviderError, parse_provider_list

    if raw:
        try:
            uris = parse_provider_list(raw)
        except KeyProviderError:
            raise ValueError from None
        if not all(uri.partition(":")[0] in SCHEMES and uri.partition(":")[2] for uri in uris):
            raise ValueError
    return raw


def _http_url(raw: str) -> str:
    if raw and (urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).hostname):
        raise ValueError
    return raw


def _bind(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError
    return raw


def _siem_url(raw: str) -> str:
    """Empty, syslog+tls://HOST[:PORT], syslog+tcp://HOST[:PORT] or https://HOST[:PORT]/PATH."""
    from control_api.siem.transport import parse_url

    if raw:
        parse_url(raw)
    return raw


def _business_hours(raw: str) -> str:
    """Empty (no off-hours rule) or DAYS HH:MM-HH:MM ZONE, checked by the anomaly rules' parser."""
    from control_api.anomaly.hours import parse_business_hours

    parse_business_hours(raw)
    return raw


def _local_bind(raw: str) -> str:
    """Empty, or HOST:PORT on a loopback address: metrics are not for the network."""
    if raw:
        host = _bind(raw).rpartition(":")[0].strip("[]")
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError
    return raw


_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _rp_id(raw: str) -> str:
    """Empty (passkeys off), or a lowercase DNS name: WebAuthn's RP id is a domain, never
    an address, a port or a URL (W3C WebAuthn §5.1.4.1)."""
    if raw and (len(raw) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in raw.split("."))
                or raw.replace(".", "").isdigit()):
        raise ValueError
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins, each https://HOST[:PORT] (http:// for localhost only)."""
    origins = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            parts = urlsplit(part)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError from None
        local = host == "localhost" or (host or "").endswith(".localhost")
        if (parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local) or not host
                or parts.path or parts.query or parts.fragment or parts.username or parts.password
                or "[" in parts.netloc or _rp_id(host) != host):
            raise ValueError
        default = {"https": 443, "http": 80}[parts.scheme]  # a browser's origin omits it
        origins.append(f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else ""))
    return tuple(origins)


def _database_url(raw: str) -> str:
    if raw == "":
        return raw
    parts = urlsplit(raw)
    if parts.scheme == "sqlite" and parts.path:
        return raw
    if parts.scheme in ("postgresql", "postgres") and parts.hostname and parts.path.strip("/"):
        return raw
    raise ValueError


SPECS: tuple[Spec, ...] = (
    Spec("FF_ENV", "production", "dev | production",
         "Deployment environment. `dev` drops the Secure flag from the session cookie "
         "so the API can be tried over plain HTTP on loopback.",
         _choice("dev", "production")),
    Spec("FF_DATA_DIR", "./var", "a directory path",
         "Where the embedded store and local state live.", _nonempty),
    Spec("FF_DATABASE_URL", "", "empty, sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB",
         "The store. Empty means SQLite at FF_DATA_DIR/weco.sqlite3.",
         _database_url, secret=True),
    Spec("FF_BIND", "127.0.0.1:8080", "HOST:PORT",
         "Address `weco serve` listens on.", _bind),
    Spec("FF_WORKERS", "2", "1..64", "gunicorn worker processes for `weco serve`.",
         _int_range(1, 64)),
    Spec("FF_THREADS", "8", "1..64",
         "Threads per gunicorn worker (a client following a run's event stream holds one). "
         "1: plain sync workers, where a stream is cut after 60 s (clients resume with Last-Event-ID).",
         _int_range(1, 64)),
    Spec("FF_LOG_LEVEL", "INFO", "DEBUG | INFO | WARNING | ERROR",
         "Threshold of the JSON log lines written to stderr.",
         _choice("DEBUG", "INFO", "WARNING", "ERROR")),
    Spec("FF_TRUSTED_PROXIES", "", "empty or comma-separated IPs/CIDRs",
         "Reverse proxies whose X-Forwarded-For is believed. Empty: the client address is "
         "always the socket's, so no client can choose the address it is throttled as.",
         _networks),
    Spec("FF_MAX_BODY_BYTES", "1048576", "1024..104857600",
         "Largest request body accepted; larger bodies get 413.",
         _int_range(1024, 104857600)),
    Spec("FF_SESSION_IDLE_MINUTES", "30", "1..1440",
         "A session unused this long ends (NIST SP 800-63B AAL2: 30 minutes).",
         _int_range(1, 1440)),
    Spec("FF_SESSION_MAX_HOURS", "12", "1..720",
         "A session ends this long after login whatever its use (AAL2: 12 hours).",
         _int_range(1, 720)),
    Spec("FF_AUDIT_SECRET", "", "empty, or at least 32 bytes (e.g. 64 hex digits)",
         "Key of the audit chain's HMAC. Empty: a random one is created at "
         "FF_DATA_DIR/audit/chain.secret (0600) in dev, refused in production.",
         _optional_secret, secret=True),
    Spec("FF_AUDIT_WITNESS_KEY", "", "empty or the path of an Ed25519 PEM private key (mode 0600)",
         "The audit witness's signing key, kept apart from FF_AUDIT_SECRET. Empty: "
         "FF_DATA_DIR/audit/witness.key is created in dev, refused in production.", str),
    Spec("FF_AUDIT_CHECKPOINT_FILE", "", "empty or a file path",
         "Where signed checkpoints are appended; ship it off the machine. Empty: "
         "FF_DATA_DIR/audit/checkpoints.jsonl.", str),
    Spec("FF_TOTP_ONLY", "0", "0 | 1",
         "1 refuses email-code second factors: TOTP (and its recovery codes) only.", _switch),
    Spec("FF_SEALED_MODE", "0", "0 | 1 (1 needs FF_TOTP_ONLY=1)",
         "1: no user gets a session without TOTP, after the grace period below.", _switch),
    Spec("FF_SEALED_MODE_GRACE_DAYS", "7", "0..365",
         "Days from when sealed mode was first seen during which users without TOTP may still "
         "log in (to enrol).", _int_range(0, 365)),
    Spec("FF_REQUIRE_STEP_UP", "0", "0 | 1",
         "1: destructive routes need a step-up token minted from a fresh TOTP code "
         "(5 minutes, bound to the session and the action).", _switch),
    Spec("FF_JIT_REQUIRED", "0", "0 | 1",
         "1: four-eyes approval for site and host deletion, host credential rotation and host-key "
         "re-pinning. A superadmin asks (POST /api/approvals); other superadmins approve with a TOTP "
         "code; the action then sends the request's id in X-Approval, once.", _switch),
    Spec("FF_JIT_TTL_MINUTES", "30", "1..1440",
         "An approval request not used this long after it was made expires.", _int_range(1, 1440)),
    Spec("FF_JIT_APPROVERS", "1", "1..5",
         "How many superadmins other than the requester must approve a request.", _int_range(1, 5)),
    Spec("FF_TOKEN_MAX_DAYS", "90", "1..3650",
         "Longest life of an API token from its creation: checked when a token is made (API and "
         "`weco token create`) and each time one is used, so it also caps older tokens.",
         _int_range(1, 3650)),
    Spec("FF_WEBAUTHN_RP_ID", "", "empty or a lowercase domain name (e.g. admin.example.org)",
         "The WebAuthn relying party id passkeys are bound to: the admin console's domain or a parent "
         "of it. Empty: passkeys are off.", _rp_id),
    Spec("FF_WEBAUTHN_ORIGINS", "", "empty, or comma-separated https://HOST[:PORT] (http:// for localhost "
         "only), each HOST the RP id or under it",
         "The origins a passkey ceremony may come from (the browser's address of the console); any other "
         "is refused. Required with FF_WEBAUTHN_RP_ID.", _origins),
    Spec("FF_SSO_ONLY", "0", "0 | 1",
         "1: only single sign-on (SAML, OIDC) and passkey logins mint sessions; password logins, password "
         "sessions and API tokens minted from them are refused. The break-glass account may still log in "
         "with its password and second factor, always recorded as critical.", _switch),
    Spec("FF_SSO_BASE_URL", "", "empty or https://HOST[:PORT] (http:// with FF_ENV=dev only)",
         "The API's public address as browsers and IdPs reach it: the SAML ACS and the OIDC redirect URI "
         "are made from it. Required when SAML or OIDC is on.", _base_url),
    Spec("FF_SSO_GROUP_MAP", "", "empty or a JSON file (see the IdP guide)",
         "IdP groups to role (the highest wins) and to site and host grants (the union), set on every SSO "
         "login of an IdP-managed account. Checked at start-up. Required when SAML or OIDC is on.",
         _group_map),
    Spec("FF_SAML_IDP_METADATA", "", "empty or the IdP's metadata XML file (exactly one IdP)",
         "Turns the SAML service provider on. The assertion's signature is checked against this file's "
         "certificates only, never one the message carries.", _readable_file),
    Spec("FF_SAML_SP_ENTITY_ID", "", "empty or a URI",
         "Our entity id (the audience assertions must name). Empty: FF_SSO_BASE_URL/api/auth/saml/metadata.",
         str),
    Spec("FF_SAML_SP_KEY", "", "empty or a PEM RSA private key file (mode 0600)",
         "Signs our metadata and AuthnRequests (RSA-SHA256). Required with SAML.", _readable_file),
    Spec("FF_SAML_SP_CERT", "", "empty or a PEM certificate file",
         "The certificate of FF_SAML_SP_KEY, published in our metadata. Required with SAML.", _readable_file),
    Spec("FF_SAML_IDP_INITIATED", "0", "0 | 1",
         "1: accept responses the IdP sends unasked (no InResponseTo). 0: only answers to a login this "
         "browser started here.", _switch),
    Spec("FF_SAML_GROUPS_ATTRIBUTE", "groups", "an attribute name",
         "The assertion attribute that lists the user's groups.", _nonempty),
    Spec("FF_OIDC_ISSUER", "", "empty or the provider's issuer URL (https://; http:// with FF_ENV=dev only)",
         "Turns the OpenID Connect relying party on; ID tokens must carry exactly this iss.", _base_url),
    Spec("FF_OIDC_DISCOVERY_FILE", "", "empty or a JSON file",
         "The provider's discovery document from a file (air-gapped). Empty: fetched from "
         "FF_OIDC_ISSUER/.well-known/openid-configuration.", _readable_file),
    Spec("FF_OIDC_CLIENT_ID", "", "empty or the client id the provider gave",
         "Our client id (the audience ID tokens must name). Required with OIDC.", str),
    Spec("FF_OIDC_CLIENT_SECRET_FILE", "", "empty or a file holding the client secret",
         "The client secret, for a confidential client (client_secret_basic). Empty: a public client "
         "(PKCE only).", _readable_file),
    Spec("FF_OIDC_SCOPES", "openid email profile", "space-separated scopes including openid",
         "Scopes asked for at login.", _scopes),
    Spec("FF_OIDC_GROUPS_CLAIM", "groups", "a claim name",
         "The ID token claim that lists the user's groups.", _nonempty),
    Spec("FF_OIDC_ALGORITHMS", "RS256,PS256,ES256",
         "comma-separated, of RS256..512, PS256..512, ES256..512, EdDSA",
         "ID token signature algorithms accepted (asymmetric only: never none, never HMAC).",
         _jws_algorithms),
    Spec("FF_OIDC_CA_FILE", "", "empty or a readable file of PEM CA certificates",
         "CA certificates the provider's TLS certificate must chain to. Empty: the system's trust store.",
         _ca_file),
    Spec("FF_SMTP_URL", "", "empty, smtp://[USER:PASS@]HOST:PORT, smtp+starttls://... or smtps://...",
         "Mail server for email one-time codes. Empty: email codes are unavailable. smtp+starttls "
         "(STARTTLS required) and smtps (implicit TLS) verify the server's certificate and name; "
         "plain smtp is refused in production unless it goes to this machine without credentials.",
         _smtp_url, secret=True),
    Spec("FF_SMTP_FROM", "weco@localhost", "an email address", "Sender of email one-time codes.",
         _nonempty),
    Spec("FF_SMTP_CA_FILE", "", "empty or a readable file of PEM CA certificates",
         "CA certificates the mail server's certificate must chain to (a private CA). "
         "Empty: the system's trust store.", _ca_file),
    Spec("FF_MASTER_SECRET_PROVIDER", "", "empty, a provider URI, or a JSON list of URIs",
         "Where MASTER_SECRET comes from: file:PATH, env-cmd:COMMAND, vault:KEY, aws-kms:KEY, "
         "gcp-kms:KEY (a list is tried in order). Empty: file:FF_DATA_DIR/keys/master.key, "
         "created 0600 on first use.", str),
    Spec("FF_MASTER_SECRET_ROTATION_PROVIDER", "", "empty, a provider URI, or a JSON list of URIs",
         "During a master-secret rotation: where the other secret comes from (the rotation's target "
         "while FF_MASTER_SECRET_PROVIDER still names the old one, or the reverse), so this process "
         "reads values under both. Empty: values under the other key cannot be read until the "
         "rotation ends. Key providers are only ever named here and by `master-secret rotate --to`, "
         "never by the store.", _provider_uris),
    Spec("FF_KEY_LOCAL_FORBID", "0", "0 | 1",
         "1 refuses the local providers file: and env-cmd: at start-up (production with a KMS).",
         _switch),
    Spec("FF_AUDIT_CHECKPOINT_EVERY", "1000", "0..1000000000",
         "Write a checkpoint each time the log grows past a multiple of this many rows "
         "(0: only on demand, `weco audit checkpoint`).", _int_range(0, 1000000000)),
    Spec("FF_AUDIT_SIEM_URL", "", "empty, syslog+tls://HOST[:PORT], https://HOST[:PORT]/PATH "
         "(syslog+tcp://HOST[:PORT] with FF_ENV=dev only)",
         "Where the watcher forwards every sealed audit row, at least once and in order (RFC 5424 "
         "over TLS with octet counting, port 6514 by default; or JSON batches POSTed with a bearer "
         "token). Empty: nothing is forwarded.", _siem_url),
    Spec("FF_AUDIT_SIEM_CA_FILE", "", "empty or a readable file of PEM CA certificates",
         "CA certificates the SIEM's certificate must chain to. Empty: the system's trust store.",
         _ca_file),
    Spec("FF_AUDIT_SIEM_CLIENT_CERT", "", "empty or a PEM certificate file",
         "Client certificate for mutual TLS with the SIEM (with FF_AUDIT_SIEM_CLIENT_KEY).", str),
    Spec("FF_AUDIT_SIEM_CLIENT_KEY", "", "empty or a PEM private key file",
         "The client certificate's private key (empty: in FF_AUDIT_SIEM_CLIENT_CERT).", str),
    Spec("FF_AUDIT_SIEM_TOKEN_FILE", "", "empty or a file path (required for https://)",
         "File holding the bearer token for an https:// SIEM, read for every batch.", str),
    Spec("FF_AUDIT_SIEM_BATCH", "500", "1..10000", "Rows sent to the SIEM at most in one batch.",
         _int_range(1, 10000)),
    Spec("FF_BUSINESS_HOURS", "Mon-Fri 08:00-18:00 UTC", "empty or DAYS HH:MM-HH:MM ZONE, e.g. "
         "Mon-Fri 08:00-18:00 Europe/Paris",
         "Outside these hours (start included, end excluded, in the IANA time zone given) a deploy "
         "or rollback run is recorded as `anomaly.off_hours_deploy`. Empty: that rule is off.",
         _business_hours),
    Spec("FF_METRICS_BIND", "", "empty or a loopback HOST:PORT",
         "Where the watcher serves Prometheus metrics (GET /metrics), never on the API's "
         "address. Empty: no metrics.", _local_bind),
    Spec("FF_RUN_TIMEOUT_SECONDS", "3600", "10..86400",
         "A run still going after this long is stopped and recorded as `timeout`.", _int_range(10, 86400)),
    Spec("FF_EVENT_STREAM_MAX_SECONDS", "3600", "1..86400",
         "A run's event stream (`/api/runs/ID/events/stream`) ends after this long even if the run "
         "goes on; the client reconnects with Last-Event-ID and misses nothing. Lower it behind a "
         "proxy that cuts long responses.", _int_range(1, 86400)),
    Spec("FF_RUN_LEASE_SECONDS", "30", "3..600",
         "A worker renews its lease on a run every third of this; a run whose lease lapses "
         "(its worker died) is marked lost by the next worker.", _int_range(3, 600)),
    Spec("FF_SITE_SOURCES_DIR", "", "empty or a directory path",
         "Where a worker finds each site's content to deploy (one directory per slug). "
         "Empty: FF_DATA_DIR/site-sources.", str),
    Spec("FF_MAX_UPLOAD_MB", "100", "1..2048",
         "Largest PDF an upload may send, in MiB (the JSON limit FF_MAX_BODY_BYTES does not apply to "
         "uploads); larger uploads get 413 and leave nothing behind.", _int_range(1, 2048)),
    Spec("FF_RELEASE_PUBLIC_KEY", "", "empty or a minisign public key line (RW + 54 base64 characters)",
         "The key a release bundle uploaded for self-update (POST /api/releases) must be signed with, as "
         "install.sh checks it; install.sh sets it to its own. Empty: self-update is refused.",
         _release_key),
    Spec("FF_MAX_RELEASE_MB", "1024", "1..8192",
         "Largest release bundle an upload may send, in MiB; larger ones get 413 and leave nothing behind.",
         _int_range(1, 8192)),
    Spec("FF_REQUIRE_AV", "1", "0 | 1",
         "1: an upload the virus scanner cannot scan (clamd unreachable or failing) is refused with 503. "
         "0: it goes on unscanned and its audit event says so. A virus found is a 422 either way.",
         _switch),
    Spec("FF_CLAMD_SOCKET", "/run/clamav/clamd.ctl", "the path of clamd's unix socket",
         "clamd's LocalSocket (Debian's clamav-daemon default); uploads are streamed to it with INSTREAM.",
         _nonempty),
    Spec("FF_DOCUMENT_STORE_DIR", "", "empty or a directory path",
         "Where uploaded PDFs are kept by SHA-256 (originals and flattened copies), with the quarantine "
         "and the uploads' private temporary files. Empty: FF_DATA_DIR/documents.", str),
    Spec("FF_FLATTEN_TIMEOUT_SECONDS", "120", "1..3600",
         "Longest time (wall clock, and CPU) Ghostscript and each PDF check may take on one upload; "
         "past it the upload is refused with 422.", _int_range(1, 3600)),
    Spec("FF_FLATTEN_MEMORY_MB", "1024", "64..16384",
         "Most memory (address space, MiB) Ghostscript and each PDF check may take on one upload; "
         "past it the upload is refused with 422.", _int_range(64, 16384)),
    Spec("FF_ANSIBLE_DIR", "", "empty or a directory path",
         "The directory holding ansible.cfg, playbooks/ and roles/. Empty: the installed release's own.",
         str),
    Spec("FF_OFFLINE_DIR", "", "empty or a directory path",
         "The offline material install_hosts ships to site hosts: a directory holding debs.tar (the flat "
         "Debian repository of scripts/build-offline or of an installed release). Empty: install_hosts "
         "runs are refused.", str),
    Spec("FF_EMBEDDED_WORKER", "auto", "auto | 0 | 1",
         "1: `weco serve` also runs a worker. auto: only with the embedded SQLite store.",
         _choice("auto", "0", "1")),
    Spec("FF_ALLOW_UNENCRYPTED", "0", "0 | 1",
         "Read by the luks_gate role: 1 lets a development host without LUKS through "
         "(refused when FF_ENV=production).", _switch),
    Spec("FF_DISK_ENCRYPTION", "luks", "luks | cloud-managed",
         "Read by the luks_gate role: cloud-managed records that the provider encrypts the disks "
         "instead of LUKS.", _choice("luks", "cloud-managed")),
    Spec("FF_ACME_SERVER", "", "empty or an https:// ACME directory URL",
         "Read by the nginx_tls role in letsencrypt mode: an internal ACME server. "
         "Empty: Let's Encrypt.", str),
    Spec("FF_BACKUP_PASSPHRASE_FILE", "", "empty or the path of a file (mode 0600) of at least 16 bytes",
         "The backup passphrase (scrypt derives the backup key from it). It must not be the master "
         "secret or the audit secret: `weco backup create` refuses either. Empty: no backups.", str),
    Spec("FF_BACKUP_S3_ENDPOINT", "", "empty or an http(s):// URL",
         "S3 endpoint for `s3://` backup targets (an S3-compatible store). Empty: AWS. Credentials come "
         "from the AWS SDK's usual sources.", _http_url),
    Spec("FF_BACKUP_S3_REGION", "us-east-1", "an AWS region name", "Region of the backup bucket.",
         _nonempty),
    Spec("FF_BACKUP_RETENTION_DAYS", "30", "1..3650",
         "Object Lock retention (compliance mode) of a backup written to S3: until then nobody can delete "
         "or overwrite it.", _int_range(1, 3650)),
    Spec("FF_EVIDENCE_SIGNING_KEY", "", "empty or the path of an Ed25519 PEM private key (mode 0600)",
         "The key that signs evidence packs (not the audit witness key). Empty: "
         "FF_DATA_DIR/evidence/signing.key is created in dev, refused in production.", str),
    Spec("FF_LICENSE_PUBLIC_KEY", "", "empty, or the path of an Ed25519 PEM public key (FF_ENV=dev only)",
         "The key licenses and revocation lists must be signed by. Empty: the issuer key shipped in this "
         "release (control_api/license/issuer.pub); another key is refused in production.", str),
    Spec("FF_LICENSE_GRACE_DAYS", "14", "0..90",
         "Days after a license's expiry during which its caps still hold; then the community caps do. "
         "Only creating sites, hosts and accounts is ever refused: logins, runs and rollbacks go on.",
         _int_range(0, 90)),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    database_url: str = dataclasses.field(repr=False)
    bind: str
    workers: int
    threads: int
    log_level: str
    trusted_proxies: tuple
    max_body_bytes: int
    session_idle_minutes: int
    session_max_hours: int
    audit_secret: str = dataclasses.field(repr=False)
    audit_witness_key: str
    audit_checkpoint_file: str
    audit_checkpoint_every: int
    audit_siem_url: str
    audit_siem_ca_file: str
    audit_siem_client_cert: str
    audit_siem_client_key: str
    audit_siem_token_file: str
    audit_siem_batch: int
    business_hours: str
    metrics_bind: str
    totp_only: bool
    sealed_mode: bool
    sealed_mode_grace_days: int
    require_step_up: bool
    jit_required: bool
    jit_ttl_minutes: int
    jit_approvers: int
    token_max_days: int
    sso_base_url: str
    sso_group_map: str
    saml_idp_metadata: str
    saml_sp_entity_id: str
    saml_sp_key: str
    saml_sp_cert: str
    saml_idp_initiated: bool
    saml_groups_attribute: str
    oidc_issuer: str
    oidc_discovery_file: str
    oidc_client_id: str
    oidc_client_secret_file: str
    oidc_scopes: str
    oidc_groups_claim: str
    oidc_algorithms: tuple
    oidc_ca_file: str
    webauthn_rp_id: str
    webauthn_origins: tuple[str, ...]
    sso_only: bool
    smtp_url: str = dataclasses.field(repr=False)
    smtp_from: str
    smtp_ca_file: str
    master_secret_provider: str
    master_secret_rotation_provider: str
    key_local_forbid: bool
    run_timeout_seconds: int
    event_stream_max_seconds: int
    run_lease_seconds: int
    site_sources_dir: str
    max_upload_mb: int
    release_public_key: str
    max_release_mb: int
    require_av: bool
    clamd_socket: str
    document_store_dir: str
    flatten_timeout_seconds: int
    flatten_memory_mb: int
    ansible_dir: str
    offline_dir: str
    embedded_worker: str
    allow_unencrypted: bool
    disk_encryption: str
    acme_server: str
    backup_passphrase_file: str
    backup_s3_endpoint: str
    backup_s3_region: str
    backup_retention_days: int
    evidence_signing_key: str
    license_public_key: str
    license_grace_days: int
    # Vault's own variables, for the vault: provider (hvac's usual names).
    vault_env: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def sources_dir(self) -> Path:
        return Path(self.site_sources_dir) if self.site_sources_dir else self.data_dir / "site-sources"

    @property
    def documents_dir(self) -> Path:
        return Path(self.document_store_dir) if self.document_store_dir else self.data_dir / "documents"

    @property
    def offline_repository(self) -> Path | None:
        return Path(self.offline_dir).resolve() if self.offline_dir else None

    @property
    def project_dir(self) -> Path:
        return Path(self.ansible_dir) if self.ansible_dir else Path(__file__).resolve().parents[1]

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'weco.sqlite3').resolve()}"


VAULT_ENV = ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_CACERT")

_FIELD_OF = {spec.name: spec.name.removeprefix("FF_").lower() for spec in SPECS}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every FF_* variable; raise SettingsError on the first bad one."""
    environ = os.environ if environ is None else environ
    known = set(_FIELD_OF)
    for name in sorted(environ):
        if name.startswith("FF_") and name not in known:
            raise SettingsError(f"{name} is not a setting of this release (see `weco config show`)")
    values: dict[str, Any] = {}
    for spec in SPECS:
        raw = environ.get(spec.name, spec.default).strip()
        try:
            values[_FIELD_OF[spec.name]] = spec.parse(raw)
        except ValueError:
            shown = REDACTED if spec.secret else repr(raw)
            raise SettingsError(f"{spec.name}={shown} is not allowed: expected {spec.allowed}") from None
    if values["env"] != "dev" and _plain_smtp_leaves_the_host(values["smtp_url"]):
        raise SettingsError("FF_SMTP_URL: plain smtp:// is allowed in production only to a relay on this "
                            "machine and without credentials; use smtp+starttls:// or smtps://")
    if values["sealed_mode"] and not values["totp_only"]:
        raise SettingsError("FF_SEALED_MODE=1 is not allowed without FF_TOTP_ONLY=1: sealed mode means TOTP")
    _check_siem(values)
    _check_sso(values)
    _check_webauthn(values)
    if values["license_public_key"] and values["env"] != "dev":
        raise SettingsError("FF_LICENSE_PUBLIC_KEY is allowed only with FF_ENV=dev: production trusts the "
                            "issuer key shipped in the release")
    values["data_dir"] = Path(values["data_dir"])
    values["vault_env"] = MappingProxyType({k: environ[k] for k in VAULT_ENV if environ.get(k)})
    return Settings(**values)


def _check_siem(values: dict) -> None:
    url = values["audit_siem_url"]
    if url.startswith("syslog+tcp:") and values["env"] != "dev":
        raise SettingsError("FF_AUDIT_SIEM_URL: syslog+tcp:// sends the audit log in clear, allowed only "
                            "with FF_ENV=dev; use syslog+tls://")
    if url.startswith("https:") and not values["audit_siem_token_file"]:
        raise SettingsError("FF_AUDIT_SIEM_URL: an https:// SIEM needs FF_AUDIT_SIEM_TOKEN_FILE")
    if values["audit_siem_client_key"] and not values["audit_siem_client_cert"]:
        raise SettingsError("FF_AUDIT_SIEM_CLIENT_KEY is set without FF_AUDIT_SIEM_CLIENT_CERT")


def _check_webauthn(values: dict) -> None:
    rp_id, origins = values["webauthn_rp_id"], values["webauthn_origins"]
    if bool(rp_id) != bool(origins):
        raise SettingsError("FF_WEBAUTHN_RP_ID and FF_WEBAUTHN_ORIGINS go together: set both, or neither")
    for origin in origins:
        host = urlsplit(origin).hostname
        if host != rp_id and not host.endswith("." + rp_id):
            raise SettingsError(f"FF_WEBAUTHN_ORIGINS: {origin} is not on FF_WEBAUTHN_RP_ID={rp_id} "
                                "(its host must be the RP id or a name under it)")


def redact_url(url: str) -> str:
    """Hide the password part of a URL; keep the rest, which operators need to see."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{REDACTED}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def effective_items(settings: Settings) -> list[tuple[str, str]]:
    """(name, shown value) for every setting, with secrets redacted."""
    rows = []
    for spec in SPECS:
        value = getattr(settings, _FIELD_OF[spec.name])
        if spec.name == "FF_DATABASE_URL":
            shown = redact_url(settings.effective_database_url)
        elif spec.secret:
            shown = REDACTED if value else ""
        elif isinstance(value, bool):
            shown = "1" if value else "0"
        elif isinstance(value, tuple):
            shown = ", ".join(map(str, value))
        else:
            shown = str(value)
        rows.append((spec.name, shown))
    return rows


def markdown_table() -> str:
    """The operator-facing settings table; the README embeds exactly this text."""
    lines = ["| Variable | Default | Allowed | What it does |", "|---|---|---|---|"]
    for spec in SPECS:
        default = f"`{spec.default}`" if spec.default else "(empty)"
        allowed = spec.allowed.replace("|", "\\|")  # a bare | would split the cell
        lines.append(f"| `{spec.name}` | {default} | {allowed} | {spec.description} |")
    return "\n".join(lines) + "\n"

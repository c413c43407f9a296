"""Loading the master secret through the providers into a Keyring, checked against
the store's record of which secret its ciphertexts are under.

The store remembers (master_keys) the active key id and, during a rotation, the
target's key id. Providers are named only by settings (FF_MASTER_SECRET_PROVIDER, and
FF_MASTER_SECRET_ROTATION_PROVIDER for the other key of a rotation) or by the
command line of `master-secret rotate --to`: never by the store, whose provider_uri
column is a note for operators. Whoever can write the store must not be able to make
a process run a command or call a service of their choosing. A retired or foreign
secret is refused with a message naming the fix.
"""

from __future__ import annotations

import logging
import secrets

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.clock import SystemClock
from control_api.crypto import MASTER_SECRET_BYTES, Aad, Keyring, key_id_of, master_key_id
from control_api.models import MasterKey
from control_api.settings import Settings
from keyproviders import (
    KeyProvider,
    KeyProviderError,
    ProviderContext,
    load_master_secret,
    parse_provider_list,
    resolve,
)

log = logging.getLogger(__name__)
SYSTEM = Actor("system")


class MasterKeyError(Exception):
    """The master secret cannot be loaded or does not fit the store; str() says what to do."""


def provider_context(settings: Settings) -> ProviderContext:
    return ProviderContext(data_dir=settings.data_dir, env=settings.vault_env)


def configured_uris(settings: Settings) -> list[str]:
    if settings.master_secret_provider:
        return parse_provider_list(settings.master_secret_provider)
    return [f"file:{settings.data_dir / 'keys' / 'master.key'}"]


def new_secret() -> bytes:
    return secrets.token_bytes(MASTER_SECRET_BYTES)


class MasterKeys:
    """The keyring of this process, loaded on first use and reloaded when a ciphertext
    names a key it lacks (a rotation started after this process did)."""

    def __init__(self, settings: Settings, db: peewee.Database, audit: AuditLog, clock: SystemClock,
                 rotation_uris: list[str] | None = None):
        self.settings, self.db, self.audit, self.clock = settings, db, audit, clock
        if rotation_uris is None and settings.master_secret_rotation_provider:
            rotation_uris = parse_provider_list(settings.master_secret_rotation_provider)
        self.rotation_uris = rotation_uris or []
        self._keyring: Keyring | None = None

    def rotating_to(self, uri: str) -> MasterKeys:
        """These keys, with `uri` (from `master-secret rotate --to`) as the other secret."""
        return MasterKeys(self.settings, self.db, self.audit, self.clock, [uri])

    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = self._load()
        return self._keyring

    def reload(self) -> Keyring:
        """Load again from the providers and the store's record (a rotation moved on)."""
        self._keyring = self._load()
        return self._keyring

    def encrypt(self, plaintext: bytes, *, aad: Aad) -> str:
        return self.keyring().encrypt(plaintext, aad=aad)

    def decrypt(self, token: str, *, aad: Aad) -> bytes:
        key_id = key_id_of(token)
        if key_id not in self.keyring().key_ids:
            self.reload()
            if key_id not in self.keyring().key_ids:
                raise MasterKeyError(
                    f"a value is under master key {key_id}, for which this process has no secret: during a "
                    "rotation, set FF_MASTER_SECRET_ROTATION_PROVIDER to the provider of the other key")
        return self.keyring().decrypt(token, aad=aad)

    def _load(self) -> Keyring:
        try:
            secret, provider = self._configured_secret()
        except KeyProviderError as exc:
            raise MasterKeyError(str(exc)) from None
        key_id = master_key_id(secret)
        rows = {row.key_id: row for row in MasterKey.select()}
        if not rows:
            self._register(key_id, provider)
            return Keyring(secret)
        active = next((r for r in rows.values() if r.state == "active"), None)
        target = next((r for r in rows.values() if r.state == "rotating"), None)
        needed = [r for r in (active, target) if r is not None]
        if key_id not in {r.key_id for r in needed}:
            raise MasterKeyError(self._mismatch(key_id, rows, active))
        loaded = {key_id: secret}
        other = next((row for row in needed if row.key_id != key_id), None)
        if other is not None and self.rotation_uris:
            loaded[other.key_id] = self._rotation_secret(other.key_id)
        elif other is not None:
            log.warning("a rotation between master keys %s and %s is under way and "
                        "FF_MASTER_SECRET_ROTATION_PROVIDER is not set: values under %s cannot be read here",
                        key_id, other.key_id, other.key_id)
        # New values go under the rotation's target whenever this process holds it.
        current = target.key_id if target is not None and target.key_id in loaded else key_id
        return Keyring(loaded[current], tuple(v for k, v in loaded.items() if k != current))

    def _configured_secret(self) -> tuple[bytes, KeyProvider]:
        context = provider_context(self.settings)
        uris = configured_uris(self.settings)
        if not self.settings.master_secret_provider and not self.settings.key_local_forbid:
            default = resolve(uris[0], context)
            if not default.path.exists():
                # The embedded default: created on first use, 0600, never overwritten.
                default.store(new_secret())
                log.info("created the master secret at %s", default.path)
        return load_master_secret(uris, context, self.settings.key_local_forbid)

    def _rotation_secret(self, expected: str | None = None) -> bytes:
        """The other secret of a rotation, from the configured rotation provider."""
        try:
            secret, provider = load_master_secret(self.rotation_uris, provider_context(self.settings),
                                                  self.settings.key_local_forbid)
        except KeyProviderError as exc:
            raise MasterKeyError(f"the rotation's other master key: {exc}") from None
        if expected is not None and master_key_id(secret) != expected:
            raise MasterKeyError(f"{provider.uri} yields master key {master_key_id(secret)}, but the store's "
                                 f"other key is {expected}")
        return secret

    def _register(self, key_id: str, provider: KeyProvider) -> None:
        with self.audit.mutation():
            inserted = (MasterKey.insert(key_id=key_id, provider_uri=provider.uri, state="active",
                                         created_at=self.clock.now())
                        .on_conflict_ignore().as_rowcount().execute())
            # Processes starting together on a fresh store race here: only the one whose
            # row went in says so, or the log would record one key registered many times.
            if inserted:
                self.audit.record(SYSTEM, "master_secret.register", f"master_key:{key_id}",
                                  {"provider": provider.uri.split(":", 1)[0]})

    @staticmethod
    def _mismatch(key_id: str, rows: dict, active: MasterKey | None) -> str:
        if key_id in rows and rows[key_id].state == "retired":
            return (f"the configured master secret ({key_id}) was retired by a rotation; the store uses "
                    f"{active.key_id} from {active.provider_uri}: set FF_MASTER_SECRET_PROVIDER to it")
        return (f"the configured master secret ({key_id}) is not the store's"
                + (f" ({active.key_id}, from {active.provider_uri})" if active else ""))

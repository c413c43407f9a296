"""What a restore drill proves about the scratch store it restored: the audit chain
verifies from genesis against the restored checkpoints (under this deployment's audit
secret and witness), and every encrypted column decrypts under the configured master
secret, so the backup is usable with the keys kept apart from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from control_api import migrations
from control_api.audit.chain import ChainKey, WitnessPublic
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.verify import Verifier, rows_from_store
from control_api.crypto import Aad, CryptoError, Keyring
from control_api.db import open_database
from control_api.models import Host, TotpCredential


def restored_store_checker(chain_key: ChainKey, witness: WitnessPublic,
                           keyring: Keyring) -> Callable[[str, Path, dict], tuple[int, str | None]]:
    def check(url: str, checkpoint_path: Path, manifest: dict) -> tuple[int, str | None]:
        db = open_database(url)
        db.connect(reuse_if_open=True)
        try:
            checkpoints = list(read_checkpoints(checkpoint_path)) if checkpoint_path.exists() else []
            report = Verifier([witness], [chain_key], workers=1).verify(rows_from_store(), checkpoints)
            if not report.ok:
                return report.rows, f"the restored audit log does not verify: {report.failure}"
            if report.rows != (manifest.get("audit_head") or {}).get("seq", 0):
                return report.rows, "the restored audit log does not end at the backup's head"
            behind = migrations.pending(db)
            if behind:
                return report.rows, f"the restored store lacks {len(behind)} migration(s) of this release"
            try:
                for host in Host.select(Host.id, Host.ssh_private_key):
                    keyring.decrypt(host.ssh_private_key, aad=Aad("hosts", "ssh_private_key", host.id))
                for credential in TotpCredential.select():
                    keyring.decrypt(credential.seed, aad=Aad("totp_credentials", "seed", credential.user_id))
            except CryptoError as exc:
                return report.rows, (f"a restored secret does not decrypt under the configured master "
                                     f"secret: {exc}")
            return report.rows, None
        finally:
            db.close()
            if hasattr(db, "close_all"):
                db.close_all()

    return check


def keys_fit(chain_key: ChainKey, master_key_ids: set[str]) -> Callable[[dict], None]:
    """A restore's precheck: the configured audit secret and master secret are the ones
    the backup's audit log and encrypted values are under (they are never in a backup),
    so a restore never leaves a store this deployment cannot extend or read."""
    from control_api.backup.service import BackupError

    def check(manifest: dict) -> None:
        head = manifest.get("audit_head") or {}
        if head.get("mac_key_id") and head["mac_key_id"] != chain_key.key_id:
            raise BackupError(f"the backup's audit log is under audit secret {head['mac_key_id']}, but "
                              f"FF_AUDIT_SECRET is {chain_key.key_id}: configure the backup's audit secret")
        needed = set(manifest.get("master_key_ids") or ())
        if needed and not needed & master_key_ids:
            raise BackupError(f"the backup's values are under master key {', '.join(sorted(needed))}, but "
                              f"the configured master secret is {', '.join(sorted(master_key_ids))}: "
                              "configure the backup's master secret provider")

    return check

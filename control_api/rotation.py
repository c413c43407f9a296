"""`weco master-secret rotate`: re-encrypt every encrypted column under a new master
secret, in batches, audited, resumable after a crash.

Crash safety comes from the ciphertexts themselves: each names the master key that
made it, so a batch re-encrypts only values not yet under the target key, and each
batch commits with its audit event. A rerun after a kill picks up where the last
committed batch ended; nothing is lost and nothing is encrypted twice. Until the
last batch, the store records the target as `rotating`, and every process loads
both secrets, so old and new ciphertexts stay readable. The last step retires the
old key and makes the target active, in one transaction.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from control_api.audit.log import Actor
from control_api.crypto import Aad, master_key_id
from control_api.encrypted_columns import ENCRYPTED_COLUMNS, EncryptedColumn
from control_api.masterkey import MasterKeyError, MasterKeys, new_secret, provider_context
from control_api.models import MasterKey
from keyproviders import KeyProviderError, resolve


@dataclasses.dataclass
class RotationResult:
    target_key_id: str
    rows: int
    resumed: bool


def _target(keys: MasterKeys, to_uri: str, actor: Actor) -> tuple[str, bool]:
    """The target key id, creating and storing the new secret unless a rotation to
    `to_uri` is already under way (or its secret was stored before a crash)."""
    provider = resolve(to_uri, provider_context(keys.settings))
    if provider.local and keys.settings.key_local_forbid:
        raise MasterKeyError(f"FF_KEY_LOCAL_FORBID=1 refuses {to_uri.split(':', 1)[0]}: as a rotation target")
    rotating = MasterKey.get_or_none(MasterKey.state == "rotating")
    try:
        secret = provider.unwrap()  # a rotation under way, or one that died before recording it
    except KeyProviderError:
        secret = None
    if rotating is not None:
        # The store's provider_uri is only a note for the operator; the key id decides.
        if secret is None or master_key_id(secret) != rotating.key_id:
            raise MasterKeyError(f"a rotation to master key {rotating.key_id} (recorded as "
                                 f"{rotating.provider_uri}) is under way: resume it with --to "
                                 "the provider that holds that key")
        return rotating.key_id, True
    if secret is None:
        secret = new_secret()
        provider.store(secret)
    key_id = master_key_id(secret)
    if MasterKey.get_or_none(MasterKey.key_id == key_id) is not None:
        raise MasterKeyError(f"{to_uri} holds master key {key_id}, which the store has used before")
    with keys.audit.mutation():
        MasterKey.create(key_id=key_id, provider_uri=to_uri, state="rotating",
                         created_at=keys.clock.now())
        keys.audit.record(actor, "master_secret.rotate.start", f"master_key:{key_id}",
                          {"provider": to_uri.split(":", 1)[0]})
    return key_id, False


def _remaining(keys: MasterKeys, column: EncryptedColumn, target: str) -> int:
    t, c = column.table, column.column
    sql = f"SELECT COUNT(*) FROM {t} WHERE {c} IS NOT NULL AND {c} NOT LIKE {keys.db.param}"
    return keys.db.execute_sql(sql, (f"v1.{target}.%",)).fetchone()[0]


def _rotate_batch(keys: MasterKeys, column: EncryptedColumn, target: str, batch: int, actor: Actor) -> int:
    db, param = keys.db, keys.db.param
    t, c, i = column.table, column.column, column.id_column
    # Names come from ENCRYPTED_COLUMNS (code), never from input.
    select = (f"SELECT {i}, {c} FROM {t} WHERE {c} IS NOT NULL AND {c} NOT LIKE {param} "
              f"ORDER BY {i} LIMIT {int(batch)}")
    update = f"UPDATE {t} SET {c} = {param} WHERE {i} = {param} AND {c} = {param}"
    keyring = keys.keyring()
    with keys.audit.mutation():
        rows = db.execute_sql(select, (f"v1.{target}.%",)).fetchall()
        for row_id, token in rows:
            aad = Aad(t, c, row_id)
            fresh = keyring.encrypt(keyring.decrypt(token, aad=aad), aad=aad)
            # Compare-and-set: a value rewritten meanwhile is left for the next pass.
            db.execute_sql(update, (fresh, row_id, token))
        if rows:
            keys.audit.record(actor, "master_secret.rotate.batch", f"column:{t}.{c}",
                              {"rows": len(rows), "to": target})
    return len(rows)


def rotate(keys: MasterKeys, to_uri: str, actor: Actor, batch: int = 500, pause: float = 0.0,
           columns: list[EncryptedColumn] | None = None,
           progress: Callable[[str], None] = lambda line: None) -> RotationResult:
    columns = ENCRYPTED_COLUMNS if columns is None else columns
    keys.keyring()  # the current secret must load before anything changes
    keys = keys.rotating_to(to_uri)
    target, resumed = _target(keys, to_uri, actor)
    if keys.reload().current_id != target:  # now with the target as the current key
        raise MasterKeyError("the target key did not load as current; nothing was re-encrypted")
    total = 0
    while True:
        for column in columns:
            while count := _rotate_batch(keys, column, target, batch, actor):
                total += count
                progress(f"{column.table}.{column.column}: {count} re-encrypted ({total} in all)")
                if pause:
                    time.sleep(pause)
        if _finish(keys, columns, target, total, actor):
            break
    return RotationResult(target, total, resumed)


def _finish(keys: MasterKeys, columns: list[EncryptedColumn], target: str, total: int, actor: Actor) -> bool:
    """Retire the old key, unless a value under it appeared meanwhile (then go round again)."""
    with keys.audit.mutation():
        if any(_remaining(keys, column, target) for column in columns):
            return False
        old = [row.key_id for row in MasterKey.select().where(MasterKey.state == "active")]
        MasterKey.update(state="retired", retired_at=keys.clock.now()).where(
            MasterKey.state == "active").execute()
        MasterKey.update(state="active").where(MasterKey.key_id == target).execute()
        keys.audit.record(actor, "master_secret.rotate.finish", f"master_key:{target}",
                          {"retired": old, "rows": total})
    return True

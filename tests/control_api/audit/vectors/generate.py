"""Regenerate the audit test vectors (deterministic: fixed keys, clock and ids).

    .venv/bin/python -m tests.control_api.audit.vectors.generate

Only when the format changes on purpose: the vectors pin today's encoding, so an
accidental change to canonical JSON, labels or MAC inputs fails the tests.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from control_api import migrations
from control_api.audit.chain import ChainKey, Witness
from control_api.audit.checkpoints import CheckpointFile
from control_api.audit.export import export
from control_api.audit.log import Actor, AuditLog
from control_api.db import open_database

HERE = Path(__file__).parent
SECRET = b"weco test vector chain secret, not for production"
SEED = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.current = dt.datetime(2026, 11, 29, 12, 0, 0)

    def now(self) -> dt.datetime:
        self.current += dt.timedelta(seconds=1)
        return self.current


def main() -> None:
    witness, key, clock = Witness(Ed25519PrivateKey.from_private_bytes(SEED)), ChainKey(SECRET), Clock()
    ids = (f"event-{n}" for n in itertools.count(1))
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/v.sqlite3")
        migrations.upgrade(db, clock.now())
        checkpoints = CheckpointFile(Path(tmp) / "cp.jsonl")
        audit = AuditLog(db, clock, key, witness, checkpoints, 0, new_id=lambda: next(ids))
        actor = Actor("user:1", "192.0.2.1", "vector")
        for n in range(1, 6):
            audit.record_alone(actor, "site.deploy", f"site:s{n}", {"release": n})
        with (HERE / "good.jsonl").open("w") as out:
            export(out, dt.datetime(2000, 1, 1), dt.datetime(2026, 11, 29, 13, 0, 0))
        head = audit.seal()
        good_cp = checkpoints.append(witness, head.head_seq, head.head_mac, dt.datetime(2026, 11, 29, 13))
    (HERE / "witness.pub").write_bytes(witness.public.pem())
    header, *rows = [json.loads(line) for line in (HERE / "good.jsonl").read_text().splitlines()]

    def write(name: str, lines: list[dict]) -> None:
        (HERE / name).write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))

    def altered(index: int, **changes) -> list[dict]:
        copy = [dict(row) for row in rows]
        copy[index].update(changes)
        return [header, *copy]

    write("bad-edited-event.jsonl", altered(2, event_json=rows[2]["event_json"].replace("s3", "s9")))
    write("bad-indexed-column.jsonl", altered(1, action="site.delete"))
    write("bad-deleted-row.jsonl", [header, *rows[:2], *rows[3:]])
    write("bad-reordered.jsonl", [header, rows[0], rows[1], rows[3], rows[2], rows[4]])
    write("bad-prev-mac.jsonl", altered(4, prev_mac="f" * 64))
    write("bad-unknown-mac-key.jsonl", altered(0, mac_key_id="0123456789abcdef"))
    # Someone holding the chain secret but not the witness: signature swapped, MAC redone.
    forged = rows[3] | {"signature": rows[4]["signature"]}
    forged["mac"] = key.mac(4, forged["prev_mac"], forged["witness_key_id"], forged["signature"],
                            forged["event_json"])
    write("bad-signature.jsonl", altered(3, signature=forged["signature"], mac=forged["mac"]))
    write("checkpoint-good.jsonl", [good_cp])
    longer = witness.sign_checkpoint(7, "e" * 64, "2026-11-29T13:00:00.000000Z")
    write("checkpoint-truncating.jsonl", [good_cp | {"count": 7, "head_mac": "e" * 64,
                                                     "time": "2026-11-29T13:00:00.000000Z",
                                                     "signature": longer}])
    write("checkpoint-forged.jsonl", [good_cp | {"count": 4}])


if __name__ == "__main__":
    main()

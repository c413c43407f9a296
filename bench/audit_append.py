"""Audited mutations per second on PostgreSQL (fsync on) with 8 concurrent clients:
our batched sealing versus a naive chain that locks the chain head in every mutation.

Each client is a process (as gunicorn workers are) running a mutation that inserts a
row and records one audit event in the same transaction. Both designs write the same
rows to the same audit_events schema (same indexes), each in its own database of one
cluster, in the same run; both chains are then checked by the verifier. The ratio is
ours / naive (goal >= 3).

    .venv/bin/python -m bench.audit_append [--clients 8] [--seconds 6]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import tempfile
import time
import uuid

from control_api import migrations
from control_api.audit.chain import GENESIS_MAC, canonical_json
from control_api.audit.log import Actor
from control_api.audit.verify import Verifier, rows_from_store
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.wiring import build_audit_log
from tests.peers.postgres import PostgresCluster

ACTOR = Actor("bench", "127.0.0.1", "bench")
ITEMS = "CREATE TABLE bench_items (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)"
HEAD = [
    "CREATE TABLE naive_head (id INT PRIMARY KEY, seq BIGINT NOT NULL, mac TEXT NOT NULL)",
    f"INSERT INTO naive_head VALUES (1, 0, '{GENESIS_MAC}')",  # noqa: S608 (a constant)
]
NAIVE_INSERT = (
    "INSERT INTO audit_events (seq, event_id, occurred_at, actor, action, target, event_json,"
    " witness_key_id, signature, mac_key_id, prev_mac, mac)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ours(settings, worker: int, deadline: float, counter) -> None:
    """As `weco serve` runs it: requests commit; a background sealer chains in batches."""
    db = open_database(settings.effective_database_url)
    audit = build_audit_log(settings, db, Clock(), seal_after_commit=False)
    audit.start_background_sealer()
    done = 0
    while time.monotonic() < deadline:
        with audit.mutation():
            db.execute_sql("INSERT INTO bench_items (note) VALUES (%s)", (f"w{worker}",))
            audit.record(ACTOR, "bench.item", f"w{worker}:{done}")
        done += 1
    with counter.get_lock():
        counter.value += done


def naive(settings, worker: int, deadline: float, counter) -> None:
    """The strict design: the chain head is locked from read to commit, every time."""
    db = open_database(settings.effective_database_url)
    audit = build_audit_log(settings, db, Clock())
    key, witness, clock = audit.chain_key, audit.witness, Clock()
    done = 0
    while time.monotonic() < deadline:
        with db.atomic():
            db.execute_sql("INSERT INTO bench_items (note) VALUES (%s)", (f"w{worker}",))
            seq, prev = db.execute_sql("SELECT seq, mac FROM naive_head WHERE id = 1 FOR UPDATE").fetchone()
            now = clock.now()
            event = {"id": uuid.uuid4().hex, "time": now.isoformat(timespec="microseconds") + "Z",
                     "actor": ACTOR.id, "action": "bench.item", "target": f"w{worker}:{done}",
                     "source_ip": ACTOR.source_ip, "user_agent": ACTOR.user_agent, "metadata": {}}
            event_json = canonical_json(event)
            signature = witness.sign_event(event_json)
            mac = key.mac(seq + 1, prev, witness.key_id, signature, event_json)
            db.execute_sql(NAIVE_INSERT, (seq + 1, event["id"], now, event["actor"], event["action"],
                                          event["target"], event_json, witness.key_id, signature,
                                          key.key_id, prev, mac))
            db.execute_sql("UPDATE naive_head SET seq = %s, mac = %s WHERE id = 1", (seq + 1, mac))
        done += 1
    with counter.get_lock():
        counter.value += done


def run(target, settings, clients: int, seconds: float) -> float:
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    deadline = time.monotonic() + seconds
    procs = [context.Process(target=target, args=(settings, n, deadline, counter)) for n in range(clients)]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a {target.__name__} client failed")
    return counter.value / (time.monotonic() - started)


def prepare(cluster: PostgresCluster, name: str, data_dir: str, extra: list[str]):
    cluster.admin_sql(f"CREATE DATABASE {name}")
    settings = load_settings({"FF_ENV": "dev", "FF_DATABASE_URL": cluster.url(name),
                              "FF_DATA_DIR": data_dir, "FF_AUDIT_CHECKPOINT_EVERY": "0"})
    db = open_database(settings.effective_database_url)
    migrations.upgrade(db, Clock().now())
    for statement in [ITEMS, *extra]:
        db.execute_sql(statement)
    db.close()
    return settings


def verified_rows(settings) -> int:
    db = open_database(settings.effective_database_url)
    audit = build_audit_log(settings, db, Clock())
    audit.seal()
    report = Verifier([audit.witness.public], [audit.chain_key]).verify(rows_from_store())
    db.close()
    if not report.ok:
        raise SystemExit(f"chain does not verify: {report.failure}")
    return report.rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    cluster = PostgresCluster(fsync=True).start()
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            naive_settings = prepare(cluster, "bench_naive", data_dir, HEAD)
            ours_settings = prepare(cluster, "bench_ours", data_dir, [])
            naive_rate = run(naive, naive_settings, args.clients, args.seconds)
            ours_rate = run(ours, ours_settings, args.clients, args.seconds)
            naive_rows, ours_rows = verified_rows(naive_settings), verified_rows(ours_settings)
    finally:
        cluster.stop()
    print(f"PostgreSQL, fsync on, {args.clients} client processes, {args.seconds:.0f} s each")
    print(f"naive per-row-lock chain: {naive_rate:8.0f} audited mutations/s ({naive_rows} rows verified)")
    print(f"batched sealing (ours):   {ours_rate:8.0f} audited mutations/s ({ours_rows} rows verified)")
    print(f"ratio ours/naive: {ours_rate / naive_rate:.2f} (goal >= 3)")


if __name__ == "__main__":
    main()

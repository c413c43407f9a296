"""Backup and restore throughput versus pg_dump/pg_restore alone on the same store, in the
same run; then the peak memory of `weco backup create` on a 1 GB SQLite store.

PostgreSQL (fsync on): a migrated store filled with a table of random bytes (so
compression cannot flatter anyone), then `pg_dump -Fc` to a file and `pg_restore
--single-transaction` into an empty database (the baseline), and `backup.service.create`
and `restore` (snapshot, stream encryption, verify pass, restore pass, count checks) on
the same store. Ratios are MB/s of ours over MB/s of the bare tools.

Memory: a SQLite store of --memory-mb of random blobs, `weco backup create` in a child
process, its peak RSS (ru_maxrss) against the store's size: streaming means the peak
stays near the interpreter's own, whatever the size. Scrypt's 128 MiB is included.

    .venv/bin/python -m bench.backup_restore [--pg-mb 256] [--memory-mb 1024]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from control_api import migrations
from control_api.backup import service
from control_api.backup.stores import PostgresBackend
from control_api.db import open_database
from tests.peers.postgres import PostgresCluster

PASSPHRASE = b"bench passphrase, not a secret"
BLOB = 1 << 20


def _fill_postgres(cluster: PostgresCluster, name: str, megabytes: int) -> None:
    cluster.admin_sql(f"CREATE DATABASE {name}")
    db = open_database(cluster.url(name))
    migrations.upgrade(db, dt.datetime(2026, 12, 1))
    db.execute_sql("CREATE TABLE bench_fill (id serial PRIMARY KEY, data bytea NOT NULL)")
    for _ in range(megabytes):
        db.execute_sql("INSERT INTO bench_fill (data) VALUES (%s)", (os.urandom(BLOB),))
    db.close()
    db.close_all()


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def postgres_throughput(megabytes: int, directory: Path) -> None:
    cluster = PostgresCluster(fsync=True).start()
    try:
        _fill_postgres(cluster, "bench_src", megabytes)
        source = PostgresBackend(cluster.url("bench_src"))
        dump = directory / "bare.pgdump"
        bare_dump = _timed(lambda: subprocess.run(
            source._tool("pg_dump", "--format=custom", "--dbname=bench_src", f"--file={dump}"),
            check=True, env=source._env()))
        cluster.admin_sql("CREATE DATABASE bench_bare")
        target = PostgresBackend(cluster.url("bench_bare"))
        bare_restore = _timed(lambda: subprocess.run(
            target._tool("pg_restore", "--single-transaction", "--exit-on-error", "--no-owner",
                         "--no-privileges", "--dbname=bench_bare", str(dump)),
            check=True, env=target._env()))
        backup = directory / "ours.wecobak"
        ours_dump = _timed(lambda: service.create(
            cluster.url("bench_src"), str(backup), PASSPHRASE, dt.datetime(2026, 12, 1),
            directory / "none.jsonl", lambda: None, 1))
        cluster.admin_sql("CREATE DATABASE bench_ours")
        ours_restore = _timed(lambda: service.restore(
            cluster.url("bench_ours"), lambda: backup.open("rb"), PASSPHRASE, directory / "restored.jsonl"))
    finally:
        cluster.stop()
    size = megabytes
    print(f"PostgreSQL store of {size} MB (random bytes), fsync on:")
    stored = backup.stat().st_size
    print(f"  backup:  ours {size / ours_dump:6.1f} MB/s ({ours_dump:.2f} s, {stored:,} bytes)"
          f"  pg_dump -Fc {size / bare_dump:6.1f} MB/s ({bare_dump:.2f} s)  "
          f"ratio {bare_dump / ours_dump:.2f}")
    print(f"  restore: ours {size / ours_restore:6.1f} MB/s ({ours_restore:.2f} s, verify pass included)"
          f"  pg_restore {size / bare_restore:6.1f} MB/s ({bare_restore:.2f} s)  "
          f"ratio {bare_restore / ours_restore:.2f}")


def peak_memory(megabytes: int, directory: Path) -> None:
    data_dir = directory / "mem"
    env = {"PATH": "/usr/bin:/bin", "FF_ENV": "dev", "FF_DATA_DIR": str(data_dir), "FF_LOG_LEVEL": "WARNING"}
    passphrase = directory / "passphrase"
    passphrase.write_bytes(PASSPHRASE)
    passphrase.chmod(0o600)
    env["FF_BACKUP_PASSPHRASE_FILE"] = str(passphrase)
    weco = [sys.executable, "-m", "control_api.cli"]
    subprocess.run([*weco, "db", "upgrade"], env=env, check=True, capture_output=True)
    store = sqlite3.connect(data_dir / "weco.sqlite3")
    store.execute("CREATE TABLE bench_fill (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    for _ in range(megabytes):
        store.execute("INSERT INTO bench_fill (data) VALUES (?)", (os.urandom(BLOB),))
    store.commit()
    store.close()
    size = (data_dir / "weco.sqlite3").stat().st_size
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([*weco, "backup", "create", "--out", str(directory / "big.wecobak")], env=env, check=True,
                   capture_output=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    idle = subprocess.run([sys.executable, "-c", "import resource, control_api.cli; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"SQLite store of {size / 1e6:,.0f} MB: `weco backup create` took {seconds:.1f} s "
          f"({size / 1e6 / seconds:.0f} MB/s); peak RSS {peak / 1024:.0f} MiB "
          f"(before: {before / 1024:.0f} MiB; the CLI importing alone: {int(idle) / 1024:.0f} MiB); "
          f"peak / store size = {peak * 1024 / size:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-mb", type=int, default=256)
    parser.add_argument("--memory-mb", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weco-bench-backup-") as work:
        directory = Path(work)
        if args.pg_mb:
            postgres_throughput(args.pg_mb, directory)
        if args.memory_mb:
            peak_memory(args.memory_mb, directory)


if __name__ == "__main__":
    main()

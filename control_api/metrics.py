"""Prometheus metrics (the official client library, prometheus-client), served by the
watcher on FF_METRICS_BIND (loopback only), never on the API's own address.

Two sources:
- The API's gunicorn workers count requests (by method and status) and time them.
  Under gunicorn each worker is its own process, so the client's multiprocess mode
  is used: `weco serve` points PROMETHEUS_MULTIPROC_DIR at an emptied directory before
  forking, each worker writes its values there, a worker that exits is marked dead
  (`child_exit`), and the watcher's MultiProcessCollector adds them up at each scrape.
- The store, read at each scrape (StoreCollector): the audit chain's head and queue,
  the SIEM forwarding backlog and lag per receiver, runs by status and the run queue,
  login failures, throttles and lockouts, and anomalies by rule. Counted from the
  store, they hold across every process and restart.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import peewee

from control_api.clock import SystemClock

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
AUTH_ACTIONS = ("auth.login_failed", "auth.second_factor_failed", "auth.login_throttled", "auth.lockout")


def prepare_multiprocess_dir(path: Path) -> None:
    """An empty directory for this server's workers (values of a previous run would be
    added in), named in the environment the workers inherit: prometheus-client picks
    its multiprocess values by that variable when it is first imported."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(path)


def worker_exited(server, worker) -> None:
    """gunicorn's child_exit hook: the dead worker's gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def instrument(app: Callable) -> Callable:
    """The WSGI app, counting and timing its requests."""
    from prometheus_client import Counter, Histogram

    requests = Counter("weco_http_requests", "HTTP requests answered by the API", ["method", "status"])
    seconds = Histogram("weco_http_request_seconds", "Time to answer an API request", ["method"])

    def wrapped(environ, start_response):
        # Only known methods become labels: a client must not mint label values.
        method = environ.get("REQUEST_METHOD", "") if environ.get("REQUEST_METHOD") in METHODS else "other"
        started = time.perf_counter()

        def counting_start_response(status, headers, exc_info=None):
            requests.labels(method, str(status)[:3]).inc()
            return start_response(status, headers, exc_info)

        try:
            return app(environ, counting_start_response)
        finally:
            seconds.labels(method).observe(time.perf_counter() - started)

    return wrapped


class StoreCollector:
    """Metrics read from the store at each scrape."""

    def __init__(self, db: peewee.Database, clock: SystemClock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def _rows(self, sql: str, params: Iterable = ()) -> list:
        return self.db.execute_sql(sql, tuple(params)).fetchall()

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            yield from self._collect(CounterMetricFamily, GaugeMetricFamily)
        finally:
            self.db.close()  # the scrape thread's connection goes back to the pool

    def _collect(self, counter, gauge):
        (head,), = self._rows("SELECT coalesce(max(seq), 0) FROM audit_events")
        (queued,), = self._rows("SELECT count(*) FROM audit_queue")
        yield gauge("weco_audit_head_seq", "Rows in the sealed audit chain", value=head)
        yield gauge("weco_audit_queue_depth", "Audit events recorded, not yet sealed", value=queued)
        backlog = gauge("weco_siem_backlog_rows", "Sealed rows not yet acknowledged by the SIEM",
                        labels=["receiver"])
        lag = gauge("weco_siem_lag_seconds", "Age of the oldest sealed row the SIEM has not "
                    "acknowledged (0: none)", labels=["receiver"])
        acked = gauge("weco_siem_acked_seq", "Last row the SIEM acknowledged", labels=["receiver"])
        p = self.db.param  # only placeholders are formatted into the SQL below
        for name, seq in self._rows(f"SELECT name, seq FROM audit_cursors WHERE name LIKE {p}",  # noqa: S608
                                    ("siem:%",)):
            receiver = name.removeprefix("siem:")
            acked.add_metric([receiver], seq)
            backlog.add_metric([receiver], max(0, head - seq))
            oldest = self._rows(f"SELECT occurred_at FROM audit_events WHERE seq = {p}",  # noqa: S608
                                (seq + 1,))
            lag.add_metric([receiver], self._age(oldest[0][0]) if oldest else 0.0)
        yield from (backlog, lag, acked)
        runs = gauge("weco_runs", "Runs by status", labels=["status"])
        for status, count in self._rows("SELECT status, count(*) FROM runs GROUP BY status"):
            runs.add_metric([status], count)
        yield runs
        (waiting,), = self._rows("SELECT count(*) FROM runs WHERE status = 'queued'")
        yield gauge("weco_run_queue_depth", "Runs queued, not yet claimed by a worker", value=waiting)
        auth = counter("weco_auth_events", "Failed logins and second factors, throttles and lockouts "
                       "recorded in the audit chain", labels=["action"])
        for action in AUTH_ACTIONS:
            (count,), = self._rows(f"SELECT count(*) FROM audit_events WHERE action = {p}",  # noqa: S608
                                   (action,))
            auth.add_metric([action], count)
        yield auth
        anomalies = counter("weco_anomalies", "anomaly.* events in the audit chain", labels=["rule"])
        for action, count in self._rows("SELECT action, count(*) FROM audit_events "  # noqa: S608
                                        f"WHERE action LIKE {p} GROUP BY action", ("anomaly.%",)):
            anomalies.add_metric([action.removeprefix("anomaly.")], count)
        yield anomalies

    def _age(self, occurred_at) -> float:
        from control_api.audit.quarantine import as_datetime

        at = as_datetime(occurred_at)
        return max(0.0, (self.clock.now() - at).total_seconds()) if at else 0.0


def serve_metrics(bind: str, db: peewee.Database, multiproc_dir: str | None):
    """Start the /metrics HTTP server in a thread; returns (server, thread)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if multiproc_dir:
        MultiProcessCollector(registry, path=multiproc_dir)
    registry.register(StoreCollector(db))
    host, _, port = bind.rpartition(":")
    return start_http_server(int(port), addr=host.strip("[]"), registry=registry)

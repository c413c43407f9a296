"""Prometheus metrics: `weco serve` with two gunicorn workers in multiprocess mode, the
watcher serving /metrics on a loopback address only, and the store's figures."""

from __future__ import annotations

import time

import pytest
import requests

from control_api.metrics import StoreCollector
from control_api.settings import SettingsError, load_settings
from tests.control_api.audit.helpers import fill
from tests.peers.postgres import free_port
from tests.peers.server import WecoServer


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_metrics_are_served_on_loopback_only():
    with pytest.raises(SettingsError, match="FF_METRICS_BIND"):
        load_settings({"FF_METRICS_BIND": "0.0.0.0:9464"})
    with pytest.raises(SettingsError, match="FF_METRICS_BIND"):
        load_settings({"FF_METRICS_BIND": "192.0.2.1:9464"})
    assert load_settings({"FF_METRICS_BIND": "127.0.0.2:9464"}).metrics_bind == "127.0.0.2:9464"


def test_store_collector_counts_what_the_store_holds(deps):
    fill(deps.audit, 3, action="auth.login_failed")
    fill(deps.audit, 2, action="auth.login_throttled")
    families = {family.name: family for family in StoreCollector(deps.db).collect()}
    assert families["weco_audit_head_seq"].samples[0].value == 5
    auth = {s.labels["action"]: s.value for s in families["weco_auth_events"].samples}
    assert auth["auth.login_failed"] == 3 and auth["auth.login_throttled"] == 2


def test_serve_counts_requests_across_workers_and_is_not_on_the_api(env, weco):
    port = free_port()
    server = WecoServer({**env, "FF_METRICS_BIND": f"127.0.0.1:{port}"}, workers=2, threads=1).start()
    try:
        for _ in range(20):
            assert requests.get(f"{server.base}/readyz", timeout=5).status_code == 200
        assert requests.get(f"{server.base}/metrics", timeout=5).status_code == 404
        url = f"http://127.0.0.1:{port}/metrics"
        text = ""
        for _ in range(100):  # the watcher starts its server a moment after the API
            try:
                text = requests.get(url, timeout=5).text
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        values = samples(text)
        answered = sum(v for k, v in values.items()
                       if k.startswith("weco_http_requests_total{") and 'status="200"' in k)
        assert answered >= 20  # summed over both worker processes
        assert "weco_siem_backlog_rows" in text and "weco_run_queue_depth" in values
    finally:
        server.stop()

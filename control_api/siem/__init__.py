"""The off-system witness: the sealed audit chain forwarded to a SIEM (transport.py,
forwarder.py) under a durable cursor (cursor.py), checked on arrival (check.py), run
with the anomaly rules by one watcher process at a time (watch.py, build.py)."""

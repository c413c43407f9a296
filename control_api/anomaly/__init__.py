"""Anomaly rules over the sealed audit chain, recorded as `anomaly.*` audit events."""

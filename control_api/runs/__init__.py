"""Audited runs: the playbooks an admin may launch, the queue, workers, and the
narrow adapter over ansible-runner."""

"""Encrypted backups of the store under a key of their own: the file format (stream.py),
the archive inside it (container.py), snapshots and restores per backend (stores.py),
where backups go (targets.py), the passphrase (passphrase.py), the operations
(service.py) and what a restore drill checks (drill_checks.py)."""

"""Release bundle signing (minisign CLI) and verification (stdlib-only, embedded in install.sh)."""

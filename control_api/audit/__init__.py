"""The append-only, HMAC-chained, Ed25519-witnessed audit log."""

"""License tiers: the signed license and revocation list (token.py), their store
(store.py), what they entitle to now (entitlement.py) and the caps enforced when a
site, host or account is created (caps.py)."""

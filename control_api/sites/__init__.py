"""Sites (a slug, a domain, the hosts that serve it) and the hosts themselves."""

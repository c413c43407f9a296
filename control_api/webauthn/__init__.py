"""WebAuthn (W3C Web Authentication Level 2/3) passkeys, verified with py_webauthn:
registration and authentication ceremonies with user verification required, the
relying party's id and origins from settings, several credentials per user, and their
use as a second factor, for step-up and as passwordless login."""

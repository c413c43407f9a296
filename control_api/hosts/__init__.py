"""Hosts as SSH peers: their pinned host keys and the rotation of the key we log in with."""

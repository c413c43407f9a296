"""The signed release bundle: building it (scripts/release), its SBOM, signing it with
minisign, and verifying it (minisign.py is stdlib-only: install.sh embeds it)."""

"""The patterns of the values that reach the site_deploy role: the one source.

The API checks admin input against them, the worker checks again what it reads from
the store, and the role (roles/site_deploy/vars/main.yml), its argument specs and the
host-side helper (roles/site_deploy/files/weco_site_release.py) carry the same strings,
which tests/control_api/sites/test_patterns.py holds equal. They end in \\Z, not $:
Ansible's `match` test and the helper use re.match, where $ also accepts a trailing
newline.
"""

from __future__ import annotations

import re

# A DNS label: the site's directory name on every host and its nginx vhost file.
SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z"
# A release directory name: unique per deploy.
RELEASE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"
# Where sites live on a host: an absolute path other than /, used in rsync's remote
# path and in the vhost, so nothing a shell or nginx would read as syntax.
DEPLOY_ROOT = r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]\Z"
# The vhost's server_name: dot-separated DNS labels (the API also wants lowercase and
# at least two labels; the role accepts any host name an operator's inventory names).
DOMAIN = (r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
DOMAIN_MAX = 253


def matches(pattern: str, value: object) -> bool:
    return isinstance(value, str) and re.match(pattern, value) is not None

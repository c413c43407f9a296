"""Turning what an admin sends into a RunRequest: the playbook from the registry, its
extra variables checked, and the target resolved against the caller's grants."""

from __future__ import annotations

from control_api import authz
from control_api.errors import InvalidInput
from control_api.models import Site, User
from control_api.runs import playbooks
from control_api.runs.queue import RunRequest

FIELDS = {"playbook", "site", "hosts", "extra_vars"}
MAX_HOSTS = 100


def parse_request(user: User, data: dict) -> RunRequest:
    unknown = set(data) - FIELDS
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    playbook = playbooks.resolve(data.get("playbook"))
    # Checked now; stored in the API's own names, which the worker maps again.
    playbooks.extra_vars(playbook, data.get("extra_vars"))
    extra_vars = data.get("extra_vars") or {}
    if playbook.target == "site":
        site = _site(user, playbook, data)
        return RunRequest(playbook.name, {"site": site.slug}, extra_vars, site.id, site.slug)
    return RunRequest(playbook.name, {"hosts": _hosts(user, playbook, data)}, extra_vars, None, None)


def _site(user: User, playbook: playbooks.Playbook, data: dict) -> Site:
    if "hosts" in data or not isinstance(data.get("site"), str):
        raise InvalidInput(f"{playbook.name} runs on a site: send 'site' (a slug), not 'hosts'")
    site = Site.get_or_none(Site.slug == data["site"])
    if site is None or not authz.may_use_site(user, site):
        raise InvalidInput(f"there is no site '{data['site']}' you may deploy")
    return site


def _hosts(user: User, playbook: playbooks.Playbook, data: dict) -> list[int]:
    hosts = data.get("hosts")
    if "site" in data or not isinstance(hosts, list) or not 1 <= len(hosts) <= MAX_HOSTS or \
            not all(isinstance(h, int) and not isinstance(h, bool) for h in hosts):
        raise InvalidInput(f"{playbook.name} runs on hosts: send 'hosts', a list of 1-{MAX_HOSTS} host ids")
    # A host the caller has no grant on is answered as one that does not exist.
    missing = sorted(set(hosts) - set(authz.usable_hosts(user, hosts)))
    if missing:
        raise InvalidInput(f"no such host(s) you may use: {', '.join(map(str, missing))}")
    return sorted(set(hosts))

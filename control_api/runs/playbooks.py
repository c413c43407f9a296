"""The playbooks the API may launch, and the extra variables each accepts.

Only playbooks listed here run, whatever else `playbooks/` holds. An admin's extra
variables are checked against the playbook's own list: an unknown name, a wrong type
or a value out of range is refused before anything is queued. Each accepted name maps
to the variable the playbook reads, so the API's vocabulary stays small and stable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from control_api.errors import InvalidInput
from control_api.sites import patterns


@dataclasses.dataclass(frozen=True)
class Var:
    maps_to: str
    check: Callable[[object], object]
    help: str


@dataclasses.dataclass(frozen=True)
class Playbook:
    """A playbook the API may launch, and what it needs from the worker."""

    name: str
    target: str  # "site": runs against a site's hosts; "hosts": against listed hosts
    vars: dict[str, Var]
    description: str
    needs_content: bool = False  # the site's content directory must exist on the worker
    makes_release: bool = False  # the run gets a new release id (site_release_id)
    # The worker runs it as a credential rotation (control_api/hosts/rotation.py).
    rotates_credentials: bool = False
    # Queued only by its own guarded route, never through POST /api/runs.
    own_route: bool = False
    # Installs site hosts: the worker ships its offline repository (FF_OFFLINE_DIR) and
    # authorises, for the deploy account, the key it logs in to each host with.
    installs_hosts: bool = False

    @property
    def file(self) -> str:
        return f"{self.name}.yml"


def _int_between(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value
    return check


def _release_id(value: object) -> str:
    if not patterns.matches(patterns.RELEASE_ID, value):
        raise ValueError("a release id: letters, digits, '.', '_' or '-', at most 64")
    return value


PLAYBOOKS: dict[str, Playbook] = {
    p.name: p
    for p in (
        Playbook("deploy_site", "site",
                 {"keep_releases": Var("site_deploy_keep_releases", _int_between(2, 50),
                                       "how many releases to keep on each host (2-50)")},
                 "Ship the site's content to its hosts and switch to it atomically.",
                 needs_content=True, makes_release=True),
        Playbook("rollback_site", "site",
                 {"release_id": Var("site_release_id", _release_id,
                                    "the kept release to return to (default: the previous one)")},
                 "Switch the site back to the previous (or a named) release."),
        Playbook("check_hosts", "hosts", {}, "Reach each host and run one task (connectivity check)."),
        Playbook("host_baseline", "hosts", {},
                 "The host baseline: the disk-encryption gate, the egress allowlist and nginx with TLS, "
                 "with each role's defaults (infra teams set more with their own inventory)."),
        Playbook("install_hosts", "hosts", {},
                 "Install site hosts offline: the disk-encryption gate, the egress allowlist, nginx with "
                 "TLS, the deploy account with the control plane's key for the host, the release helper "
                 "and the append-only host audit log; packages only from the worker's offline repository.",
                 installs_hosts=True),
        Playbook("rotate_credentials", "hosts", {},
                 "Replace the SSH key the control plane logs in to a host with "
                 "(POST /api/hosts/{id}/rotate-credentials).",
                 rotates_credentials=True, own_route=True),
    )
}


def resolve(name: object) -> Playbook:
    """A playbook an admin may name in POST /api/runs, or InvalidInput."""
    launchable = sorted(p.name for p in PLAYBOOKS.values() if not p.own_route)
    if not isinstance(name, str) or name not in launchable:
        raise InvalidInput(f"'playbook' must be one of: {', '.join(launchable)}")
    return PLAYBOOKS[name]


def registered(name: object) -> Playbook:
    """Any registered playbook (what a worker may run from a stored run), or InvalidInput."""
    if not isinstance(name, str) or name not in PLAYBOOKS:
        raise InvalidInput(f"'playbook' must be one of: {', '.join(sorted(PLAYBOOKS))}")
    return PLAYBOOKS[name]


def extra_vars(playbook: Playbook, given: object) -> dict:
    """The playbook's variables for what the admin sent, or InvalidInput naming the problem."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InvalidInput("'extra_vars' must be an object")
    out = {}
    for name, value in given.items():
        var = playbook.vars.get(name)
        if var is None:
            accepted = ", ".join(sorted(playbook.vars)) or "none"
            raise InvalidInput(f"'extra_vars.{name}' is not accepted by {playbook.name} "
                               f"(accepted: {accepted})")
        try:
            out[var.maps_to] = var.check(value)
        except ValueError as exc:
            raise InvalidInput(f"'extra_vars.{name}' must be {exc}") from None
    return out

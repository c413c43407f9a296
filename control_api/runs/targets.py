"""What a run acts on, as plain data: the site's variables and the inventory.

Pure functions of rows the worker has already loaded and re-checked: no store, no
clock, no environment, so tests can call them directly. Every value here still
passes through runs/inputs.py, which marks each string unsafe for Jinja.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from control_api.models import Host, Site
from control_api.runs.playbooks import Playbook


def release_id(run_id: int, started_at: dt.datetime) -> str:
    return f"r{run_id}-{started_at.strftime('%Y%m%dT%H%M%SZ')}"


def site_vars(playbook: Playbook, site: Site, source: Path, run_id: int, started_at: dt.datetime) -> dict:
    """The variables every site playbook reads (the run's id names the actor in the host's
    own audit log), plus a new release id where the playbook makes one."""
    variables = {"site_slug": site.slug, "site_domain": site.domain, "site_source_dir": str(source),
                 "weco_run_id": str(run_id)}
    if playbook.makes_release:
        variables["site_release_id"] = release_id(run_id, started_at)
    return variables


def install_vars(offline_dir: Path) -> dict:
    """install_hosts.yml's variables: the repository it ships, and every host of the
    run's inventory as its target (the playbook's default group is for operators' inventories)."""
    return {"weco_offline_dir": str(offline_dir), "target_hosts": "all"}


def inventory(hosts: list[tuple[Host, dict]], ssh_args: dict[int, str], python: str) -> dict:
    """Ansible's inventory for (host, its checked variables) pairs. SSH hosts get their
    run's ssh options (hosts/sshrun.py): their own keys through the run's ssh-agent, and
    strict checking against their pinned host key."""
    entries = {}
    for host, host_vars in hosts:
        variables = dict(host_vars)
        if host.connection == "local":
            variables.update(ansible_connection="local", ansible_python_interpreter=python)
        else:
            variables.update(ansible_host=host.address, ansible_port=host.port, ansible_user=host.ssh_user,
                             ansible_ssh_common_args=ssh_args[host.id])
        entries[host.name] = variables
    return {"all": {"hosts": entries}}

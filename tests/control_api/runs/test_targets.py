"""Targets as data: the site variables a playbook gets and the inventory, built by
pure functions from rows; and the worker asks the playbook registry, not a name."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re

from control_api.models import Host, Site
from control_api.runs import playbooks, targets, worker

STARTED = dt.datetime(2026, 12, 1, 1, 2, 3)
SITE = Site(slug="acme", domain="acme.example.com")


def host(**fields) -> Host:
    row = dict(id=7, name="web1", connection="ssh", address="10.0.0.5", port=2222, ssh_user="deploy",
               ssh_key_fingerprint="SHA256:abc", vars_json=json.dumps({"site_deploy_tls": True}))
    return Host(**{**row, **fields})


def test_a_deploy_makes_a_release_id_and_a_rollback_does_not():
    deploy_site = playbooks.PLAYBOOKS["deploy_site"]
    deploy = targets.site_vars(deploy_site, SITE, pathlib.Path("/src/acme"), 42, STARTED)
    assert deploy == {"site_slug": "acme", "site_domain": "acme.example.com", "site_source_dir": "/src/acme",
                      "weco_run_id": "42", "site_release_id": "r42-20261201T010203Z"}
    rollback = targets.site_vars(playbooks.PLAYBOOKS["rollback_site"], SITE, pathlib.Path("/s"), 42, STARTED)
    assert "site_release_id" not in rollback


def test_an_ssh_host_gets_its_runs_ssh_options():
    inv = targets.inventory([(host(), {"site_deploy_tls": True})], {7: "-o IdentityAgent=/run/agent.sock"},
                            "/usr/bin/python3")
    entry = inv["all"]["hosts"]["web1"]
    assert entry["ansible_host"] == "10.0.0.5" and entry["ansible_port"] == 2222
    assert entry["ansible_user"] == "deploy" and entry["site_deploy_tls"] is True
    assert entry["ansible_ssh_common_args"] == "-o IdentityAgent=/run/agent.sock"
    assert "ansible_connection" not in entry


def test_a_local_host_runs_with_the_given_python_and_no_ssh():
    inv = targets.inventory([(host(connection="local"), {})], {}, "/venv/bin/python")
    assert inv == {"all": {"hosts": {"web1": {"ansible_connection": "local",
                                              "ansible_python_interpreter": "/venv/bin/python"}}}}


def test_the_checked_variables_win_over_the_rows_text():
    # The inventory takes the variables the worker checked, never re-reads the row's JSON.
    inv = targets.inventory([(host(vars_json='{"evil": "{{ lookup(\\"pipe\\", \\"id\\") }}"}'), {})],
                            {7: "-o X=y"}, "/p")
    assert "evil" not in inv["all"]["hosts"]["web1"]


def test_the_worker_asks_the_registry_and_never_branches_on_a_playbook_name():
    source = pathlib.Path(worker.__file__).read_text()
    assert not re.search(r"playbook\s*[!=]=|\"(deploy_site|rollback_site|check_hosts)\"", source)
    assert playbooks.PLAYBOOKS["deploy_site"].needs_content
    assert not playbooks.PLAYBOOKS["rollback_site"].needs_content


def test_install_hosts_targets_every_host_of_the_runs_inventory_and_ships_the_repository():
    assert playbooks.PLAYBOOKS["install_hosts"].installs_hosts
    assert targets.install_vars(pathlib.Path("/var/lib/weco-offline")) == {
        "weco_offline_dir": "/var/lib/weco-offline", "target_hosts": "all"}

"""The playbooks and example inventories hold together: every playbook passes Ansible's
syntax check with each example inventory, every variable the example inventories set
is one a role declares, and the API's playbook list names only playbooks that exist."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from control_api.runs.playbooks import PLAYBOOKS

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK_FILES = sorted((ROOT / "playbooks").glob("*.yml"))
INVENTORIES = ["inventory/local", "inventory/production.example"]


def declared_options() -> set[str]:
    names = set()
    for spec in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names.update(entry.get("options", {}))
    return names


@pytest.mark.parametrize("inventory", INVENTORIES)
@pytest.mark.parametrize("playbook", PLAYBOOK_FILES, ids=lambda p: p.name)
def test_playbook_syntax(playbook, inventory):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    done = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "--syntax-check",
                           "-i", inventory, str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_inventories_set_only_declared_role_variables():
    declared = declared_options()
    connection = {"ansible_host", "ansible_connection", "ansible_python_interpreter"}
    for path in (ROOT / "inventory").rglob("*.yml"):
        data = yaml.safe_load(path.read_text())
        names = set(data) if "group_vars" in path.parts else {
            name for host in data["all"].get("hosts", {}).values() for name in (host or {})}
        for child in data.get("all", {}).get("children", {}).values() if isinstance(data, dict) else ():
            names |= {n for host in child.get("hosts", {}).values() for n in (host or {})}
        unknown = names - declared - connection - {"all"}
        assert not unknown, f"{path.relative_to(ROOT)} sets undeclared variables: {sorted(unknown)}"


def test_the_api_offers_only_existing_playbooks():
    for playbook in PLAYBOOKS.values():
        assert (ROOT / "playbooks" / playbook.file).is_file(), playbook.file

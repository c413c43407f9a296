"""Every value that reaches Ansible is data, never a template (issue 11, item 1).

An attacker who holds a superadmin token, or who can write the store, puts Jinja in
every field that ends up in the inventory or the extra variables. Three layers stop
it, and each is tested on its own: the API refuses the value; the worker checks again
what it reads from the store; and the adapter hands every value to Ansible marked
`!unsafe`, so even a value that got past both is never rendered. Each payload would
create a marker file on the worker if Jinja ran it.
"""

from __future__ import annotations

import json

import pytest

from control_api.models import Host, Run, RunEvent, Site, SiteHost
from control_api.runs.adapter import AnsibleRunnerAdapter, PlaybookJob
from control_api.runs.playbooks import PLAYBOOKS, extra_vars
from control_api.runs.queue import RunRequest
from control_api.sites import validate
from control_api.sites.validate import InvalidInput
from control_api.wiring import build_catalog, build_queue, build_worker
from tests.conftest import ACTOR
from tests.control_api.sites.keys import openssh_key


def payload(marker) -> str:
    return "{{ lookup('pipe', 'touch " + str(marker) + "') }}"


# -- layer 1: the API refuses ----------------------------------------------------------

def test_the_api_refuses_jinja_in_every_host_field(deps, tmp_path):
    catalog = build_catalog(deps)
    marker = tmp_path / "marker"
    evil = payload(marker)
    good = {"name": "web1", "address": "192.0.2.10", "ssh_private_key": openssh_key()}
    cases = [{"name": evil}, {"address": evil}, {"ssh_user": evil},
             {"address": "fe80::1%" + evil}, {"address": "fe80::1%eth0;id"},
             {"vars": {"site_deploy_root": "/srv/" + evil + "x"}},
             {"vars": {"site_deploy_root": "/srv/{{ 7 * 7 }}"}},
             {"vars": {"site_deploy_root": "/srv/{% raw %}x"}}]
    for change in cases:
        with pytest.raises(InvalidInput):
            catalog.create_host(dict(good, **change), ACTOR)
    assert not Host.select().exists()
    assert not marker.exists()


def test_the_api_refuses_jinja_in_site_fields_and_extra_vars(deps, tmp_path):
    catalog = build_catalog(deps)
    evil = payload(tmp_path / "marker")
    for data in ({"slug": evil, "domain": "a.example.com"}, {"slug": "acme", "domain": evil}):
        with pytest.raises(InvalidInput):
            catalog.create_site(data, ACTOR)
    assert not Site.select().exists()
    with pytest.raises(InvalidInput):
        extra_vars(PLAYBOOKS["rollback_site"], {"release_id": evil})
    with pytest.raises(InvalidInput):
        extra_vars(PLAYBOOKS["deploy_site"], {"keep_releases": evil})


# -- layer 2: the worker checks what it reads from the store ---------------------------

STORE_PAYLOADS = [
    ("vars_json", "site_deploy_root"),
    ("address", None),
    ("ssh_user", None),
    ("name", None),
]


@pytest.mark.parametrize("column,var", STORE_PAYLOADS)
def test_a_store_row_with_jinja_never_reaches_ansible(deps, superadmin, tmp_path, column, var):
    marker = tmp_path / "marker"
    catalog = build_catalog(deps)
    host = catalog.create_host({"name": "here", "connection": "local",
                                "vars": {"site_deploy_root": str(tmp_path / "served"),
                                         "site_deploy_nginx": False,
                                         "site_deploy_install_packages": False}}, ACTOR)
    site = catalog.create_site({"slug": "acme", "domain": "acme.example.com"}, ACTOR)
    catalog.attach(site, host, ACTOR)
    # Someone with write access to the store, not the API, plants the payload.
    value = "/srv/" + payload(marker) + "x"
    if var:
        Host.update(vars_json=json.dumps({var: value})).where(Host.id == host.id).execute()
    else:
        Host.update(**{column: payload(marker)}).where(Host.id == host.id).execute()
    (deps.settings.sources_dir / "acme").mkdir(parents=True)
    (deps.settings.sources_dir / "acme" / "index.html").write_text("hello")
    worker = build_worker(deps, name="w-test")
    run, _ = build_queue(deps).request(superadmin, RunRequest("deploy_site", {"site": "acme"}, {},
                                                              site.id, "acme"), None, ACTOR)
    assert worker.run_once()
    done = Run.get_by_id(run.id)
    assert done.status == "error" and "stored" in done.error, done.error
    assert not RunEvent.select().where(RunEvent.run == run.id).exists()  # Ansible never started
    assert not marker.exists()


def test_a_site_row_with_jinja_never_reaches_ansible(deps, superadmin, tmp_path):
    marker = tmp_path / "marker"
    catalog = build_catalog(deps)
    host = catalog.create_host({"name": "here", "connection": "local"}, ACTOR)
    site = catalog.create_site({"slug": "acme", "domain": "acme.example.com"}, ACTOR)
    catalog.attach(site, host, ACTOR)
    Site.update(domain=payload(marker)).where(Site.id == site.id).execute()
    (deps.settings.sources_dir / "acme").mkdir(parents=True)
    run, _ = build_queue(deps).request(superadmin, RunRequest("deploy_site", {"site": "acme"}, {},
                                                              site.id, "acme"), None, ACTOR)
    build_worker(deps, name="w-test").run_once()
    done = Run.get_by_id(run.id)
    assert done.status == "error" and "domain" in done.error and not marker.exists()
    assert SiteHost.select().count() == 1


# -- layer 3: whatever gets through is handed over marked unsafe -----------------------

def unchecked_job(deps, tmp_path, playbook: str, host_vars: dict, extra: dict) -> PlaybookJob:
    """A job built without the API's or the worker's checks, as if both had a hole."""
    settings = deps.settings
    return PlaybookJob(run_dir=tmp_path / "run", project_dir=settings.project_dir, playbook=playbook,
                       inventory={"all": {"hosts": {"here": host_vars}}}, extra_vars=extra,
                       env={"FF_ENV": "dev"}, timeout=120)


def run_job(job: PlaybookJob) -> tuple[str, list[dict]]:
    events: list[dict] = []
    outcome = AnsibleRunnerAdapter().run(job, events.append, lambda: False)
    return outcome.status, events


def test_jinja_in_every_deploy_input_is_never_rendered_on_a_local_host(deps, tmp_path):
    import sys

    marker = tmp_path / "marker"
    evil = payload(marker)
    source = tmp_path / "source"
    source.mkdir()
    (source / "index.html").write_text("hello")
    host_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "site_deploy_root": "/srv/" + evil + "x", "site_deploy_nginx": False,
                 "site_deploy_install_packages": False}
    extra = {"site_slug": evil, "site_domain": evil, "site_source_dir": str(source) + evil,
             "site_release_id": evil, "site_deploy_keep_releases": evil}
    status, events = run_job(unchecked_job(deps, tmp_path, "deploy_site.yml", host_vars, extra))
    assert status == "failed"
    refusal = next(e for e in events if e["event"] == "runner_on_failed")
    # The role's own check names the values as they were sent, unrendered.
    assert "lookup('pipe'" in refusal["data_json"] or "lookup(\\u0027pipe" in refusal["data_json"]
    assert not marker.exists()


def test_jinja_in_connection_values_is_never_rendered_for_an_unreachable_ssh_host(deps, tmp_path):
    marker = tmp_path / "marker"
    evil = payload(marker)
    host_vars = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root" + evil,
                 "site_deploy_root": "/srv/" + evil + "x", "site_deploy_helper": evil}
    extra = {"site_slug": "acme", "site_domain": "acme.example.com", "site_source_dir": str(tmp_path),
             "site_release_id": evil}
    status, _ = run_job(unchecked_job(deps, tmp_path, "rollback_site.yml", host_vars, extra))
    assert status == "failed" and not marker.exists()
    status, _ = run_job(unchecked_job(deps, tmp_path, "check_hosts.yml", host_vars, extra))
    assert status == "failed" and not marker.exists()


def test_unsafe_values_still_reach_the_play_as_their_literal_text(deps, tmp_path):
    """Marking a value unsafe keeps it data, not empty: a valid root still deploys."""
    import sys

    served = tmp_path / "served"
    source = tmp_path / "source"
    source.mkdir()
    (source / "index.html").write_text("hello")
    host_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "site_deploy_root": str(served), "site_deploy_nginx": False,
                 "site_deploy_install_packages": False}
    extra = {"site_slug": "acme", "site_domain": "acme.example.com", "site_source_dir": str(source),
             "site_release_id": "r1"}
    status, _ = run_job(unchecked_job(deps, tmp_path, "deploy_site.yml", host_vars, extra))
    assert status == "successful"
    assert (served / "acme" / "current" / "index.html").read_text() == "hello"


def test_validate_host_vars_uses_the_roles_pattern():
    for root in ("/", "/srv/a b", "/..", "/etc/..", "/srv/../etc", "/srv//sites", "/srv/./x", "/srv/"):
        with pytest.raises(InvalidInput):
            validate.host_vars({"site_deploy_root": root})
    assert validate.host_vars({"site_deploy_root": "/srv/sites"}) == {"site_deploy_root": "/srv/sites"}

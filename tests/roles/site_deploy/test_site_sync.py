"""roles/site_deploy/action_plugins/site_sync.py: the rsync argv it builds, and a real
run of the action through ansible-playbook (local connection). SSH targets are covered
by the molecule scenario and tests/control_api/runs/test_deploys_on_hosts.py."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shlex
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent
PLUGINS = ROOT / "roles/site_deploy/action_plugins"

spec = importlib.util.spec_from_file_location("site_sync", PLUGINS / "site_sync.py")
site_sync = importlib.util.module_from_spec(spec)
spec.loader.exec_module(site_sync)


def test_the_ssh_command_keeps_each_value_one_word_when_rsync_splits_it():
    known = "UserKnownHostsFile=/tmp/weco ssh/known_hosts"
    common = shlex.join(["-o", known, "-o", "HostKeyAlias=weco-host-1"])
    command = site_sync.ssh_command({"port": 2222, "user": "deploy user", "key": "/keys/it's",
                                     "common_args": common, "extra_args": ""})
    assert shlex.split(command) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ControlPath=none", "-p", "2222", "-l", "deploy user",
        "-i", "/keys/it's", "-o", known, "-o", "HostKeyAlias=weco-host-1"]


def test_controlpath_none_comes_before_the_connections_own_controlpath():
    """ssh keeps the first value of an option: the transfer must not ride Ansible's master."""
    command = site_sync.ssh_command({"common_args": "-o ControlPath=/tmp/cp-%C"})
    words = shlex.split(command)
    assert words.index("ControlPath=none") < words.index("ControlPath=/tmp/cp-%C")


def test_a_first_deploy_goes_without_checksum_and_a_redeploy_links_against_current():
    first = site_sync.rsync_argv("/tree", "host:/srv/demo/releases/r1/", "", 0, "", "ssh")
    assert "--checksum" not in first and not any(a.startswith("--link-dest") for a in first)
    again = site_sync.rsync_argv("/tree/", "host:/srv/demo/releases/r2/", "/srv/demo/releases/r1", 400,
                                 "sudo rsync", "ssh")
    assert {"--checksum", "--link-dest=/srv/demo/releases/r1", "--bwlimit=400",
            "--rsync-path=sudo rsync"} <= set(again)
    # Paths come after "--": a source named like an option stays a path.
    assert again[-3:] == ["--", "/tree/", "host:/srv/demo/releases/r2/"]


def test_a_local_copy_has_no_remote_shell_and_no_rsync_path():
    argv = site_sync.rsync_argv("/tree", "/srv/demo/releases/r1/", "", 0, "sudo rsync", None)
    assert "-e" not in argv and not any(a.startswith("--rsync-path") for a in argv)


def test_figures_are_read_from_the_stats_and_zero_when_absent():
    stats = ("Number of regular files transferred: 1,204\nTotal bytes sent: 210,000,512\n"
             "Total bytes received: 23,991\n")
    assert site_sync.figures(stats) == {
        "bytes_sent": 210_000_512, "bytes_received": 23_991, "files_sent": 1204}
    assert site_sync.figures("") == {"bytes_sent": 0, "bytes_received": 0, "files_sent": 0}


def play(tmp_path: pathlib.Path, source: str, dest: str, *connection: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "sync.yml"
    playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": [
        {"site_sync": {"source": source, "dest": dest}, "register": "sent"},
        {"ansible.builtin.debug": {"msg": "{{ {'sent': sent.bytes_sent, 'files': sent.files_sent} }}"}}]}]))
    env = dict(os.environ, ANSIBLE_ACTION_PLUGINS=str(PLUGINS), ANSIBLE_NOCOLOR="1")
    return subprocess.run([BIN / "ansible-playbook", "-i", "here,", *(connection or ("-c", "local")),
                           "-e", f"ansible_python_interpreter={sys.executable}", playbook],
                          capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_the_action_sends_a_tree_and_reports_its_figures(tmp_path):
    source = tmp_path / "tree"
    (source / "reports").mkdir(parents=True)
    (source / "reports/a.pdf").write_bytes(b"%PDF-1.4 " + os.urandom(50_000))
    (tmp_path / "out").mkdir()  # the releases directory: the host's prepare step makes it
    done = play(tmp_path, str(source), str(tmp_path / "out/r1"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out/r1/reports/a.pdf").read_bytes() == (source / "reports/a.pdf").read_bytes()
    assert "'files': 1" in done.stdout or '"files": 1' in done.stdout


def test_a_failed_transfer_fails_the_task_with_rsyncs_reason(tmp_path):
    (tmp_path / "out").mkdir()
    done = play(tmp_path, str(tmp_path / "missing"), str(tmp_path / "out/r1"))
    assert done.returncode == 2
    assert "rsync to " + str(tmp_path / "out/r1") + "/ failed (exit 23)" in done.stdout
    assert "No such file or directory" in done.stdout
    assert not any((tmp_path / "out").rglob("*.pdf"))


def test_relative_paths_are_refused_before_rsync_runs(tmp_path):
    done = play(tmp_path, "tree", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "site_sync needs source and dest, both absolute paths" in done.stdout
    assert not (tmp_path / "out").exists()


def test_a_host_that_reads_as_an_ssh_option_is_refused_before_ssh_runs(tmp_path):
    """rsync gives the host to ssh as an argument: "-oProxyCommand=..." would run a command."""
    (tmp_path / "tree").mkdir()
    marker = tmp_path / "pwned"
    done = play(tmp_path, str(tmp_path / "tree"), "/srv/out", "-c", "ssh",
                "-e", f"ansible_host=-oProxyCommand=touch\\ {marker}")
    assert done.returncode == 2, done.stdout
    assert "is not an address" in done.stdout
    assert not marker.exists()

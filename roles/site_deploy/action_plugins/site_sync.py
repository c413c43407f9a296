"""Send a release tree from the controller to a host with ONE rsync (an action: it runs
on the controller, in Ansible's own process).

A `command` task delegated to localhost costs a module's Python start on the controller
for every host, and building its argv took a `set_fact` task and a `fail` task more:
three task slots on every host of every deploy. This action builds the argv from the
task's own connection (address, port, user, key and the ssh options the control plane
set), runs rsync as a list of arguments (no shell on the controller), and fails with
rsync's own message. The transfer gets an ssh connection of its own (ControlPath=none
before the connection's options: ssh keeps the first value), not a channel multiplexed
through Ansible's master connection, whose flow control made it several times slower.

    site_sync:
      source: /abs/tree                 # sent as its contents (a trailing / is added)
      dest: /srv/sites/demo/releases/r2 # on the host; created by rsync, its parent must exist
      link_dest: /srv/sites/demo/releases/r1   # optional: hard-link unchanged files from here
      bwlimit: 0                        # KB/s, 0: unlimited
      rsync_path: ""                    # optional remote rsync command (--rsync-path)

Equality is by content (--checksum, no --times) when there is a link_dest: the worker
materialises the tree afresh for each deploy, so modification times say nothing, and
a hard-linked file must not have its time rewritten. Without one there is nothing to
link against, and --checksum would only make the sender read the whole tree once more.

Returns rc, stdout, stderr, seconds, and rsync's figures: bytes_sent, bytes_received,
files_sent.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

_FIGURES = {
    "bytes_sent": r"Total bytes sent: ([0-9,]+)",
    "bytes_received": r"Total bytes received: ([0-9,]+)",
    "files_sent": r"Number of regular files transferred: ([0-9,]+)",
}


def figures(stats: str) -> dict[str, int]:
    """rsync's --stats figures (0 for any it did not print)."""
    found = {}
    for name, pattern in _FIGURES.items():
        match = re.search(pattern, stats)
        found[name] = int(match.group(1).replace(",", "")) if match else 0
    return found


def ssh_command(host_options: dict) -> str:
    """rsync's -e value. rsync splits it itself (no shell), honouring quotes as shlex
    does, so every part is quoted; the common and extra args are already in that form."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ControlPath=none"]
    if host_options.get("port"):
        argv += ["-p", str(host_options["port"])]
    if host_options.get("user"):
        argv += ["-l", str(host_options["user"])]
    if host_options.get("key"):
        argv += ["-i", str(host_options["key"])]
    parts = [shlex.join(argv), host_options.get("common_args") or "", host_options.get("extra_args") or ""]
    return " ".join(part for part in parts if part)


def rsync_argv(source: str, destination: str, link_dest: str, bwlimit: int, rsync_path: str,
               ssh: str | None) -> list[str]:
    argv = ["rsync", "--recursive", "--perms", "--chmod=D755,F644", "--delete", "--timeout=300",
            "--stats", "--no-human-readable"]
    if link_dest:
        argv += ["--checksum", f"--link-dest={link_dest}"]
    if bwlimit > 0:
        argv.append(f"--bwlimit={bwlimit}")
    if ssh is not None:
        if rsync_path:
            argv.append(f"--rsync-path={rsync_path}")
        argv += ["-e", ssh]
    return [*argv, "--", source.rstrip("/") + "/", destination]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("source", "dest", "link_dest", "bwlimit", "rsync_path"))
    _supports_check_mode = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        source, dest = str(args.get("source") or ""), str(args.get("dest") or "")
        if not source.startswith("/") or not dest.startswith("/"):
            raise AnsibleActionFail("site_sync needs source and dest, both absolute paths")
        try:
            bwlimit = int(args.get("bwlimit") or 0)
        except (TypeError, ValueError):
            raise AnsibleActionFail(f"site_sync: bwlimit {args.get('bwlimit')!r} is not a number") from None
        destination, ssh = self._destination(dest)
        argv = rsync_argv(source, destination, str(args.get("link_dest") or ""), bwlimit,
                          str(args.get("rsync_path") or ""), ssh)
        started = time.monotonic()
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", check=False)
        result.update(rc=done.returncode, stdout=done.stdout, stderr=done.stderr, changed=True,
                      seconds=round(time.monotonic() - started, 2), **figures(done.stdout))
        if done.returncode != 0:
            reason = done.stderr.strip()
            result.update(failed=True, msg=f"rsync to {destination} failed (exit {done.returncode}): "
                                           f"{reason}")
        return result

    def _destination(self, dest: str) -> tuple[str, str | None]:
        """(rsync's destination, its -e value or None for a copy on this machine)."""
        connection = self._connection
        if connection.transport in ("local", "ansible.builtin.local"):
            return dest + "/", None
        host = str(connection.get_option("host"))
        # rsync hands the host to ssh as an argument: a leading "-" would be an option.
        if not host or host.startswith("-"):
            raise AnsibleActionFail(f"site_sync: host {host!r} is not an address")
        options = {"port": connection.get_option("port"), "user": connection.get_option("remote_user"),
                   "key": connection.get_option("private_key_file"),
                   "common_args": connection.get_option("ssh_common_args"),
                   "extra_args": connection.get_option("ssh_extra_args")}
        address = f"[{host}]" if ":" in host else host
        return f"{address}:{dest}/", ssh_command(options)

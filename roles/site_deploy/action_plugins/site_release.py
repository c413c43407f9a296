"""Run the host-side release helper (files/weco_site_release.py) in one remote exec.

A module task costs a deploy a Python start with Ansible's module runtime on the host
(about 0.5 s on a loaded machine, per host and task); the helper needs none of it. This
action runs `HELPER --root ROOT ARGV...` over the task's connection as one shell command,
with optional stdin (the manifest), after checking in the same command that the
installed helper is this role's version (by SHA-256). Only when it is missing or
differs is it installed (one more exec, the file on stdin) and the command run again.

    site_release:
      helper: /srv/sites/.weco-site-release
      root: /srv/sites
      argv: [activate, demo, r2, --manifest, "-"]
      stdin: "{{ manifest }}"
      create: true      # may create the helper's directory (false: it must exist)
      actor: "42"       # optional: recorded as the actor in the host audit log

Returns the helper's JSON object as the result (`changed` included); a refusal (exit 1)
fails the task with the helper's message as `msg`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

STALE = 100  # exit status of the guard: the installed helper is missing or another version


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("helper", "root", "argv", "stdin", "create", "actor"))
    _supports_check_mode = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        helper, root, argv = args.get("helper"), args.get("root"), args.get("argv")
        if not helper or not root or not isinstance(argv, list):
            raise AnsibleActionFail("site_release needs helper, root and argv (a list)")
        stdin = args.get("stdin")
        # Who asks, for the host audit log: the control plane's run id (data, quoted).
        actor = ["--actor", str(args["actor"])] if args.get("actor") else []
        with open(self._find_needle("files", "weco_site_release.py"), "rb") as handle:
            source = handle.read()
        digest = hashlib.sha256(source).hexdigest()
        # No tty: it would merge stderr (the refusal) into stdout.
        if self._connection.has_option("use_tty"):
            self._connection.set_option("use_tty", False)

        guard = (f'[ "$(sha256sum < {shlex.quote(helper)} 2>/dev/null)" = "{digest}  -" ] || exit {STALE}; '
                 f"exec {shlex.join([helper, '--root', root, *actor, *map(str, argv)])}")
        done = self._run(guard, stdin)
        installed = False
        if done["rc"] == STALE:
            self._install(helper, source, bool(args.get("create", True)))
            installed = True
            done = self._run(guard, stdin)
        if done["rc"] != 0:
            result.update(failed=True, rc=done["rc"], stderr=done["stderr"],
                          msg=done["stderr"].strip().removeprefix("weco-site-release: ")
                          or f"{helper} exited {done['rc']}")
            return result
        try:
            report = json.loads(done["stdout"])
        except ValueError as error:
            raise AnsibleActionFail(f"{helper} printed no JSON: {done['stdout'][:500]!r}") from error
        result.update(report, changed=bool(report.get("changed")) or installed, helper_installed=installed)
        return result

    def _run(self, command: str, stdin: str | None) -> dict:
        return self._low_level_execute_command(command, in_data=None if stdin is None else to_bytes(stdin))

    def _install(self, helper: str, source: bytes, create: bool) -> None:
        directory = os.path.dirname(helper)
        partial = shlex.quote(helper) + ".tmp$$"
        prepare = "mkdir -p --" if create else "test -d"
        done = self._low_level_execute_command(
            f"umask 022 && {prepare} {shlex.quote(directory)} && cat > {partial} && chmod 0755 {partial} "
            f"&& mv -f {partial} {shlex.quote(helper)}", in_data=source)
        if done["rc"] != 0:
            why = done["stderr"].strip() or f"{directory} does not exist: nothing was ever deployed there"
            raise AnsibleActionFail(f"could not install the release helper {helper}: {why}")

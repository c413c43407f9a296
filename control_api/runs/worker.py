"""`weco worker`: claim queued runs, run them through the adapter, record everything.

One run at a time per worker process. While a run executes, a heartbeat thread renews
its lease; if the lease was lost (another worker declared the run lost) or the worker
is asked to stop, the run is cancelled. Keys are decrypted only here, just before the
run, into per-run ssh-agents that end with it; each SSH host must present its pinned
host key (hosts/sshrun.py), and a run refused for another key says so in its error and
records a critical alert. A playbook that rotates credentials runs through
hosts/rotation.py, by its declared need, never by its name.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from control_api.audit.log import Actor
from control_api.documents import release
from control_api.documents.blobs import BlobStore
from control_api.errors import InvalidInput
from control_api.hosts import hostkeys, sshrun
from control_api.hosts.credentials import HostCredentials, NotPinned
from control_api.hosts.pinning import HostKeys
from control_api.hosts.rotation import CredentialRotation, Steps
from control_api.hosts.sshrun import HostAccess
from control_api.models import Host, Run, Site
from control_api.runs import playbooks, targets
from control_api.runs.adapter import AnsibleRunnerAdapter, Outcome, PlaybookJob
from control_api.runs.queue import RunQueue
from control_api.sites import validate
from control_api.sites.catalog import SiteCatalog, hosts_by_ids, site_hosts

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    data_dir: Path
    project_dir: Path
    site_sources_dir: Path
    documents_dir: Path | None = None  # the document store: a site with documents deploys from it
    offline_dir: Path | None = None  # what install_hosts ships: a directory holding debs.tar
    timeout: int = 3600
    role_env: dict = dataclasses.field(default_factory=dict)  # the roles' FF_* switches
    poll_seconds: float = 0.02
    heartbeat_seconds: float = 5.0
    sweep_seconds: float = 5.0


class RunSetupError(Exception):
    """The run cannot start (no hosts, no content, a key that will not load)."""


class StopFlag:
    """A stop request that a signal handler may set. threading.Event cannot be: its
    handler runs in the thread that may be inside Event.wait(), holding the Event's
    lock, and Event.set() then waits for that lock forever."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        if not self._set:
            time.sleep(timeout)
        return self._set


class Worker:
    def __init__(self, queue: RunQueue, catalog: SiteCatalog, adapter: AnsibleRunnerAdapter,
                 config: WorkerConfig, name: str | None = None,
                 credentials: HostCredentials | None = None, host_keys: HostKeys | None = None) -> None:
        self.queue, self.catalog, self.adapter, self.config = queue, catalog, adapter, config
        self._credentials, self._host_keys = credentials, host_keys
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.actor = Actor(f"worker:{self.name}", "local", "weco-worker")
        self.stopping = StopFlag()

    @property
    def credentials(self) -> HostCredentials:
        if self._credentials is None:
            self._credentials = HostCredentials(self.queue.audit, self.catalog.keys)
        return self._credentials

    @property
    def host_keys(self) -> HostKeys:
        if self._host_keys is None:
            self._host_keys = HostKeys(self.queue.audit)
        return self._host_keys

    def run_forever(self) -> None:
        last_sweep = 0.0
        while not self.stopping.is_set():
            if time.monotonic() - last_sweep >= self.config.sweep_seconds:
                for run_id in self.queue.sweep_lost(self.actor):
                    log.warning("run %s marked lost: its worker stopped renewing the lease", run_id)
                last_sweep = time.monotonic()
            if not self.run_once():
                self.stopping.wait(self.config.poll_seconds)

    def run_once(self) -> bool:
        """Claim and execute one run; False when the queue had none ready."""
        run = self.queue.claim(self.name, self.actor) if self.queue.anything_queued() else None
        if run is None:
            return False
        self.execute(run)
        return True

    def execute(self, run: Run) -> None:
        lost = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(run.id, lost), daemon=True)
        beat.start()
        status, rc, stats, error = "error", None, {}, None
        try:
            outcome = self._execute(run, lost)
            status, rc, stats = outcome.status, outcome.rc, outcome.stats
            if lost.is_set():
                error = "the run's lease was lost"
            elif self.stopping.is_set() and status == "canceled":
                error = "the worker was stopped"
            elif status == "failed":
                # Why, in the run's own record; the events hold the whole story.
                error = outcome.failure or (f"ansible-playbook exited with {outcome.rc} before any task "
                                            "failed: see the run's events")
        except RunSetupError as exc:
            error = str(exc)
        except Exception as exc:  # a worker must survive one bad run and record why
            log.exception("run %s failed in the worker", run.id)
            error = f"worker error: {type(exc).__name__}"
        finally:
            lost.set()
            beat.join()
        self.queue.finish(run.id, self.name, status, rc, stats, error, self.actor)

    def _heartbeat(self, run_id: int, lost: threading.Event) -> None:
        try:
            while not lost.wait(self.config.heartbeat_seconds):
                if not self.queue.heartbeat(run_id, self.name):
                    lost.set()
        finally:
            self.queue.db.close()  # this thread's connection goes back to the pool

    def _execute(self, run: Run, lost: threading.Event) -> Outcome:
        playbook = _check_stored(f"run {run.id}", playbooks.registered, run.playbook)
        hosts, extra_vars = self._targets(run, playbook)
        play = _Play(self, run, lost, playbook, hosts, extra_vars)
        if playbook.rotates_credentials:
            if len(hosts) != 1 or hosts[0][0].connection != "ssh":
                raise RunSetupError("a credential rotation acts on exactly one SSH host")
            host = hosts[0][0]
            self._access(host)  # the same refusals as any run, before anything changes
            steps = Steps(play=lambda access, more: play({host.id: access}, more), note=play.note,
                          probe=lambda access, h: sshrun.probe(access, h.address, h.port, h.ssh_user))
            outcome = CredentialRotation(self.credentials, self.actor).run(run.id, host, steps)
        else:
            outcome = play({h.id: self._access(h) for h, _ in hosts if h.connection == "ssh"}, {})
        return self._host_key_verdict(run, outcome, play.mismatches, hosts)

    def _access(self, host: Host) -> HostAccess:
        try:
            return self.credentials.access(host)
        except NotPinned as exc:
            raise RunSetupError(str(exc)) from None
        except InvalidInput as exc:
            raise RunSetupError(f"host {host.id}: a stored value fails its check ({exc}); "
                                "nothing was run") from None

    def _host_key_verdict(self, run: Run, outcome: Outcome, mismatches: dict[str, str],
                          hosts: list[tuple[Host, dict]]) -> Outcome:
        """A run on which ssh refused a host's key fails with that as its error, and each
        such host gets a critical audited alert."""
        if not mismatches:
            return outcome
        by_name = {h.name: h for h, _ in hosts}
        parts = []
        for name, offered in sorted(mismatches.items()):
            host = by_name[name]
            self.host_keys.alert_mismatch(host, run.id, offered, self.actor)
            parts.append(f"host '{name}' presented {offered or 'another key'}, not its pinned "
                         f"{hostkeys.stored(host.ssh_host_key).fingerprint}")
        reason = (f"SSH host key mismatch: {'; '.join(parts)}. Nothing ran on such a host. If it was "
                  "knowingly rebuilt, a superadmin re-pins its key (PUT /api/hosts/{id}/host-key); "
                  "otherwise treat this as an attack.")
        status = "failed" if outcome.status == "successful" else outcome.status
        return dataclasses.replace(outcome, status=status, failure=reason)

    def _cancel_check(self, run_id: int, lost: threading.Event):
        last = {"at": 0.0, "answer": False}

        def should_cancel() -> bool:
            if lost.is_set() or self.stopping.is_set():
                return True
            if time.monotonic() - last["at"] >= 0.5:  # ansible-runner asks many times a second
                last["at"], last["answer"] = time.monotonic(), self.queue.cancel_requested(run_id)
            return last["answer"]

        return should_cancel

    def _targets(self, run: Run, playbook: playbooks.Playbook) -> tuple[list[tuple[Host, dict]], dict]:
        """The run's hosts with their checked variables, and its extra variables: every
        stored value checked again, as the API checked it, before Ansible sees it."""
        # Stored in the API's names; checked again and mapped to the playbook's own.
        extra_vars = _check_stored(f"run {run.id}", playbooks.extra_vars, playbook,
                                   json.loads(run.extra_vars_json))
        site = None
        if playbook.target == "site":
            site = Site.get_or_none(Site.id == run.site_id)
            if site is None:
                raise RunSetupError(f"site '{json.loads(run.target_json).get('site')}' no longer exists")
            _check_stored(f"site {site.id}", lambda: (validate.slug(site.slug), validate.domain(site.domain)))
            hosts = site_hosts(site)
        else:
            hosts = hosts_by_ids(json.loads(run.target_json)["hosts"])
        if not hosts:
            raise RunSetupError("the run has no hosts to act on")
        checked = [(h, _check_stored(f"host {h.id}", validate.stored_host, h, self.catalog.development))
                   for h in hosts]
        if playbook.installs_hosts:
            extra_vars.update(targets.install_vars(self._offline_dir()))
            checked = [(h, {**v, "site_host_deploy_public_key": self._deploy_key(h)}) for h, v in checked]
        if site is not None:
            source = self.config.site_sources_dir / site.slug
            built = self._document_release(site, run) if playbook.needs_content else None
            if built is not None:  # from the store, with the digests taken when each file was stored
                source, extra_vars["site_manifest_file"] = built[0], str(built[1])
            elif playbook.needs_content and not source.is_dir():
                raise RunSetupError(f"the site's content directory {source} does not exist")
            extra_vars.update(targets.site_vars(playbook, site, source, run.id, run.started_at))
        return checked, extra_vars

    def _offline_dir(self) -> Path:
        offline = self.config.offline_dir
        if offline is None or not (offline / "debs.tar").is_file():
            raise RunSetupError("install_hosts needs the offline repository on the worker: FF_OFFLINE_DIR "
                                "must name a directory holding debs.tar (scripts/build-offline's output)")
        return offline

    def _deploy_key(self, host: Host) -> str:
        """The public half of the key this control plane logs in to the host with: the one
        the deploy account must accept."""
        if host.connection != "ssh":
            raise RunSetupError(f"install_hosts installs SSH hosts; host '{host.name}' is this machine")
        return sshrun.public_line(self.credentials.current(host))

    def _document_release(self, site: Site, run: Run) -> tuple[Path, Path] | None:
        if self.config.documents_dir is None:
            return None
        try:
            return release.materialize(site, BlobStore(self.config.documents_dir),
                                       self.config.data_dir / "runs" / str(run.id) / "site")
        except release.StoreIncomplete as missing:
            raise RunSetupError(str(missing)) from None


class _Play:
    """The run's playbook, run once or more (a rotation runs it twice): each time with
    the given hosts' keys and more variables; events numbered on across runs; host-key
    refusals noted."""

    def __init__(self, worker: Worker, run: Run, lost: threading.Event, playbook: playbooks.Playbook,
                 hosts: list[tuple[Host, dict]], extra_vars: dict) -> None:
        self.worker, self.run, self.lost, self.playbook = worker, run, lost, playbook
        self.hosts, self.extra_vars = hosts, extra_vars
        self.seq = 0
        self.mismatches: dict[str, str] = {}  # host name -> fingerprint it offered

    def __call__(self, access: dict[int, HostAccess], more_vars: dict) -> Outcome:
        worker, config, base = self.worker, self.worker.config, self.seq

        def on_event(event: dict) -> None:
            event = dict(event, seq=base + event["seq"])
            self.seq = max(self.seq, event["seq"])
            offered = hostkeys.mismatch_in(event)
            if offered is not None and event.get("host"):
                self.mismatches.setdefault(event["host"], offered)
            worker.queue.append_events(self.run.id, [event])

        with (sshrun.session(list(access.values()), lifetime=config.timeout + 60) as ssh,
              sshrun.masters([sshrun.Endpoint(ssh[h.id], h.address, h.port, h.ssh_user)
                              for h, _ in self.hosts if h.id in ssh])):
            inventory = targets.inventory(self.hosts, {i: sshrun.common_args(o) for i, o in ssh.items()},
                                          sys.executable)
            job = PlaybookJob(run_dir=config.data_dir / "runs" / str(self.run.id),
                              project_dir=config.project_dir,
                              playbook=self.playbook.file, inventory=inventory,
                              extra_vars={**self.extra_vars, **more_vars}, env=dict(config.role_env),
                              timeout=config.timeout)
            return worker.adapter.run(job, on_event, worker._cancel_check(self.run.id, self.lost))

    def note(self, text: str) -> None:
        self.seq += 1
        self.worker.queue.append_events(self.run.id, [{"seq": self.seq, "event": "weco_note", "host": None,
                                                       "task": None, "stdout": text, "data_json": "{}"}])


def _check_stored(what: str, check, *args):
    """check(*args), or RunSetupError naming the row: a stored value the API's checks refuse."""
    try:
        return check(*args)
    except (InvalidInput, KeyError, ValueError, TypeError) as exc:
        raise RunSetupError(f"{what}: a stored value fails its check ({exc}); nothing was run") from None

"""Creating, reading and removing sites and hosts, their links and grants; each
change commits together with its audit event. A host's SSH private key is stored
encrypted, its AAD bound to (hosts, ssh_private_key, row id), and leaves this module
only through `private_key()`, for a worker about to run a playbook."""

from __future__ import annotations

import json

from control_api import authz
from control_api.audit.log import Actor, AuditLog
from control_api.clock import SystemClock
from control_api.crypto import Aad
from control_api.errors import Conflict, InvalidInput, NotFound
from control_api.hosts import pinning
from control_api.license.caps import LicenseCaps, audit_cap_refusals
from control_api.masterkey import MasterKeys
from control_api.models import Host, HostGrant, Run, Site, SiteGrant, SiteHost, User
from control_api.sites import validate

ACTIVE = ("queued", "running")


def _key_aad(host_id: int) -> Aad:
    return Aad("hosts", "ssh_private_key", host_id)


class SiteCatalog:
    def __init__(self, audit: AuditLog, keys: MasterKeys, clock: SystemClock, development: bool, *,
                 caps: LicenseCaps) -> None:
        self.audit, self.keys, self.clock, self.development = audit, keys, clock, development
        self.caps = caps

    # -- sites --------------------------------------------------------------------------

    @audit_cap_refusals
    def create_site(self, data: dict, actor: Actor) -> Site:
        slug, domain = validate.slug(data.get("slug")), validate.domain(data.get("domain"))
        with self.audit.mutation():
            self.caps.reserve("sites", actor)
            if Site.select().where(Site.slug == slug).exists():
                raise Conflict(f"a site with slug '{slug}' already exists")
            site = Site.create(slug=slug, domain=domain, created_at=self.clock.now())
            self.audit.record(actor, "site.create", f"site:{slug}", {"domain": domain})
        return site

    def delete_site(self, site: Site, actor: Actor) -> None:
        with self.audit.mutation():
            if Run.select().where(Run.site == site, Run.status.in_(ACTIVE)).exists():
                raise Conflict(f"site '{site.slug}' has a queued or running run; cancel it first")
            site.delete_instance()
            self.audit.record(actor, "site.delete", f"site:{site.slug}", {})

    def attach(self, site: Site, host: Host, actor: Actor) -> bool:
        with self.audit.mutation():
            if SiteHost.select().where(SiteHost.site == site, SiteHost.host == host).exists():
                return False
            SiteHost.create(site=site, host=host)
            self.audit.record(actor, "site.host_attach", f"site:{site.slug}", {"host": host.name})
        return True

    def detach(self, site: Site, host: Host, actor: Actor) -> None:
        with self.audit.mutation():
            if not SiteHost.delete().where(SiteHost.site == site, SiteHost.host == host).execute():
                raise NotFound("this host does not serve this site", title="Not attached")
            self.audit.record(actor, "site.host_detach", f"site:{site.slug}", {"host": host.name})

    def grant(self, site: Site, user: User, actor: Actor) -> bool:
        with self.audit.mutation():
            if SiteGrant.select().where(SiteGrant.site == site, SiteGrant.user == user).exists():
                return False
            SiteGrant.create(site=site, user=user)
            self.audit.record(actor, "site.grant", f"site:{site.slug}", {"user": user.id})
        return True

    def revoke(self, site: Site, user_id: int, actor: Actor) -> None:
        """One answer whether the user or only the grant is missing: no such grant."""
        with self.audit.mutation():
            if not SiteGrant.delete().where(SiteGrant.site == site, SiteGrant.user == user_id).execute():
                raise NotFound("this user has no grant on this site", title="No such grant")
            self.audit.record(actor, "site.revoke", f"site:{site.slug}", {"user": user_id})

    # -- hosts --------------------------------------------------------------------------

    def grant_host(self, host: Host, user: User, actor: Actor) -> bool:
        with self.audit.mutation():
            if HostGrant.select().where(HostGrant.host == host, HostGrant.user == user).exists():
                return False
            HostGrant.create(host=host, user=user)
            self.audit.record(actor, "host.grant", f"host:{host.id}", {"user": user.id})
        return True

    def revoke_host(self, host: Host, user_id: int, actor: Actor) -> None:
        """One answer whether the user or only the grant is missing: no such grant."""
        with self.audit.mutation():
            if not HostGrant.delete().where(HostGrant.host == host, HostGrant.user == user_id).execute():
                raise NotFound("this user has no grant on this host", title="No such grant")
            self.audit.record(actor, "host.revoke", f"host:{host.id}", {"user": user_id})

    @audit_cap_refusals
    def create_host(self, data: dict, actor: Actor) -> Host:
        name = validate.host_name(data.get("name"))
        connection = validate.connection(data.get("connection", "ssh"), self.development)
        address = validate.address(data.get("address", "127.0.0.1" if connection == "local" else None))
        port = validate.port(data.get("port", 22))
        user = validate.ssh_user(data.get("ssh_user", "root"))
        host_vars = validate.host_vars(data.get("vars"))
        if connection == "ssh":
            key, fingerprint = validate.private_key(data.get("ssh_private_key"))
        elif data.get("ssh_private_key"):
            raise InvalidInput("'ssh_private_key' is not used by a local connection")
        else:
            key, fingerprint = b"", ""
        host_key = pinning.registration_key(data, connection)
        with self.audit.mutation():
            self.caps.reserve("hosts", actor)
            if Host.select().where(Host.name == name).exists():
                raise Conflict(f"a host named '{name}' already exists")
            host = Host.create(name=name, address=address, port=port, ssh_user=user, connection=connection,
                               ssh_private_key="", ssh_key_fingerprint=fingerprint, ssh_host_key=host_key,
                               vars_json=json.dumps(host_vars, sort_keys=True), created_at=self.clock.now())
            # The AAD names the row, so the id must exist before the key is encrypted.
            host.ssh_private_key = self.keys.encrypt(key, aad=_key_aad(host.id))
            host.save(only=[Host.ssh_private_key])
            self.audit.record(actor, "host.create", f"host:{host.id}",
                              {"name": name, "address": address, "connection": connection,
                               "ssh_key_fingerprint": fingerprint,
                               "ssh_host_key_fingerprint": pinning.fingerprint_of(host_key)})
        return host

    def delete_host(self, host: Host, actor: Actor) -> None:
        with self.audit.mutation():
            site_ids = {row.site_id for row in SiteHost.select().where(SiteHost.host == host)}
            for run in Run.select().where(Run.status.in_(ACTIVE)):
                if run.site_id in site_ids or host.id in json.loads(run.target_json).get("hosts", []):
                    raise Conflict(f"host '{host.name}' is the target of a queued or running run")
            host.delete_instance()
            self.audit.record(actor, "host.delete", f"host:{host.id}", {"name": host.name})

    def private_key(self, host: Host) -> bytes:
        return self.keys.decrypt(host.ssh_private_key, aad=_key_aad(host.id))


def site_hosts(site: Site) -> list[Host]:
    return list(Host.select().join(SiteHost).where(SiteHost.site == site).order_by(Host.id))


def hosts_by_ids(ids: list[int]) -> list[Host]:
    return list(Host.select().where(Host.id.in_(ids)).order_by(Host.id))


def sites_for(user: User) -> list[Site]:
    return list(authz.visible_sites(user).order_by(Site.slug))


def hosts_for(user: User) -> list[Host]:
    return list(authz.visible_hosts(user).order_by(Host.id))


def user_or_404(user_id: int) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound(f"there is no user {user_id}", title="No such user")
    return user

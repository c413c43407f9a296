"""IdP groups to a role and to site and host grants: the one mapping SAML, OIDC (and a
later SCIM Groups endpoint) apply to an account the IdP manages.

The map is a JSON file (FF_SSO_GROUP_MAP) an operator writes, read and checked once at
start-up:

    {"groups": {"weco-superadmins": {"role": "superadmin"},
                "disclosures-acme": {"role": "admin", "sites": ["acme"], "hosts": ["web-1"]}}}

Rules, in one place so every protocol agrees:
- the role is the highest any of the account's mapped groups gives (superadmin > admin);
- the grants are the union of the mapped groups' sites (by slug) and hosts (by name);
- an account in no mapped group gets no access (its login is refused);
- for an account the IdP manages, the IdP is the source of truth: each login (each
  push, for SCIM) sets the role and the grants to exactly what the groups say, adding
  and revoking through SiteCatalog so every change is audited as any grant is.
Group names the IdP sends but the map does not name are ignored; sites and hosts the map
names that do not exist (yet) are skipped and named in the audit event.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from control_api.audit.log import Actor, AuditLog
from control_api.models import ROLES, Host, HostGrant, Site, SiteGrant, User
from control_api.sites.catalog import SiteCatalog

_RANK = {"admin": 1, "superadmin": 2}
MAX_GROUPS = 1000  # an IdP sending more for one person is refused, not walked
MAX_GROUP_NAME = 256


class GroupMapError(ValueError):
    """The group map file is missing, unreadable or not of the documented shape."""


@dataclasses.dataclass(frozen=True)
class GroupRule:
    role: str
    sites: frozenset[str]
    hosts: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Entitlement:
    """What a set of IdP groups gives: None for the role means no access at all."""

    role: str | None
    sites: frozenset[str]
    hosts: frozenset[str]
    groups: tuple[str, ...]  # the mapped groups it came from, sorted


class GroupMap:
    def __init__(self, rules: dict[str, GroupRule]) -> None:
        self.rules = rules

    @classmethod
    def load(cls, path: str) -> GroupMap:
        if not path:
            return cls({})
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise GroupMapError(f"FF_SSO_GROUP_MAP: cannot read {path}: {exc}") from None
        return cls.parse(data)

    @classmethod
    def parse(cls, data: object) -> GroupMap:
        if not isinstance(data, dict) or set(data) != {"groups"} or not isinstance(data["groups"], dict):
            raise GroupMapError('FF_SSO_GROUP_MAP: expected {"groups": {NAME: {"role": ..., '
                                '"sites": [...], "hosts": [...]}}}')
        rules = {}
        for name, rule in data["groups"].items():
            if not name or len(name) > MAX_GROUP_NAME:
                raise GroupMapError(f"FF_SSO_GROUP_MAP: group name {name[:40]!r} must be 1..256 characters")
            if not isinstance(rule, dict) or not set(rule) <= {"role", "sites", "hosts"}:
                raise GroupMapError(f"FF_SSO_GROUP_MAP: group {name!r}: only role, sites and hosts "
                                    "are allowed")
            role = rule.get("role", "admin")
            if role not in ROLES:
                raise GroupMapError(f"FF_SSO_GROUP_MAP: group {name!r}: role must be one of "
                                    f"{', '.join(ROLES)}")
            lists = {}
            for key in ("sites", "hosts"):
                values = rule.get(key, [])
                if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                    raise GroupMapError(f"FF_SSO_GROUP_MAP: group {name!r}: {key} must be a list of names")
                lists[key] = frozenset(values)
            rules[name] = GroupRule(role, lists["sites"], lists["hosts"])
        return cls(rules)

    def entitlement(self, groups: Iterable[str]) -> Entitlement:
        matched = sorted({g for g in groups if g in self.rules})
        if not matched:
            return Entitlement(None, frozenset(), frozenset(), ())
        rules = [self.rules[g] for g in matched]
        role = max((r.role for r in rules), key=_RANK.__getitem__)
        return Entitlement(role, frozenset().union(*(r.sites for r in rules)),
                           frozenset().union(*(r.hosts for r in rules)), tuple(matched))


def clean_groups(values: object) -> list[str]:
    """The group names an IdP sent, as strings; anything else (too many, not text) is
    refused rather than guessed at."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or len(values) > MAX_GROUPS:
        raise GroupMapError(f"the IdP's groups must be a list of at most {MAX_GROUPS} names")
    if not all(isinstance(v, str) and len(v) <= MAX_GROUP_NAME for v in values):
        raise GroupMapError(f"each IdP group must be text of at most {MAX_GROUP_NAME} characters")
    return list(values)


class GroupSync:
    """Sets an IdP-managed account's role and grants to what its groups say."""

    def __init__(self, groups: GroupMap, catalog: SiteCatalog, audit: AuditLog) -> None:
        self.groups, self.catalog, self.audit = groups, catalog, audit

    def apply(self, user: User, entitlement: Entitlement, actor: Actor, source: str) -> dict:
        """Inside the caller's transaction (or its own): the role and every grant changed
        to match `entitlement` (which must give access); returns what changed."""
        if entitlement.role is None:
            raise ValueError("an entitlement without a role gives no access: refuse the login instead")
        with self.audit.mutation():
            changes: dict = {}
            if user.role != entitlement.role:
                User.update(role=entitlement.role).where(User.id == user.id).execute()
                self.audit.record(actor, "user.role_change", f"user:{user.id}",
                                  {"from": user.role, "to": entitlement.role, "source": source,
                                   "groups": list(entitlement.groups)})
                changes["role"] = entitlement.role
                user.role = entitlement.role
            changes.update(self._sync_sites(user, entitlement.sites, actor))
            changes.update(self._sync_hosts(user, entitlement.hosts, actor))
        return changes

    def _sync_sites(self, user: User, wanted: frozenset[str], actor: Actor) -> dict:
        found = {s.slug: s for s in Site.select().where(Site.slug.in_(sorted(wanted)))} if wanted else {}
        held = {g.site.slug: g.site for g in SiteGrant.select(SiteGrant, Site).join(Site)
                .where(SiteGrant.user == user)}
        added = [slug for slug in sorted(set(found) - set(held))
                 if self.catalog.grant(found[slug], user, actor)]
        removed = sorted(set(held) - set(found))
        for slug in removed:
            self.catalog.revoke(held[slug], user.id, actor)
        return _changes("sites", added, removed, sorted(wanted - set(found)))

    def _sync_hosts(self, user: User, wanted: frozenset[str], actor: Actor) -> dict:
        found = {h.name: h for h in Host.select().where(Host.name.in_(sorted(wanted)))} if wanted else {}
        held = {g.host.name: g.host for g in HostGrant.select(HostGrant, Host).join(Host)
                .where(HostGrant.user == user)}
        added = [name for name in sorted(set(found) - set(held))
                 if self.catalog.grant_host(found[name], user, actor)]
        removed = sorted(set(held) - set(found))
        for name in removed:
            self.catalog.revoke_host(held[name], user.id, actor)
        return _changes("hosts", added, removed, sorted(wanted - set(found)))


def _changes(kind: str, added: list[str], removed: list[str], unknown: list[str]) -> dict:
    out = {}
    if added:
        out[f"{kind}_granted"] = added
    if removed:
        out[f"{kind}_revoked"] = removed
    if unknown:
        out[f"{kind}_unknown"] = unknown
    return out

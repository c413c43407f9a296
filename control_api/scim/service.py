"""SCIM Users and Groups (RFC 7643/7644) over the accounts and the group map.

- A SCIM User is an account (control_api.models.User) with a SCIM row beside it: its
  userName (the account's email unless a primary or work email is given), externalId
  and the other attributes. Accounts made here have no password (SSO's marker), the
  role `admin` and no grants until their groups give some; they count against the
  license's account cap.
- A leaver (active false, or DELETE) is disabled through UserService.disable, which ends
  every session and revokes every API token in the same transaction. DELETE also
  removes the SCIM row and every grant; the account stays, disabled, for the audit trail.
- A SCIM Group is the IdP's group by displayName; its members' role and site and host
  grants are what control_api/sso/groups.py says those names give (GroupSync), the same
  mapping SAML and OIDC logins apply. A member in no mapped group keeps the role admin
  with no grant (no access).
Every change is audited (scim.*) in the transaction that makes it."""

from __future__ import annotations

import json
import uuid

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService
from control_api.auth.users import UserService, email_key, validate_email
from control_api.clock import SystemClock
from control_api.license.caps import LicenseCaps, audit_cap_refusals
from control_api.models import User
from control_api.scim import filters, patch
from control_api.scim.errors import (
    ScimError,
    invalid_filter,
    invalid_syntax,
    invalid_value,
    names_schema,
    not_found,
    uniqueness,
)
from control_api.scim.models import ScimGroup, ScimMember, ScimUser
from control_api.scim.schemas import ENTERPRISE, GROUP, GROUP_NAMES, LIST, MAX_RESULTS, USER, USER_NAMES
from control_api.sso.accounts import NO_PASSWORD
from control_api.sso.groups import Entitlement, GroupMap, GroupSync

MAX_TEXT = 256
_USER_CANONICAL = {"username": "userName", "name": "name", "displayname": "displayName", "active": "active",
                   "emails": "emails", "externalid": "externalId", "groups": "groups", "id": "id",
                   "meta": "meta",
                   # the enterprise extension's attributes are kept under their full name
                   **{f"{ENTERPRISE.lower()}:{k}": f"{ENTERPRISE.lower()}:{k}"
                      for k in ("employeenumber", "department")}}
_ENTERPRISE_NAMES = {"employeenumber": "employeeNumber", "department": "department"}
_GROUP_CANONICAL = {"displayname": "displayName", "members": "members", "externalid": "externalId",
                    "id": "id", "meta": "meta"}
_USER_SHAPE = patch.Shape(USER_NAMES, _USER_CANONICAL, (USER,), (ENTERPRISE,),
                          frozenset({"id", "meta", "groups"}), frozenset({"username", "active"}),
                          frozenset({"emails", "groups"}))
_GROUP_SHAPE = patch.Shape(GROUP_NAMES, _GROUP_CANONICAL, (GROUP,), (), frozenset({"id", "meta"}),
                           frozenset({"displayname"}), frozenset({"members"}))
_NO_ACCESS = Entitlement("admin", frozenset(), frozenset(), ())


def _text(value: object, name: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or not value.isprintable():
        raise invalid_value(f"'{name}' must be text of 1..{MAX_TEXT} printable characters")
    return value.strip()


def _bool(value: object, name: str) -> bool:
    # Entra ID sends "True"/"False" as strings in PATCH values.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_value(f"'{name}' must be a boolean")


def _get(obj: dict, name: str):
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


def _fold(obj: dict, canonical: dict[str, str], urns: tuple[str, ...]) -> dict:
    """A client's object with its attribute names in our spelling; an extension's
    object is flattened to `urn:...:name` keys; unknown attributes dropped."""
    out = {}
    for key, value in obj.items():
        lowered = key.lower()
        if any(lowered == u.lower() for u in urns) and isinstance(value, dict):
            for sub, sub_value in value.items():
                name = f"{lowered}:{sub.lower()}"
                if name in canonical:
                    out[name] = sub_value
        elif lowered in canonical:
            out[canonical[lowered]] = value
    return out


def paging(start: str | None, count: str | None) -> tuple[int, int]:
    def number(raw, default):
        if raw is None or raw == "":
            return default
        if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 9:
            raise invalid_value("'startIndex' and 'count' must be integers")
        return int(raw)
    return max(1, number(start, 1)), min(max(0, number(count, MAX_RESULTS)), MAX_RESULTS)


class ScimService:
    def __init__(self, audit: AuditLog, clock: SystemClock, users: UserService,
                 credentials: CredentialService, groups: GroupMap, sync: GroupSync,
                 caps: LicenseCaps) -> None:
        self.audit, self.clock, self.users, self.credentials = audit, clock, users, credentials
        self.groups, self.sync, self.caps = groups, sync, caps

    # -- representations ---------------------------------------------------------------

    def user_json(self, row: ScimUser, base: str) -> dict:
        stored = json.loads(row.attributes)
        out = {"schemas": [USER], "id": row.scim_id, "userName": row.user_name,
               "active": row.user.disabled_at is None}
        if row.external_id is not None:
            out["externalId"] = row.external_id
        extension = {}
        for key, value in stored.items():
            if key.startswith(ENTERPRISE.lower() + ":"):
                extension[_ENTERPRISE_NAMES[key.rsplit(':', 1)[1]]] = value
            else:
                out[key] = value
        if extension:
            out["schemas"].append(ENTERPRISE)
            out[ENTERPRISE] = extension
        groups = (ScimGroup.select().join(ScimMember).where(ScimMember.member == row).order_by(ScimGroup.id))
        out["groups"] = [{"value": g.scim_id, "display": g.display_name, "$ref": f"{base}/Groups/{g.scim_id}"}
                         for g in groups]
        out["meta"] = self._meta("User", row, f"{base}/Users/{row.scim_id}")
        return out

    def group_json(self, row: ScimGroup, base: str) -> dict:
        members = (ScimUser.select().join(ScimMember).where(ScimMember.group == row).order_by(ScimUser.id))
        out = {"schemas": [GROUP], "id": row.scim_id, "displayName": row.display_name,
               "members": [{"value": m.scim_id, "type": "User",
                            "$ref": f"{base}/Users/{m.scim_id}"} for m in members]}
        if row.external_id is not None:
            out["externalId"] = row.external_id
        out["meta"] = self._meta("Group", row, f"{base}/Groups/{row.scim_id}")
        return out

    @staticmethod
    def _meta(kind: str, row, location: str) -> dict:
        return {"resourceType": kind, "created": row.created_at.isoformat() + "Z",
                "lastModified": row.updated_at.isoformat() + "Z", "location": location,
                "version": f'W/"{row.version}"'}

    # -- reads --------------------------------------------------------------------------

    def user(self, scim_id: str) -> ScimUser:
        row = ScimUser.select(ScimUser, User).join(User).where(ScimUser.scim_id == scim_id).first()
        if row is None:
            raise not_found(f"there is no User {scim_id[:64]!r}")
        return row

    def group(self, scim_id: str) -> ScimGroup:
        row = ScimGroup.get_or_none(ScimGroup.scim_id == scim_id)
        if row is None:
            raise not_found(f"there is no Group {scim_id[:64]!r}")
        return row

    def search(self, kind: str, text: str | None, start: str | None, count: str | None, base: str) -> dict:
        first, size = paging(start, count)
        return _page(self._matching(kind, text, base), first, size)

    def _matching(self, kind: str, text: str | None, base: str) -> list[dict]:
        if kind == "User":
            rows = ScimUser.select(ScimUser, User).join(User).order_by(ScimUser.id)
            render, names, urns = self.user_json, USER_NAMES, (USER,)
        else:
            rows = ScimGroup.select().order_by(ScimGroup.id)
            render, names, urns = self.group_json, GROUP_NAMES, (GROUP,)
        if text is not None and not text.strip():
            raise invalid_filter("the filter is empty")
        test = filters.parse(text, names, urns) if text else None
        # Filtered in memory over the representation, so a filter means what it says on
        # every attribute; fine for the thousands of accounts an operator side has.
        return [r for r in (render(row, base) for row in rows) if test is None or test(_flat(r))]

    def search_all(self, text: str | None, start: str | None, count: str | None, base: str) -> dict:
        """Users then Groups, paged together; a filter naming an attribute only one type has
        selects from that type alone."""
        first, size = paging(start, count)
        found, refusals = [], []
        for kind in ("User", "Group"):
            try:
                found += self._matching(kind, text, base)
            except ScimError as exc:
                if exc.scim_type != "invalidFilter":
                    raise
                refusals.append(exc)
        if len(refusals) == 2:
            raise refusals[0]
        return _page(found, first, size)

    # -- users --------------------------------------------------------------------------

    def _user_fields(self, body: object) -> dict:
        if not names_schema(body, USER):
            raise invalid_syntax(f"a User must name the schema {USER} in 'schemas'")
        doc = _fold(body, _USER_CANONICAL, (ENTERPRISE,))
        user_name = _text(doc.get("userName"), "userName", required=True)
        external = _text(doc.get("externalId"), "externalId")
        active = _bool(doc["active"], "active") if doc.get("active") is not None else True
        stored: dict = {}
        name = doc.get("name")
        if name is not None:
            if not isinstance(name, dict):
                raise invalid_value("'name' must be an object")
            stored["name"] = {k: _text(_get(name, k), f"name.{k}")
                              for k in ("formatted", "familyName", "givenName") if _get(name, k) is not None}
        if doc.get("displayName") is not None:
            stored["displayName"] = _text(doc["displayName"], "displayName")
        emails = doc.get("emails")
        if emails is not None:
            shaped = isinstance(emails, list) and all(isinstance(e, dict) for e in emails)
            if not shaped or len(emails) > 20:
                raise invalid_value("'emails' must be a list of at most 20 objects")
            stored["emails"] = []
            for e in emails:
                item = {"value": _text(_get(e, "value"), "emails.value", required=True)}
                if _get(e, "type") is not None:
                    item["type"] = _text(_get(e, "type"), "emails.type")
                if _get(e, "primary") is not None:
                    item["primary"] = _bool(_get(e, "primary"), "emails.primary")
                stored["emails"].append(item)
        for key in ("employeeNumber", "department"):
            full = f"{ENTERPRISE.lower()}:{key.lower()}"
            if doc.get(full) is not None:
                stored[full] = _text(doc[full], key)
        email = self._account_email(user_name, stored.get("emails", []))
        return {"user_name": user_name, "external_id": external, "active": active, "stored": stored,
                "email": email}

    @staticmethod
    def _account_email(user_name: str, emails: list[dict]) -> str:
        ranked = ([e["value"] for e in emails if e.get("primary")] +
                  [e["value"] for e in emails if (e.get("type") or "").lower() == "work"] + [user_name] +
                  [e["value"] for e in emails])
        for candidate in ranked:
            try:
                return validate_email(candidate)
            except ValueError:
                continue
        # An IdP whose userName is not an address (and that sends none): the account gets
        # one that reaches nobody (.invalid, RFC 2606), unique to it; sign-in is by SSO.
        return f"scim-{uuid.uuid4()}@scim.invalid"

    @audit_cap_refusals
    def create_user(self, body: object, actor: Actor) -> ScimUser:
        fields = self._user_fields(body)
        now = self.clock.now()
        try:
            with self.audit.mutation():
                self.caps.reserve("admins", actor)
                with self.audit.db.atomic():
                    user = User.create(email=fields["email"], email_key=email_key(fields["email"]),
                                       role="admin", password_hash=NO_PASSWORD, created_at=now,
                                       disabled_at=None if fields["active"] else now)
                    row = ScimUser.create(scim_id=str(uuid.uuid4()), user=user, user_name=fields["user_name"],
                                          user_name_key=fields["user_name"].lower(),
                                          external_id=fields["external_id"],
                                          attributes=json.dumps(fields["stored"]), created_at=now,
                                          updated_at=now)
                self.audit.record(actor, "scim.user_created", f"user:{user.id}",
                                  {"scim_id": row.scim_id, "userName": fields["user_name"],
                                   "externalId": fields["external_id"], "email": fields["email"],
                                   "active": fields["active"]})
                self.sync.apply(user, _NO_ACCESS, actor, "scim")
        except peewee.IntegrityError:
            raise uniqueness("a User with this userName or email exists already") from None
        return self.user(row.scim_id)

    def replace_user(self, scim_id: str, body: object, actor: Actor,
                     action: str = "scim.user_replaced") -> ScimUser:
        row = self.user(scim_id)
        fields = self._user_fields(body)
        user = row.user
        try:
            with self.audit.mutation():
                with self.audit.db.atomic():
                    if user.email_key != email_key(fields["email"]):
                        User.update(email=fields["email"], email_key=email_key(fields["email"])).where(
                            User.id == user.id).execute()
                    ScimUser.update(user_name=fields["user_name"], user_name_key=fields["user_name"].lower(),
                                    external_id=fields["external_id"],
                                    attributes=json.dumps(fields["stored"]),
                                    updated_at=self.clock.now(), version=ScimUser.version + 1).where(
                        ScimUser.id == row.id).execute()
                self.audit.record(actor, action, f"user:{user.id}",
                                  {"scim_id": scim_id, "userName": fields["user_name"],
                                   "externalId": fields["external_id"], "email": fields["email"],
                                   "active": fields["active"]})
                self._set_active(user, fields["active"], actor)
        except peewee.IntegrityError:
            raise uniqueness("another User has this userName or email") from None
        return self.user(scim_id)

    def patch_user(self, scim_id: str, body: object, actor: Actor, base: str) -> ScimUser:
        current = self.user_json(self.user(scim_id), base)
        doc = _fold(current, _USER_CANONICAL, (ENTERPRISE,))
        for key in ("id", "meta", "groups"):
            doc.pop(key, None)
        doc = patch.apply(doc, body, _USER_SHAPE)
        doc["schemas"] = [USER]
        return self.replace_user(scim_id, doc, actor, "scim.user_patched")

    def _set_active(self, user: User, active: bool, actor: Actor) -> None:
        fresh = User.get_by_id(user.id)
        if not active and fresh.disabled_at is None:
            # The leaver: every session ends and every token is revoked, in this transaction.
            self.users.disable(fresh, actor, self.credentials)
        elif active and fresh.disabled_at is not None:
            User.update(disabled_at=None).where(User.id == user.id).execute()
            self.audit.record(actor, "scim.user_reactivated", f"user:{user.id}", {"email": fresh.email})

    def delete_user(self, scim_id: str, actor: Actor) -> None:
        row = self.user(scim_id)
        with self.audit.mutation():
            self._set_active(row.user, False, actor)
            self.sync.apply(User.get_by_id(row.user_id), _NO_ACCESS, actor, "scim")
            ScimUser.delete().where(ScimUser.id == row.id).execute()
            self.audit.record(actor, "scim.user_deleted", f"user:{row.user_id}",
                              {"scim_id": scim_id, "userName": row.user_name})

    # -- groups -------------------------------------------------------------------------

    def _group_fields(self, body: object) -> dict:
        if not names_schema(body, GROUP):
            raise invalid_syntax(f"a Group must name the schema {GROUP} in 'schemas'")
        doc = _fold(body, _GROUP_CANONICAL, ())
        members = doc.get("members") or []
        if not isinstance(members, list) or len(members) > 10000:
            raise invalid_value("'members' must be a list")
        ids = []
        for m in members:
            value = _get(m, "value") if isinstance(m, dict) else None
            if not isinstance(value, str):
                raise invalid_value("each member must be an object with a 'value' (a User id)")
            ids.append(value)
        found = {u.scim_id: u for u in ScimUser.select().where(ScimUser.scim_id.in_(ids))} if ids else {}
        missing = sorted(set(ids) - set(found))
        if missing:
            raise invalid_value(f"no User has the id {missing[0][:64]!r}")
        return {"display_name": _text(doc.get("displayName"), "displayName", required=True),
                "external_id": _text(doc.get("externalId"), "externalId"), "members": found}

    def create_group(self, body: object, actor: Actor) -> ScimGroup:
        fields = self._group_fields(body)
        now = self.clock.now()
        try:
            with self.audit.mutation():
                with self.audit.db.atomic():
                    row = ScimGroup.create(scim_id=str(uuid.uuid4()), display_name=fields["display_name"],
                                           display_key=fields["display_name"].lower(),
                                           external_id=fields["external_id"], created_at=now, updated_at=now)
                self.audit.record(actor, "scim.group_created", f"scim_group:{row.scim_id}",
                                  {"displayName": fields["display_name"], "mapped":
                                   fields["display_name"] in self.groups.rules})
                self._set_members(row, fields["members"], actor)
        except peewee.IntegrityError:
            raise uniqueness("a Group with this displayName exists already") from None
        return row

    def replace_group(self, scim_id: str, body: object, actor: Actor,
                      action: str = "scim.group_replaced") -> ScimGroup:
        row = self.group(scim_id)
        fields = self._group_fields(body)
        try:
            with self.audit.mutation():
                with self.audit.db.atomic():
                    ScimGroup.update(display_name=fields["display_name"],
                                     display_key=fields["display_name"].lower(),
                                     external_id=fields["external_id"], updated_at=self.clock.now(),
                                     version=ScimGroup.version + 1).where(ScimGroup.id == row.id).execute()
                self.audit.record(actor, action, f"scim_group:{scim_id}",
                                  {"displayName": fields["display_name"], "from": row.display_name})
                renamed = row.display_name != fields["display_name"]
                row = self.group(scim_id)
                self._set_members(row, fields["members"], actor, resync_all=renamed)
        except peewee.IntegrityError:
            raise uniqueness("another Group has this displayName") from None
        return row

    def patch_group(self, scim_id: str, body: object, actor: Actor, base: str) -> ScimGroup:
        doc = _fold(self.group_json(self.group(scim_id), base), _GROUP_CANONICAL, ())
        for key in ("id", "meta"):
            doc.pop(key, None)
        doc = patch.apply(doc, body, _GROUP_SHAPE)
        doc["schemas"] = [GROUP]
        return self.replace_group(scim_id, doc, actor, "scim.group_patched")

    def delete_group(self, scim_id: str, actor: Actor) -> None:
        row = self.group(scim_id)
        with self.audit.mutation():
            held = [m.member for m in ScimMember.select(ScimMember, ScimUser).join(ScimUser)
                    .where(ScimMember.group == row)]
            ScimGroup.delete().where(ScimGroup.id == row.id).execute()
            self.audit.record(actor, "scim.group_deleted", f"scim_group:{scim_id}",
                              {"displayName": row.display_name, "members": len(held)})
            for member in held:
                self._resync(member, actor)

    def _set_members(self, row: ScimGroup, wanted: dict[str, ScimUser], actor: Actor,
                     resync_all: bool = False) -> None:
        held = {m.member.scim_id: m.member for m in ScimMember.select(ScimMember, ScimUser).join(ScimUser)
                .where(ScimMember.group == row)}
        added, removed = sorted(set(wanted) - set(held)), sorted(set(held) - set(wanted))
        for scim_id in added:
            ScimMember.create(group=row, member=wanted[scim_id])
        if removed:
            ScimMember.delete().where((ScimMember.group == row) & ScimMember.member.in_(
                [held[i].id for i in removed])).execute()
        if added or removed:
            self.audit.record(actor, "scim.group_members", f"scim_group:{row.scim_id}",
                              {"displayName": row.display_name, "added": added, "removed": removed})
        touched = set(wanted) | set(held) if resync_all else set(added) | set(removed)
        for scim_id in sorted(touched):
            self._resync(wanted.get(scim_id) or held[scim_id], actor)

    def _resync(self, member: ScimUser, actor: Actor) -> None:
        """The member's role and grants set to what all its groups now give."""
        names = [g.display_name
                 for g in ScimGroup.select().join(ScimMember).where(ScimMember.member == member)]
        entitlement = self.groups.entitlement(names)
        self.sync.apply(User.get_by_id(member.user_id),
                        entitlement if entitlement.role is not None else _NO_ACCESS, actor, "scim")


def _page(found: list[dict], first: int, size: int) -> dict:
    page = found[first - 1:first - 1 + size]
    return {"schemas": [LIST], "totalResults": len(found), "startIndex": first, "itemsPerPage": len(page),
            "Resources": page}


def _flat(resource: dict) -> dict:
    """The representation with the enterprise extension's attributes as `urn:...:name`
    keys, as the filter names them."""
    out = dict(resource)
    for key, value in (resource.get(ENTERPRISE) or {}).items():
        out[f"{ENTERPRISE.lower()}:{key.lower()}"] = value
    return out


__all__ = ["ScimError", "ScimService"]

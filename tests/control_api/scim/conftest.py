"""SCIM fixtures: an app per test (on each backend) with a group map, a SCIM token made
as `weco scim token create` makes it, and a client that sends it."""

from __future__ import annotations

import json

import pytest

from control_api.models import AuditEvent
from control_api.wiring import build_scim_tokens
from tests.conftest import ACTOR

GROUP_MAP = {"groups": {
    "weco-admins": {"role": "admin", "sites": ["acme"]},
    "weco-root": {"role": "superadmin"},
}}
SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture(scope="session")
def group_map(tmp_path_factory):
    path = tmp_path_factory.mktemp("scim") / "groups.json"
    path.write_text(json.dumps(GROUP_MAP))
    return path


@pytest.fixture
def env(env, group_map):
    return {**env, "FF_SSO_GROUP_MAP": str(group_map)}


@pytest.fixture
def scim_token(deps):
    value, _ = build_scim_tokens(deps).create("entra", ACTOR)
    return value


class Scim:
    """The test client, speaking SCIM with the token."""

    def __init__(self, client, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}", "Content-Type": SCIM}

    def get(self, path: str, **params):
        return self.client.simulate_get("/scim/v2" + path, headers=self.headers, params=params or None)

    def send(self, method: str, path: str, body: object, headers: dict | None = None):
        text = body if isinstance(body, str) else json.dumps(body)
        headers = {**self.headers, **(headers or {})}
        return self.client.simulate_request(method, "/scim/v2" + path, headers=headers, body=text)

    def post(self, path, body, **kw):
        return self.send("POST", path, body, **kw)

    def put(self, path, body):
        return self.send("PUT", path, body)

    def patch(self, path, *operations, schemas=(PATCH,)):
        return self.send("PATCH", path, {"schemas": list(schemas), "Operations": list(operations)})

    def delete(self, path):
        return self.client.simulate_delete("/scim/v2" + path, headers=self.headers)


@pytest.fixture
def scim(client, scim_token):
    return Scim(client, scim_token)


def user_body(name: str = "ada@example.test", **extra) -> dict:
    return {"schemas": [USER], "userName": name, "externalId": f"ext-{name}", "active": True,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": name, "type": "work", "primary": True}], **extra}


def actions(since: int = 0) -> list[str]:
    return [e.action for e in AuditEvent.select().where(AuditEvent.seq > since).order_by(AuditEvent.seq)]


def last_event_id() -> int:
    row = AuditEvent.select().order_by(AuditEvent.seq.desc()).first()
    return row.seq if row else 0


def events(action: str) -> list[dict]:
    return [json.loads(e.event_json) for e in AuditEvent.select().where(AuditEvent.action == action)
            .order_by(AuditEvent.seq)]

"""Small helpers the resources share."""

from __future__ import annotations

import datetime as dt

import falcon

from control_api.audit.log import Actor


def actor_of(req: falcon.Request) -> Actor:
    """The audit actor for this request: the caller, its socket address and agent."""
    principal = req.context.principal
    who = f"user:{principal.user.id}" if principal else "anonymous"
    return Actor(who, req.context.client_ip, req.user_agent or "")


def iso(value: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with its Z, or None."""
    return value.isoformat() + "Z" if value else None

"""Small helpers the resources share."""

from __future__ import annotations

import falcon

from control_api.audit.log import Actor


def actor_of(req: falcon.Request) -> Actor:
    """The audit actor for this request: the caller, its socket address and agent."""
    principal = req.context.principal
    who = f"user:{principal.user.id}" if principal else "anonymous"
    return Actor(who, req.context.client_ip, req.user_agent or "")

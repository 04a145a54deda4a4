"""Executors of actions, by action name: a plain dict registry that connectors fill in their AppConfig.ready().

Governance decides and records; an executor only carries out an action that was allowed or approved. It receives
the idempotency key, which it must pass to the remote side (e.g. Stripe's Idempotency-Key header), so that a retry
after a timeout never acts twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from governance.roles import Principal


@dataclass(frozen=True)
class ExecutionContext:
    action: str
    arguments: dict[str, Any]
    principal: Principal
    idempotency_key: str
    conversation_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


Executor = Callable[[ExecutionContext], dict[str, Any]]

ACTION_EXECUTORS: dict[str, Executor] = {}


def is_permanent(exc: BaseException) -> bool:
    """Whether a failure will not go away by retrying (connector errors carry ``permanent``; anything else is)."""
    return bool(getattr(exc, "permanent", True))


def principal_to_dict(principal: Principal) -> dict[str, Any]:
    return {
        "kind": principal.kind,
        "roles": sorted(principal.roles),
        "verification": int(principal.verification),
        "user_id": principal.user_id,
        "customer_id": principal.customer_id,
        "label": principal.label,
    }


def principal_from_dict(data: dict[str, Any]) -> Principal:
    return Principal(
        kind=data.get("kind", "customer"),
        roles=frozenset(data.get("roles", ["customer"])),
        verification=int(data.get("verification", 0)),
        user_id=data.get("user_id"),
        customer_id=data.get("customer_id"),
        label=data.get("label", ""),
    )

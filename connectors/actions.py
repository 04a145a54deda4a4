"""Executors for the actions governance may allow or approve, carried out on the primary connector of their family.

Registered in governance.executors.ACTION_EXECUTORS by ConnectorsConfig.ready(). Each receives the idempotency key
of the decision or approval request; the adapter passes it to the remote side, and ``gateway.idempotent`` makes sure
a system that ignores such keys is still written at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connectors.base import Address, ConnectorError, TicketDraft
from connectors.gateway import adapter_for, call, connector_for, idempotent, require_own_record
from governance.executors import ExecutionContext
from governance.policies import as_decimal


def _argument(context: ExecutionContext, name: str) -> Any:
    value = context.arguments.get(name)
    if value in (None, ""):
        raise ConnectorError(f"{context.action} needs {name}", permanent=True)
    return value


def _run(
    context: ExecutionContext, family: str, operation: Callable[[Any], Any], owns: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Run one action on the family's primary connector; ``owns`` = (object, id) the customer must own."""
    connector = connector_for(family=family)
    adapter = adapter_for(
        connector, principal=context.principal, purpose=context.action, conversation_id=context.conversation_id
    )
    if owns is not None:
        obj, object_id = owns
        record = call(connector, lambda: adapter.read_object(obj, object_id))
        require_own_record(context.principal, obj, object_id, record)
    result = idempotent(
        connector,
        context.action,
        context.idempotency_key,
        lambda: operation(adapter),
        remote_dedupes=adapter.honours_idempotency,
    )
    return {"connector": connector.key, "result": result if isinstance(result, dict) else _plain(result)}


def _plain(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in dataclasses.asdict(value).items()}
    return value


def refund(context: ExecutionContext) -> dict[str, Any]:
    order_id = str(_argument(context, "order_id"))
    amount = as_decimal(context.arguments.get("amount")) if context.arguments.get("amount") is not None else None
    reason = str(context.arguments.get("reason", "requested_by_customer"))
    return _run(
        context,
        "commerce",
        lambda a: a.refund(order_id, amount, reason=reason, idempotency_key=context.idempotency_key),
        owns=("order", order_id),
    )


def _subscription_action(method: str) -> Callable[[ExecutionContext], dict[str, Any]]:
    """An executor calling ``CommerceAdapter.<method>(subscription_id)`` on one of the customer's subscriptions."""

    def execute(context: ExecutionContext) -> dict[str, Any]:
        subscription_id = str(_argument(context, "subscription_id"))
        return _run(
            context,
            "commerce",
            lambda a: getattr(a, method)(subscription_id, idempotency_key=context.idempotency_key),
            owns=("subscription", subscription_id),
        )

    execute.__name__ = method
    return execute


subscription_pause = _subscription_action("pause_subscription")
subscription_resume = _subscription_action("resume_subscription")
subscription_cancel = _subscription_action("cancel_subscription")


def address_change(context: ExecutionContext) -> dict[str, Any]:
    order_id = str(_argument(context, "order_id"))
    raw = _argument(context, "address")
    if not isinstance(raw, dict):
        raise ConnectorError("address_change needs an address object", permanent=True)
    try:
        address = Address(
            line1=str(raw["line1"]),
            city=str(raw["city"]),
            postcode=str(raw["postcode"]),
            country=str(raw["country"]),
            line2=str(raw.get("line2", "")),
        )
    except KeyError as exc:
        raise ConnectorError(f"address_change needs address.{exc.args[0]}", permanent=True) from None
    return _run(
        context,
        "commerce",
        lambda a: a.change_shipping_address(order_id, address, idempotency_key=context.idempotency_key),
        owns=("order", order_id),
    )


def crm_note(context: ExecutionContext) -> dict[str, Any]:
    customer_id = str(_argument(context, "customer_id"))
    text = str(_argument(context, "text"))
    return _run(
        context,
        "crm",
        lambda a: a.add_note(customer_id, text, idempotency_key=context.idempotency_key),
        owns=("customer", customer_id),
    )


def ticket_create(context: ExecutionContext) -> dict[str, Any]:
    raw = _argument(context, "ticket")
    try:
        draft = TicketDraft(**raw)
    except TypeError as exc:
        raise ConnectorError(f"ticket_create: {exc}", permanent=True) from None
    return _run(context, "helpdesk", lambda a: a.create_ticket(draft, idempotency_key=context.idempotency_key))


EXECUTORS: dict[str, Callable[[ExecutionContext], dict[str, Any]]] = {
    "refund": refund,
    "subscription_pause": subscription_pause,
    "subscription_resume": subscription_resume,
    "subscription_cancel": subscription_cancel,
    "address_change": address_change,
    "crm_note": crm_note,
    "ticket_create": ticket_create,
}

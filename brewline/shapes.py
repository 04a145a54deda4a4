"""The JSON shapes of Brewline's API answers: amounts as strings with two decimals, times in ISO 8601."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from brewline.models import Customer, CustomerNote, FollowUpTask, Order, Refund, Subscription

TRACKING_URLS = {
    "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    "DHL": "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?tracking-id={number}",
    "UPS": "https://www.ups.com/track?tracknum={number}",
}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _when(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "plan": customer.plan,
        "region": customer.region,
        "lifecycle_stage": customer.lifecycle_stage,
        "renewal_date": _when(customer.renewal_date),
        "account_owner": customer.account_owner,
        "tier": customer.tier,
        "shipping_address": customer.shipping_address,
        "lifetime_value": _money(customer.lifetime_value),
        "tags": list(customer.tags),
        "support_history": customer.support_history,
        "payment_method": {"brand": customer.card_brand, "last4": customer.card_last4},
        "created_at": _when(customer.created_at),
    }


def customer_summary_json(customer: Customer) -> dict[str, Any]:
    return {"id": customer.external_id, "name": customer.name, "email": customer.email, "phone": customer.phone}


def note_json(note: CustomerNote) -> dict[str, Any]:
    return {
        "id": note.number,
        "customer_id": note.customer.external_id,
        "text": note.text,
        "created_at": _when(note.created_at),
    }


def task_json(task: FollowUpTask) -> dict[str, Any]:
    return {
        "id": task.number,
        "customer_id": task.customer.external_id,
        "title": task.title,
        "due_at": _when(task.due_at),
        "status": task.status,
        "created_at": _when(task.created_at),
    }


def _tracking_url(order: Order) -> str | None:
    template = TRACKING_URLS.get(order.carrier)
    if not template or not order.tracking_number:
        return None
    return template.format(number=quote(order.tracking_number))


def order_json(order: Order, *, refunded: Decimal) -> dict[str, Any]:
    """The whole order; ``order.items`` prefetched, ``order.customer`` joined."""
    return {
        "id": order.number,
        "customer_id": order.customer.external_id,
        "status": order.status,
        "placed_at": _when(order.placed_at),
        "currency": order.currency,
        "items": [
            {
                "sku": item.sku,
                "name": item.name,
                "quantity": item.quantity,
                "unit_price": _money(item.unit_price),
                "line_total": _money(item.line_total),
            }
            for item in order.items.all()
        ],
        "totals": {
            "subtotal": _money(order.subtotal),
            "shipping": _money(order.shipping_fee),
            "total": _money(order.total),
            "refunded": _money(refunded),
            "refundable": _money(max(order.total - refunded, Decimal("0.00"))),
        },
        "shipping": {
            "status": order.shipping_status,
            "carrier": order.carrier or None,
            "tracking_number": order.tracking_number or None,
            "tracking_url": _tracking_url(order),
            "shipped_at": _when(order.shipped_at),
            "delivered_at": _when(order.delivered_at),
            "estimated_delivery": _when(order.estimated_delivery),
            "address": order.shipping_address,
        },
    }


def order_summary_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.number,
        "status": order.status,
        "placed_at": _when(order.placed_at),
        "currency": order.currency,
        "totals": {"total": _money(order.total)},
        "shipping": {"status": order.shipping_status, "tracking_number": order.tracking_number or None},
    }


def subscription_json(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.number,
        "customer_id": subscription.customer.external_id,
        "plan": subscription.plan,
        "status": subscription.status,
        "price": _money(subscription.price),
        "currency": subscription.currency,
        "interval_days": subscription.interval_days,
        "next_charge_date": _when(subscription.next_charge_date),
        "paused_at": _when(subscription.paused_at),
        "cancelled_at": _when(subscription.cancelled_at),
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.number,
        "order_id": refund.order.number,
        "amount": _money(refund.amount),
        "currency": refund.currency,
        "reason": refund.reason,
        "status": refund.status,
        "created_at": _when(refund.created_at),
    }

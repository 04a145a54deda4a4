"""Brewline's writes, one function each. Errors are raised as BrewlineError subclasses carrying their HTTP status;
the API turns them into answers (brewline/api.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from brewline.models import (
    Customer,
    CustomerNote,
    FollowUpTask,
    Order,
    Refund,
    Subscription,
    SubscriptionStatus,
)


class BrewlineError(Exception):
    status = 400
    code = "bad_request"


class NotFound(BrewlineError):
    status = 404
    code = "not_found"


class Conflict(BrewlineError):
    status = 409
    code = "conflict"


class Unprocessable(BrewlineError):
    status = 422
    code = "unprocessable"


ADDRESS_FIELDS = ("line1", "line2", "city", "postcode", "country")


def address_from_line(line: str) -> dict[str, str]:
    """Split a one-line address, "street[, line 2], city, postcode, country code", into its parts."""
    parts = [part.strip() for part in line.split(",") if part.strip()]
    if len(parts) not in (4, 5):
        raise BrewlineError(
            "Give the address as one line: street, [line 2,] city, postcode, country code (e.g. "
            "'12 Bean Street, Leeds, LS1 4AP, GB')."
        )
    country = parts[-1].upper()
    if len(country) != 2 or not country.isalpha():
        raise BrewlineError(f"The last part of the address must be a two-letter country code, not {parts[-1]!r}.")
    line2 = parts[1] if len(parts) == 5 else ""
    return {"line1": parts[0], "line2": line2, "city": parts[-3], "postcode": parts[-2], "country": country}


def _set_address(record: Customer | Order, address: dict[str, str]) -> list[str]:
    for part in ADDRESS_FIELDS:
        setattr(record, f"ship_{part}", address.get(part, "") if part == "line2" else address[part])
    return [f"ship_{part}" for part in ADDRESS_FIELDS]


@transaction.atomic
def customer_update(*, customer: Customer, changes: dict[str, Any]) -> Customer:
    """Change a customer's profile fields; ``shipping_address`` is a dict of parts or one line of text."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    fields: list[str] = []
    for name, value in changes.items():
        if name == "shipping_address":
            address = address_from_line(value) if isinstance(value, str) else value
            fields += _set_address(locked, address)
        else:
            setattr(locked, name, value.lower() if name == "email" else value)
            fields.append(name)
    if fields:
        locked.save(update_fields=fields)
    return locked


def customer_note_add(*, customer: Customer, text: str) -> CustomerNote:
    return CustomerNote.objects.create(customer=customer, text=text)


@transaction.atomic
def customer_tag_add(*, customer: Customer, tag: str) -> Customer:
    """Add a tag once; adding it again changes nothing."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if tag not in locked.tags:
        locked.tags = [*locked.tags, tag]
        locked.save(update_fields=["tags"])
    return locked


def follow_up_task_create(*, customer: Customer, title: str, due_at: datetime | None) -> FollowUpTask:
    return FollowUpTask.objects.create(customer=customer, title=title, due_at=due_at)


@transaction.atomic
def order_address_change(*, order: Order, address: dict[str, str]) -> Order:
    """Send an order somewhere else; only until it ships."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.has_shipped:
        raise Conflict(
            f"Order {locked.number} has already shipped ({locked.get_shipping_status_display().lower()}); "
            "its address can no longer change."
        )
    locked.save(update_fields=_set_address(locked, address))
    return locked


@transaction.atomic
def subscription_set_status(*, subscription: Subscription, status: str) -> Subscription:
    """Pause, resume or cancel. Asking for the status it already has changes nothing; a cancelled one stays so."""
    locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if locked.status == status:
        return locked
    if locked.status == SubscriptionStatus.CANCELLED:
        raise Conflict(f"Subscription {locked.number} is cancelled; start a new one instead.")
    now = timezone.now()
    if status == SubscriptionStatus.PAUSED:
        locked.paused_at = now
    elif status == SubscriptionStatus.ACTIVE:
        locked.paused_at = None
        today = timezone.localdate()
        if locked.next_charge_date is None or locked.next_charge_date <= today:
            locked.next_charge_date = today + timedelta(days=locked.interval_days)
    elif status == SubscriptionStatus.CANCELLED:
        locked.cancelled_at = now
        locked.next_charge_date = None
    else:
        raise BrewlineError(f"Unknown subscription status {status!r}.")
    locked.status = status
    locked.save(update_fields=["status", "paused_at", "cancelled_at", "next_charge_date"])
    return locked


def refunded_amount(order: Order) -> Decimal:
    return order.refunds.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")


def refund_create(*, order: Order, amount: Decimal | None, reason: str, idempotency_key: str) -> tuple[Refund, bool]:
    """Refund ``amount`` (the whole refundable remainder when None); return the refund and whether it is new.

    A key used before returns the first refund, whatever the amount asked this time (as Stripe does). Refunds of one
    order are serialised on the order's row, so two at once cannot both take the same remainder.
    """
    try:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                if existing.order_id != locked.pk:
                    raise Unprocessable("This Idempotency-Key was used for a refund of another order.")
                return existing, False
            remainder = locked.total - refunded_amount(locked)
            amount = remainder if amount is None else amount
            if remainder <= 0:
                raise Unprocessable(f"Order {locked.number} is already fully refunded.")
            if amount > remainder:
                raise Unprocessable(
                    f"The refund of {amount} is more than the {remainder} {locked.currency} left to refund on "
                    f"order {locked.number}."
                )
            refund = Refund.objects.create(
                order=locked, amount=amount, currency=locked.currency, reason=reason, idempotency_key=idempotency_key
            )
            return refund, True
    except IntegrityError:
        # The same key for another order, committed between our check and our insert.
        raise Unprocessable("This Idempotency-Key was used for a refund of another order.") from None

"""The customers of the demo traffic: Brewline's generated customers (brewline/demo.py), each with the order or
subscription a visit is about, in the state it needs (an order on its way, a subscription to pause, ...).

Read from the demo system's own tables, as its seed is: this is seed code (``manage.py seed_demo --traffic``), and the
traffic itself reaches Brewline only over HTTP through the connectors. The named customers (Mara, Tomás, Priya, ...)
are never cast: the demo regression suite and the demo page count on their records staying as seeded. No record is
cast twice in one run, so a refund or a pause always finds its record in the state it was picked in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Min, Q

from agent.demo_traffic_scripts import Needs
from brewline.demo import NAMED_CUSTOMERS
from brewline.models import Customer, Order, OrderStatus, ShippingStatus, Subscription, SubscriptionStatus

SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}
# New delivery addresses the customers of an address change type (UK: the orders picked for one are UK orders).
NEW_ADDRESSES = (
    "27 Canal Wharf, Leeds LS11 5PS",
    "4 Gloucester Road, Bristol BS7 8AE",
    "118 Byres Road, Glasgow G12 8TB",
    "9 Chatsworth Road, London E5 0LH",
)
AUTOMATED_REFUND_LIMIT = Decimal("50.00")  # governance/demo.py: the refund policy's automated limit
REFUND_HARD_LIMIT = Decimal("500.00")
CANDIDATES = 400  # records of each kind a run draws from (the first by number: the same set every run)


@dataclass(frozen=True)
class CastCustomer:
    """A demo customer and what they say about their records; "" where a visit needs nothing of that kind."""

    customer_id: str
    name: str
    email: str
    order: str = ""
    subscription: str = ""
    amount: str = ""  # as typed: "£9.50"
    address: str = ""  # a new delivery address, on one line


class Cast:
    """Draws the customer a visit needs, without replacement (``random.Random``: the same run, the same cast)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._pools: dict[Needs, list[int]] = {}
        self._used: set[str] = set()

    def pick(self, needs: Needs) -> CastCustomer | None:
        """Return a customer for ``needs`` (None: Brewline has no unused record in that state)."""
        if needs == Needs.NOTHING:
            return None
        pool = self._pools.get(needs)
        if pool is None:
            pool = self._pools[needs] = _candidates(needs)
        while pool:
            pk = pool.pop(self._rng.randrange(len(pool)))
            customer = _cast(needs, pk, self._rng)
            if customer is not None and customer.customer_id not in self._used:
                self._used.add(customer.customer_id)
                return customer
        return None


def _unnamed() -> Q:
    return ~Q(customer__external_id__in=[spec["external_id"] for spec in NAMED_CUSTOMERS])


def _candidates(needs: Needs) -> list[int]:
    """The primary keys of the first ``CANDIDATES`` records in the state ``needs`` asks for, in a stable order."""
    orders = Order.objects.filter(_unnamed()).order_by("number")
    subscriptions = Subscription.objects.filter(_unnamed()).order_by("number")
    delivered = orders.filter(status=OrderStatus.DELIVERED, refunds__isnull=True)
    query = {
        Needs.CUSTOMER: Customer.objects.exclude(external_id__in=[s["external_id"] for s in NAMED_CUSTOMERS]).order_by(
            "external_id"
        ),
        Needs.ORDER_SHIPPED: orders.filter(
            status=OrderStatus.SHIPPED, shipping_status__in=[ShippingStatus.IN_TRANSIT, ShippingStatus.DELAYED]
        ),
        Needs.ORDER_PROCESSING: orders.filter(status=OrderStatus.PROCESSING, ship_country="GB"),
        Needs.ORDER_DELIVERED: delivered.annotate(cheapest=Min("items__unit_price")).filter(
            cheapest__lte=AUTOMATED_REFUND_LIMIT
        ),
        Needs.ORDER_DELIVERED_LARGE: delivered.filter(
            total__gt=AUTOMATED_REFUND_LIMIT, total__lte=REFUND_HARD_LIMIT, currency="GBP"
        ),
        Needs.SUBSCRIPTION_ACTIVE: subscriptions.filter(status=SubscriptionStatus.ACTIVE),
        Needs.SUBSCRIPTION_PAUSED: subscriptions.filter(status=SubscriptionStatus.PAUSED),
    }[needs]
    return list(query.values_list("pk", flat=True)[:CANDIDATES])


def _cast(needs: Needs, pk: int, rng: random.Random) -> CastCustomer | None:
    """The customer of record ``pk`` (a customer, order or subscription, by ``needs``), as they talk about it."""
    if needs == Needs.CUSTOMER:
        person = Customer.objects.get(pk=pk)
        return CastCustomer(customer_id=person.external_id, name=person.name, email=person.email)
    if needs in (Needs.SUBSCRIPTION_ACTIVE, Needs.SUBSCRIPTION_PAUSED):
        subscription = Subscription.objects.select_related("customer").get(pk=pk)
        person = subscription.customer
        return CastCustomer(
            customer_id=person.external_id, name=person.name, email=person.email, subscription=subscription.number
        )
    order = Order.objects.select_related("customer").get(pk=pk)
    person = order.customer
    symbol = SYMBOLS.get(order.currency, "")
    amount = ""
    if needs == Needs.ORDER_DELIVERED:
        cheapest = min(item.unit_price for item in order.items.all())
        amount = f"{symbol}{cheapest:.2f}"
    elif needs == Needs.ORDER_DELIVERED_LARGE:
        amount = f"{symbol}{order.total:.2f}"
    return CastCustomer(
        customer_id=person.external_id,
        name=person.name,
        email=person.email,
        order=order.number,
        amount=amount,
        address=rng.choice(NEW_ADDRESSES) if needs == Needs.ORDER_PROCESSING else "",
    )

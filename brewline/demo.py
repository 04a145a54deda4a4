"""Brewline Coffee's customers, orders and subscriptions for the demo: generated from ``random.Random(42)``, so the
same records every time (dated relative to the day they are seeded), with a handful of named customers whose orders
are in the states a demo needs:

- C-1001 Mara Lindqvist (VIP, UK): BL-10041 delivered, BL-10042 in transit, BL-10043 processing (address can change);
  subscription SUB-2001 active.
- C-1002 Tomás Brandt (EU): BL-10051 delayed in transit, BL-10052 delivered; subscription SUB-2002 paused.
- C-1003 Priya Castellano (Plus, US): BL-10061 delivered (arrived damaged: the refund demo), BL-10062 in transit;
  subscription SUB-2003 active.
- C-1004 Jonah Whitcombe (at risk, UK): BL-10071 processing, BL-10072 cancelled; subscription SUB-2004 cancelled.
- C-1005 Elif Marchetti (new, EU): BL-10081 processing, her first order.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from brewline.models import (
    ApiToken,
    Customer,
    LifecycleStage,
    Order,
    OrderItem,
    OrderStatus,
    ShippingStatus,
    Subscription,
    SubscriptionStatus,
    Tier,
)

SEED = 42
TWO_PLACES = Decimal("0.01")

PRODUCTS: list[tuple[str, str, Decimal]] = [
    ("BL-ESP-250", "Espresso Roast, 250 g", Decimal("9.50")),
    ("BL-ESP-1K", "Espresso Roast, 1 kg", Decimal("32.00")),
    ("BL-FLT-250", "Filter Roast, 250 g", Decimal("9.00")),
    ("BL-DEC-250", "Swiss Water Decaf, 250 g", Decimal("10.50")),
    ("BL-ETH-250", "Ethiopia Guji, 250 g", Decimal("12.50")),
    ("BL-COL-250", "Colombia Huila, 250 g", Decimal("11.50")),
    ("BL-GRD-01", "Conical Burr Grinder", Decimal("89.00")),
    ("BL-V60-02", "Pour-over Dripper", Decimal("24.00")),
    ("BL-FIL-100", "Paper Filters x100", Decimal("6.00")),
    ("BL-MUG-01", "Brewline Enamel Mug", Decimal("14.00")),
]
PLANS = [
    ("Roaster's Choice, fortnightly", Decimal("24.00"), 14),
    ("Filter Club, monthly", Decimal("19.50"), 30),
    ("Single Origin Explorer, monthly", Decimal("32.00"), 30),
    ("Decaf Evenings, monthly", Decimal("18.00"), 30),
    ("Office Pro, weekly", Decimal("58.00"), 7),
]
REGIONS: dict[str, dict[str, Any]] = {
    "UK": {
        "currency": "GBP",
        "carrier": "Royal Mail",
        "cities": [("Leeds", "LS1 4AP"), ("Bristol", "BS1 5QT"), ("Glasgow", "G1 2FF"), ("London", "E2 7DG")],
        "country": "GB",
    },
    "EU": {
        "currency": "EUR",
        "carrier": "DHL",
        "cities": [("Berlin", "10435", "DE"), ("Amsterdam", "1015 DK", "NL"), ("Lyon", "69002", "FR")],
        "country": "",
    },
    "US": {
        "currency": "USD",
        "carrier": "UPS",
        "cities": [("Portland", "97205"), ("Austin", "78701"), ("Chicago", "60607"), ("Boston", "02118")],
        "country": "US",
    },
}
FIRST_NAMES = [
    "Aisha", "Bruno", "Carmen", "Dmitri", "Esme", "Felix", "Greta", "Hugo", "Ines", "Jasper", "Kaia", "Luca",
    "Mina", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Soren", "Talia", "Umar", "Vera", "Wes", "Xenia", "Yusuf",
    "Zara", "Amara", "Bastian", "Cleo", "Dario",
]  # fmt: skip
LAST_NAMES = [
    "Abbott", "Bergstrom", "Costa", "Dubois", "Eriksen", "Fontaine", "Gallo", "Hartley", "Ibarra", "Jansen",
    "Kowalski", "Laurent", "Moreau", "Novak", "Olsen", "Petrov", "Quint", "Rossi", "Silva", "Thornton", "Ueda",
    "Varga", "Weller", "Yilmaz", "Zimmer",
]  # fmt: skip
STREETS = ["Roastery Row", "Bean Street", "Harbour Road", "Mill Lane", "Station Road", "Market Square", "Elm Avenue"]
HISTORY = [
    ("email", "Asked how to change the grind size of the subscription."),
    ("chat", "Parcel left with a neighbour; confirmed received."),
    ("phone", "Moved the next delivery by a week while on holiday."),
    ("email", "Asked for the brewing guide for the pour-over dripper."),
    ("chat", "Card declined at renewal; updated the card on file."),
]
ACCOUNT_OWNERS = ["Omar Haddad", "Maya Okafor", "Sam Reyes"]


def seed_brewline(token: str, *, customers: int = 300, orders: int = 3000) -> dict[str, int]:
    """Register ``token`` as an API token and create the demo records; return how many rows were created.

    Idempotent: an existing token is left as it is (a revoked one stays revoked), and once any customer exists the
    records are not generated again.
    """
    if customers < len(NAMED_CUSTOMERS) or orders < sum(len(spec["orders"]) for spec in NAMED_CUSTOMERS):
        raise ValueError("seed_brewline needs at least the named customers and their orders")
    with transaction.atomic():
        _, token_made = ApiToken.objects.get_or_create(
            token_hash=ApiToken.hash_token(token), defaults={"name": "Steward"}
        )
        created = {"api tokens": int(token_made), "customers": 0, "orders": 0, "order items": 0, "subscriptions": 0}
        if Customer.objects.exists():
            return created
        created.update(_generate(random.Random(SEED), customers=customers, orders=orders))
    return created


def brewline_needs_seeding() -> bool:
    """Whether seed_brewline has anything to do: no records yet, or no usable API token."""
    return not (Customer.objects.exists() and ApiToken.objects.filter(revoked=False).exists())


# --- The named customers ---------------------------------------------------------------------------------------------

# Order specs: (number, days ago placed, state, items as (sku, quantity)). States: processing, in_transit, delayed,
# delivered, cancelled.
NAMED_CUSTOMERS: list[dict[str, Any]] = [
    dict(
        external_id="C-1001",
        name="Mara Lindqvist",
        phone="+447700900101",
        region="UK",
        tier=Tier.VIP,
        lifecycle_stage=LifecycleStage.ACTIVE,
        account_owner="Omar Haddad",
        address=("14 Kiln Lane", "", "Leeds", "LS1 4AP", "GB"),
        card=("visa", "4242"),
        tags=["espresso", "early-adopter"],
        history=[("chat", "Asked to swap the espresso roast for the Ethiopia Guji this month.")],
        subscription=("SUB-2001", 0, SubscriptionStatus.ACTIVE, 5),
        orders=[
            ("BL-10041", 21, "delivered", [("BL-ESP-1K", 1), ("BL-FIL-100", 2)]),
            ("BL-10042", 3, "in_transit", [("BL-ETH-250", 2), ("BL-MUG-01", 1)]),
            ("BL-10043", 0.2, "processing", [("BL-GRD-01", 1)]),
        ],
    ),
    dict(
        external_id="C-1002",
        name="Tomás Brandt",
        phone="+4915112345602",
        region="EU",
        tier=Tier.STANDARD,
        lifecycle_stage=LifecycleStage.ACTIVE,
        account_owner="",
        address=("Oderberger Str. 12", "", "Berlin", "10435", "DE"),
        card=("mastercard", "5454"),
        tags=["filter"],
        history=[("email", "Paused the subscription while travelling.")],
        subscription=("SUB-2002", 1, SubscriptionStatus.PAUSED, None),
        orders=[
            ("BL-10051", 9, "delayed", [("BL-FLT-250", 3)]),
            ("BL-10052", 40, "delivered", [("BL-V60-02", 1), ("BL-FIL-100", 1)]),
        ],
    ),
    dict(
        external_id="C-1003",
        name="Priya Castellano",
        phone="+14155550103",
        region="US",
        tier=Tier.PLUS,
        lifecycle_stage=LifecycleStage.ACTIVE,
        account_owner="Maya Okafor",
        address=("2200 Mission St", "Apt 4", "San Francisco", "94110", "US"),
        card=("amex", "0005"),
        tags=["single-origin"],
        history=[],
        subscription=("SUB-2003", 2, SubscriptionStatus.ACTIVE, 12),
        orders=[
            ("BL-10061", 6, "delivered", [("BL-COL-250", 2), ("BL-MUG-01", 2)]),
            ("BL-10062", 2, "in_transit", [("BL-ETH-250", 1)]),
        ],
    ),
    dict(
        external_id="C-1004",
        name="Jonah Whitcombe",
        phone="+447700900104",
        region="UK",
        tier=Tier.STANDARD,
        lifecycle_stage=LifecycleStage.AT_RISK,
        account_owner="",
        address=("3 Mill Row", "", "Bristol", "BS1 5QT", "GB"),
        card=("visa", "1881"),
        tags=["decaf", "churn-risk"],
        history=[("phone", "Unhappy with two late deliveries in a row; offered a free bag.")],
        subscription=("SUB-2004", 3, SubscriptionStatus.CANCELLED, None),
        orders=[
            ("BL-10071", 1, "processing", [("BL-DEC-250", 2)]),
            ("BL-10072", 30, "cancelled", [("BL-DEC-250", 1)]),
        ],
    ),
    dict(
        external_id="C-1005",
        name="Elif Marchetti",
        phone="+31612345605",
        region="EU",
        tier=Tier.STANDARD,
        lifecycle_stage=LifecycleStage.NEW,
        account_owner="",
        address=("Prinsengracht 221", "", "Amsterdam", "1015 DK", "NL"),
        card=("visa", "3220"),
        tags=[],
        history=[],
        subscription=None,
        orders=[("BL-10081", 0.5, "processing", [("BL-ESP-250", 2), ("BL-V60-02", 1)])],
    ),
]


# --- Generation ------------------------------------------------------------------------------------------------------


def _generate(rng: random.Random, *, customers: int, orders: int) -> dict[str, int]:
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    people = _named_customers(now) + [_random_customer(rng, n, now) for n in range(len(NAMED_CUSTOMERS), customers)]
    Customer.objects.bulk_create(people, batch_size=500)
    order_rows: list[Order] = []
    item_rows: list[tuple[Order, list[tuple[str, int]]]] = []
    for spec, customer in zip(NAMED_CUSTOMERS, people, strict=False):
        for number, days_ago, state, items in spec["orders"]:
            order = _order(rng, customer, number, now - timedelta(days=days_ago), state, items, now)
            order_rows.append(order)
            item_rows.append((order, items))
    random_people = people[len(NAMED_CUSTOMERS) :]
    for n in range(orders - len(order_rows)):
        customer = rng.choice(random_people) if random_people else people[n % len(people)]
        placed = now - timedelta(days=rng.uniform(0, 540))
        items = [(rng.choice(PRODUCTS)[0], rng.randint(1, 3)) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
        order = _order(rng, customer, f"BL-{10100 + n}", placed, _state_for_age(rng, now - placed), items, now)
        order_rows.append(order)
        item_rows.append((order, items))
    Order.objects.bulk_create(order_rows, batch_size=1000)
    prices = {sku: (name, price) for sku, name, price in PRODUCTS}
    items_made = OrderItem.objects.bulk_create(
        [
            OrderItem(order=order, sku=sku, name=prices[sku][0], quantity=quantity, unit_price=prices[sku][1])
            for order, items in item_rows
            for sku, quantity in items
        ],
        batch_size=2000,
    )
    _set_lifetime_values(people, order_rows)
    subscriptions = _subscriptions(rng, people, now)
    Subscription.objects.bulk_create(subscriptions, batch_size=500)
    return {
        "customers": len(people),
        "orders": len(order_rows),
        "order items": len(items_made),
        "subscriptions": len(subscriptions),
    }


def _named_customers(now: datetime) -> list[Customer]:
    people = []
    for n, spec in enumerate(NAMED_CUSTOMERS):
        first, last = spec["name"].lower().replace("á", "a").split(" ", 1)
        line1, line2, city, postcode, country = spec["address"]
        people.append(
            Customer(
                external_id=spec["external_id"],
                name=spec["name"],
                email=f"{first}.{last}@example.com",
                phone=spec["phone"],
                plan=_named_plan(spec),
                region=spec["region"],
                lifecycle_stage=spec["lifecycle_stage"],
                renewal_date=(now + timedelta(days=30 + 40 * n)).date() if _named_plan(spec) else None,
                account_owner=spec["account_owner"],
                tier=spec["tier"],
                tags=spec["tags"],
                support_history=[
                    {"date": (now - timedelta(days=12 + 30 * i)).date().isoformat(), "channel": c, "summary": s}
                    for i, (c, s) in enumerate(spec["history"])
                ],
                card_brand=spec["card"][0],
                card_last4=spec["card"][1],
                ship_line1=line1,
                ship_line2=line2,
                ship_city=city,
                ship_postcode=postcode,
                ship_country=country,
                created_at=now - timedelta(days=400 - 60 * n),
            )
        )
    return people


def _named_plan(spec: dict[str, Any]) -> str:
    if not spec["subscription"] or spec["subscription"][2] == SubscriptionStatus.CANCELLED:
        return ""
    return PLANS[spec["subscription"][1]][0]


def _random_customer(rng: random.Random, n: int, now: datetime) -> Customer:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    region = rng.choice(["UK", "UK", "EU", "US"])
    place = rng.choice(REGIONS[region]["cities"])
    city, postcode = place[0], place[1]
    country = place[2] if len(place) > 2 else REGIONS[region]["country"]
    phone = {"UK": f"+447700{900200 + n}", "EU": f"+49151{20000000 + n}", "US": f"+1415555{1000 + n}"}[region]
    tier = rng.choices([Tier.STANDARD, Tier.PLUS, Tier.VIP], weights=[80, 15, 5])[0]
    history = rng.sample(HISTORY, rng.randint(0, 2))
    return Customer(
        external_id=f"C-{1001 + n}",
        name=f"{first} {last}",
        email=f"{first}.{last}.{1001 + n}@example.com".lower(),
        phone=phone,
        region=region,
        lifecycle_stage=rng.choices(list(LifecycleStage.values), weights=[10, 70, 12, 8])[0],
        account_owner=rng.choice(ACCOUNT_OWNERS) if tier == Tier.VIP else "",
        tier=tier,
        tags=rng.sample(["espresso", "filter", "decaf", "gifts", "office"], rng.randint(0, 2)),
        support_history=[
            {"date": (now - timedelta(days=rng.randint(5, 400))).date().isoformat(), "channel": c, "summary": s}
            for c, s in history
        ],
        card_brand=rng.choice(["visa", "mastercard", "amex"]),
        card_last4=f"{rng.randint(0, 9999):04d}",
        ship_line1=f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
        ship_city=city,
        ship_postcode=postcode,
        ship_country=country,
        created_at=now - timedelta(days=rng.randint(560, 900)),
    )


def _state_for_age(rng: random.Random, age: timedelta) -> str:
    days = age.total_seconds() / 86400
    if days < 1.5:
        return "processing"
    if days < 6:
        return "delayed" if rng.random() < 0.1 else "in_transit"
    return "cancelled" if rng.random() < 0.03 else "delivered"


def _tracking_number(rng: random.Random, carrier: str) -> str:
    if carrier == "Royal Mail":
        return f"RM{rng.randint(0, 999_999_999):09d}GB"
    if carrier == "DHL":
        return f"{rng.randint(0, 9_999_999_999):010d}"
    alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
    return "1Z" + "".join(rng.choice(alphabet) for _ in range(16))


def _order(
    rng: random.Random,
    customer: Customer,
    number: str,
    placed: datetime,
    state: str,
    items: list[tuple[str, int]],
    now: datetime,
) -> Order:
    region = REGIONS[customer.region]
    prices = {sku: price for sku, _, price in PRODUCTS}
    subtotal = sum((prices[sku] * quantity for sku, quantity in items), Decimal("0.00"))
    shipping_fee = Decimal("0.00") if subtotal >= 40 else Decimal("4.50")
    order = Order(
        number=number,
        customer=customer,
        placed_at=placed,
        currency=region["currency"],
        subtotal=subtotal,
        shipping_fee=shipping_fee,
        total=(subtotal + shipping_fee).quantize(TWO_PLACES),
        ship_line1=customer.ship_line1,
        ship_line2=customer.ship_line2,
        ship_city=customer.ship_city,
        ship_postcode=customer.ship_postcode,
        ship_country=customer.ship_country,
    )
    if state == "processing":
        order.status, order.shipping_status = OrderStatus.PROCESSING, ShippingStatus.NOT_SHIPPED
        order.estimated_delivery = (placed + timedelta(days=4)).date()
    elif state == "cancelled":
        order.status, order.shipping_status = OrderStatus.CANCELLED, ShippingStatus.NOT_SHIPPED
    else:
        order.carrier = region["carrier"]
        order.tracking_number = _tracking_number(rng, order.carrier)
        order.shipped_at = placed + timedelta(hours=rng.randint(14, 30))
        if state == "delivered":
            order.status, order.shipping_status = OrderStatus.DELIVERED, ShippingStatus.DELIVERED
            order.delivered_at = min(order.shipped_at + timedelta(days=rng.randint(1, 4)), now)
            order.estimated_delivery = order.delivered_at.date()
        else:
            order.status = OrderStatus.SHIPPED
            order.shipping_status = ShippingStatus.DELAYED if state == "delayed" else ShippingStatus.IN_TRANSIT
            # A delayed parcel's estimate has passed; an on-time one arrives in the next days.
            days = -2 if state == "delayed" else 1
            order.estimated_delivery = (now + timedelta(days=days)).date()
    return order


def _set_lifetime_values(people: list[Customer], orders: list[Order]) -> None:
    totals: dict[str, Decimal] = {}
    for order in orders:
        if order.status != OrderStatus.CANCELLED:
            key = order.customer.external_id
            totals[key] = totals.get(key, Decimal("0.00")) + order.total
    for person in people:
        person.lifetime_value = totals.get(person.external_id, Decimal("0.00"))
    Customer.objects.bulk_update(people, ["lifetime_value"], batch_size=500)


def _subscription(
    number: str, customer: Customer, plan: int, status: str, next_in_days: int | None, now: datetime
) -> Subscription:
    name, price, interval = PLANS[plan]
    return Subscription(
        number=number,
        customer=customer,
        plan=name,
        status=status,
        price=price,
        currency=REGIONS[customer.region]["currency"],
        interval_days=interval,
        next_charge_date=(now + timedelta(days=next_in_days)).date() if next_in_days is not None else None,
        paused_at=now - timedelta(days=10) if status == SubscriptionStatus.PAUSED else None,
        cancelled_at=now - timedelta(days=20) if status == SubscriptionStatus.CANCELLED else None,
        created_at=customer.created_at + timedelta(days=3),
    )


def _subscriptions(rng: random.Random, people: list[Customer], now: datetime) -> list[Subscription]:
    rows = []
    for spec, customer in zip(NAMED_CUSTOMERS, people, strict=False):
        if spec["subscription"]:
            number, plan, status, next_in_days = spec["subscription"]
            rows.append(_subscription(number, customer, plan, status, next_in_days, now))
    number = 2005
    for customer in people[len(NAMED_CUSTOMERS) :]:
        if rng.random() >= 0.4:
            continue
        plan = rng.randrange(len(PLANS))
        status = rng.choices(list(SubscriptionStatus.values), weights=[75, 10, 15])[0]
        next_in_days = rng.randint(1, PLANS[plan][2]) if status == SubscriptionStatus.ACTIVE else None
        rows.append(_subscription(f"SUB-{number}", customer, plan, status, next_in_days, now))
        customer.plan = PLANS[plan][0] if status != SubscriptionStatus.CANCELLED else ""
        customer.renewal_date = (now + timedelta(days=rng.randint(1, 365))).date() if customer.plan else None
        number += 1
    Customer.objects.bulk_update(people[len(NAMED_CUSTOMERS) :], ["plan", "renewal_date"], batch_size=500)
    return rows

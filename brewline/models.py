"""Brewline's records: customers with their notes, tags and follow-up tasks; orders with items and shipping;
subscriptions; refunds; and the API tokens and idempotency keys of its HTTP API."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    PLUS = "plus", "Plus"
    VIP = "vip", "VIP"


class LifecycleStage(models.TextChoices):
    NEW = "new", "New"
    ACTIVE = "active", "Active"
    AT_RISK = "at_risk", "At risk"
    CHURNED = "churned", "Churned"


class ApiToken(models.Model):
    """A client of the API. Only the SHA-256 of the token is kept: a random 256-bit token needs no slow hash, and a
    plain digest can be looked up by its index on every request."""

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)  # unique index: the lookup of every request
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name}{' (revoked)' if self.revoked else ''}"

    @staticmethod
    def hash_token(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class WithShippingAddress(models.Model):
    """Shipping address columns, shared by customers (their default) and orders (where this one goes)."""

    ship_line1 = models.CharField(max_length=200)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100)
    ship_postcode = models.CharField(max_length=20)
    ship_country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2.")

    class Meta:
        abstract = True

    @property
    def shipping_address(self) -> dict[str, str]:
        return {
            "line1": self.ship_line1,
            "line2": self.ship_line2,
            "city": self.ship_city,
            "postcode": self.ship_postcode,
            "country": self.ship_country,
            "formatted": ", ".join(
                part
                for part in (self.ship_line1, self.ship_line2, self.ship_city, self.ship_postcode, self.ship_country)
                if part
            ),
        }


class Customer(WithShippingAddress):
    external_id = models.CharField(max_length=20, unique=True)  # C-1001; unique index: GET /customers/<id>
    name = models.CharField(max_length=200)
    email = models.EmailField(db_index=True)  # stored lower-case; index: ?email= search
    phone = models.CharField(max_length=32, blank=True, db_index=True)  # E.164; index: ?phone= search
    plan = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=8)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    renewal_date = models.DateField(null=True, blank=True)
    account_owner = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    lifetime_value = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    # [{"date": "2025-01-31", "channel": "email", "summary": "..."}], newest first.
    support_history = models.JSONField(default=list, blank=True)
    # Card on file: in every API answer, mapped by no connector (the governance tests show it never reaches the agent).
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"{self.external_id} {self.name}"


class CustomerNote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"N-{self.pk}"


class FollowUpTask(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"T-{self.pk}"


class OrderStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


class ShippingStatus(models.TextChoices):
    NOT_SHIPPED = "not_shipped", "Not shipped yet"
    IN_TRANSIT = "in_transit", "In transit"
    DELAYED = "delayed", "Delayed"
    DELIVERED = "delivered", "Delivered"


class Order(WithShippingAddress):
    number = models.CharField(max_length=20, unique=True)  # BL-10042; unique index: GET /orders/<id>
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PROCESSING)
    placed_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=10, decimal_places=2)
    shipping_fee = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=10, decimal_places=2)
    shipping_status = models.CharField(
        max_length=16, choices=ShippingStatus.choices, default=ShippingStatus.NOT_SHIPPED
    )
    carrier = models.CharField(max_length=50, blank=True)
    tracking_number = models.CharField(max_length=50, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    estimated_delivery = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at"]
        indexes = [
            # GET /customers/<id>/orders: a customer's orders, newest first.
            models.Index(fields=["customer", "-placed_at"], name="brewline_order_customer_recent"),
        ]
        constraints = [models.CheckConstraint(condition=Q(total__gte=0), name="brewline_order_total_not_negative")]

    def __str__(self) -> str:
        return self.number

    @property
    def has_shipped(self) -> bool:
        return self.shipped_at is not None or self.shipping_status != ShippingStatus.NOT_SHIPPED


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"


class Subscription(models.Model):
    number = models.CharField(max_length=20, unique=True)  # SUB-2001; unique index: GET /subscriptions/<id>
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    interval_days = models.PositiveSmallIntegerField(default=14)
    next_charge_date = models.DateField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class Refund(models.Model):
    """Money given back on an order. The idempotency key is unique: a repeated request returns the first refund."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200)
    status = models.CharField(max_length=16, default="succeeded")
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="brewline_refund_amount_positive")]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"RF-{self.pk:05d}"


class IdempotentRequest(models.Model):
    """A write already answered, by the client's Idempotency-Key: a repeat gets the stored answer instead of a second
    write (draft-ietf-httpapi-idempotency-key-header). Claimed by inserting the row in the write's own transaction,
    so a concurrent repeat waits on the unique index and then reads the answer."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="brewline_idempotency_key_unique")]

    def __str__(self) -> str:
        return self.key

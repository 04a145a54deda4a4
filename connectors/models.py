"""Connector configuration: one row per outside system the agent may reach."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Family(models.TextChoices):
    CRM = "crm", "CRM"
    HELPDESK = "helpdesk", "Helpdesk"
    COMMERCE = "commerce", "Commerce / billing"


class Connector(models.Model):
    """How to reach one outside system, who owns it, and how healthy it is."""

    key = models.SlugField(
        max_length=64, unique=True, help_text="Referred to by field mappings as their 'system', e.g. demo_crm, stripe."
    )
    name = models.CharField(max_length=200)
    family = models.CharField(max_length=16, choices=Family.choices)
    adapter = models.CharField(
        max_length=32,
        help_text="Which adapter speaks to it: rest_crm, rest_commerce, helpdesk_embedded, hubspot, zendesk, chatwoot, "
        "stripe.",
    )
    is_primary = models.BooleanField(default=False, help_text="The connector the agent uses for its family.")
    base_url = models.URLField(max_length=500, blank=True)
    credential = models.ForeignKey(
        "governance.SecretReference",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The secret holding its token or key.",
    )
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text="Adapter settings: for the REST adapter its endpoints, authentication header "
        "and the JSON paths of fields.",
    )
    timeout_seconds = models.FloatField(default=10.0, help_text="Per-call timeout.")
    webhook_secret = models.ForeignKey(
        "governance.SecretReference",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Zendesk: the secret holding the webhook's signing secret (Zendesk Admin Center, Webhooks, "
        "the webhook, Signing secret). Requests to its webhook URL are refused without it.",
    )
    # Chatwoot signs no webhooks: its URL carries this token instead (connectors.webhooks). Only
    # connector_webhook_token_rotate sets it; empty means no webhook URL yet.
    webhook_token = models.CharField(max_length=64, blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Told when the connector is disabled.",
    )
    fallback_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family", "key"]
        constraints = [
            # One primary connector per family: the agent never has to choose.
            models.UniqueConstraint(fields=["family"], condition=Q(is_primary=True), name="connector_one_primary"),
        ]

    def __str__(self) -> str:
        return self.name


class WriteReceipt(models.Model):
    """An outside write already done, by idempotency key: a retried write returns the stored result instead of
    acting twice (for systems that do not honour idempotency keys themselves)."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    # PROTECT: receipts are evidence of what was written outside; a connector with receipts is disabled, not deleted.
    connector = models.ForeignKey(Connector, on_delete=models.PROTECT, related_name="+")

    class State(models.TextChoices):
        PENDING = "pending", "In progress"
        DONE = "done", "Done"
        UNKNOWN = "unknown", "Outcome unknown (timed out or the system failed mid-call)"

    operation = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    result = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.operation} {self.idempotency_key}"


class WebhookDelivery(models.Model):
    """A webhook delivery already taken, by the vendor's key for it (Zendesk: the event id; Chatwoot: a digest of the
    event): the same delivery again is refused, so a replayed request records nothing. Keys older than the vendor's
    retry window may be pruned (connectors.webhooks.webhook_deliveries_prune)."""

    # CASCADE: a delivery key is no evidence of anything, only a guard against the same request twice.
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # One delivery per key and connector: the second INSERT fails (or waits for the first to commit).
            models.UniqueConstraint(fields=["connector", "key"], name="webhook_delivery_once"),
        ]
        indexes = [
            # Pruning: keys received before a cut-off.
            models.Index(fields=["received_at"], name="webhook_delivery_received"),
        ]

    def __str__(self) -> str:
        return f"{self.connector_id}:{self.key}"

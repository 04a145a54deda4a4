"""The demo company's connectors: Brewline Coffee's in-house CRM and order system, reached over HTTP through the
generic REST adapter (connectors/adapters/rest.py) with an encrypted API token.

Idempotent: rows that exist are left as an admin may have edited them. The field paths the configs produce are the
ones governance/demo.py maps (systems ``demo_crm`` and ``demo_commerce``).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from connectors.models import Connector, Family
from connectors.services import connector_create
from governance.models import SecretKind, SecretReference
from governance.secrets import secret_create, secret_read

TOKEN_SECRET = "brewline_api_token"
OWNER, FALLBACK_OWNER = "maya.ops", "omar.lead"  # created by governance.demo.seed_governance

_AUTH = {"header": "Authorization", "scheme": "Token"}
_HEALTH = {"method": "GET", "path": "/health"}

BREWLINE_CRM_CONFIG: dict[str, Any] = {
    "auth": _AUTH,
    "honours_idempotency": True,
    "idempotency_header": "Idempotency-Key",
    "health_check": _HEALTH,
    "objects": {
        "customer": {
            "read": {
                "path": "/customers/{id}",
                "fields": {
                    "id": "id",  # the gateway checks a customer reads only their own record (OWNER_PATHS)
                    "name": "name",
                    "email": "email",
                    "phone": "phone",
                    "plan": "plan",
                    "region": "region",
                    "lifecycle_stage": "lifecycle_stage",
                    "renewal_date": "renewal_date",
                    "account_owner": "account_owner",
                    "tier": "tier",
                    "shipping_address": "shipping_address.formatted",
                    "lifetime_value": "lifetime_value",
                    "tags": "tags",
                    "last_contact": "support_history[0].summary?",
                },
            },
            "write": {
                "method": "PATCH",
                "path": "/customers/{id}",
                "fields": {"shipping_address": "shipping_address", "tier": "tier"},
            },
        }
    },
    "operations": {
        "find_customers": {
            "method": "GET",
            "path": "/customers",
            "query": {"email": "email", "phone": "phone", "external_id": "external_id"},
            "list": "results",
            "fields": {"id": "id", "email": "email", "name": "name"},
        },
        "add_note": {
            "method": "POST",
            "path": "/customers/{customer_id}/notes",
            "body": {"text": "text"},
            "fields": {"id": "id"},
        },
        "add_tag": {"method": "POST", "path": "/customers/{customer_id}/tags", "body": {"tag": "tag"}},
        "create_task": {
            "method": "POST",
            "path": "/customers/{customer_id}/tasks",
            "body": {"title": "title", "due_at": "due"},
            "fields": {"id": "id"},
        },
    },
}

_SUBSCRIPTION_RESULT = {"id": "id", "status": "status", "next_charge_date": "next_charge_date"}

BREWLINE_COMMERCE_CONFIG: dict[str, Any] = {
    "auth": _AUTH,
    "honours_idempotency": True,
    "idempotency_header": "Idempotency-Key",
    "health_check": _HEALTH,
    "objects": {
        "order": {
            "read": {
                "path": "/orders/{id}",
                "fields": {
                    "customer_id": "customer_id",  # whose order it is, for the gateway's ownership check
                    "status": "status",
                    "placed_at": "placed_at",
                    "currency": "currency",
                    "items": "items",
                    "first_item": "items[0].name",
                    "total": "totals.total",
                    "refundable": "totals.refundable",
                    "shipping.status": "shipping.status",
                    "shipping.carrier": "shipping.carrier",
                    "shipping.tracking_number": "shipping.tracking_number",
                    "shipping.tracking_url": "shipping.tracking_url",
                    "shipping.estimated_delivery": "shipping.estimated_delivery",
                    "shipping.address": "shipping.address.formatted",
                },
            }
        },
        "subscription": {
            "read": {
                "path": "/subscriptions/{id}",
                "fields": {
                    "customer_id": "customer_id",
                    "status": "status",
                    "plan": "plan",
                    "price": "price",
                    "currency": "currency",
                    "next_charge_date": "next_charge_date",
                },
            },
            "write": {"method": "PATCH", "path": "/subscriptions/{id}", "fields": {"status": "status"}},
        },
    },
    "operations": {
        "list_orders": {
            "method": "GET",
            "path": "/customers/{customer_id}/orders",
            "list": "results",
            "fields": {
                "id": "id",
                "status": "status",
                "placed_at": "placed_at",
                "total": "totals.total",
                "currency": "currency",
            },
        },
        "pause_subscription": {
            "method": "POST",
            "path": "/subscriptions/{subscription_id}/pause",
            "fields": _SUBSCRIPTION_RESULT,
        },
        "resume_subscription": {
            "method": "POST",
            "path": "/subscriptions/{subscription_id}/resume",
            "fields": _SUBSCRIPTION_RESULT,
        },
        "cancel_subscription": {
            "method": "POST",
            "path": "/subscriptions/{subscription_id}/cancel",
            "fields": _SUBSCRIPTION_RESULT,
        },
        "change_shipping_address": {
            "method": "POST",
            "path": "/orders/{order_id}/address",
            "body": {
                "line1": "address.line1",
                "line2": "address.line2",
                "city": "address.city",
                "postcode": "address.postcode",
                "country": "address.country",
            },
            "fields": {"id": "id", "status": "status", "shipping.address": "shipping.address.formatted"},
        },
        "refund": {
            "method": "POST",
            "path": "/refunds",
            "body": {"order_id": "order_id", "amount": "amount", "reason": "reason"},
            "fields": {"id": "id", "amount": "amount", "currency": "currency", "status": "status"},
        },
    },
}

DEMO_CONNECTORS: list[dict[str, Any]] = [
    dict(
        key="demo_crm",
        name="Brewline CRM",
        family=Family.CRM,
        adapter="rest_crm",
        config=BREWLINE_CRM_CONFIG,
    ),
    dict(
        key="demo_commerce",
        name="Brewline orders and subscriptions",
        family=Family.COMMERCE,
        adapter="rest_commerce",
        config=BREWLINE_COMMERCE_CONFIG,
    ),
]


class DemoSeedError(Exception):
    """The demo connectors cannot be seeded (the message says what to do)."""


def brewline_base_url() -> str:
    return f"{settings.SITE_URL.rstrip('/')}/brewline-api/v1"


def seed_connectors() -> dict[str, int]:
    """Create the Brewline token secret and the demo connectors, and seed the Brewline system; return how many rows
    were created. Needs governance.demo.seed_governance first (the owners).

    The token is generated once and stored encrypted. A later run reads it back (an audited read) only when the
    Brewline system still needs seeding, so that a run with nothing to do writes nothing, not even an audit record.
    """
    # The one place Steward touches the demo system's code: to seed it. At run time it is reached over HTTP only.
    from brewline.demo import brewline_needs_seeding, seed_brewline

    with transaction.atomic():
        created, token = seed_connector_rows()
    if token is None and brewline_needs_seeding():
        token = secret_read(actor=None, secret_or_name=TOKEN_SECRET, purpose="demo seed")
    if token is not None:
        created.update({f"brewline {name}": count for name, count in seed_brewline(token).items()})
    return created


@transaction.atomic
def seed_connector_rows() -> tuple[dict[str, int], str | None]:
    """Create the token secret and the connector rows that are missing; return the counts and the token when this
    call generated it (None when the secret already existed)."""
    User = get_user_model()
    owner = User.objects.filter(username=OWNER).first()
    if owner is None:
        raise DemoSeedError(f"The demo connectors' owner {OWNER!r} does not exist: run seed_governance first.")
    fallback = User.objects.filter(username=FALLBACK_OWNER).first()
    created = {"secrets": 0, "connectors": 0}
    secret = SecretReference.objects.filter(name=TOKEN_SECRET).first()
    token = None
    if secret is None:
        token = secrets.token_urlsafe(32)
        secret = secret_create(
            actor=None,
            name=TOKEN_SECRET,
            kind=SecretKind.ENCRYPTED,
            owner=owner,
            value=token,
            description="API token of Brewline's in-house CRM and order system (demo).",
        )
        created["secrets"] += 1
    for spec in DEMO_CONNECTORS:
        if Connector.objects.filter(key=spec["key"]).exists():
            continue
        # Primary unless an admin already made another connector of the family primary.
        primary = not Connector.objects.filter(family=spec["family"], is_primary=True).exists()
        connector_create(
            actor=None,
            owner=owner,
            fallback_owner=fallback,
            base_url=brewline_base_url(),
            credential=secret,
            timeout_seconds=5.0,
            is_primary=primary,
            **spec,
        )
        created["connectors"] += 1
    return created, token

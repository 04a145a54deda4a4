"""Brewline's JSON API (v1): token authentication, one view per resource, input serializers, services do the work.

Errors are JSON: ``{"detail": "...", "code": "..."}`` (400 bad input, 401 credential, 404 unknown record, 409 conflict
with the record's state, 422 a request that is well-formed but cannot be carried out), or DRF's ``{"field": [...]}``
for invalid fields. Nothing a client sends produces a 500.

Writes accept ``Idempotency-Key``: a repeat with the same key gets the first answer again (marked
``Idempotent-Replayed: true``), and the same key with a different request is refused with 422
(draft-ietf-httpapi-idempotency-key-header, section 2.7).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brewline import services, shapes
from brewline.auth import ApiTokenAuthentication, HasApiToken
from brewline.models import (
    Customer,
    IdempotentRequest,
    LifecycleStage,
    Order,
    Subscription,
    SubscriptionStatus,
    Tier,
)
from brewline.services import BrewlineError, NotFound

MAX_KEY_LENGTH = 200


class _NotStewardsApi(AutoSchema):
    """Brewline is the demo company's system, not part of Steward's API: left out of Steward's OpenAPI schema."""

    def is_excluded(self) -> bool:
        return True


class BrewlineApi(APIView):
    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [HasApiToken]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = _NotStewardsApi()

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, BrewlineError):
            return Response({"detail": str(exc), "code": exc.code}, status=exc.status)
        return super().handle_exception(exc)


def _get(queryset: QuerySet, what: str, **lookup: str) -> Any:
    record = queryset.filter(**lookup).first()
    if record is None:
        raise NotFound(f"No {what} {next(iter(lookup.values()))}.")
    return record


def _fingerprint(request: Request) -> str:
    payload = json.dumps([request.method, request.path, request.data], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_KEY_LENGTH:
        raise BrewlineError(f"The Idempotency-Key is longer than {MAX_KEY_LENGTH} characters.")
    return key


def idempotent(request: Request, write: Callable[[], tuple[int, Any]]) -> Response:
    """Answer a write once per Idempotency-Key.

    The key is claimed by inserting its row in the write's own transaction: a concurrent repeat waits on the unique
    index until the first commits, then replays its answer; if the first fails, nothing is kept and a retry runs.
    """
    key = _idempotency_key(request)
    if not key:
        code, body = write()
        return Response(body, status=code)
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                claim = IdempotentRequest.objects.create(token=request.auth, key=key, fingerprint=fingerprint)
        except IntegrityError:
            stored = IdempotentRequest.objects.get(token=request.auth, key=key)
            if stored.fingerprint != fingerprint:
                raise services.Unprocessable(
                    "This Idempotency-Key was already used for a different request; use a new key."
                ) from None
            return Response(
                stored.response_body, status=stored.response_status, headers={"Idempotent-Replayed": "true"}
            )
        code, body = write()
        claim.response_status, claim.response_body = code, body
        claim.save(update_fields=["response_status", "response_body"])
    return Response(body, status=code)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- Input ---------------------------------------------------------------------------------------------------------

PHONE_NOISE = re.compile(r"[\s().-]")


def normalise_phone(value: str) -> str:
    return PHONE_NOISE.sub("", value)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a typo or a read-only field is an error, not silently ignored."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise ValidationError({name: ["Unknown or read-only field."] for name in unknown})
        return attrs


class AddressInput(StrictSerializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postcode = serializers.CharField(max_length=20)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", error_messages={"invalid": "A two-letter country code."})

    def validate_country(self, value: str) -> str:
        return value.upper()


class AddressField(serializers.Field):
    """An address as an object of parts, or as one line: "street, [line 2,] city, postcode, country code"."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, str):
            try:
                data = services.address_from_line(data)
            except BrewlineError as exc:
                raise ValidationError(str(exc)) from None
        elif not isinstance(data, dict):
            raise ValidationError("Give the address as an object or as one line of text.")
        return _valid(AddressInput, data)

    def to_representation(self, value: Any) -> Any:
        return value


class CustomerSearchInput(serializers.Serializer):
    email = serializers.CharField(max_length=254, required=False)
    phone = serializers.CharField(max_length=32, required=False)
    external_id = serializers.CharField(max_length=20, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not any(attrs.values()):
            raise ValidationError("Search by email, phone or external_id.")
        return attrs


class CustomerUpdateInput(StrictSerializer):
    email = serializers.EmailField(required=False)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    plan = serializers.CharField(max_length=100, required=False, allow_blank=True)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    renewal_date = serializers.DateField(required=False, allow_null=True)
    account_owner = serializers.CharField(max_length=200, required=False, allow_blank=True)
    shipping_address = AddressField(required=False)

    def validate_phone(self, value: str) -> str:
        return normalise_phone(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if not attrs:
            raise ValidationError("Nothing to change: send at least one field.")
        return attrs


class NoteInput(StrictSerializer):
    text = serializers.CharField(max_length=5000)


class TagInput(StrictSerializer):
    tag = serializers.RegexField(
        r"^[\w][\w \-]{0,49}$", error_messages={"invalid": "Letters, digits, spaces, - and _ (up to 50)."}
    )


class TaskInput(StrictSerializer):
    title = serializers.CharField(max_length=200)
    due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class OrderListInput(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class SubscriptionUpdateInput(StrictSerializer):
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)


class RefundInput(StrictSerializer):
    order_id = serializers.CharField(max_length=20)
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=Decimal("0.01"), required=False, allow_null=True, default=None
    )
    reason = serializers.CharField(max_length=200, required=False, default="requested_by_customer")


# --- Views ---------------------------------------------------------------------------------------------------------


def _customer(customer_id: str) -> Customer:
    return _get(Customer.objects.all(), "customer", external_id=customer_id)


def _order(order_id: str) -> Order:
    orders = (
        Order.objects.select_related("customer").prefetch_related("items").annotate(refunded=Sum("refunds__amount"))
    )
    return _get(orders, "order", number=order_id)


def _order_json(order: Order) -> dict[str, Any]:
    refunded = getattr(order, "refunded", None)
    if refunded is None:
        refunded = services.refunded_amount(order)
    return shapes.order_json(order, refunded=refunded)


def _subscription(subscription_id: str) -> Subscription:
    return _get(Subscription.objects.select_related("customer"), "subscription", number=subscription_id)


class HealthApi(BrewlineApi):
    def get(self, request: Request) -> Response:
        return Response({"status": "ok", "system": "brewline", "version": "v1"})


class CustomerSearchApi(BrewlineApi):
    def get(self, request: Request) -> Response:
        query = _valid(CustomerSearchInput, request.query_params)
        customers = Customer.objects.all()
        if query.get("email"):
            customers = customers.filter(email=query["email"].strip().lower())
        if query.get("phone"):
            customers = customers.filter(phone=normalise_phone(query["phone"]))
        if query.get("external_id"):
            customers = customers.filter(external_id=query["external_id"].strip())
        results = [shapes.customer_summary_json(customer) for customer in customers[:20]]
        return Response({"results": results, "count": len(results)})


class CustomerApi(BrewlineApi):
    def get(self, request: Request, customer_id: str) -> Response:
        return Response(shapes.customer_json(_customer(customer_id)))

    def patch(self, request: Request, customer_id: str) -> Response:
        customer = _customer(customer_id)
        changes = _valid(CustomerUpdateInput, request.data)

        def write() -> tuple[int, Any]:
            updated = services.customer_update(customer=customer, changes=changes)
            return status.HTTP_200_OK, shapes.customer_json(updated)

        return idempotent(request, write)


class CustomerNoteApi(BrewlineApi):
    def post(self, request: Request, customer_id: str) -> Response:
        customer = _customer(customer_id)
        data = _valid(NoteInput, request.data)

        def write() -> tuple[int, Any]:
            note = services.customer_note_add(customer=customer, text=data["text"])
            return status.HTTP_201_CREATED, shapes.note_json(note)

        return idempotent(request, write)


class CustomerTagApi(BrewlineApi):
    def post(self, request: Request, customer_id: str) -> Response:
        customer = _customer(customer_id)
        data = _valid(TagInput, request.data)

        def write() -> tuple[int, Any]:
            updated = services.customer_tag_add(customer=customer, tag=data["tag"])
            return status.HTTP_200_OK, {"customer_id": updated.external_id, "tags": list(updated.tags)}

        return idempotent(request, write)


class CustomerTaskApi(BrewlineApi):
    def post(self, request: Request, customer_id: str) -> Response:
        customer = _customer(customer_id)
        data = _valid(TaskInput, request.data)

        def write() -> tuple[int, Any]:
            task = services.follow_up_task_create(customer=customer, title=data["title"], due_at=data["due_at"])
            return status.HTTP_201_CREATED, shapes.task_json(task)

        return idempotent(request, write)


class CustomerOrdersApi(BrewlineApi):
    def get(self, request: Request, customer_id: str) -> Response:
        customer = _customer(customer_id)
        limit = _valid(OrderListInput, request.query_params)["limit"]
        orders = customer.orders.order_by("-placed_at")
        results = [shapes.order_summary_json(order) for order in orders[:limit]]
        return Response({"results": results, "count": orders.count()})


class OrderApi(BrewlineApi):
    def get(self, request: Request, order_id: str) -> Response:
        return Response(_order_json(_order(order_id)))


class OrderAddressApi(BrewlineApi):
    def post(self, request: Request, order_id: str) -> Response:
        order = _order(order_id)
        address = _valid(AddressInput, request.data)

        def write() -> tuple[int, Any]:
            services.order_address_change(order=order, address=address)
            return status.HTTP_200_OK, _order_json(_order(order_id))

        return idempotent(request, write)


class SubscriptionApi(BrewlineApi):
    def get(self, request: Request, subscription_id: str) -> Response:
        return Response(shapes.subscription_json(_subscription(subscription_id)))

    def patch(self, request: Request, subscription_id: str) -> Response:
        subscription = _subscription(subscription_id)
        wanted = _valid(SubscriptionUpdateInput, request.data)["status"]
        return _set_subscription_status(request, subscription, wanted)


def _set_subscription_status(request: Request, subscription: Subscription, wanted: str) -> Response:
    def write() -> tuple[int, Any]:
        updated = services.subscription_set_status(subscription=subscription, status=wanted)
        return status.HTTP_200_OK, shapes.subscription_json(updated)

    return idempotent(request, write)


class SubscriptionStatusApi(BrewlineApi):
    """POST /subscriptions/<id>/pause, /resume, /cancel."""

    status_for: str = ""

    def post(self, request: Request, subscription_id: str) -> Response:
        return _set_subscription_status(request, _subscription(subscription_id), self.status_for)


class RefundCreateApi(BrewlineApi):
    """Refunds keep their own Idempotency-Key (unique on the refund), so a repeat returns the first refund even when
    the amount asked differs, as Stripe's refunds do."""

    def post(self, request: Request) -> Response:
        data = _valid(RefundInput, request.data)
        key = _idempotency_key(request) or f"auto-{uuid.uuid4()}"
        order = _get(Order.objects.all(), "order", number=data["order_id"])
        refund, created = services.refund_create(
            order=order, amount=data["amount"], reason=data["reason"], idempotency_key=key
        )
        if created:
            return Response(shapes.refund_json(refund), status=status.HTTP_201_CREATED)
        return Response(shapes.refund_json(refund), status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})

"""Brewline's JSON API, mounted at /brewline-api/ (config/urls.py)."""

from __future__ import annotations

from django.urls import path, register_converter

from brewline import api
from brewline.models import SubscriptionStatus


class RecordId:
    """Record ids as Brewline writes them (C-1001, BL-10042, SUB-2001): anything else is a 404 before the database."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(RecordId, "record")

app_name = "brewline"

urlpatterns = [
    path("v1/health", api.HealthApi.as_view(), name="health"),
    path("v1/customers", api.CustomerSearchApi.as_view(), name="customer-search"),
    path("v1/customers/<record:customer_id>", api.CustomerApi.as_view(), name="customer"),
    path("v1/customers/<record:customer_id>/notes", api.CustomerNoteApi.as_view(), name="customer-notes"),
    path("v1/customers/<record:customer_id>/tags", api.CustomerTagApi.as_view(), name="customer-tags"),
    path("v1/customers/<record:customer_id>/tasks", api.CustomerTaskApi.as_view(), name="customer-tasks"),
    path("v1/customers/<record:customer_id>/orders", api.CustomerOrdersApi.as_view(), name="customer-orders"),
    path("v1/orders/<record:order_id>", api.OrderApi.as_view(), name="order"),
    path("v1/orders/<record:order_id>/address", api.OrderAddressApi.as_view(), name="order-address"),
    path("v1/subscriptions/<record:subscription_id>", api.SubscriptionApi.as_view(), name="subscription"),
    path(
        "v1/subscriptions/<record:subscription_id>/pause",
        api.SubscriptionStatusApi.as_view(status_for=SubscriptionStatus.PAUSED),
        name="subscription-pause",
    ),
    path(
        "v1/subscriptions/<record:subscription_id>/resume",
        api.SubscriptionStatusApi.as_view(status_for=SubscriptionStatus.ACTIVE),
        name="subscription-resume",
    ),
    path(
        "v1/subscriptions/<record:subscription_id>/cancel",
        api.SubscriptionStatusApi.as_view(status_for=SubscriptionStatus.CANCELLED),
        name="subscription-cancel",
    ),
    path("v1/refunds", api.RefundCreateApi.as_view(), name="refund-create"),
]

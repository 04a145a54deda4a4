"""The events admin: readable by admins and managers, never changed or deleted there."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind

pytestmark = pytest.mark.django_db


def test_a_manager_reads_the_events_but_cannot_delete_them(support_manager: User, client: Client) -> None:
    event = event_record(kind=EventKind.CSAT, conversation_id="c-1", channel="web_chat", data={"score": 5})
    client.force_login(support_manager)

    listing = client.get(reverse("admin:analytics_analyticsevent_changelist"), {"q": "c-1"})
    assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [event]
    detail = client.get(reverse("admin:analytics_analyticsevent_change", args=[event.pk]))
    assert detail.status_code == 200 and "&quot;score&quot;: 5" in detail.content.decode()
    delete = client.post(reverse("admin:analytics_analyticsevent_delete", args=[event.pk]), {"post": "yes"})
    assert delete.status_code == 403 and AnalyticsEvent.objects.filter(pk=event.pk).exists()


def test_an_outsider_sees_no_events(outsider: User, client: Client) -> None:
    client.force_login(outsider)
    assert client.get(reverse("admin:analytics_analyticsevent_changelist")).status_code == 403

"""seed_demo and ensure_admin are safe to run on every `make run`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sites.models import Site
from django.core.management import call_command
from helpdesk.models import Queue

from dashboard.models import CostSettings
from governance.audit import audit_verify
from governance.models import ActionPolicy, AuditRecord, EscalationRule, FieldMapping, GateCriterion

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (
        Site.objects.count(),
        Queue.objects.count(),
        FieldMapping.objects.count(),
        ActionPolicy.objects.count(),
        EscalationRule.objects.count(),
        GateCriterion.objects.count(),
        AuditRecord.objects.count(),
        CostSettings.objects.count(),
    )


def test_seed_demo_twice_leaves_the_same_rows() -> None:
    call_command("seed_demo", stdout=StringIO())
    first = _counts()
    call_command("seed_demo", stdout=StringIO())
    assert _counts() == first
    assert first[2:6] == (18, 10, 8, 22)
    # Every governance configuration row was created through the audited service.
    audited = set(AuditRecord.objects.filter(event_type="config.created").values_list("subject_type", flat=True))
    assert {
        "governance.fieldmapping",
        "governance.actionpolicy",
        "governance.gatecriterion",
        "dashboard.costsettings",  # the ROI view's demo costs, seeded once
    } <= audited
    assert audit_verify().ok
    assert Site.objects.get().name == "Steward — Brewline Coffee"
    assert Queue.objects.filter(slug="support").exists()


def test_ensure_admin_prints_the_password_once_and_it_works() -> None:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().split("password '")[1].split("'")[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)

    again = StringIO()
    call_command("ensure_admin", stdout=again)
    assert password not in again.getvalue()
    assert "exists" in again.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1

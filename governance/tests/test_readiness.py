"""The readiness report: every line on a complete configuration, what an incomplete one names, and the admin page."""

from __future__ import annotations

import importlib.util
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.urls import reverse

from governance.audit import audit_record
from governance.metrics import METRIC_PROVIDERS, Measurement
from governance.models import EscalationRule, EventType, RetentionRule, SecretReference
from governance.readiness import PLACEHOLDERS, READINESS_CHECKS, ReadinessLine, Status, readiness_report
from governance.roles import Role, Verification
from governance.tests.factories import ActionPolicyFactory, FieldMappingFactory, UserFactory
from governance.tests.test_gates import ChannelRolloutFactory, GateCriterionFactory, RolloutGateFactory

READINESS_URL = "admin:governance_readiness"
# Lines owned by issues that have not landed: they read "not configured yet" on any configuration.
LATER = {
    "Intents are ranked",
    "Helpdesk ticket fields, routing and transcript storage",
    "Every knowledge source has an owner, a freshness window and an audience",
}
if importlib.util.find_spec("governance.pii") is None:
    LATER.add("Personal data is masked before text leaves for an outside model")

TRIGGERS = {
    "low_confidence": {"threshold": Decimal("0.45")},
    "frustration": {"threshold": Decimal("-0.5")},
    "vip": {"account_tiers": ["vip"]},
    "compliance": {"keywords": ["lawyer", "gdpr"]},
    "refund_over_policy": {"threshold": Decimal("500")},
    "loop": {"threshold": Decimal("3")},
}


def _by_title(lines: list[ReadinessLine]) -> dict[str, ReadinessLine]:
    return {line.title: line for line in lines}


@pytest.fixture
def governance_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The apps' own checks back to their placeholders: these tests are about governance's lines (the apps test
    theirs: knowledge/tests, connectors/tests, agent/tests test_readiness.py)."""
    for name, check in PLACEHOLDERS.items():
        monkeypatch.setitem(READINESS_CHECKS, name, check)


@pytest.fixture
def complete(governance_only, monkeypatch: pytest.MonkeyPatch, support_admin, support_manager) -> None:  # type: ignore[no-untyped-def]
    """Everything governance itself can check is configured, as a first release would be."""
    FieldMappingFactory(field_path="plan", owner=support_admin, fallback_owner=support_manager)
    FieldMappingFactory(
        field_path="shipping_address",
        owner=support_admin,
        fallback_owner=support_manager,
        write_roles=[Role.CUSTOMER],
        write_min_verification=Verification.IDENTITY_VERIFIED,
        value_rule="pattern",
        allowed_pattern=r"[^<>]{8,200}",
    )
    ActionPolicyFactory(action="order_status_lookup", tier="read_only", enabled_from_stage=2)
    ActionPolicyFactory(action="refund", tier="approval_required", enabled_from_stage=4)
    for trigger, extra in TRIGGERS.items():
        EscalationRule.objects.create(name=trigger, trigger=trigger, **extra)
    for data_class in ("transcripts", "crm_values", "audit_evidence"):
        RetentionRule.objects.create(data_class=data_class, days=365)
    monkeypatch.setenv("STEWARD_TEST_CRM_TOKEN", "present")
    SecretReference.objects.create(name="crm_token", kind="env", env_var="STEWARD_TEST_CRM_TOKEN", owner=support_admin)
    channel = ChannelRolloutFactory(channel="web_chat", stage=2)
    for stage in (2, 3):
        gate = RolloutGateFactory(channel=channel, stage=stage, required_signoffs=["support_owner"])
        GateCriterionFactory(gate=gate, metric="regression_pass_rate")
        GateCriterionFactory(gate=gate, kind="rollback", metric="reopen_rate", comparator="gte")
    for metric in ("regression_pass_rate", "reopen_rate"):
        monkeypatch.setitem(METRIC_PROVIDERS, metric, lambda query: 0.99)
    with transaction.atomic():
        for n in range(3):
            audit_record(actor=None, event_type=EventType.SYSTEM, reason=f"event {n}")


@pytest.mark.django_db
def test_a_complete_configuration_passes_every_line_but_those_of_later_issues(complete: None) -> None:
    lines = readiness_report()
    statuses = {line.title: line.status for line in lines}
    assert {title for title, status in statuses.items() if status == Status.NOT_CONFIGURED} == LATER
    assert {title for title, status in statuses.items() if status == Status.FAIL} == set()
    by_title = _by_title(lines)
    assert by_title["The first release is narrow (one or two channels, none beyond stage 3)"].detail == (
        "web_chat at stage 2."
    )
    assert by_title["The audit chain is intact"].detail.startswith("The newest 3 records verify")
    # Sections come in registration order.
    assert [line.section for line in lines][:2] == ["Agent", "Data access"]


@pytest.mark.django_db
def test_without_metric_providers_the_analytics_line_is_not_configured_yet(
    complete: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.readiness.METRIC_PROVIDERS", {})
    line = _by_title(readiness_report())["Analytics metrics flow into the rollout gates"]
    assert line.status == Status.NOT_CONFIGURED and "no data yet" in line.detail


@pytest.mark.django_db
def test_an_incomplete_configuration_names_what_fails(complete: None, support_admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    orphan = FieldMappingFactory(field_path="tier", owner=support_admin, fallback_owner=None)
    loose = FieldMappingFactory(
        field_path="notes", owner=support_admin, fallback_owner=UserFactory(), write_roles=[Role.SUPPORT_AGENT]
    )
    nobody = ActionPolicyFactory(action="subscription_cancel", tier="approval_required", approver_roles=[])
    EscalationRule.objects.filter(trigger="vip").delete()
    EscalationRule.objects.filter(trigger="loop").update(threshold=None)
    RetentionRule.objects.filter(data_class="audit_evidence").delete()
    monkeypatch.delenv("STEWARD_TEST_CRM_TOKEN")
    bare = RolloutGateFactory(channel=ChannelRolloutFactory(channel="email", stage=4), stage=5)
    ChannelRolloutFactory(channel="sms")
    monkeypatch.delitem(METRIC_PROVIDERS, "reopen_rate", raising=False)

    lines = _by_title(readiness_report())

    owners = lines["Every enabled field mapping has an owner and a fallback owner"]
    assert owners.status == Status.FAIL and owners.detail == "demo_crm.customer.tier: no fallback owner"
    assert owners.fix_url.endswith(f"?id__in={orphan.pk}")
    scopes = lines[
        "Every enabled field mapping has a read scope, a write scope (or is read-only) and a verification rule"
    ]
    assert scopes.detail == "demo_crm.customer.notes: writable with any value; choose which values a write may set"
    assert scopes.fix_url.endswith(f"?id__in={loose.pk}")
    actions = lines["Every enabled action has a tier, roles and a stage (and approvers where approval is needed)"]
    assert actions.detail == "subscription_cancel: needs approval but names nobody who may approve"
    assert actions.fix_url.endswith(f"?id__in={nobody.pk}")
    escalation = lines["Escalation covers low confidence, frustration, VIP, compliance, refunds over policy and loops"]
    assert escalation.detail == (
        "No working rule for VIP / account tier, Loop (no progress); loop: no threshold, so it never fires."
    )
    retention = lines["Retention rules for transcripts, CRM values and audit evidence"]
    assert retention.detail == "No enabled rule for: Audit evidence."
    secrets = lines["Every secret can be resolved"]
    assert secrets.detail == "crm_token: environment variable STEWARD_TEST_CRM_TOKEN is not set"
    thresholds = lines["Regression suite and acceptance thresholds"]
    assert thresholds.detail == "email → stage 5: no entry criterion on regression_pass_rate"
    assert thresholds.fix_url.endswith(f"?id__in={bare.pk}")
    assert lines["Every gate needs a sign-off to open"].detail == "email → stage 5: opens on metrics alone"
    assert lines["Analytics metrics flow into the rollout gates"].detail == (
        "No provider for reopen_rate: these criteria never have data."
    )
    assert lines["The first release is narrow (one or two channels, none beyond stage 3)"].detail == (
        "3 channels (email, sms, web_chat); start with one or two; email is at stage 4."
    )
    failing = {title for title, line in lines.items() if line.status == Status.FAIL}
    assert failing == set(lines) - LATER - {
        "The audit chain is intact",
        "Personal data is masked before text leaves for an outside model",
    }


@pytest.mark.django_db
def test_an_altered_audit_record_fails_the_chain_line(complete: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditrecord DISABLE TRIGGER governance_audit_append_only")
        cursor.execute("UPDATE governance_auditrecord SET reason = 'nothing happened' WHERE seq = 2")
        cursor.execute("ALTER TABLE governance_auditrecord ENABLE TRIGGER governance_audit_append_only")
    line = _by_title(readiness_report())["The audit chain is intact"]
    assert line.status == Status.FAIL
    assert line.detail == "record #2 was altered: its content does not match its hash; run manage.py audit_verify."


def test_installed_apps_replace_their_placeholders_in_the_same_place() -> None:
    from connectors.readiness import helpdesk_readiness
    from knowledge.readiness import knowledge_readiness

    names = list(READINESS_CHECKS)
    assert READINESS_CHECKS["knowledge_sources"] is knowledge_readiness
    assert READINESS_CHECKS["helpdesk"] is helpdesk_readiness
    assert names[0] == "intents"
    assert names.index("field_mappings") < names.index("helpdesk") < names.index("knowledge_sources")
    assert names.index("knowledge_sources") < names.index("action_policies")


@pytest.mark.django_db
def test_an_app_adds_its_own_check_and_a_broken_check_is_a_failed_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        READINESS_CHECKS, "intents", lambda: [ReadinessLine("Agent", "Intents are ranked", Status.PASS, "12 intents.")]
    )

    def broken() -> list[ReadinessLine]:
        raise RuntimeError("no table")

    monkeypatch.setitem(READINESS_CHECKS, "broken", broken)
    lines = readiness_report()
    assert lines[0] == ReadinessLine("Agent", "Intents are ranked", Status.PASS, "12 intents.")
    assert lines[-1] == ReadinessLine("Report", "Check 'broken'", Status.FAIL, "The check itself failed: no table")


# --- The admin page ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_support_admin_reads_the_report_in_a_bounded_number_of_queries(
    client, complete: None, support_admin, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    # More rows of every kind cost no more queries.
    FieldMappingFactory.create_batch(5, owner=support_admin, fallback_owner=UserFactory())
    ActionPolicyFactory.create_batch(5)
    for channel in ("email", "sms"):
        GateCriterionFactory(gate=RolloutGateFactory(channel=ChannelRolloutFactory(channel=channel)))
    client.force_login(support_admin)
    # Session, user, permissions and the admin's sidebar, then one query per check.
    with django_assert_max_num_queries(14):
        response = client.get(reverse(READINESS_URL))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Readiness report" in page and "Intents are ranked" in page and "Not configured yet" in page
    assert "Every secret can be resolved" in page


@pytest.mark.django_db
def test_the_report_links_each_failing_line_to_its_fix(client, support_manager) -> None:  # type: ignore[no-untyped-def]
    ChannelRolloutFactory(channel="web_chat", stage=4)
    client.force_login(support_manager)
    response = client.get(reverse(READINESS_URL))
    assert response.status_code == 200
    assert f'href="{reverse("admin:governance_channelrollout_changelist")}?id__in=' in response.content.decode()


@pytest.mark.django_db
def test_the_report_is_refused_to_an_outsider_and_a_qa_reviewer(client, outsider, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    for user in (outsider, qa_reviewer):
        client.force_login(user)
        assert client.get(reverse(READINESS_URL)).status_code == 403
    client.logout()
    assert client.get(reverse(READINESS_URL)).status_code == 302  # to the admin login


@pytest.mark.django_db
def test_a_regression_threshold_passes_only_on_a_recent_run_that_meets_it(
    complete: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    title = "Regression suite and acceptance thresholds"
    monkeypatch.setitem(METRIC_PROVIDERS, "regression_pass_rate", lambda query: None)
    never_run = _by_title(readiness_report())[title]
    monkeypatch.setitem(METRIC_PROVIDERS, "regression_pass_rate", lambda query: Measurement(0.9, 40))
    failing = _by_title(readiness_report())[title]
    monkeypatch.setitem(METRIC_PROVIDERS, "regression_pass_rate", lambda query: Measurement(0.96, 40))
    passing = _by_title(readiness_report())[title]

    assert never_run.status == Status.FAIL
    assert "web_chat → stage 2: no linked suite has run in the last 7 days" in never_run.detail
    assert failing.status == Status.FAIL
    assert "regression_pass_rate (7 days) is 0.9 (n=40), needs at least 0.95" in failing.detail
    assert passing.status == Status.PASS

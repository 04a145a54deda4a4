"""The governance admin: lists that cost the same whatever their length, changes and deletions that are audited,
and an audit log nobody can edit, which can be exported and verified."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from governance.admin.audit import BoundedCountPaginator
from governance.audit import audit_export, audit_record
from governance.changes import config_object_save
from governance.models import (
    ActionTier,
    AuditRecord,
    DataClass,
    EscalationRule,
    EscalationTrigger,
    EventType,
    FieldMapping,
    RetentionRule,
    SecretKind,
)
from governance.roles import Role, Verification
from governance.secrets import secret_create
from governance.tests.factories import ActionPolicyFactory, FieldMappingFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- Rows for each list ------------------------------------------------------------------------------------------


def _mappings(n: int) -> None:
    FieldMappingFactory.create_batch(n)  # each with an owner of its own


def _policies(n: int) -> None:
    for _ in range(n):
        ActionPolicyFactory(automated_limit=Decimal("50"), hard_limit=Decimal("500"), limit_argument="amount")


def _escalations(n: int) -> None:
    start = EscalationRule.objects.count()
    for i in range(start, start + n):
        EscalationRule.objects.create(name=f"Rule {i}", trigger=EscalationTrigger.COMPLIANCE, keywords=["lawyer"])


def _retention(n: int) -> None:
    for data_class in DataClass.values[RetentionRule.objects.count() :][:n]:
        RetentionRule.objects.create(data_class=data_class, days=30)


def _secrets(n: int) -> None:
    start = 1000 + AuditRecord.objects.count()
    for i in range(start, start + n):
        owner = UserFactory()
        secret_create(actor=owner, name=f"token_{i}", kind=SecretKind.ENCRYPTED, owner=owner, value=f"v{i}")


def _audit(n: int) -> None:
    for i in range(n):
        audit_record(actor=None, event_type=EventType.SYSTEM, reason=f"event {i}", conversation_id=f"conv-{i % 3}")


CHANGELISTS: dict[str, Callable[[int], None]] = {
    "fieldmapping": _mappings,
    "actionpolicy": _policies,
    "escalationrule": _escalations,
    "retentionrule": _retention,
    "secretreference": _secrets,
    "auditrecord": _audit,
}


def _changelist(model: str) -> str:
    return reverse(f"admin:governance_{model}_changelist")


# --- Lists -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "queries"),
    [
        # session, user, user and group permissions, count, full count, page; plus the system and object filters.
        ("fieldmapping", 9),
        ("actionpolicy", 7),
        ("escalationrule", 7),
        ("retentionrule", 7),
        ("secretreference", 7),  # owners joined to the page
        # session, user, permissions (2), a count bounded to a few pages, page.
        ("auditrecord", 6),
    ],
)
def test_each_list_renders_with_the_same_number_of_queries_however_many_rows(
    model: str,
    queries: int,
    support_admin: User,
    client: Client,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    client.force_login(support_admin)
    CHANGELISTS[model](2)
    with django_assert_num_queries(queries):
        assert client.get(_changelist(model)).status_code == 200

    CHANGELISTS[model](2)
    with django_assert_num_queries(queries):
        response = client.get(_changelist(model))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 4


@pytest.mark.parametrize("model", CHANGELISTS)
def test_an_outsider_is_refused_every_list(model: str, outsider: User, client: Client) -> None:
    client.force_login(outsider)
    assert client.get(_changelist(model)).status_code == 403


def test_the_mapping_list_says_who_may_read_and_write(support_admin: User, client: Client) -> None:
    FieldMappingFactory(
        field_path="plan.name",
        read_roles=[Role.CUSTOMER, Role.SUPPORT_AGENT],
        read_min_verification=Verification.EMAIL_VERIFIED,
        write_roles=[Role.SUPPORT_AGENT],
        value_rule="choices",
        allowed_choices=["basic", "pro"],
    )
    client.force_login(support_admin)
    html = client.get(_changelist("fieldmapping")).content.decode()
    assert "Customer (email verified), Support agent" in html
    assert "Support agent · one of 2 values" in html


# --- Changes through the admin are audited -----------------------------------------------------------------------


def _mapping_form(mapping: FieldMapping, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "label": mapping.label,
        "purpose": mapping.purpose,
        "enabled": "on",
        "owner": mapping.owner_id,
        "fallback_owner": "",
        "read_roles": list(mapping.read_roles),
        "read_min_verification": mapping.read_min_verification,
        "write_roles": list(mapping.write_roles),
        "write_min_verification": mapping.write_min_verification,
        "value_rule": mapping.value_rule,
        "allowed_choices": "\n".join(mapping.allowed_choices),
        "allowed_pattern": mapping.allowed_pattern,
        "allowed_min": "",
        "allowed_max": "",
        "retention_days": "",
    }
    form.update(changes)
    return form


def test_saving_a_field_mapping_in_the_admin_records_old_and_new_values(support_admin: User, client: Client) -> None:
    mapping = FieldMappingFactory(label="Plan", read_roles=[Role.CUSTOMER])
    client.force_login(support_admin)

    response = client.post(
        reverse("admin:governance_fieldmapping_change", args=[mapping.pk]),
        _mapping_form(mapping, label="Subscription plan", read_roles=[Role.CUSTOMER, Role.SUPPORT_AGENT]),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    record = AuditRecord.objects.get(event_type=EventType.CONFIG_CHANGED)
    assert (record.subject_type, record.subject_id) == ("governance.fieldmapping", str(mapping.pk))
    assert record.actor_user_id == support_admin.pk
    assert record.changes["label"] == {"old": "Plan", "new": "Subscription plan"}
    assert record.changes["read_roles"] == {"old": ["customer"], "new": ["customer", "support_agent"]}
    assert set(record.fields) == {"label", "read_roles", "updated_at"}


def test_a_field_mappings_identity_cannot_be_changed_in_the_admin(support_admin: User, client: Client) -> None:
    mapping = FieldMappingFactory(field_path="plan.name")
    client.force_login(support_admin)

    client.post(
        reverse("admin:governance_fieldmapping_change", args=[mapping.pk]),
        _mapping_form(mapping, field_path="card.number"),
    )

    mapping.refresh_from_db()
    assert mapping.field_path == "plan.name"


def test_allowed_values_are_entered_one_a_line(support_admin: User, client: Client) -> None:
    mapping = FieldMappingFactory(write_roles=[Role.SUPPORT_AGENT])
    client.force_login(support_admin)

    response = client.post(
        reverse("admin:governance_fieldmapping_change", args=[mapping.pk]),
        _mapping_form(mapping, value_rule="choices", allowed_choices="Basic, monthly\r\nPro, yearly\r\n\r\n"),
    )

    assert response.status_code == 302
    mapping.refresh_from_db()
    assert mapping.allowed_choices == ["Basic, monthly", "Pro, yearly"]


def test_adding_an_action_policy_in_the_admin_records_its_creation(support_admin: User, client: Client) -> None:
    client.force_login(support_admin)

    response = client.post(
        reverse("admin:governance_actionpolicy_add"),
        {
            "action": "refund",
            "label": "Refund an order",
            "description": "",
            "enabled": "on",
            "tier": ActionTier.APPROVAL_REQUIRED,
            "allowed_roles": [Role.CUSTOMER],
            "min_verification": Verification.IDENTITY_VERIFIED,
            "enabled_from_stage": 4,
            "limit_argument": "amount",
            "automated_limit": "50",
            "hard_limit": "500",
            "approver_roles": [Role.SUPPORT_MANAGER],
            "approval_expiry_hours": 24,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    record = AuditRecord.objects.get(event_type=EventType.CONFIG_CREATED)
    assert record.changes["action"] == {"old": None, "new": "refund"}
    assert Decimal(record.changes["hard_limit"]["new"]) == Decimal("500")


def test_an_admin_edit_does_not_put_back_a_value_a_service_wrote_meanwhile(support_admin: User) -> None:
    rule = RetentionRule.objects.create(data_class=DataClass.TRANSCRIPTS, days=30)
    loaded_by_the_form = RetentionRule.objects.get(pk=rule.pk)
    applied_at = timezone.now()
    RetentionRule.objects.filter(pk=rule.pk).update(last_applied_at=applied_at)  # as retention does, meanwhile

    loaded_by_the_form.days = 60
    config_object_save(actor=support_admin, instance=loaded_by_the_form)

    rule.refresh_from_db()
    assert (rule.days, rule.last_applied_at) == (60, applied_at)
    assert AuditRecord.objects.get(event_type=EventType.CONFIG_CHANGED).changes == {"days": {"old": 30, "new": 60}}


def test_deleting_several_mappings_at_once_records_one_deletion_each(support_admin: User, client: Client) -> None:
    mappings = FieldMappingFactory.create_batch(3)
    client.force_login(support_admin)

    response = client.post(
        _changelist("fieldmapping"),
        {"action": "delete_selected", "_selected_action": [m.pk for m in mappings], "post": "yes"},
    )

    assert response.status_code == 302
    assert not FieldMapping.objects.exists()
    deleted = AuditRecord.objects.filter(event_type=EventType.CONFIG_DELETED)
    assert sorted(deleted.values_list("subject_id", flat=True)) == sorted(str(m.pk) for m in mappings)
    assert {record.actor_user_id for record in deleted} == {support_admin.pk}
    assert deleted.first().changes["field_path"]["new"] is None


def test_a_support_agent_may_look_at_mappings_but_not_change_them(support_agent: User, client: Client) -> None:
    mapping = FieldMappingFactory(label="Plan")
    client.force_login(support_agent)

    assert client.get(_changelist("fieldmapping")).status_code == 200
    response = client.post(
        reverse("admin:governance_fieldmapping_change", args=[mapping.pk]), _mapping_form(mapping, label="Hacked")
    )

    assert response.status_code == 403
    assert FieldMapping.objects.get(pk=mapping.pk).label == "Plan"
    assert not AuditRecord.objects.exists()


# --- The audit log in the admin ------------------------------------------------------------------------------------


@pytest.fixture
def superuser() -> User:
    return UserFactory(username="root", is_superuser=True)


def test_the_audit_log_refuses_adding_changing_and_deleting_even_for_a_superuser(
    superuser: User, client: Client
) -> None:
    _audit(2)
    record = AuditRecord.objects.order_by("seq").first()
    client.force_login(superuser)

    assert client.get(reverse("admin:governance_auditrecord_add")).status_code == 403
    change_url = reverse("admin:governance_auditrecord_change", args=[record.pk])
    assert client.post(change_url, {"reason": "nothing happened"}).status_code == 403
    assert client.get(reverse("admin:governance_auditrecord_delete", args=[record.pk])).status_code == 403
    assert (
        client.post(reverse("admin:governance_auditrecord_delete", args=[record.pk]), {"post": "yes"}).status_code
        == 403
    )
    listing = client.get(_changelist("auditrecord"))
    assert "delete_selected" not in listing.content.decode()
    assert AuditRecord.objects.get(pk=record.pk).reason == "event 0"


def test_an_audit_record_page_shows_every_field_including_the_hashes(support_admin: User, client: Client) -> None:
    record = audit_record(
        actor=support_admin,
        event_type=EventType.CONFIG_CHANGED,
        subject_type="governance.fieldmapping",
        subject_id="7",
        changes={"label": {"old": "Plan", "new": "Subscription plan"}},
    )
    client.force_login(support_admin)

    html = client.get(reverse("admin:governance_auditrecord_change", args=[record.pk])).content.decode()

    for shown in (record.hash, record.prev_hash, "Subscription plan", "governance.fieldmapping", "ada_admin"):
        assert shown in html


def test_the_audit_search_matches_a_conversation_or_record_number_exactly(support_admin: User, client: Client) -> None:
    _audit(6)  # conv-0, conv-1, conv-2, conv-0, ...
    client.force_login(support_admin)

    def found(term: str) -> list[int]:
        response = client.get(_changelist("auditrecord"), {"q": term})
        return sorted(record.seq for record in response.context["cl"].result_list)

    assert found("conv-1") == [2, 5]
    assert found("conv") == []
    assert found("#4") == [4]


def test_the_audit_list_filters_by_event_band(support_admin: User, client: Client) -> None:
    _audit(2)
    audit_record(actor=support_admin, event_type=EventType.CONFIG_CREATED, subject_type="x", subject_id="1")
    client.force_login(support_admin)

    response = client.get(_changelist("auditrecord"), {"band": "config"})

    assert [r.event_type for r in response.context["cl"].result_list] == [EventType.CONFIG_CREATED]


def test_the_audit_list_counts_only_a_few_pages_ahead() -> None:
    _audit(15)
    paginator = BoundedCountPaginator(AuditRecord.objects.order_by("-seq"), 2, page_number=1)

    with CaptureQueriesContext(connection) as queries:
        assert paginator.count == 12  # (page 1 + 5 ahead) x 2 a page
    assert paginator.more
    assert "LIMIT 12" in queries.captured_queries[0]["sql"]
    assert BoundedCountPaginator(AuditRecord.objects.all(), 10, page_number=1).more is False


def _lines(response: StreamingHttpResponse) -> list[dict[str, Any]]:
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_exporting_selected_records_returns_json_lines(support_admin: User, client: Client) -> None:
    _audit(4)
    chosen = list(AuditRecord.objects.filter(seq__in=[2, 3]).values_list("pk", flat=True))
    client.force_login(support_admin)

    response = client.post(_changelist("auditrecord"), {"action": "export_selected", "_selected_action": chosen})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    lines = _lines(response)
    assert [line["seq"] for line in lines] == [2, 3]
    assert {"hash", "prev_hash", "created_at", "event_type"} <= set(lines[0])


def test_exporting_the_current_filter_streams_only_matching_records(support_admin: User, client: Client) -> None:
    _audit(6)
    client.force_login(support_admin)

    listing = client.get(_changelist("auditrecord"), {"conversation_id": "conv-2"})
    assert listing.context["export_url"] == reverse("admin:governance_auditrecord_export") + "?conversation_id=conv-2"
    response = client.get(listing.context["export_url"])

    assert [line["seq"] for line in _lines(response)] == [3, 6]


def test_an_export_is_recorded_and_matches_the_command_line_export(support_admin: User, client: Client) -> None:
    _audit(3)
    client.force_login(support_admin)

    exported = _lines(client.get(reverse("admin:governance_auditrecord_export")))

    assert exported == list(audit_export())
    record = AuditRecord.objects.get(decision="exported")
    assert record.actor_user_id == support_admin.pk
    assert exported[-1]["seq"] == record.seq  # recorded before the first line was written


def test_a_qa_reviewer_may_read_the_audit_log_but_not_export_it(qa_reviewer: User, client: Client) -> None:
    _audit(2)
    client.force_login(qa_reviewer)

    listing = client.get(_changelist("auditrecord"))
    assert listing.status_code == 200
    assert "export_selected" not in listing.content.decode()
    assert client.get(reverse("admin:governance_auditrecord_export")).status_code == 403


def test_verify_chain_reports_an_intact_chain(support_admin: User, client: Client) -> None:
    _audit(5)
    client.force_login(support_admin)

    response = client.get(reverse("admin:governance_auditrecord_verify"), follow=True)

    assert "Audit chain intact: 5 records verified." in response.content.decode()


def test_verify_chain_names_the_first_altered_record(support_admin: User, client: Client) -> None:
    _audit(5)
    with connection.cursor() as cursor:
        # As a database superuser could: behind the append-only trigger's back.
        cursor.execute("ALTER TABLE governance_auditrecord DISABLE TRIGGER governance_audit_append_only")
        cursor.execute("UPDATE governance_auditrecord SET reason = 'nothing happened' WHERE seq = 3")
        cursor.execute("ALTER TABLE governance_auditrecord ENABLE TRIGGER governance_audit_append_only")
    client.force_login(support_admin)

    response = client.get(reverse("admin:governance_auditrecord_verify"), follow=True)

    assert "Audit chain broken at record #3" in response.content.decode()


@pytest.mark.parametrize(
    "model", ["fieldmapping", "actionpolicy", "escalationrule", "retentionrule", "secretreference"]
)
def test_each_add_and_change_page_renders_for_a_support_admin(model: str, support_admin: User, client: Client) -> None:
    CHANGELISTS[model](1)
    obj = apps.get_model("governance", model).objects.first()
    client.force_login(support_admin)

    assert client.get(reverse(f"admin:governance_{model}_add")).status_code == 200
    assert client.get(reverse(f"admin:governance_{model}_change", args=[obj.pk])).status_code == 200

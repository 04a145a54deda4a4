"""Source services: who may create, approve, review, retire and re-index a knowledge source, and what is audited."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from guardian.models import UserObjectPermission

from governance.models import AuditRecord, EventType
from knowledge import services
from knowledge.exceptions import IngestionAlreadyActive, InvalidSourceChange, NotPermitted, OriginError
from knowledge.models import Audience, IngestionRun, Origin, SourceKind, SourceStatus
from knowledge.tests.factories import KnowledgeSourceFactory, grant_knowledge_role_permissions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _roles(db) -> None:  # type: ignore[no-untyped-def]
    grant_knowledge_role_permissions()


@pytest.fixture
def draft(support_admin, support_agent):  # type: ignore[no-untyped-def]
    """A draft source owned by the support agent, created through the service (so the owner holds its permissions)."""
    return services.source_create(
        actor=support_admin,
        owner=support_agent,
        name="Espresso machine manual",
        kind=SourceKind.PRODUCT_MANUAL,
        audience=Audience.VERIFIED,
        products=["espresso-pro"],
        review_interval_days=90,
    )


def audits(source) -> list[AuditRecord]:  # type: ignore[no-untyped-def]
    return list(AuditRecord.objects.filter(subject_type="knowledge.knowledgesource", subject_id=str(source.pk)))


def test_an_admin_creates_a_draft_with_review_dates_and_an_audit_record(draft, support_admin) -> None:  # type: ignore[no-untyped-def]
    assert draft.status == SourceStatus.DRAFT
    assert draft.review_due_on == draft.last_reviewed_on + timedelta(days=90)
    assert draft.stale_on == draft.review_due_on + timedelta(days=30)
    (record,) = audits(draft)
    assert record.event_type == EventType.CONFIG_CREATED
    assert record.actor_user_id == support_admin.pk
    assert record.changes["audience"] == {"old": None, "new": "verified"}


def test_the_owner_holds_object_permissions_on_their_source(draft, support_agent, outsider) -> None:  # type: ignore[no-untyped-def]
    assert support_agent.has_perm("knowledge.approve_knowledgesource", draft)
    assert support_agent.has_perm("knowledge.reindex_knowledgesource", draft)
    assert not support_agent.has_perm("knowledge.approve_knowledgesource")  # only on this source
    assert not outsider.has_perm("knowledge.approve_knowledgesource", draft)


def test_an_agent_may_not_create_a_source(support_agent) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted, match="sam_agent is not allowed to create"):
        services.source_create(actor=support_agent, owner=support_agent, name="Mine", kind=SourceKind.FAQ)


def test_the_owner_may_approve_their_source(draft, support_agent) -> None:  # type: ignore[no-untyped-def]
    approved = services.source_approve(actor=support_agent, source=draft, note="checked against v3 firmware")

    assert approved.status == SourceStatus.APPROVED
    assert approved.approved_by == support_agent
    assert approved.approved_at is not None
    record = audits(draft)[-1]
    assert record.event_type == EventType.CONFIG_CHANGED
    assert record.decision == "approved"
    assert record.reason == "checked against v3 firmware"
    assert record.changes["status"] == {"old": "draft", "new": "approved"}


def test_an_outsider_may_not_approve(draft, outsider) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted, match="olly_outsider is not allowed to approve"):
        services.source_approve(actor=outsider, source=draft)
    draft.refresh_from_db()
    assert draft.status == SourceStatus.DRAFT
    assert [r.event_type for r in audits(draft)] == [EventType.CONFIG_CREATED]


def test_a_manager_may_approve_any_source(draft, support_manager) -> None:  # type: ignore[no-untyped-def]
    assert services.source_approve(actor=support_manager, source=draft).status == SourceStatus.APPROVED


def test_a_qa_reviewer_may_not_approve(draft, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted):
        services.source_approve(actor=qa_reviewer, source=draft)


def test_approving_twice_is_refused(draft, support_manager) -> None:  # type: ignore[no-untyped-def]
    services.source_approve(actor=support_manager, source=draft)
    with pytest.raises(InvalidSourceChange, match="already approved"):
        services.source_approve(actor=support_manager, source=draft)


def test_a_new_owner_takes_over_the_object_permissions(draft, support_admin, support_agent, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    services.source_update(actor=support_admin, source=draft, data={"owner": qa_reviewer})

    assert qa_reviewer.has_perm("knowledge.approve_knowledgesource", draft)
    support_agent = type(support_agent).objects.get(pk=support_agent.pk)  # fresh permission cache
    assert not support_agent.has_perm("knowledge.approve_knowledgesource", draft)
    record = audits(draft)[-1]
    assert record.changes["owner"] == {"old": support_agent.pk, "new": qa_reviewer.pk}


def test_the_fallback_owner_may_approve(draft, support_admin, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    services.source_update(actor=support_admin, source=draft, data={"fallback_owner": qa_reviewer})
    assert services.source_approve(actor=qa_reviewer, source=draft).status == SourceStatus.APPROVED


def test_widening_the_audience_of_an_approved_source_needs_a_new_approval(draft, support_admin) -> None:  # type: ignore[no-untyped-def]
    services.source_approve(actor=support_admin, source=draft)

    updated = services.source_update(actor=support_admin, source=draft, data={"audience": Audience.PUBLIC})

    assert updated.status == SourceStatus.DRAFT and updated.approved_by is None
    assert "needs approval again" in audits(draft)[-1].reason


def test_narrowing_the_audience_keeps_the_approval(draft, support_admin) -> None:  # type: ignore[no-untyped-def]
    services.source_approve(actor=support_admin, source=draft)
    updated = services.source_update(actor=support_admin, source=draft, data={"audience": Audience.INTERNAL})
    assert updated.status == SourceStatus.APPROVED


def test_an_update_recomputes_the_review_dates(draft, support_admin) -> None:  # type: ignore[no-untyped-def]
    updated = services.source_update(actor=support_admin, source=draft, data={"review_interval_days": 10})
    assert updated.review_due_on == updated.last_reviewed_on + timedelta(days=10)


def test_status_is_not_changed_by_an_update(draft, support_admin) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSourceChange, match="status"):
        services.source_update(actor=support_admin, source=draft, data={"status": SourceStatus.APPROVED})


def test_a_duplicate_name_is_a_validation_error(draft, support_admin, support_agent) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        services.source_create(actor=support_admin, owner=support_agent, name=draft.name, kind=SourceKind.FAQ)


def test_a_folder_source_needs_a_path(support_admin) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OriginError, match="path"):
        services.source_create(
            actor=support_admin, owner=support_admin, name="Docs", kind=SourceKind.FAQ, origin=Origin.FOLDER
        )


def test_marking_reviewed_moves_the_dates_forward(support_agent) -> None:  # type: ignore[no-untyped-def]
    source = KnowledgeSourceFactory(owner=support_agent, last_reviewed_on=date(2024, 1, 1))
    # Factory rows skip the service, so give the owner the permission as source_create would.
    services._owner_permissions_sync(source, previous=set())

    reviewed = services.source_mark_reviewed(actor=support_agent, source=source)

    assert reviewed.last_reviewed_on == timezone.localdate()
    assert reviewed.freshness() == "fresh"
    assert audits(source)[-1].decision == "reviewed"


def test_a_review_date_in_the_future_is_refused(draft, support_manager) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSourceChange, match="future"):
        services.source_mark_reviewed(
            actor=support_manager, source=draft, reviewed_on=timezone.localdate() + timedelta(days=1)
        )


def test_retiring_in_favour_of_another_source(draft, support_manager) -> None:  # type: ignore[no-untyped-def]
    successor = KnowledgeSourceFactory(name="Espresso machine manual v2")

    retired = services.source_retire(actor=support_manager, source=draft, superseded_by=successor, reason="v2 out")

    assert retired.status == SourceStatus.RETIRED
    assert retired.superseded_by == successor
    assert audits(draft)[-1].changes["superseded_by"] == {"old": None, "new": successor.pk}
    with pytest.raises(InvalidSourceChange, match="superseded"):
        services.source_approve(actor=support_manager, source=retired)


def test_a_source_cannot_supersede_itself(draft, support_manager) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSourceChange, match="itself"):
        services.source_retire(actor=support_manager, source=draft, superseded_by=draft)


def test_reindex_queues_one_run_at_a_time(draft, support_agent, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.source_reindex(actor=support_agent, source=draft)

    assert run.status == IngestionRun.Status.QUEUED and run.requested_by == support_agent
    assert len(callbacks) == 1  # the task is queued once the transaction commits
    with pytest.raises(IngestionAlreadyActive):
        services.source_reindex(actor=support_agent, source=draft)
    assert audits(draft)[-1].decision == "reindex_queued"


def test_a_run_that_lost_its_worker_does_not_block_the_next(
    draft, support_agent, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    IngestionRun.objects.create(
        source=draft, status=IngestionRun.Status.RUNNING, started_at=timezone.now() - timedelta(hours=3)
    )
    with django_capture_on_commit_callbacks(execute=False):
        run = services.source_reindex(actor=support_agent, source=draft)
    assert run.status == IngestionRun.Status.QUEUED
    assert IngestionRun.objects.filter(source=draft, status=IngestionRun.Status.FAILED).count() == 1


def test_an_outsider_may_not_reindex(draft, outsider) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted, match="re-index"):
        services.source_reindex(actor=outsider, source=draft)


def test_deleting_a_source_is_audited(draft, support_admin, support_manager) -> None:  # type: ignore[no-untyped-def]
    pk = draft.pk
    with pytest.raises(NotPermitted):
        services.source_delete(actor=support_manager, source=draft)
    services.source_delete(actor=support_admin, source=draft)
    assert not UserObjectPermission.objects.filter(object_pk=str(pk)).exists()
    record = AuditRecord.objects.filter(subject_type="knowledge.knowledgesource", subject_id=str(pk)).last()
    assert record.event_type == EventType.CONFIG_DELETED
    assert record.changes["name"] == {"old": "Espresso machine manual", "new": None}

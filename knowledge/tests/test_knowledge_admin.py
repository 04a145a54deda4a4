"""Knowledge admin: lists with pinned query counts, freshness, permissioned actions, writes through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from governance.models import AuditRecord, EventType
from knowledge import services
from knowledge.ingestion import document_upsert
from knowledge.models import FailedRetrieval, IngestionRun, KnowledgeSource, SourceStatus
from knowledge.tests.factories import KnowledgeSourceFactory, grant_knowledge_role_permissions

pytestmark = pytest.mark.django_db

SOURCES = "/admin/knowledge/knowledgesource/"


@pytest.fixture(autouse=True)
def _roles(db) -> None:  # type: ignore[no-untyped-def]
    grant_knowledge_role_permissions()


def owned_source(owner, **kwargs):  # type: ignore[no-untyped-def]
    source = KnowledgeSourceFactory(owner=owner, **kwargs)
    services._owner_permissions_sync(source, previous=set())  # as source_create does
    return source


def make_sources(count: int, owner) -> None:  # type: ignore[no-untyped-def]
    for _ in range(count):
        source = KnowledgeSourceFactory(owner=owner)
        source.documents.create(external_id="a", title="A", chunk_count=3)
        source.documents.create(external_id="b", title="B", chunk_count=2)
        IngestionRun.objects.create(source=source, status=IngestionRun.Status.DONE)


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_source_list_renders_with_the_same_number_of_queries_however_many_rows(
    client: Client, support_admin, support_agent, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(support_admin)
    make_sources(2, support_agent)
    # session, user, permissions (user, groups), count, full count, page (owners joined, chunks and last run as
    # subqueries), the owner filter's choices.
    with django_assert_num_queries(8):
        assert client.get(SOURCES).status_code == 200

    make_sources(5, support_admin)
    with django_assert_num_queries(8):
        response = client.get(SOURCES)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 7
    row = next(s for s in response.context["cl"].result_list if s.owner_id == support_agent.pk)
    assert (row.chunk_total, row.last_run_status) == (5, IngestionRun.Status.DONE)
    assert b"Fresh" in response.content


def test_the_freshness_filter_works_in_sql(client: Client, support_admin) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    KnowledgeSourceFactory(name="Fresh one", last_reviewed_on=today)
    KnowledgeSourceFactory(name="Due one", last_reviewed_on=today - timedelta(days=190))
    KnowledgeSourceFactory(name="Stale one", last_reviewed_on=today - timedelta(days=400))
    client.force_login(support_admin)

    for freshness, name in [("fresh", "Fresh one"), ("due", "Due one"), ("stale", "Stale one")]:
        response = client.get(SOURCES, {"freshness": freshness})
        assert [s.name for s in response.context["cl"].result_list] == [name]


def test_an_owner_approves_their_source_and_is_told_which_they_may_not(client: Client, support_agent) -> None:  # type: ignore[no-untyped-def]
    mine = owned_source(support_agent, name="Mine", status=SourceStatus.DRAFT)
    theirs = KnowledgeSourceFactory(name="Theirs", status=SourceStatus.DRAFT)
    client.force_login(support_agent)

    response = client.post(
        SOURCES, {"action": "approve_sources", "_selected_action": [mine.pk, theirs.pk]}, follow=True
    )

    assert response.status_code == 200
    texts = messages_of(response)
    assert any(t.startswith("Not allowed for Theirs") for t in texts), texts
    assert "Approved 1 source(s): Mine." in texts
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (SourceStatus.APPROVED, SourceStatus.DRAFT)


def test_a_manager_approves_and_retires_any_source(client: Client, support_manager) -> None:  # type: ignore[no-untyped-def]
    drafts = [KnowledgeSourceFactory(status=SourceStatus.DRAFT) for _ in range(2)]
    client.force_login(support_manager)
    ids = [s.pk for s in drafts]

    client.post(SOURCES, {"action": "approve_sources", "_selected_action": ids})
    assert set(KnowledgeSource.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"approved"}

    client.post(SOURCES, {"action": "retire_sources", "_selected_action": ids})
    assert set(KnowledgeSource.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"retired"}
    assert AuditRecord.objects.filter(subject_type="knowledge.knowledgesource", decision="retired").count() == 2


def test_approving_an_approved_source_is_reported_not_raised(client: Client, support_manager) -> None:  # type: ignore[no-untyped-def]
    source = KnowledgeSourceFactory(name="Already", status=SourceStatus.APPROVED)
    client.force_login(support_manager)
    response = client.post(SOURCES, {"action": "approve_sources", "_selected_action": [source.pk]}, follow=True)
    assert "Already: 'Already' is already approved." in messages_of(response)


def test_reindex_queues_a_run_per_source(client: Client, support_manager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    sources = [KnowledgeSourceFactory() for _ in range(2)]
    client.force_login(support_manager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            SOURCES, {"action": "reindex_sources", "_selected_action": [s.pk for s in sources]}, follow=True
        )
    assert len(callbacks) == 2
    assert IngestionRun.objects.filter(status=IngestionRun.Status.QUEUED).count() == 2
    assert any(t.startswith("Queued a run of 2 source(s)") for t in messages_of(response))


def test_the_actions_are_offered_only_to_those_who_may_use_them(client: Client, qa_reviewer, support_agent) -> None:  # type: ignore[no-untyped-def]
    KnowledgeSourceFactory()
    client.force_login(qa_reviewer)
    assert client.get(SOURCES).context["action_form"] is None  # no action at all for a reviewer

    owned_source(support_agent)  # an owner gets the actions, checked per source when used
    client.force_login(support_agent)
    actions = dict(client.get(SOURCES).context["action_form"].fields["action"].choices)
    assert {"approve_sources", "retire_sources", "reindex_sources"} <= set(actions)


def test_an_outsider_cannot_open_the_lists(client: Client, outsider) -> None:  # type: ignore[no-untyped-def]
    client.force_login(outsider)
    for model in ("knowledgesource", "document", "ingestionrun", "failedretrieval"):
        assert client.get(f"/admin/knowledge/{model}/").status_code == 403


def test_adding_a_source_in_admin_goes_through_the_service(client: Client, support_admin, support_agent) -> None:  # type: ignore[no-untyped-def]
    client.force_login(support_admin)
    response = client.post(
        f"{SOURCES}add/",
        {
            "name": "Grinder FAQ",
            "kind": "faq",
            "owner": support_agent.pk,
            "audience": "public",
            "products": "",
            "version_scope": "",
            "confidence": "high",
            "last_reviewed_on": timezone.localdate().isoformat(),
            "review_interval_days": 90,
            "origin": "url_list",
            "origin_config": '{"urls": ["https://example.com/faq"]}',
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    source = KnowledgeSource.objects.get(name="Grinder FAQ")
    assert source.status == SourceStatus.DRAFT
    assert source.review_due_on == source.last_reviewed_on + timedelta(days=90)
    assert support_agent.has_perm("knowledge.approve_knowledgesource", source)
    assert AuditRecord.objects.filter(subject_id=str(source.pk), event_type=EventType.CONFIG_CREATED).exists()


def test_a_bad_origin_configuration_is_a_form_error(client: Client, support_admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(support_admin)
    response = client.post(
        f"{SOURCES}add/",
        {
            "name": "Broken",
            "kind": "faq",
            "owner": support_admin.pk,
            "audience": "public",
            "confidence": "high",
            "last_reviewed_on": timezone.localdate().isoformat(),
            "review_interval_days": 90,
            "origin": "url_list",
            "origin_config": '{"urls": []}',
        },
    )
    assert response.status_code == 200
    assert "urls" in str(response.context["adminform"].form.errors["origin_config"])


def test_changing_and_deleting_a_source_in_admin_are_audited(client: Client, support_admin) -> None:  # type: ignore[no-untyped-def]
    source = owned_source(support_admin, name="Warranty", status=SourceStatus.APPROVED)
    client.force_login(support_admin)
    form = client.get(f"{SOURCES}{source.pk}/change/").context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(products="", audience="internal", origin_config="{}")

    response = client.post(f"{SOURCES}{source.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    record = AuditRecord.objects.filter(subject_id=str(source.pk)).last()
    assert record.event_type == EventType.CONFIG_CHANGED
    assert record.changes["audience"] == {"old": "public", "new": "internal"}

    client.post(SOURCES, {"action": "delete_selected", "_selected_action": [source.pk], "post": "yes"})
    assert not KnowledgeSource.objects.filter(pk=source.pk).exists()
    assert AuditRecord.objects.filter(subject_id=str(source.pk), event_type=EventType.CONFIG_DELETED).exists()


def test_a_document_page_shows_its_chunks_read_only(client: Client, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    source = KnowledgeSourceFactory()
    text = "# Returns\n\n" + "Unopened grinders can be returned within thirty days. " * 20
    document = document_upsert(source=source, external_id="r.md", title="Returns", content=text, content_type="md")
    client.force_login(qa_reviewer)

    response = client.get(f"/admin/knowledge/document/{document.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Returns" in body and "Serving" in body
    assert "Unopened grinders can be returned" in body
    assert "…" in body  # long chunk text is truncated
    assert 'name="_save"' not in body  # read-only


def test_runs_and_failed_retrievals_are_listed_read_only(client: Client, support_manager) -> None:  # type: ignore[no-untyped-def]
    source = KnowledgeSourceFactory()
    run = IngestionRun.objects.create(
        source=source,
        status=IngestionRun.Status.DONE_WITH_ERRORS,
        documents_total=3,
        documents_done=2,
        documents_failed=1,
        errors=[{"external_id": "bad.pdf", "reason": "not a readable PDF: <EOF>"}],
    )
    FailedRetrieval.objects.create(query="can I pay with bitcoin", audience="public", best_score=0.1)
    client.force_login(support_manager)

    runs = client.get("/admin/knowledge/ingestionrun/")
    assert runs.status_code == 200 and b"3 / 3" in runs.content
    detail = client.get(f"/admin/knowledge/ingestionrun/{run.pk}/change/")
    assert b"bad.pdf" in detail.content and b"&lt;EOF&gt;" in detail.content  # escaped
    failed = client.get("/admin/knowledge/failedretrieval/")
    assert failed.status_code == 200 and b"can I pay with bitcoin" in failed.content

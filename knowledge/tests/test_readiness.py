"""Knowledge's lines of the readiness report: serving public content, freshness, and the last ingestion runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.readiness import READINESS_CHECKS, Status, readiness_report
from knowledge.models import Audience, Document, DocumentStatus, IngestionRun, SourceStatus
from knowledge.readiness import knowledge_readiness
from knowledge.tests.factories import KnowledgeSourceFactory

pytestmark = pytest.mark.django_db

SERVING = "Approved public knowledge serves anonymous visitors"
FRESH = "No approved knowledge source is past its stale date"
RUNS = "The last ingestion run of every approved source had no failures"


def lines() -> dict[str, object]:
    return {line.title: line for line in knowledge_readiness()}


def with_content(source, chunks: int = 3):  # type: ignore[no-untyped-def]
    Document.objects.create(
        source=source, external_id=f"{source.name}.md", title="Doc", status=DocumentStatus.READY, chunk_count=chunks
    )
    return source


def finished_run(source, status: str, failed: int = 0) -> IngestionRun:  # type: ignore[no-untyped-def]
    return IngestionRun.objects.create(
        source=source, status=status, documents_failed=failed, finished_at=timezone.now()
    )


def test_a_fresh_approved_public_source_with_content_passes_every_line(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    source = with_content(KnowledgeSourceFactory(name="Help centre"))
    finished_run(source, IngestionRun.Status.DONE)

    with django_assert_num_queries(1):
        report = lines()

    assert {title: line.status for title, line in report.items()} == {
        SERVING: Status.PASS,
        FRESH: Status.PASS,
        RUNS: Status.PASS,
    }
    assert report[SERVING].detail == "1 approved public sources with content (3 chunks)."


def test_without_approved_public_content_the_agent_cannot_answer_from_knowledge() -> None:
    with_content(KnowledgeSourceFactory(name="Internal SOPs", audience=Audience.INTERNAL))
    with_content(KnowledgeSourceFactory(name="Draft FAQ", status=SourceStatus.DRAFT))
    KnowledgeSourceFactory(name="Empty help centre")  # approved and public, but nothing ingested
    with_content(KnowledgeSourceFactory(name="Old help", retire_after=timezone.localdate()))

    line = lines()[SERVING]

    assert line.status == Status.FAIL and "No approved, unexpired public source" in line.detail


def test_a_stale_source_is_named_with_what_the_stale_policy_does_with_it(settings) -> None:  # type: ignore[no-untyped-def]
    long_ago = timezone.localdate() - timedelta(days=400)
    stale = with_content(KnowledgeSourceFactory(name="Returns 2023", last_reviewed_on=long_ago))

    report = lines()

    assert report[FRESH].status == Status.FAIL
    assert report[FRESH].detail.startswith("Returns 2023: stale since ")
    assert "no longer answers" in report[FRESH].detail
    assert report[FRESH].fix_url.endswith(f"?id__in={stale.pk}")
    assert report[SERVING].status == Status.FAIL  # excluded: it serves nobody

    settings.KNOWLEDGE_STALE_POLICY = "downrank"
    report = lines()
    assert "still answers, ranked down" in report[FRESH].detail
    assert report[SERVING].status == Status.PASS


def test_a_source_whose_owner_left_is_named() -> None:
    source = with_content(KnowledgeSourceFactory(name="Billing"))
    source.owner.is_active = False
    source.owner.save()

    assert lines()[FRESH].detail == "Billing: its owner's account is inactive, so nobody reviews it"


def test_only_the_last_finished_run_of_each_source_counts() -> None:
    recovered = with_content(KnowledgeSourceFactory(name="Recovered"))
    finished_run(recovered, IngestionRun.Status.FAILED)
    finished_run(recovered, IngestionRun.Status.DONE)
    broken = with_content(KnowledgeSourceFactory(name="Broken folder"))
    finished_run(broken, IngestionRun.Status.DONE)
    finished_run(broken, IngestionRun.Status.FAILED)
    partial = with_content(KnowledgeSourceFactory(name="Partial"))
    finished_run(partial, IngestionRun.Status.DONE_WITH_ERRORS, failed=2)
    IngestionRun.objects.create(source=partial, status=IngestionRun.Status.QUEUED)  # not finished: not counted

    line = lines()[RUNS]

    assert line.status == Status.FAIL
    assert line.detail == (
        "Broken folder: its last ingestion run failed, Partial: 2 documents failed in its last ingestion run"
    )


def test_the_report_carries_knowledges_lines_in_the_knowledge_section() -> None:
    from knowledge.readiness import knowledge_readiness as registered

    assert READINESS_CHECKS["knowledge_sources"] is registered
    sections = {line.title: line.section for line in readiness_report()}
    assert sections[SERVING] == sections[FRESH] == sections[RUNS] == "Knowledge"

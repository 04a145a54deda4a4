"""The source-freshness metric the rollout gates read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.metrics import METRIC_PROVIDERS, MetricQuery, metric_read
from knowledge.models import Audience, SourceStatus
from knowledge.tests.factories import KnowledgeSourceFactory

pytestmark = pytest.mark.django_db


def _read():  # type: ignore[no-untyped-def]
    return metric_read(MetricQuery(channel="web_chat", metric="source_freshness"))


def test_knowledge_registers_the_freshness_provider() -> None:
    assert "source_freshness" in METRIC_PROVIDERS


def test_without_an_approved_source_there_is_no_data_yet() -> None:
    KnowledgeSourceFactory(status=SourceStatus.DRAFT)
    reading = _read()
    assert (reading.value, reading.n) == (None, 0)


def test_it_is_the_share_of_approved_unretired_sources_whose_review_is_not_due(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    KnowledgeSourceFactory(name="Fresh")
    KnowledgeSourceFactory(name="Internal, fresh", audience=Audience.INTERNAL)
    KnowledgeSourceFactory(name="Due", last_reviewed_on=today - timedelta(days=181))
    KnowledgeSourceFactory(name="Stale", last_reviewed_on=today - timedelta(days=400))
    KnowledgeSourceFactory(name="Retired today", retire_after=today, last_reviewed_on=today - timedelta(days=400))
    KnowledgeSourceFactory(name="Draft", status=SourceStatus.DRAFT, last_reviewed_on=today - timedelta(days=400))

    with django_assert_num_queries(1):
        reading = _read()

    assert (reading.value, reading.n) == (2 / 4, 4)

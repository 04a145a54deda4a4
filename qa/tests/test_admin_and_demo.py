"""QA in admin (governed saves of the configuration, read-only evidence, no query per row), the demo seed and the
daily task."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agent.models import Owner
from governance.models import AuditRecord, EventType
from governance.roles import Role
from governance.tests.factories import UserFactory
from qa.demo import seed_qa
from qa.models import ReviewItem, RuleKind, SamplingRule, ScorecardCriterion
from qa.services import qa_review_submit
from qa.tasks import qa_daily_task
from qa.tests.helpers import LABELS_OK, all_pass, conversation, criterion, item_for

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_the_demo_scorecard_and_rules_are_seeded_once() -> None:
    assert seed_qa() == {"scorecard criteria": 7, "sampling rules": 8}
    assert seed_qa() == {"scorecard criteria": 0, "sampling rules": 0}
    assert set(SamplingRule.objects.values_list("kind", flat=True)) == set(RuleKind.values)
    assert set(SamplingRule.objects.values_list("double_review_percent", flat=True)) == {10}
    assert ScorecardCriterion.objects.filter(auto_fail=True).count() == 3


def test_a_manager_edits_a_sampling_rule_in_admin_and_it_is_audited(support_manager) -> None:  # type: ignore[no-untyped-def]
    seed_qa()
    rule = SamplingRule.objects.get(kind=RuleKind.LOW_CONFIDENCE)
    response = _client(support_manager).post(
        f"/admin/qa/samplingrule/{rule.pk}/change/",
        {
            "name": rule.name,
            "kind": rule.kind,
            "enabled": "on",
            "channel": "",
            "share_percent": "10",
            "threshold": "0.5",
            "first_n": "20",
            "lookback_days": "7",
            "double_review_percent": "10",
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 0.5
    record = AuditRecord.objects.filter(event_type=EventType.CONFIG_CHANGED, subject_id=str(rule.pk)).get()
    assert record.changes["threshold"] == {"old": 0.45, "new": 0.5}


def test_the_evidence_changelists_cost_no_query_per_row(support_manager, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    grounded = criterion("Grounded")
    client = _client(support_manager)

    def review_one() -> None:
        item = item_for(conversation(), qa_reviewer)
        qa_review_submit(item=item, reviewer=qa_reviewer, results=all_pass(grounded), labels=LABELS_OK)

    review_one()
    counts = {}
    for url in ("/admin/qa/reviewitem/", "/admin/qa/review/"):
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts[url] = len(queries)
    for _ in range(4):
        review_one()
    for url, before in counts.items():
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        assert len(queries) == before, url
    assert client.post(f"/admin/qa/review/{ReviewItem.objects.first().final_review_id}/delete/").status_code == 403


def test_the_daily_task_fills_the_queue() -> None:
    UserFactory(username="rev", roles=[Role.QA_REVIEWER])
    seed_qa()
    conversation(owner=Owner.WAITING, escalated="legal")
    result = qa_daily_task()
    assert result["items"] == 1 and result["fix requests closed"] == 0
    assert qa_daily_task()["items"] == 0

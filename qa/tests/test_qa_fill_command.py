"""manage.py qa_fill: the daily queue fill, on demand."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from qa.models import ReviewItem, RuleKind
from qa.tests.helpers import conversation, rule

pytestmark = pytest.mark.django_db


def test_it_queues_what_the_rules_sample_once_however_often_it_runs(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS)
    escalated = conversation(owner="waiting", escalated="customer asked for a person")
    conversation()  # closed, not escalated: no escalation rule samples it

    first, second = StringIO(), StringIO()
    call_command("qa_fill", stdout=first)
    call_command("qa_fill", stdout=second)

    assert list(ReviewItem.objects.values_list("conversation_id", flat=True)) == [escalated.pk]
    assert first.getvalue().startswith("QA queue: 1 items, 1 reasons, 1 assignments")
    assert second.getvalue().startswith("QA queue: 0 items, 0 reasons, 0 assignments")

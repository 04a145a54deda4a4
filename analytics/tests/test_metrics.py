"""The metric providers the rollout gates read: computed from real event rows, per channel and window, and None
when the window holds nothing to compute from."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind
from governance.metrics import METRIC_PROVIDERS, METRICS, MetricQuery, metric_read, metric_value

pytestmark = pytest.mark.django_db


def _event(kind: str, conversation: str, *, channel: str = "web_chat", days_ago: float = 0, **kwargs) -> None:  # type: ignore[no-untyped-def]
    event = event_record(kind=kind, conversation_id=conversation, channel=channel, **kwargs)
    if days_ago:
        # Events are append-only (the database refuses UPDATE): move the clock by inserting a dated copy instead.
        event.delete()
        AnalyticsEvent.objects.create(
            kind=event.kind,
            conversation_id=event.conversation_id,
            channel=event.channel,
            intent=event.intent,
            data=event.data,
            created_at=timezone.now() - timedelta(days=days_ago),
        )


def _q(metric: str, *, channel: str = "web_chat", intent: str = "", window_days: int = 7) -> float | None:
    return metric_value(MetricQuery(channel=channel, metric=metric, intent=intent, window_days=window_days))


def test_analytics_registers_its_providers_with_governance() -> None:
    for metric in ("containment_rate", "csat", "failed_retrieval_rate", "escalation_rate"):
        assert metric in METRIC_PROVIDERS and metric in METRICS


@pytest.mark.parametrize(
    "metric",
    [
        "containment_rate",
        "csat",
        "failed_retrieval_rate",
        "escalation_rate",
        "reopen_rate",
        "first_contact_resolution",
        "durable_resolution",
        "deflection_rate",
        "approval_turnaround_s",
    ],
)
def test_every_provider_reads_no_data_as_none_never_as_zero(metric: str) -> None:
    # Data in another channel and data older than the window are not this window's data.
    for kind in EventKind.values:
        _event(kind, "c-other", channel="email", data={"score": 5} if kind == EventKind.CSAT else {})
        _event(kind, "c-old", days_ago=30, data={"score": 5} if kind == EventKind.CSAT else {})
    assert _q(metric) is None


def test_containment_counts_closed_conversations_that_never_reached_a_person() -> None:
    for conversation in ("a", "b", "c"):
        _event(EventKind.TURN_ANSWERED, conversation)
        _event(EventKind.CLOSED, conversation)
    _event(EventKind.ESCALATED, "b", data={"reason": "customer asked for a person"})
    _event(EventKind.HUMAN_TOOK_OVER, "c")
    _event(EventKind.TURN_ANSWERED, "still-open")  # not ended: not counted either way
    _event(EventKind.CLOSED, "old", days_ago=10)  # ended before the window

    assert _q("containment_rate") == pytest.approx(1 / 3)
    assert _q("containment_rate", window_days=30) == pytest.approx(2 / 4)
    assert _q("containment_rate", channel="email") is None
    # The gates read the sample with the value: three conversations ended in the window.
    assert metric_read(MetricQuery(channel="web_chat", metric="containment_rate")).n == 3


def test_containment_leaves_out_conversations_the_traffic_share_gave_to_a_person() -> None:
    _event(EventKind.TURN_ANSWERED, "ai")
    _event(EventKind.CLOSED, "ai")
    _event(EventKind.TRAFFIC_TO_PERSON, "held", data={"bucket": 80, "traffic_percent": 50})
    _event(EventKind.CLOSED, "held")

    assert metric_read(MetricQuery(channel="web_chat", metric="containment_rate")).n == 1
    assert _q("containment_rate") == 1.0


def test_containment_for_an_intent_counts_the_conversations_about_it() -> None:
    _event(EventKind.TURN_ANSWERED, "a", intent="where_is_my_order")
    _event(EventKind.CLOSED, "a")
    _event(EventKind.TURN_ANSWERED, "b", intent="refund_request")
    _event(EventKind.ESCALATED, "b")
    _event(EventKind.CLOSED, "b")

    assert _q("containment_rate", intent="where_is_my_order") == 1.0
    assert _q("containment_rate", intent="refund_request") == 0.0
    assert _q("containment_rate", intent="cancel_subscription") is None


def test_csat_averages_the_last_score_of_each_conversation_in_the_window() -> None:
    _event(EventKind.CSAT, "a", data={"score": 2})
    _event(EventKind.CSAT, "a", data={"score": 4})  # rated again: the last score counts, once
    _event(EventKind.CSAT, "b", data={"score": 5})
    _event(EventKind.CSAT, "c", data={"score": 1}, days_ago=9)
    _event(EventKind.CSAT, "d", channel="email", data={"score": 1})

    assert _q("csat") == pytest.approx(4.5)
    assert metric_read(MetricQuery(channel="web_chat", metric="csat")).n == 2  # conversations rated, not ratings
    assert _q("csat", window_days=10) == pytest.approx((4 + 5 + 1) / 3)
    assert _q("csat", channel="email") == 1.0


def test_failed_retrieval_rate_is_the_share_of_knowledge_questions_without_a_fitting_source() -> None:
    for conversation in ("a", "b", "c"):
        _event(EventKind.KNOWLEDGE_ANSWERED, conversation, intent="shipping_times")
    _event(EventKind.KNOWLEDGE_UNKNOWN, "d")
    _event(EventKind.TURN_ANSWERED, "e")  # not a knowledge question
    _event(EventKind.KNOWLEDGE_UNKNOWN, "f", channel="email")

    assert _q("failed_retrieval_rate") == pytest.approx(1 / 4)
    assert _q("failed_retrieval_rate", intent="shipping_times") == 0.0
    assert _q("failed_retrieval_rate", channel="email") == 1.0


def test_escalation_rate_is_the_share_of_answered_conversations_escalated() -> None:
    for conversation in ("a", "b", "c", "d"):
        _event(EventKind.TURN_ANSWERED, conversation)
        _event(EventKind.TURN_ANSWERED, conversation)  # two turns, still one conversation
    _event(EventKind.ESCALATED, "a", data={"reason": "low confidence"})
    _event(EventKind.ESCALATED, "z")  # escalated without an answered turn in the window: not in the denominator

    assert _q("escalation_rate") == pytest.approx(1 / 4)


def test_a_slice_counts_the_conversations_with_an_answered_turn_of_that_slice() -> None:
    _event(EventKind.TURN_ANSWERED, "a", intent="refund_request", data={"stage": 3, "responder": "embedded"})
    _event(EventKind.TURN_ANSWERED, "a", intent="where_is_my_order", data={"stage": 4, "responder": "embedded"})
    _event(EventKind.CLOSED, "a")
    _event(EventKind.CSAT, "a", data={"score": 5})
    _event(EventKind.TURN_ANSWERED, "b", intent="refund_request", data={"stage": 4, "prompt_version": "oa:v2"})
    _event(EventKind.ESCALATED, "b")
    _event(EventKind.CLOSED, "b")
    _event(EventKind.CSAT, "b", data={"score": 1})

    def read(metric: str, **slices: object) -> float | None:
        return metric_value(MetricQuery("web_chat", metric, **slices))  # type: ignore[arg-type]

    assert read("containment_rate", stage=3) == 1.0
    assert read("containment_rate", stage=4) == 0.5  # both had a stage-4 turn
    assert read("containment_rate", prompt_version="oa:v2") == 0.0
    assert read("containment_rate", intent="refund_request", responder="embedded") == 1.0
    assert read("containment_rate", stage=5) is None
    assert read("csat", stage=4) == 3.0 and read("csat", responder="embedded") == 5.0
    # A turn metric: the answered turns of that slice (b's only turn was at stage 4, and it was escalated).
    assert read("escalation_rate", stage=4) == 0.5
    assert read("escalation_rate", stage=3) == 0.0


def test_failed_retrieval_for_a_slice_counts_the_questions_asked_in_turns_of_that_slice() -> None:
    for turn, stage, kind in ((1, 3, EventKind.KNOWLEDGE_UNKNOWN), (2, 4, EventKind.KNOWLEDGE_ANSWERED)):
        _event(EventKind.TURN_ANSWERED, "a", intent="shipping_times", data={"turn": turn, "stage": stage})
        _event(kind, "a", intent="shipping_times", data={"turn": turn})

    def read(**slices: object) -> float | None:
        return metric_value(MetricQuery("web_chat", "failed_retrieval_rate", **slices))  # type: ignore[arg-type]

    assert read() == 0.5
    assert read(stage=3) == 1.0
    assert read(stage=4) == 0.0
    assert read(intent="shipping_times", stage=4) == 0.0
    assert read(intent="returns", stage=4) is None


def test_each_provider_is_one_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    _event(EventKind.CLOSED, "a")
    _event(EventKind.CSAT, "a", data={"score": 3})
    for metric in ("containment_rate", "csat", "failed_retrieval_rate", "escalation_rate"):
        for query in (MetricQuery("web_chat", metric), MetricQuery("web_chat", metric, stage=3, responder="x")):
            with django_assert_num_queries(1):
                METRIC_PROVIDERS[metric](query)
    assert connection.vendor == "postgresql"


def test_containment_by_intent_reads_each_intent_as_the_provider_does_in_one_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    from analytics.metrics import containment_by_intent

    _event(EventKind.TURN_ANSWERED, "a", intent="where_is_my_order", data={"stage": 3})
    _event(EventKind.TURN_ANSWERED, "a", intent="refund_request", data={"stage": 2})  # two intents, one conversation
    _event(EventKind.CLOSED, "a")
    _event(EventKind.TURN_ANSWERED, "b", intent="refund_request", data={"stage": 3})
    _event(EventKind.ESCALATED, "b")
    _event(EventKind.CLOSED, "b")
    _event(EventKind.TURN_ANSWERED, "c", intent="refund_request", data={"stage": 3})
    _event(EventKind.TRAFFIC_TO_PERSON, "c")  # the traffic share's: never counted
    _event(EventKind.CLOSED, "c")
    _event(EventKind.TURN_ANSWERED, "d", intent="where_is_my_order", data={"stage": 3})
    _event(EventKind.CLOSED, "d", days_ago=10)  # closed before the window
    _event(EventKind.TURN_ANSWERED, "e", intent="where_is_my_order", channel="email")  # another channel
    _event(EventKind.CLOSED, "e", channel="email")
    intents = ["where_is_my_order", "refund_request", "cancel_subscription"]

    for stage in (None, 3):
        query = MetricQuery("web_chat", "containment_rate", window_days=7, stage=stage)
        with django_assert_num_queries(1):
            together = containment_by_intent(query, intents)
        for intent in intents:
            alone = metric_read(MetricQuery("web_chat", "containment_rate", intent=intent, window_days=7, stage=stage))
            assert (together[intent].value, together[intent].n, together[intent].part) == (
                alone.value,
                alone.n or 0,
                alone.part if alone.n else 0,
            ), (stage, intent)
    assert containment_by_intent(MetricQuery("web_chat", "containment_rate"), intents)["refund_request"].n == 2

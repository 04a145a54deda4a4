"""The resolution metrics (first-contact, durable, deflection), the reopen rate, approval turnaround and action
outcomes per tier, on constructed conversations: each definition with its edges, matured conversations only, and
slices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agent.models import Conversation
from agent.services import conversation_close
from analytics.actions import ACTION_OUTCOMES, action_outcomes
from analytics.models import AnalyticsEvent, EventKind
from governance.metrics import METRIC_PROVIDERS, METRICS, MetricQuery, metric_read
from governance.tests.factories import ActionPolicyFactory

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def _on(days_ago: float, kind: str, conversation: str, *, channel: str = "web_chat", intent: str = "", **data: object):  # type: ignore[no-untyped-def]
    """An event ``days_ago`` days before now (events are append-only: each is inserted with its time)."""
    return AnalyticsEvent.objects.create(
        kind=kind,
        conversation_id=conversation,
        channel=channel,
        intent=intent,
        data=data,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def _conversation(name: str, *, closed_days_ago: float = 10, intent: str = "refund_request", **turn: object) -> None:
    """A conversation the agent answered about ``intent`` and that closed ``closed_days_ago`` days ago."""
    _on(closed_days_ago + 0.01, EventKind.TURN_ANSWERED, name, intent=intent, **turn)
    _on(closed_days_ago, EventKind.CLOSED, name)


def _escalated(name: str, *, ticket: bool = True, closed_days_ago: float = 10) -> None:
    _on(closed_days_ago + 0.005, EventKind.ESCALATED, name, reason="customer asked for a person", ticket=ticket)


def _ticket(kind: str, name: str, days_ago: float, ticket: str = "") -> None:
    _on(days_ago, kind, name, ticket=ticket or f"T-{name}", source="webhook", connector="helpdesk", status="x")


def _returned(name: str, *, by: str, after_days: float = 2, reached_person: bool = False, closed_days_ago=10) -> None:  # type: ignore[no-untyped-def]
    _on(
        closed_days_ago - after_days,
        EventKind.RETURNED_ON_TOPIC,
        name,
        intent="refund_request",
        by=by,
        seconds_after_close=after_days * DAY,
        reached_person=reached_person,
    )


def _read(metric: str, **slices: object):  # type: ignore[no-untyped-def]
    return metric_read(MetricQuery("web_chat", metric, window_days=30, **slices))  # type: ignore[arg-type]


def _share(metric: str, **slices: object) -> tuple[int | None, int | None]:
    reading = _read(metric, **slices)
    return reading.part, reading.n


def test_analytics_registers_the_resolution_metrics_with_governance() -> None:
    for metric in (
        "reopen_rate",
        "first_contact_resolution",
        "durable_resolution",
        "deflection_rate",
        "approval_turnaround_s",
    ):
        assert metric in METRIC_PROVIDERS and metric in METRICS


def test_an_escalation_counts_as_resolved_once_its_ticket_is_solved_within_the_window() -> None:
    _conversation("ai-alone")  # no ticket: resolved at its close
    _conversation("solved")
    _escalated("solved")
    _ticket(EventKind.TICKET_SOLVED, "solved", days_ago=8)
    _conversation("person-no-ticket")
    _on(10.005, EventKind.HUMAN_TOOK_OVER, "person-no-ticket")  # a person closed it without a ticket: resolved
    _conversation("below-stage-3")
    _escalated("below-stage-3", ticket=False)  # waited for a person, no ticket: resolved when closed
    _conversation("unsolved")
    _escalated("unsolved")
    _conversation("solved-late")
    _escalated("solved-late")
    _ticket(EventKind.TICKET_SOLVED, "solved-late", days_ago=1)  # 9 days after the close: after the window

    # Resolved: ai-alone, solved, person-no-ticket, below-stage-3; all four stayed resolved.
    assert _share("durable_resolution") == (4, 4)
    assert _share("first_contact_resolution") == (4, 6)


def test_a_reopened_ticket_is_neither_durable_nor_a_first_contact_resolution() -> None:
    _conversation("reopened")
    _escalated("reopened")
    _ticket(EventKind.TICKET_SOLVED, "reopened", days_ago=9)
    _ticket(EventKind.TICKET_REOPENED, "reopened", days_ago=8)
    _ticket(EventKind.TICKET_SOLVED, "reopened", days_ago=7)  # solved again: resolved, but not for good
    _conversation("reopened-after-the-window")
    _escalated("reopened-after-the-window")
    _ticket(EventKind.TICKET_SOLVED, "reopened-after-the-window", days_ago=9)
    _ticket(EventKind.TICKET_REOPENED, "reopened-after-the-window", days_ago=1)

    assert _share("durable_resolution") == (1, 2)
    assert _share("first_contact_resolution") == (1, 2)


def test_a_return_on_the_topic_within_the_window_undoes_the_resolution_and_is_no_first_contact() -> None:
    _conversation("came-back")
    _conversation("the-return", closed_days_ago=8)
    _returned("came-back", by="the-return", after_days=2)
    _conversation("came-back-too-late")
    _returned("came-back-too-late", by="another", after_days=9)  # recorded under a longer window once

    durable = _read("durable_resolution")
    assert (durable.part, durable.n) == (2, 3)  # the return and came-back-too-late stayed resolved
    # The return itself is not a first contact: first contacts are came-back and came-back-too-late.
    assert _share("first_contact_resolution") == (1, 2)


def test_deflection_counts_the_conversations_that_never_needed_a_person_then_or_on_a_return() -> None:
    _conversation("deflected")
    _conversation("back-to-the-ai")
    _returned("back-to-the-ai", by="later-ai", reached_person=False)  # came back, the AI helped again: deflected
    _conversation("back-to-a-person")
    _returned("back-to-a-person", by="later-person", reached_person=True)
    _conversation("escalated")
    _escalated("escalated")
    _ticket(EventKind.TICKET_SOLVED, "escalated", days_ago=9)
    _conversation("taken-over")
    _on(10.005, EventKind.HUMAN_TOOK_OVER, "taken-over")

    assert _share("deflection_rate") == (2, 5)


def test_only_matured_conversations_count_and_none_matured_is_unknown_saying_why(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_RETURN_WINDOW_DAYS = 7
    _conversation("fresh", closed_days_ago=2)
    _conversation("almost", closed_days_ago=6.9)

    for metric in ("first_contact_resolution", "durable_resolution", "deflection_rate"):
        reading = _read(metric)
        assert reading.value is None and reading.n == 0
        assert "none of the 2 conversations closed in the range has finished its 7-day" in reading.error

    _conversation("matured", closed_days_ago=7.1)
    assert _share("deflection_rate") == (1, 1)
    settings.STEWARD_RETURN_WINDOW_DAYS = 1  # a shorter window: all three have matured
    assert _share("deflection_rate") == (3, 3)
    # Nothing closed at all: unknown, with nothing to explain.
    empty = metric_read(MetricQuery("email", "durable_resolution", window_days=30))
    assert (empty.value, empty.n, empty.error) == (None, 0, "")


def test_the_conversations_the_traffic_share_gave_to_a_person_and_other_channels_are_left_out() -> None:
    _conversation("ai")
    _conversation("held-back")
    _on(10.02, EventKind.TRAFFIC_TO_PERSON, "held-back", bucket=80, traffic_percent=50)
    _on(10, EventKind.CLOSED, "by-mail", channel="email")

    for metric in ("first_contact_resolution", "durable_resolution", "deflection_rate"):
        assert _share(metric) == (1, 1)


def test_a_closed_test_conversation_counts_in_no_resolution_metric() -> None:
    rehearsal = Conversation.objects.create(channel="web_chat", is_test=True, customer_id="C-1")
    conversation_close(conversation_id=rehearsal.pk, actor=None)

    assert not AnalyticsEvent.objects.filter(conversation_id=str(rehearsal.pk)).exists()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("analytics.resolution.return_window_days", lambda: 0)  # every closed conversation has matured
        for metric in ("first_contact_resolution", "durable_resolution", "deflection_rate"):
            assert _share(metric) == (0, 0)


def test_a_slice_counts_the_conversations_with_a_turn_of_that_slice() -> None:
    _conversation("stage-3", stage=3, responder="embedded", prompt_version="embedded:v1")
    _conversation("stage-4", intent="where_is_my_order", stage=4, responder="openai_chat", prompt_version="oa:v2")
    _escalated("stage-4")
    _ticket(EventKind.TICKET_SOLVED, "stage-4", days_ago=9)
    _ticket(EventKind.TICKET_REOPENED, "stage-4", days_ago=8)

    assert _share("deflection_rate", stage=3) == (1, 1)
    assert _share("deflection_rate", stage=4) == (0, 1)
    assert _share("durable_resolution", responder="openai_chat") == (0, 1)
    assert _share("first_contact_resolution", prompt_version="embedded:v1") == (1, 1)
    assert _share("first_contact_resolution", intent="where_is_my_order") == (0, 1)
    assert _share("first_contact_resolution", intent="where_is_my_order", stage=3) == (0, 0)  # every part must match
    assert _share("reopen_rate", stage=4) == (1, 1)
    assert _share("reopen_rate", stage=3) == (0, 0)
    assert _share("deflection_rate", stage=5) == (0, 0)


def test_the_reopen_rate_counts_the_tickets_solved_in_the_range_that_were_reopened_afterwards() -> None:
    _ticket(EventKind.TICKET_SOLVED, "a", days_ago=5)
    _ticket(EventKind.TICKET_REOPENED, "a", days_ago=1)  # reopened after the solve: counts
    _ticket(EventKind.TICKET_SOLVED, "b", days_ago=5)
    _ticket(EventKind.TICKET_REOPENED, "b", days_ago=6)  # reopened before this solve: does not
    _ticket(EventKind.TICKET_SOLVED, "c", days_ago=5)
    _ticket(EventKind.TICKET_SOLVED, "c", days_ago=3)  # solved twice: one ticket
    _ticket(EventKind.TICKET_SOLVED, "d", days_ago=40)  # solved before the range
    _ticket(EventKind.TICKET_REOPENED, "d", days_ago=1)
    _ticket(EventKind.TICKET_SOLVED, "e", days_ago=5, ticket="T-1")
    _ticket(EventKind.TICKET_REOPENED, "e", days_ago=1, ticket="T-2")  # another ticket of the conversation
    _on(5, EventKind.TICKET_SOLVED, "f", channel="email", ticket="T-f")  # another channel

    assert _share("reopen_rate") == (1, 4)
    assert _read("reopen_rate").value == pytest.approx(0.25)


def test_approval_turnaround_averages_the_decisions_in_the_range_and_leaves_out_expired_requests() -> None:
    common = {"action": "refund", "tier": "approval_required", "approver": 1, "seconds_to_outcome": 1}
    _on(1, EventKind.APPROVAL_DECIDED, "a", request=1, outcome="executed", seconds_to_decision=600, **common)
    _on(1, EventKind.APPROVAL_DECIDED, "b", request=2, outcome="rejected", seconds_to_decision=1800, **common)
    _on(1, EventKind.APPROVAL_DECIDED, "c", request=3, outcome="expired", seconds_to_decision=86400, **common)
    _on(40, EventKind.APPROVAL_DECIDED, "d", request=4, outcome="executed", seconds_to_decision=5, **common)

    reading = _read("approval_turnaround_s")
    assert (reading.value, reading.n) == (1200.0, 2)
    assert metric_read(MetricQuery("email", "approval_turnaround_s")).value is None


def test_action_outcomes_are_counted_per_tier_with_the_tier_recorded_on_the_event() -> None:
    ActionPolicyFactory(action="subscription_pause", tier="automated")
    turn = {"turn": 7}
    refund = {"action": "refund", "tier": "approval_required", **turn}
    lookup = {"action": "order_status_lookup", "tier": "read_only", **turn}
    _on(1, EventKind.ACTION_EXECUTED, "a", decision="allow", reason="read-only lookup", **lookup)
    _on(1, EventKind.ACTION_PROPOSED, "a", decision="allow", reason="read-only lookup", **lookup)  # no outcome
    _on(1, EventKind.ACTION_PROPOSED, "a", decision="allow", reason="not found", **lookup)
    _on(1, EventKind.ACTION_PROPOSED, "a", decision="allow", reason="missing order_id", **lookup)
    _on(1, EventKind.ACTION_PROPOSED, "a", decision="allow", reason="commerce timed out", **lookup)
    _on(1, EventKind.ACTION_DENIED, "a", decision="deny", reason="needs verification", **refund)
    for request in (1, 2, 3):
        _on(1, EventKind.APPROVAL_REQUESTED, "b", decision="needs_approval", request=request, **refund)
    _on(0.5, EventKind.APPROVAL_DECIDED, "b", request=1, outcome="executed", action="refund", tier="approval_required")
    _on(0.5, EventKind.APPROVAL_DECIDED, "b", request=2, outcome="rejected", action="refund", tier="approval_required")
    # Recorded before turns carried the tier: the action's current policy tier, or unknown without a policy.
    _on(1, EventKind.ACTION_EXECUTED, "c", action="subscription_pause", decision="allow", reason="executed")
    _on(1, EventKind.ACTION_DENIED, "c", action="gift_card", decision="deny", reason="no action policy")
    _on(40, EventKind.ACTION_DENIED, "old", decision="deny", reason="too old", **refund)

    outcomes = action_outcomes(MetricQuery("web_chat", "action_outcomes", window_days=7))

    assert set(outcomes) == {"read_only", "approval_required", "automated", "unknown"}
    assert all(list(counts) == list(ACTION_OUTCOMES) for counts in outcomes.values())
    assert {k: v for k, v in outcomes["read_only"].items() if v} == {"executed": 1, "not_found": 2, "failed": 1}
    assert {k: v for k, v in outcomes["approval_required"].items() if v} == {
        "executed": 1,
        "rejected": 1,
        "denied": 1,
        "awaiting_approval": 1,
    }
    assert outcomes["automated"]["executed"] == 1 and outcomes["unknown"]["denied"] == 1
    # A slice: the actions of the conversations with a turn of that slice.
    _on(1, EventKind.TURN_ANSWERED, "b", stage=4, turn=7)
    sliced = action_outcomes(MetricQuery("web_chat", "action_outcomes", window_days=7, stage=4))
    assert set(sliced) == {"approval_required"} and sliced["approval_required"]["denied"] == 0


def test_each_new_provider_is_one_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    _conversation("a")
    _ticket(EventKind.TICKET_SOLVED, "a", days_ago=9)
    for metric in (
        "reopen_rate",
        "first_contact_resolution",
        "durable_resolution",
        "deflection_rate",
        "approval_turnaround_s",
    ):
        with django_assert_num_queries(1):
            METRIC_PROVIDERS[metric](MetricQuery("web_chat", metric, window_days=30, stage=3))
    with django_assert_num_queries(1):
        action_outcomes(MetricQuery("web_chat", "action_outcomes"))

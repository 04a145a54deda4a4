"""The launch roadmap: intents ranked by the intent admin's launch score, with the volume measured from the last 30
days of traffic where there is some (the hand-entered score otherwise) and measured containment as an adjustment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agent.models import Conversation, Intent
from analytics.models import AnalyticsEvent, EventKind
from dashboard.roadmap import (
    HAND_ENTERED,
    MEASURED,
    containment_score,
    launch_score,
    roadmap_build,
    volume_score,
)
from governance.models import ActionTier, ChannelRollout
from governance.tests.factories import ActionPolicyFactory


def _intent(name: str, *, volume: int = 3, value: int = 3, complexity: int = 3, risk: int = 3, **extra: Any) -> Intent:
    return Intent.objects.create(
        name=name,
        label=name.replace("_", " ").capitalize(),
        examples=["x"],
        volume=volume,
        business_value=value,
        complexity=complexity,
        policy_risk=risk,
        **extra,
    )


def _traffic(intent: str, conversations: int, *, prefix: str = "", channel: str = "web_chat", **kwargs: Any) -> None:
    """``conversations`` conversations about ``intent``, answered now (``days_ago`` earlier; ``contained`` of them
    closed without a person, ``escalated`` closed after escalating)."""
    at = timezone.now() - timedelta(days=kwargs.get("days_ago", 0))
    contained, escalated = kwargs.get("contained", 0), kwargs.get("escalated", 0)
    for number in range(conversations):
        name = f"{prefix or intent}-{number}"
        events = [EventKind.TURN_ANSWERED]
        if number < contained + escalated:
            events += [EventKind.ESCALATED] if number >= contained else []
            events += [EventKind.CLOSED]
        for kind in events:
            AnalyticsEvent.objects.create(
                kind=kind, conversation_id=name, channel=channel, intent=intent, created_at=at
            )


def _rows(**kwargs: Any) -> dict[str, Any]:
    return {row.intent.name: row for row in roadmap_build(**kwargs).rows}


# --- Scores (pure) -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conversations", "total", "score"),
    [(0, 100, None), (5, 0, None), (1, 100, 1), (2, 100, 2), (5, 100, 3), (9, 100, 3), (10, 100, 4), (20, 100, 5)],
)
def test_measured_conversations_map_to_1_to_5_by_their_share(conversations: int, total: int, score: int) -> None:
    assert volume_score(conversations, total) == score


@pytest.mark.parametrize(
    ("contained", "closed", "score"),
    [(9, 9, None), (0, 10, 1), (1, 10, 1), (2, 10, 2), (5, 10, 3), (6, 10, 4), (7, 10, 4), (8, 10, 5), (10, 10, 5)],
)
def test_measured_containment_maps_to_1_to_5_in_steps_of_20_percent(contained: int, closed: int, score: int) -> None:
    assert containment_score(contained, closed) == score


def test_without_measured_containment_the_score_is_the_intent_admins() -> None:
    assert launch_score(volume=5, business_value=4, complexity=1, policy_risk=1) == 7  # as agent.admin ranks it
    assert launch_score(volume=5, business_value=4, complexity=1, policy_risk=1, containment=3) == 7
    assert launch_score(volume=5, business_value=4, complexity=1, policy_risk=1, containment=5) == 9
    assert launch_score(volume=5, business_value=4, complexity=1, policy_risk=1, containment=1) == 5


# --- The roadmap ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_measured_volume_overrides_the_hand_entered_score_only_where_there_is_traffic() -> None:
    _intent("shipping_times", volume=1)  # guessed rare
    _intent("refund_request", volume=5)  # guessed frequent, no traffic yet
    _intent("opening_hours", volume=4)
    _traffic("shipping_times", 6)  # 6 of 10: 60%
    _traffic("opening_hours", 1)  # 1 of 10: 10%
    _traffic("", 3, prefix="out-of-scope")  # answered without an intent: in the total only

    rows = _rows()

    shipping, refund, hours = rows["shipping_times"], rows["refund_request"], rows["opening_hours"]
    assert (shipping.volume, shipping.volume_source, shipping.counts.conversations) == (5, MEASURED, 6)
    assert (hours.volume, hours.volume_source) == (4, MEASURED)
    assert (refund.volume, refund.volume_source, refund.measured_volume) == (5, HAND_ENTERED, None)
    assert shipping.share == pytest.approx(0.6)
    assert (shipping.hand_score, shipping.score) == (1 + 3 - 3 - 3, 5 + 3 - 3 - 3)


@pytest.mark.django_db
def test_traffic_older_than_30_days_and_test_conversations_do_not_measure_volume() -> None:
    _intent("shipping_times", volume=2)
    _traffic("shipping_times", 5, days_ago=31)
    suite_run = Conversation.objects.create(is_test=True)
    AnalyticsEvent.objects.create(
        kind=EventKind.TURN_ANSWERED, conversation_id=str(suite_run.pk), channel="web_chat", intent="shipping_times"
    )

    row = _rows()["shipping_times"]

    assert (row.counts.conversations, row.volume, row.volume_source) == (0, 2, HAND_ENTERED)


@pytest.mark.django_db
def test_intents_are_ranked_by_score_with_ties_sharing_a_rank() -> None:
    _intent("refund_request", volume=3, complexity=4, risk=5, value=4)  # -2
    _intent("shipping_times", volume=5, complexity=1, risk=1, value=4)  # 7
    _intent("opening_hours", volume=2, complexity=1, risk=1, value=2)  # 2
    _intent("cancel_subscription", volume=3, complexity=3, risk=4, value=3)  # -1
    _intent("store_locations", volume=1, complexity=1, risk=1, value=3)  # 2

    ranked = [(row.rank, row.intent.name, row.score) for row in roadmap_build().rows]

    assert ranked == [
        (1, "shipping_times", 7),
        (2, "opening_hours", 2),
        (2, "store_locations", 2),
        (3, "cancel_subscription", -1),
        (4, "refund_request", -2),
    ]


@pytest.mark.django_db
def test_measured_traffic_and_containment_move_an_intent_up_the_roadmap() -> None:
    _intent("shipping_times", volume=4, complexity=2, risk=1, value=3)  # hand-entered 4
    _intent("cancel_subscription", volume=1, complexity=2, risk=2, value=3)  # hand-entered 0
    _traffic("shipping_times", 10, contained=2, escalated=8)  # 14% of traffic → 4; contained 20% → 2, −1
    _traffic("cancel_subscription", 60, contained=10)  # 86% of traffic → 5; contained 10 of 10 → 5, +2

    rows = roadmap_build().rows

    assert [row.intent.name for row in rows] == ["cancel_subscription", "shipping_times"]
    first, second = rows
    assert (first.volume, first.containment, first.hand_score, first.score) == (5, 5, 0, 5 + 3 - 2 - 2 + 2)
    assert (second.volume, second.containment, second.hand_score, second.score) == (4, 2, 4, 4 + 3 - 2 - 1 - 1)


@pytest.mark.django_db
def test_each_row_shows_the_stage_its_work_needs_and_whether_its_channels_run_it() -> None:
    ChannelRollout.objects.create(channel="web_chat", stage=2, traffic_percent=100)
    ChannelRollout.objects.create(channel="email", stage=4, traffic_percent=0)
    ActionPolicyFactory(action="subscription_pause", tier=ActionTier.AUTOMATED, enabled_from_stage=1)
    _intent("shipping_times")
    _intent("pause_subscription", route="action", action="subscription_pause")
    _traffic("shipping_times", 2, channel="sms")  # a channel without a rollout row stands at stage 1

    rows = _rows()

    knowledge, action = rows["shipping_times"], rows["pause_subscription"]
    assert knowledge.needs_stage == 1 and action.needs_stage == 4
    states = {state.channel: state for state in knowledge.channels}
    assert {name: state.live for name, state in states.items()} == {"email": False, "sms": True, "web_chat": True}
    assert states["sms"].had_traffic and states["sms"].stage == 1 and not states["web_chat"].had_traffic
    # stage 2 is below the automated action's 4; email reaches it but takes no traffic.
    assert not any(state.live for state in action.channels)


@pytest.mark.django_db
def test_a_channel_narrows_the_measurement_and_the_rollout_shown() -> None:
    ChannelRollout.objects.create(channel="web_chat", stage=3)
    _intent("shipping_times", volume=1)
    _traffic("shipping_times", 3, channel="email")

    row = _rows(channel="web_chat")["shipping_times"]

    assert (row.counts.conversations, row.volume_source) == (0, HAND_ENTERED)
    assert [(state.channel, state.stage) for state in row.channels] == [("web_chat", 3)]


@pytest.mark.django_db
def test_the_roadmap_takes_the_same_queries_however_many_intents(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    _intent("shipping_times")
    with django_assert_num_queries(8):  # intents, action policies, channel rollouts, five for the traffic
        roadmap_build()
    for number in range(6):
        _intent(f"intent_{number}")
        _traffic(f"intent_{number}", 2, channel=f"channel_{number % 2}")

    with django_assert_num_queries(8):
        roadmap_build()


# --- The page ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_lists_intents_in_launch_order_with_where_each_volume_comes_from(
    support_manager: User, client: Client
) -> None:
    _intent("refund_request", volume=2)
    _intent("shipping_times", volume=1)
    _traffic("shipping_times", 4)
    client.force_login(support_manager)

    response = client.get(reverse("dashboard:roadmap"))

    assert response.status_code == 200
    text = response.content.decode()
    assert text.index('data-intent="shipping_times"') < text.index('data-intent="refund_request"')
    assert 'data-volume-source="measured"' in text and 'data-volume-source="hand-entered"' in text


@pytest.mark.django_db
def test_a_bad_channel_is_a_400_with_the_reason(support_manager: User, client: Client) -> None:
    client.force_login(support_manager)

    response = client.get(reverse("dashboard:roadmap"), {"channel": "<script>"})

    assert response.status_code == 400
    assert "slug" in response.content.decode() and "roadmap" not in response.context

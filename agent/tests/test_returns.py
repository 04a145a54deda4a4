"""Returns on the same topic: recorded when the later conversation closes, on the earlier one, once per earlier
conversation and intent — only for the same customer, the same intent and within the window."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from agent.models import Conversation, Intent, Route, TurnTrace
from agent.returns import conversation_returns_record, same_customer
from agent.services import conversation_close, conversation_escalate
from agent.tests.clock import Clock
from analytics.models import AnalyticsEvent, EventKind

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def _conversation(*intents: str, channel: str = "web_chat", is_test: bool = False, **customer: str) -> Conversation:
    conversation = Conversation.objects.create(channel=channel, is_test=is_test, **customer)
    for intent in intents:
        TurnTrace.objects.create(conversation=conversation, intent=intent, status=TurnTrace.Status.DONE)
    return conversation


def _close(conversation: Conversation) -> None:
    conversation_close(conversation_id=conversation.pk, actor=None, reason="resolved")


def _returns() -> list[AnalyticsEvent]:
    return list(AnalyticsEvent.objects.filter(kind=EventKind.RETURNED_ON_TOPIC).order_by("pk"))


def test_a_customer_back_about_the_same_intent_within_the_window_is_a_return_on_the_earlier_one(clock: Clock) -> None:
    earlier = _conversation("refund_request", "where_is_my_order", channel="email", customer_id="C-1")
    _close(earlier)
    clock.advance(3 * DAY)
    later = _conversation("refund_request", customer_id="C-1")
    clock.advance(600)
    _close(later)

    [event] = _returns()
    assert (event.conversation_id, event.channel, event.intent) == (str(earlier.pk), "email", "refund_request")
    assert event.data == {"by": str(later.pk), "seconds_after_close": 3 * DAY, "reached_person": False}


def test_a_return_is_recorded_once_per_earlier_conversation_and_intent(clock: Clock) -> None:
    earlier = _conversation("refund_request", "pause_subscription", customer_email="mara@example.com")
    _close(earlier)
    clock.advance(DAY)
    first_return = _conversation("refund_request", "pause_subscription", customer_email="Mara@Example.com")
    _close(first_return)
    clock.advance(DAY)
    second_return = _conversation("refund_request", customer_email="mara@example.com")
    _close(second_return)

    on_earlier = [e for e in _returns() if e.conversation_id == str(earlier.pk)]
    assert sorted(e.intent for e in on_earlier) == ["pause_subscription", "refund_request"]
    assert {e.data["by"] for e in on_earlier} == {str(first_return.pk)}  # the second return recorded nothing more
    # The first return is an earlier conversation of the second one too: one return on it, about their shared intent.
    [on_first] = [e for e in _returns() if e.conversation_id == str(first_return.pk)]
    assert (on_first.intent, on_first.data["by"]) == ("refund_request", str(second_return.pk))
    # Asked again (a retried close), nothing new is recorded.
    assert conversation_returns_record(conversation=second_return) == []
    assert len(_returns()) == 3


def test_a_return_that_reached_a_person_says_so(clock: Clock, support_agent: User) -> None:
    earlier = _conversation("refund_request", customer_id="C-1")
    _close(earlier)
    clock.advance(DAY)
    later = _conversation("refund_request", customer_id="C-1")
    conversation_escalate(conversation_id=later.pk, reason="customer asked for a person", ticket_id="T-9")
    _close(later)

    [event] = _returns()
    assert event.data["reached_person"] is True


@pytest.mark.parametrize(
    ("earlier_customer", "later_customer", "is_return"),
    [
        ({"customer_id": "C-1"}, {"customer_id": "C-1"}, True),
        ({"customer_id": "C-1", "customer_email": "mara@example.com"}, {"customer_email": "mara@example.com"}, True),
        ({"customer_email": "mara@example.com"}, {"customer_id": "C-1", "customer_email": "MARA@example.com"}, True),
        ({"customer_id": "C-1"}, {"customer_id": "C-2"}, False),
        (
            {"customer_id": "C-1", "customer_email": "a@example.com"},
            {"customer_id": "C-2", "customer_email": "a@example.com"},
            False,
        ),
        ({"customer_email": "mara@example.com"}, {"customer_email": "jon@example.com"}, False),
        ({}, {}, False),  # anonymous visitors: known by the conversation alone
    ],
)
def test_only_the_same_customer_returns(
    clock: Clock, earlier_customer: dict[str, str], later_customer: dict[str, str], is_return: bool
) -> None:
    _close(_conversation("refund_request", **earlier_customer))
    clock.advance(DAY)
    _close(_conversation("refund_request", **later_customer))

    assert len(_returns()) == int(is_return)


def test_a_different_intent_or_small_talk_is_no_return_on_the_topic(clock: Clock) -> None:
    Intent.objects.create(name="greeting", label="Greeting", route=Route.SMALLTALK)
    _close(_conversation("refund_request", "greeting", customer_id="C-1"))
    clock.advance(DAY)
    _close(_conversation("where_is_my_order", "greeting", customer_id="C-1"))

    assert _returns() == []


def test_a_customer_back_after_the_window_or_before_the_close_is_no_return(clock: Clock, settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_RETURN_WINDOW_DAYS = 7
    _close(_conversation("refund_request", customer_id="C-1"))
    clock.advance(7 * DAY + 60)
    _close(_conversation("refund_request", customer_id="C-1"))  # a minute past the 7 days

    still_open = _conversation("refund_request", customer_id="C-2")
    clock.advance(60)
    during = _conversation("refund_request", customer_id="C-2")  # started before the first one closed
    clock.advance(60)
    _close(still_open)
    _close(during)

    assert _returns() == []


def test_test_conversations_never_make_or_receive_a_return(clock: Clock) -> None:
    _close(_conversation("refund_request", customer_id="C-1", is_test=True))
    clock.advance(DAY)
    _close(_conversation("refund_request", customer_id="C-1"))
    clock.advance(DAY)
    _close(_conversation("refund_request", customer_id="C-2"))
    clock.advance(DAY)
    _close(_conversation("refund_request", customer_id="C-2", is_test=True))

    assert _returns() == []


def test_nobody_known_means_no_condition_to_match_others_by() -> None:
    assert same_customer(Conversation(customer_id="", customer_email="")) is None
    assert same_customer(Conversation(customer_id=" ", customer_email="")) is None

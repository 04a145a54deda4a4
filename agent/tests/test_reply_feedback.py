"""A customer's thumbs up or down on an agent reply (the ``feedback`` frame's service): which replies may be rated,
and one counted rating per reply. The frame itself, over a real daphne: tests/test_end_to_end_chat.py."""

from __future__ import annotations

import uuid

import pytest

from agent.messages import conversation_start, message_store_customer, message_store_reply
from agent.models import Author, Conversation, Message, TurnTrace
from agent.services import MAX_RATINGS_PER_REPLY, ReplyNotRateable, reply_feedback_record
from analytics.models import AnalyticsEvent, EventKind


def _answered(*, is_test: bool = False) -> tuple[Conversation, Message, Message]:
    """A conversation with a customer question and the agent's reply to it (with its turn's trace)."""
    conversation = conversation_start(is_test=is_test)
    question, _ = message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="Tea?")
    reply = message_store_reply(conversation_id=conversation.pk, author=Author.AGENT, text="We sell coffee only.")
    TurnTrace.objects.create(
        conversation=conversation, message_seqs=[question.seq], intent="product_question", reply=reply
    )
    return conversation, question, reply


def _feedback(conversation: Conversation) -> list[AnalyticsEvent]:
    return list(
        AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk), kind=EventKind.REPLY_FEEDBACK).order_by(
            "pk"
        )
    )


@pytest.mark.django_db
def test_a_thumbs_up_on_an_agent_reply_is_recorded_with_its_turn_and_intent() -> None:
    conversation, _, reply = _answered()

    assert reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=True) is True

    (event,) = _feedback(conversation)
    turn = TurnTrace.objects.get(reply=reply)
    assert (event.channel, event.intent) == ("web_chat", "product_question")
    assert event.data == {"seq": reply.seq, "helpful": True, "turn": turn.pk, "changed": False}


@pytest.mark.django_db
def test_the_same_rating_again_records_nothing_and_a_change_of_mind_is_recorded_as_a_change() -> None:
    conversation, _, reply = _answered()
    reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=True)

    assert reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=True) is False
    assert reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=False) is True

    assert [(e.data["helpful"], e.data["changed"]) for e in _feedback(conversation)] == [(True, False), (False, True)]


@pytest.mark.django_db
def test_a_reply_without_a_turn_such_as_an_approval_outcome_can_be_rated() -> None:
    conversation = conversation_start()
    told = message_store_reply(conversation_id=conversation.pk, author=Author.AGENT, text="Your refund was issued.")

    reply_feedback_record(conversation_id=conversation.pk, seq=told.seq, helpful=True)

    (event,) = _feedback(conversation)
    assert (event.intent, event.data["turn"]) == ("", None)


@pytest.mark.django_db
def test_the_customers_own_message_a_persons_reply_and_an_unknown_seq_are_refused() -> None:
    conversation, question, _ = _answered()
    note = message_store_reply(conversation_id=conversation.pk, author=Author.SYSTEM, text="You asked for a person.")

    for seq in (question.seq, note.seq):
        with pytest.raises(ReplyNotRateable) as refused:
            reply_feedback_record(conversation_id=conversation.pk, seq=seq, helpful=False)
        assert refused.value.code == "not_agent_reply"
    with pytest.raises(ReplyNotRateable) as unknown:
        reply_feedback_record(conversation_id=conversation.pk, seq=99, helpful=True)
    assert unknown.value.code == "unknown_seq"
    assert _feedback(conversation) == []


@pytest.mark.django_db
def test_another_conversations_reply_cannot_be_rated_from_this_one() -> None:
    mine = conversation_start()
    _, _, theirs = _answered()  # seq 2 there; this conversation has no message yet

    with pytest.raises(ReplyNotRateable) as refused:
        reply_feedback_record(conversation_id=mine.pk, seq=theirs.seq, helpful=True)

    assert refused.value.code == "unknown_seq"


@pytest.mark.django_db
def test_a_reply_rated_back_and_forth_too_often_is_refused() -> None:
    conversation, _, reply = _answered()
    for index in range(MAX_RATINGS_PER_REPLY):
        reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=index % 2 == 0)

    with pytest.raises(ReplyNotRateable) as refused:
        reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=MAX_RATINGS_PER_REPLY % 2 == 0)

    assert refused.value.code == "rate_limited"
    assert len(_feedback(conversation)) == MAX_RATINGS_PER_REPLY


@pytest.mark.django_db
def test_a_test_conversations_feedback_is_accepted_but_never_counted() -> None:
    conversation, _, reply = _answered(is_test=True)

    assert reply_feedback_record(conversation_id=conversation.pk, seq=reply.seq, helpful=True) is False

    assert _feedback(conversation) == []

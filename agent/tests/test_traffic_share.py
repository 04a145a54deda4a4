"""The traffic share (ChannelRollout.traffic_percent): which new conversations the AI takes, and what happens to the
others — straight to a person, recorded and told."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from django.core.cache import cache

from agent.handoff import conversation_traffic_route, held_back, traffic_subject
from agent.identity import identity_secret, identity_token_issue
from agent.messages import conversation_start, message_store_customer
from agent.models import Author, Conversation, Message, Owner
from agent.services import TRAFFIC_TO_PERSON_TEXT
from agent.turn import run_turn
from analytics.models import AnalyticsEvent, EventKind
from connectors.helpdesk_schema import ensure_helpdesk_schema, seed_helpdesk_connector
from governance.demo import seed_governance
from governance.gates import takes_conversation, traffic_bucket
from governance.models import AuditRecord, ChannelRollout

URL = "/api/chat/conversations/"


# --- The bucket: a pure function ------------------------------------------------------------------------------------


def test_the_same_id_always_falls_in_the_same_bucket() -> None:
    assert traffic_bucket("web_chat", "C-1001") == traffic_bucket("web_chat", "C-1001")
    assert [traffic_bucket("web_chat", f"C-{n}") for n in range(50)] == [
        traffic_bucket("web_chat", f"C-{n}") for n in range(50)
    ]


def test_buckets_run_from_0_to_99_and_spread_evenly() -> None:
    counts = Counter(traffic_bucket("web_chat", str(uuid.UUID(int=n))) for n in range(20_000))

    assert set(counts) == set(range(100))
    # 200 expected per bucket; a fair draw stays well within ±30% (about 4 standard deviations).
    assert all(140 <= count <= 260 for count in counts.values()), counts.most_common(3)


def test_a_customers_buckets_on_two_channels_are_independent() -> None:
    same = sum(traffic_bucket("web_chat", f"C-{n}") == traffic_bucket("email", f"C-{n}") for n in range(1000))
    assert same < 40  # about 10 by chance


def test_0_percent_takes_no_bucket_and_100_percent_takes_every_one() -> None:
    assert not any(takes_conversation(bucket, 0) for bucket in range(100))
    assert all(takes_conversation(bucket, 100) for bucket in range(100))
    assert sum(takes_conversation(bucket, 37) for bucket in range(100)) == 37


def test_widening_the_share_only_adds_conversations() -> None:
    for bucket in range(100):
        taken_at = [share for share in range(101) if takes_conversation(bucket, share)]
        assert taken_at == list(range(bucket + 1, 101))


# --- At conversation start ------------------------------------------------------------------------------------------


@pytest.fixture
def address() -> Iterator[str]:
    """A client address of this test's own, so its start limit is fresh (never cache.clear(): it flushes Redis)."""
    address = f"198.51.100.{random.randint(1, 254)}"
    cache.delete(f"throttle_anon_{address}")
    yield address
    cache.delete(f"throttle_anon_{address}")


def _rollout(stage: int, traffic_percent: int, channel: str = "web_chat") -> ChannelRollout:
    return ChannelRollout.objects.create(channel=channel, stage=stage, traffic_percent=traffic_percent)


def _start(client, address: str, **body: str) -> dict:  # type: ignore[no-untyped-def]
    response = client.post(URL, body, content_type="application/json", REMOTE_ADDR=address)
    assert response.status_code == 201, response.content
    return response.json()


def _say(conversation: Conversation, text: str = "Where is my order?") -> Conversation:
    """The customer's first message, and the turn it queues (run here, as a worker would)."""
    message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text=text)
    run_turn(str(conversation.pk))
    return Conversation.objects.get(pk=conversation.pk)


@pytest.mark.django_db(transaction=True)
def test_at_0_percent_a_conversations_first_message_goes_straight_to_a_person_recorded_and_told(
    client, address
) -> None:  # type: ignore[no-untyped-def]
    _rollout(stage=2, traffic_percent=0)

    started = _start(client, address)
    drawn = Conversation.objects.get(pk=started["id"])
    # Nothing is handed over for a panel that was only opened: the draw is noted, the conversation still the AI's.
    assert started["owner"] == "agent" and drawn.context["traffic"]["traffic_percent"] == 0
    assert not AnalyticsEvent.objects.exists()

    conversation = _say(drawn)

    assert conversation.owner == Owner.WAITING and "traffic" not in conversation.context
    assert conversation.escalation_reason.startswith("outside the AI's traffic share (0%)")
    # Stage 2 has no handoff capability: the console's waiting queue, no helpdesk ticket.
    assert conversation.ticket_id == "" and "no helpdesk ticket below rollout stage 3" in conversation.escalation_reason
    move = AuditRecord.objects.get(conversation_id=started["id"], decision="owner:waiting")
    assert move.reason == conversation.escalation_reason and move.actor_label
    event = AnalyticsEvent.objects.get(conversation_id=started["id"])
    assert event.kind == EventKind.TRAFFIC_TO_PERSON and event.channel == "web_chat"
    assert event.data | {"bucket": 0} == {
        "reason": conversation.escalation_reason,
        "bucket": 0,
        "by": "conversation",
        "traffic_percent": 0,
        "stage": 2,
        "ticket": False,
    }
    customer, note = Message.objects.filter(conversation=conversation).order_by("seq")
    assert customer.author == Author.CUSTOMER and customer.handled
    assert (note.author, note.text) == (Author.SYSTEM, TRAFFIC_TO_PERSON_TEXT)
    assert not Message.objects.filter(conversation=conversation, author=Author.AGENT).exists()


@pytest.mark.django_db(transaction=True)
def test_at_stage_3_a_conversation_outside_the_share_also_gets_a_helpdesk_ticket() -> None:
    seed_governance()  # the demo's owners and web_chat's rollout row
    ensure_helpdesk_schema()
    seed_helpdesk_connector()
    ChannelRollout.objects.filter(channel="web_chat").update(stage=3, traffic_percent=0)

    conversation = _say(conversation_traffic_route(conversation_start()), "My grinder is broken")

    assert conversation.owner == Owner.WAITING and conversation.ticket_id
    assert conversation.escalation_reason == "outside the AI's traffic share (0%)"
    event = AnalyticsEvent.objects.get(conversation_id=str(conversation.pk))
    assert event.kind == EventKind.TRAFFIC_TO_PERSON and event.data["ticket"] is True
    assert not AnalyticsEvent.objects.filter(kind=EventKind.ESCALATED).exists()  # not the AI's escalation


@pytest.mark.django_db
def test_at_100_percent_the_ai_takes_every_conversation(client, address) -> None:  # type: ignore[no-untyped-def]
    _rollout(stage=4, traffic_percent=100)

    owners = {_start(client, address)["owner"] for _ in range(10)}

    assert owners == {"agent"}
    assert not AnalyticsEvent.objects.filter(kind=EventKind.TRAFFIC_TO_PERSON).exists()
    assert not Message.objects.exists()
    assert not Conversation.objects.filter(context__has_key="traffic").exists()


@pytest.mark.django_db
def test_a_channel_without_a_rollout_row_gives_the_ai_every_conversation() -> None:
    assert conversation_traffic_route(conversation_start(channel="email")).owner == Owner.AGENT


@pytest.mark.django_db
def test_at_50_percent_each_conversation_is_decided_by_its_own_bucket() -> None:
    _rollout(stage=3, traffic_percent=50)

    routed = [conversation_traffic_route(conversation_start()) for _ in range(30)]

    for conversation in routed:
        assert held_back(conversation) is (traffic_bucket("web_chat", str(conversation.pk)) >= 50)
    held = [c for c in routed if held_back(c)]
    assert 0 < len(held) < 30  # 30 fair draws at 50%: all on one side has odds of 1 in 500 million


def _customer_in(share: int, *, inside: bool) -> str:
    """A customer id whose bucket is inside (or outside) ``share``."""
    return next(
        f"C-{n}" for n in range(1000) if takes_conversation(traffic_bucket("web_chat", f"C-{n}"), share) is inside
    )


@pytest.mark.django_db
def test_a_verified_customer_keeps_their_side_of_the_share_in_every_conversation(client, address, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True  # the development identity key
    secret = identity_secret(purpose="sign a token for a test")
    _rollout(stage=2, traffic_percent=50)
    inside, outside = _customer_in(50, inside=True), _customer_in(50, inside=False)

    def start_as(customer_id: str) -> bool:
        token = identity_token_issue(customer_id, "", secret=secret, ttl_seconds=300)
        return held_back(Conversation.objects.get(pk=_start(client, address, identity_token=token)["id"]))

    assert [start_as(inside) for _ in range(4)] == [False] * 4
    assert [start_as(outside) for _ in range(4)] == [True] * 4
    assert Conversation.objects.filter(context__traffic__by="customer").count() == 4


@pytest.mark.django_db
def test_an_unproven_customer_id_does_not_choose_the_bucket() -> None:
    conversation = conversation_start()
    conversation.customer_id = "C-1001"  # noted, not proven (anonymous)

    assert traffic_subject(conversation) == (str(conversation.pk), "conversation")


@pytest.mark.django_db
def test_a_regression_suites_test_conversation_is_never_held_back() -> None:
    _rollout(stage=3, traffic_percent=0)

    conversation = conversation_traffic_route(conversation_start(is_test=True))

    assert conversation.owner == Owner.AGENT and not held_back(conversation)
    assert not AnalyticsEvent.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_ai_never_answers_a_conversation_outside_its_share() -> None:
    _rollout(stage=2, traffic_percent=0)
    conversation = conversation_traffic_route(conversation_start())

    conversation = _say(conversation)
    message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="Hello?")
    run_turn(str(conversation.pk))

    assert conversation.owner == Owner.WAITING
    assert not Message.objects.filter(conversation=conversation, author=Author.AGENT).exists()
    assert not Message.objects.filter(conversation=conversation, author=Author.CUSTOMER, handled=False).exists()

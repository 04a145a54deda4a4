"""Ticket outcomes in analytics: an escalated conversation's ticket solved, reopened and first answered by a person,
from Zendesk and Chatwoot webhooks and from people working tickets in the embedded helpdesk — once per change, on the
right conversation, never for a test conversation (docs/connectors/webhooks.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from helpdesk.models import FollowUp, Ticket
from helpdesk.update_ticket import update_ticket

from agent.messages import conversation_start
from agent.models import Conversation
from agent.services import conversation_escalate
from agent.ticket_outcomes import TICKET_KINDS, ticket_status_change
from analytics.models import AnalyticsEvent, EventKind
from connectors.adapters.helpdesk_embedded import EmbeddedHelpdeskAdapter
from connectors.helpdesk_schema import ensure_helpdesk_schema, seed_helpdesk_connector
from connectors.models import Connector, WriteReceipt
from connectors.tests.test_helpdesk_adapter import make_draft
from connectors.tests.test_webhooks import (
    TICKET_CREATED,
    chatwoot_connector,
    chatwoot_message_event,
    chatwoot_status_event,
    post_chatwoot,
    post_zendesk,
    zendesk_comment_event,
    zendesk_connector,
    zendesk_status_event,
)
from connectors.webhooks import OPEN, SOLVED
from governance.roles import Role
from governance.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def escalated(ticket_id: str, *, filed_by: Connector | None = None, is_test: bool = False) -> Conversation:
    """A conversation handed to a person with a helpdesk ticket; ``filed_by``: the connector whose write receipt
    says it filed the ticket (as the escalation's gateway call leaves one)."""
    conversation = conversation_start(channel="email", is_test=is_test)
    conversation = conversation_escalate(
        conversation_id=conversation.pk, reason="asked for a person", ticket_id=ticket_id
    )
    if filed_by is not None:
        WriteReceipt.objects.create(
            idempotency_key=f"{conversation.pk}:escalation",
            connector=filed_by,
            operation="ticket_create",
            state=WriteReceipt.State.DONE,
            result={"value": {"id": ticket_id}},
        )
    return conversation


def outcomes(conversation: Conversation) -> list[tuple[str, dict[str, Any]]]:
    events = AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk), kind__in=TICKET_KINDS)
    for event in events:
        assert (event.channel, event.intent) == (conversation.channel, "")
    return [(event.kind, event.data) for event in events.order_by("pk")]


def kinds(conversation: Conversation) -> list[str]:
    return [kind for kind, _ in outcomes(conversation)]


def since_ticket(at: datetime) -> float:
    return round((at - TICKET_CREATED).total_seconds(), 1)


@pytest.fixture
def zendesk() -> Connector:
    return zendesk_connector()


@pytest.fixture
def chatwoot() -> Connector:
    return chatwoot_connector()


# --- Zendesk ---------------------------------------------------------------------------------------------------------


def test_solved_reopened_and_solved_again_in_zendesk_record_three_events_with_the_helpdesks_times(
    client: Client, zendesk: Connector
) -> None:
    conversation = escalated("4242", filed_by=zendesk)
    now = timezone.now().replace(microsecond=250000)
    times = [now - timedelta(minutes=3), now - timedelta(minutes=2), now - timedelta(minutes=1)]
    for current, at in zip(("SOLVED", "OPEN", "CLOSED"), times, strict=True):
        response = post_zendesk(client, zendesk, zendesk_status_event("4242", current, at=at))
        assert response.status_code == 200
        assert response.json()["status"] == "recorded"

    def data(status: str, at: datetime) -> dict[str, Any]:
        return {
            "ticket": "4242",
            "source": "zendesk",
            "connector": "zendesk",
            "status": status,
            "at": at.isoformat(),
            "seconds_since_ticket": since_ticket(at),
        }

    assert outcomes(conversation) == [
        (EventKind.TICKET_SOLVED, data("solved", times[0])),
        (EventKind.TICKET_REOPENED, data("open", times[1])),
        (EventKind.TICKET_SOLVED, data("closed", times[2])),
    ]


def test_a_status_that_changes_nothing_records_nothing(client: Client, zendesk: Connector) -> None:
    conversation = escalated("4242", filed_by=zendesk)
    # Open → pending is no outcome; solved → closed is still solved.
    for current in ("PENDING", "SOLVED", "CLOSED"):
        post_zendesk(client, zendesk, zendesk_status_event("4242", current))
    response = post_zendesk(client, zendesk, zendesk_status_event("4242", "CLOSED"))
    assert response.json() == {"status": "ignored", "reason": "Nothing changed for this conversation."}
    assert kinds(conversation) == [EventKind.TICKET_SOLVED]


def test_a_persons_first_public_reply_in_zendesk_is_recorded_once(client: Client, zendesk: Connector) -> None:
    conversation = escalated("4242", filed_by=zendesk)
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    post_zendesk(client, zendesk, zendesk_comment_event("4242", public=False, at=at))  # an internal note
    post_zendesk(client, zendesk, zendesk_comment_event("4242", staff=False, at=at))  # the customer writing
    assert kinds(conversation) == []
    first = post_zendesk(client, zendesk, zendesk_comment_event("4242", at=at))
    second = post_zendesk(client, zendesk, zendesk_comment_event("4242"))
    assert first.json() == {"status": "recorded", "events": [EventKind.TICKET_FIRST_REPLY]}
    assert second.json()["status"] == "ignored"
    assert outcomes(conversation) == [
        (
            EventKind.TICKET_FIRST_REPLY,
            {
                "ticket": "4242",
                "source": "zendesk",
                "connector": "zendesk",
                "status": "open",
                "at": at.isoformat(),
                "seconds_since_ticket": since_ticket(at),
            },
        )
    ]


def test_a_replayed_delivery_is_refused_and_records_one_event(client: Client, zendesk: Connector) -> None:
    conversation = escalated("4242", filed_by=zendesk)
    solved = zendesk_status_event("4242", "SOLVED")
    assert post_zendesk(client, zendesk, solved).status_code == 200
    assert post_zendesk(client, zendesk, zendesk_status_event("4242", "OPEN")).status_code == 200
    assert post_zendesk(client, zendesk, solved).status_code == 409  # the solve again would be a new "change"
    assert kinds(conversation) == [EventKind.TICKET_SOLVED, EventKind.TICKET_REOPENED]


def test_a_status_older_than_the_last_recorded_one_changes_nothing(client: Client, zendesk: Connector) -> None:
    conversation = escalated("4242", filed_by=zendesk)
    now = timezone.now()
    post_zendesk(client, zendesk, zendesk_status_event("4242", "SOLVED", at=now - timedelta(minutes=1)))
    late = post_zendesk(client, zendesk, zendesk_status_event("4242", "OPEN", at=now - timedelta(minutes=2)))
    assert late.json()["status"] == "ignored"
    post_zendesk(client, zendesk, zendesk_status_event("4242", "OPEN", at=now))
    assert kinds(conversation) == [EventKind.TICKET_SOLVED, EventKind.TICKET_REOPENED]


def test_a_ticket_no_conversation_has_records_nothing(client: Client, zendesk: Connector) -> None:
    escalated("4242", filed_by=zendesk)
    response = post_zendesk(client, zendesk, zendesk_status_event("999", "SOLVED"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "Ticket 999 belongs to no conversation."}
    assert not AnalyticsEvent.objects.filter(kind__in=TICKET_KINDS).exists()


def test_a_test_conversations_ticket_records_nothing(client: Client, zendesk: Connector) -> None:
    conversation = escalated("4242", filed_by=zendesk, is_test=True)
    assert post_zendesk(client, zendesk, zendesk_comment_event("4242")).json()["status"] == "ignored"
    assert post_zendesk(client, zendesk, zendesk_status_event("4242", "SOLVED")).json()["status"] == "ignored"
    assert not AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk)).exists()


def test_the_same_ticket_number_in_another_helpdesk_is_not_this_conversations(
    client: Client, zendesk: Connector
) -> None:
    ours = escalated("4242", filed_by=zendesk)
    other_helpdesk = Connector.objects.create(
        key="helpdesk", name="Embedded", family="helpdesk", adapter="helpdesk_embedded", owner=UserFactory()
    )
    theirs = escalated("4242", filed_by=other_helpdesk)  # newer, same number, filed in the embedded helpdesk
    post_zendesk(client, zendesk, zendesk_status_event("4242", "SOLVED"))
    assert kinds(ours) == [EventKind.TICKET_SOLVED]
    assert kinds(theirs) == []


def test_a_conversation_whose_escalation_left_no_receipt_is_still_its_tickets(
    client: Client, zendesk: Connector
) -> None:
    conversation = escalated("4242")
    post_zendesk(client, zendesk, zendesk_status_event("4242", "SOLVED"))
    assert kinds(conversation) == [EventKind.TICKET_SOLVED]


# --- Chatwoot --------------------------------------------------------------------------------------------------------


def test_a_chatwoot_agents_reply_then_resolve_and_reopen_record_their_events(
    client: Client, chatwoot: Connector
) -> None:
    conversation = escalated("55", filed_by=chatwoot)
    replied = timezone.now().replace(microsecond=0) - timedelta(minutes=3)
    resolved = timezone.now().replace(microsecond=500000) - timedelta(minutes=2)
    reopened = resolved + timedelta(minutes=1)
    post_chatwoot(client, chatwoot, chatwoot_message_event(55, message_id=900, private=True))  # a private note
    post_chatwoot(client, chatwoot, chatwoot_message_event(55, message_id=901, at=replied))
    post_chatwoot(client, chatwoot, chatwoot_message_event(55, message_id=902))
    post_chatwoot(client, chatwoot, chatwoot_status_event(55, "resolved", at=resolved))
    post_chatwoot(client, chatwoot, chatwoot_status_event(55, "pending", at=reopened))

    def data(status: str, at: datetime) -> dict[str, Any]:
        return {
            "ticket": "55",
            "source": "chatwoot",
            "connector": "chatwoot",
            "status": status,
            "at": at.astimezone(UTC).isoformat(),
            "seconds_since_ticket": since_ticket(at),
        }

    assert outcomes(conversation) == [
        (EventKind.TICKET_FIRST_REPLY, data("open", replied)),
        (EventKind.TICKET_SOLVED, data("resolved", resolved)),
        (EventKind.TICKET_REOPENED, data("pending", reopened)),
    ]


# --- The embedded helpdesk, worked by a person -----------------------------------------------------------------------


@pytest.fixture
def embedded() -> EmbeddedHelpdeskAdapter:
    ensure_helpdesk_schema()
    UserFactory(username="maya.ops", roles=[Role.SUPPORT_ADMIN])
    seed_helpdesk_connector()
    return EmbeddedHelpdeskAdapter(Connector.objects.get(key="helpdesk"), credential=None)


def file_ticket(adapter: EmbeddedHelpdeskAdapter, *, is_test: bool = False) -> tuple[Conversation, Ticket]:
    """Escalate a conversation to the embedded helpdesk as the handoff does: ticket by its key, then the move."""
    conversation = conversation_start(channel="email", is_test=is_test)
    key = f"{conversation.pk}:escalation"
    ref = adapter.create_ticket(make_draft(conversation_id=str(conversation.pk)), idempotency_key=key)
    conversation = conversation_escalate(conversation_id=conversation.pk, reason="asked for a person", ticket_id=ref.id)
    return conversation, Ticket.objects.get(pk=ref.id)


def test_a_person_replying_solving_and_reopening_in_the_embedded_helpdesk_records_each_outcome(
    embedded: EmbeddedHelpdeskAdapter, support_agent: User
) -> None:
    conversation, ticket = file_ticket(embedded)
    assert kinds(conversation) == []  # filing the ticket is no outcome

    reply = update_ticket(
        support_agent, ticket, comment="A new grinder is on its way.", public=True, new_status=Ticket.RESOLVED_STATUS
    )
    update_ticket(
        support_agent, ticket, comment="Customer wrote back: still broken.", new_status=Ticket.REOPENED_STATUS
    )
    update_ticket(support_agent, ticket, comment="Second reply.", public=True)
    closed = update_ticket(support_agent, ticket, new_status=Ticket.CLOSED_STATUS)

    def data(status: str, followup: FollowUp) -> dict[str, Any]:
        return {
            "ticket": str(ticket.pk),
            "source": "embedded",
            "connector": "",
            "status": status,
            "at": followup.date.isoformat(),
            "seconds_since_ticket": round((followup.date - ticket.created).total_seconds(), 1),
        }

    recorded = outcomes(conversation)
    assert recorded[:2] == [
        (EventKind.TICKET_FIRST_REPLY, data("resolved", reply)),
        (EventKind.TICKET_SOLVED, data("resolved", reply)),
    ]
    assert [kind for kind, _ in recorded[2:]] == [EventKind.TICKET_REOPENED, EventKind.TICKET_SOLVED]
    assert recorded[2][1]["status"] == "reopened"
    assert recorded[3][1] == data("closed", closed)


def test_a_bulk_close_in_the_helpdesks_ticket_list_solves_the_ticket(
    embedded: EmbeddedHelpdeskAdapter, support_agent: User, client: Client
) -> None:
    conversation, ticket = file_ticket(embedded)
    client.force_login(support_agent)
    response = client.post(reverse("helpdesk:mass_update"), {"ticket_id": [ticket.pk], "action": "close"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Ticket.CLOSED_STATUS
    assert [(kind, data["status"]) for kind, data in outcomes(conversation)] == [(EventKind.TICKET_SOLVED, "closed")]


def test_notes_the_customers_messages_and_stewards_own_comments_are_no_first_reply(
    embedded: EmbeddedHelpdeskAdapter, support_agent: User
) -> None:
    conversation, ticket = file_ticket(embedded)
    update_ticket(support_agent, ticket, comment="Internal: check the warranty.", public=False)
    FollowUp(ticket=ticket, title="E-Mail Received", comment="Any news?", public=True, message_id="<a@b>").save()
    embedded.add_comment(str(ticket.pk), "We are looking into it.", public=True, idempotency_key="steward-1")
    update_ticket(AnonymousUser(), ticket, comment="Submitter's own update.", public=True)
    assert kinds(conversation) == []


def test_a_test_conversations_helpdesk_ticket_records_nothing(
    embedded: EmbeddedHelpdeskAdapter, support_agent: User
) -> None:
    conversation, ticket = file_ticket(embedded, is_test=True)
    update_ticket(support_agent, ticket, comment="Done.", public=True, new_status=Ticket.RESOLVED_STATUS)
    assert not AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk)).exists()


def test_a_duplicate_is_neither_solved_nor_open(embedded: EmbeddedHelpdeskAdapter, support_agent: User) -> None:
    conversation, ticket = file_ticket(embedded)
    update_ticket(support_agent, ticket, new_status=Ticket.DUPLICATE_STATUS)
    update_ticket(support_agent, ticket, new_status=Ticket.REOPENED_STATUS)
    assert kinds(conversation) == []


# --- The decision, without a database --------------------------------------------------------------------------------

AT = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "earlier", "expected"),
    [
        (SOLVED, [], EventKind.TICKET_SOLVED),
        (OPEN, [], None),
        (None, [], None),
        (SOLVED, [(EventKind.TICKET_SOLVED, {"at": None})], None),
        (OPEN, [(EventKind.TICKET_SOLVED, {"at": None})], EventKind.TICKET_REOPENED),
        (SOLVED, [(EventKind.TICKET_REOPENED, {}), (EventKind.TICKET_SOLVED, {})], EventKind.TICKET_SOLVED),
        (OPEN, [(EventKind.TICKET_FIRST_REPLY, {}), (EventKind.TICKET_SOLVED, {})], EventKind.TICKET_REOPENED),
        (OPEN, [(EventKind.TICKET_SOLVED, {"at": (AT + timedelta(seconds=1)).isoformat()})], None),
    ],
)
def test_only_a_change_between_solved_and_open_is_an_outcome(state: Any, earlier: Any, expected: Any) -> None:
    assert ticket_status_change(state=state, at=AT, earlier=earlier) == expected

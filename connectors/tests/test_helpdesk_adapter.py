"""The embedded helpdesk connector: tickets filed through django-helpdesk's own form and update API, the escalation
schema in its custom fields, idempotency by key, governed reads and writes, routing and the SLA table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from helpdesk.models import CustomField, FollowUp, PreSetReply, Queue, Ticket, TicketChange, TicketCustomFieldValue

from connectors.actions import ticket_create
from connectors.adapters.helpdesk_embedded import EmbeddedHelpdeskAdapter
from connectors.base import ADAPTERS, ConnectorError, CustomerRef, NotFound, TicketDraft
from connectors.gateway import FieldWriteRefused, governed_read, governed_write
from connectors.helpdesk_schema import (
    FIELD_NAMES,
    MACROS,
    QUEUES,
    HelpdeskSetupError,
    ensure_helpdesk_schema,
    route_ticket,
    seed_helpdesk_connector,
    sla_hours,
)
from connectors.models import Connector, WriteReceipt
from governance.executors import ExecutionContext
from governance.models import AuditRecord, EventType
from governance.roles import Principal, Role
from governance.tests.factories import FieldMappingFactory, UserFactory

DUE = datetime(2031, 3, 4, 15, 30, tzinfo=UTC)


def make_draft(**overrides: Any) -> TicketDraft:
    values: dict[str, Any] = dict(
        subject="Grinder stopped after descaling",
        customer_id="C-1001",
        customer_email="ana.silva@example.com",
        issue_category="machine fault",
        product_area="grinders",
        channel="web_chat",
        severity="high",
        sentiment=-0.625,
        attempted_resolution="Walked through the reset and descaling steps.",
        confidence=0.31,
        escalation_reason="Frustrated customer after two failed fixes.",
        transcript="Customer: My grinder stopped.\nSteward: Try a reset {{ ticket.ticket_url }}.\nCustomer: No luck.",
        suggested_next_step="Offer a warranty replacement.",
        related_sources=["Descaling guide", "Warranty policy"],
        fields_read=["demo_crm.customer.tier", "demo_commerce.order.status"],
        fields_changed=["demo_crm.customer.shipping_address"],
        queue="technical",
        priority=2,
        sla_due_at=DUE,
        conversation_id="7d1f0c1e-0000-4000-8000-000000000001",
        missing=["serial number"],
    )
    values.update(overrides)
    return TicketDraft(**values)


@pytest.fixture
def schema(db: None) -> None:
    ensure_helpdesk_schema()


@pytest.fixture
def connector(schema: None) -> Connector:
    UserFactory(username="maya.ops", roles=[Role.SUPPORT_ADMIN])
    seed_helpdesk_connector()
    return Connector.objects.get(key="helpdesk")


@pytest.fixture
def adapter(connector: Connector) -> EmbeddedHelpdeskAdapter:
    return EmbeddedHelpdeskAdapter(connector, credential=None)


def custom_values(ticket_id: str | int) -> dict[str, str]:
    return dict(TicketCustomFieldValue.objects.filter(ticket_id=ticket_id).values_list("field__name", "value"))


# --- Filing a ticket ------------------------------------------------------------------------------------------------


def test_the_adapter_is_registered_under_its_key() -> None:
    assert ADAPTERS["helpdesk_embedded"] is EmbeddedHelpdeskAdapter
    assert EmbeddedHelpdeskAdapter.honours_idempotency is True


def test_a_ticket_carries_every_field_of_the_escalation_schema(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-every-field")

    ticket = Ticket.objects.get(pk=ref.id)
    assert (ticket.title, ticket.queue.slug, ticket.priority) == ("Grinder stopped after descaling", "technical", 2)
    assert ticket.due_date == DUE
    assert ticket.submitter_email == "ana.silva@example.com"
    assert ticket.status == Ticket.OPEN_STATUS
    assert custom_values(ref.id) == {
        "customer_id": "C-1001",
        "customer_email": "ana.silva@example.com",
        "issue_category": "machine fault",
        "product_area": "grinders",
        "channel": "web_chat",
        "severity": "high",
        "sentiment": "-0.62",  # rounded half-even to the field's two places
        "confidence": "0.31",
        "escalation_reason": "Frustrated customer after two failed fixes.",
        "attempted_resolution": "Walked through the reset and descaling steps.",
        "suggested_next_step": "Offer a warranty replacement.",
        "related_sources": "Descaling guide\nWarranty policy",
        "fields_read": "demo_crm.customer.tier\ndemo_commerce.order.status",
        "fields_changed": "demo_crm.customer.shipping_address",
        "missing_fields": "serial number",
        "transcript": make_draft().transcript,
        "conversation_id": "7d1f0c1e-0000-4000-8000-000000000001",
        "idempotency_key": "key-every-field",
    }
    assert set(custom_values(ref.id)) == set(FIELD_NAMES)
    opening, note = FollowUp.objects.filter(ticket=ticket).order_by("pk")
    assert opening.public and make_draft().transcript in opening.comment
    assert ticket.description == opening.comment
    assert not note.public and note.title == "Steward hand-over notes"
    assert "Offer a warranty replacement." in note.comment and "-0.62" in note.comment
    assert (ref.status, ref.subject) == ("open", ticket.title)
    assert ref.url.endswith(f"/helpdesk/tickets/{ticket.pk}/")


def test_the_customer_sees_only_what_they_already_know(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-public-view")

    ticket = Ticket.objects.get(pk=ref.id)
    public_fields = {value.field.name for value in ticket.public_custom_field_values()}
    assert public_fields == {"issue_category", "product_area", "channel"}
    public_text = " ".join(f.comment for f in FollowUp.objects.filter(ticket=ticket, public=True))
    assert "Frustrated customer" not in public_text and "warranty replacement" not in public_text


def test_the_customer_is_emailed_only_once_the_ticket_is_committed(
    adapter: EmbeddedHelpdeskAdapter, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        adapter.create_ticket(make_draft(), idempotency_key="key-mail")
    assert mail.outbox == []

    for callback in callbacks:
        callback()
    assert [message.to for message in mail.outbox] == [["ana.silva@example.com"]]


def test_a_repeated_key_returns_the_first_ticket(adapter: EmbeddedHelpdeskAdapter) -> None:
    first = adapter.create_ticket(make_draft(), idempotency_key="key-once")
    again = adapter.create_ticket(make_draft(subject="A retry"), idempotency_key="key-once")

    assert again == first
    assert Ticket.objects.count() == 1
    assert FollowUp.objects.count() == 2  # the opening follow-up and the hand-over note, once


def test_a_key_used_for_another_operation_is_refused(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-taken")

    with pytest.raises(ConnectorError, match="already used for helpdesk.create_ticket") as caught:
        adapter.add_comment(ref.id, "Hello", public=False, idempotency_key="key-taken")
    assert caught.value.permanent


def test_a_draft_the_helpdesk_refuses_files_nothing(adapter: EmbeddedHelpdeskAdapter) -> None:
    with pytest.raises(ConnectorError, match="custom_severity") as caught:
        adapter.create_ticket(make_draft(severity="catastrophic"), idempotency_key="key-refused")

    assert caught.value.permanent
    assert not Ticket.objects.exists()
    assert not WriteReceipt.objects.filter(idempotency_key="key-refused").exists()


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"queue": "nowhere"}, "no queue 'nowhere'"),
        ({"priority": 9}, "1 \\(critical\\) to 5"),
        ({"sla_due_at": "next tuesday"}, "not a date and time"),
        ({"customer_email": "not-an-email"}, "submitter_email"),
    ],
)
def test_an_impossible_draft_is_refused_before_anything_is_written(
    adapter: EmbeddedHelpdeskAdapter, overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConnectorError, match=problem):
        adapter.create_ticket(make_draft(**overrides), idempotency_key="key-impossible")

    assert not Ticket.objects.exists()


def test_a_draft_without_a_queue_is_routed_with_its_sla(adapter: EmbeddedHelpdeskAdapter) -> None:
    before = timezone.now()
    draft = make_draft(queue="", priority=3, sla_due_at=None, product_area="Orders", severity="high", confidence=0.9)

    ref = adapter.create_ticket(draft, idempotency_key="key-routed")

    ticket = Ticket.objects.get(pk=ref.id)
    assert (ticket.queue.slug, ticket.priority) == ("orders", 2)
    assert before + timedelta(hours=4) <= ticket.due_date <= timezone.now() + timedelta(hours=4)


def test_routing_never_lowers_the_priority_an_escalation_rule_asked_for(adapter: EmbeddedHelpdeskAdapter) -> None:
    draft = make_draft(queue="", priority=1, sla_due_at=None, severity="low", product_area="orders", confidence=0.9)

    ref = adapter.create_ticket(draft, idempotency_key="key-floor")

    assert Ticket.objects.get(pk=ref.id).priority == 1


# --- Comments, changes, macros, search ------------------------------------------------------------------------------


def test_a_public_comment_reaches_the_customer_word_for_word(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")
    body = "Your link: {{ ticket.ticket_url }} and 100%} done {% now 'Y' %}"

    adapter.add_comment(ref.id, body, public=True, idempotency_key="key-comment")
    adapter.add_comment(ref.id, body, public=True, idempotency_key="key-comment")

    comment = FollowUp.objects.filter(ticket_id=ref.id).latest("pk")
    assert (comment.comment, comment.public) == (body, True)
    assert FollowUp.objects.filter(ticket_id=ref.id).count() == 3
    assert [message.to for message in mail.outbox] == [["ana.silva@example.com"]]


def test_an_internal_comment_stays_with_staff(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")

    adapter.add_comment(ref.id, "Checked the warranty: still covered.", public=False, idempotency_key="key-note")

    comment = FollowUp.objects.filter(ticket_id=ref.id).latest("pk")
    assert (comment.comment, comment.public) == ("Checked the warranty: still covered.", False)
    assert mail.outbox == []


def test_a_comment_on_a_missing_ticket_is_not_found(adapter: EmbeddedHelpdeskAdapter) -> None:
    with pytest.raises(NotFound):
        adapter.add_comment("999999", "Hello", public=False, idempotency_key="key-missing")


def test_set_priority_moves_the_ticket_and_records_the_changes_in_the_helpdesk(
    adapter: EmbeddedHelpdeskAdapter,
) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")

    adapter.set_priority(ref.id, 1, queue="vip", idempotency_key="key-priority")

    ticket = Ticket.objects.get(pk=ref.id)
    assert (ticket.priority, ticket.queue.slug) == (1, "vip")
    changed = set(TicketChange.objects.filter(followup__ticket=ticket).values_list("field", flat=True))
    assert changed == {"Priority", "Queue"}


def test_writing_an_unchanged_value_leaves_no_empty_follow_up(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")

    assert adapter.write_field("ticket", ref.id, "priority", 2, idempotency_key="key-same") == 2

    assert FollowUp.objects.filter(ticket_id=ref.id).count() == 2


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [("status", "resolved", "resolved"), ("queue", "billing", "billing"), ("priority", "4", 4)],
)
def test_write_field_changes_a_ticket_field(
    adapter: EmbeddedHelpdeskAdapter, field: str, value: str, stored: Any
) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")

    assert adapter.write_field("ticket", ref.id, field, value, idempotency_key="key-write") == stored

    assert adapter.read_object("ticket", ref.id)[field] == stored


@pytest.mark.parametrize(
    ("field", "value"), [("title", "New title"), ("status", "vanished"), ("queue", "nowhere"), ("priority", 0)]
)
def test_write_field_refuses_what_it_cannot_write(adapter: EmbeddedHelpdeskAdapter, field: str, value: Any) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")

    with pytest.raises(ConnectorError) as caught:
        adapter.write_field("ticket", ref.id, field, value, idempotency_key="key-bad-write")
    assert caught.value.permanent


def test_read_object_returns_flat_fields_with_the_custom_fields(adapter: EmbeddedHelpdeskAdapter) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")

    record = adapter.read_object("ticket", ref.id)

    assert record["priority"] == 2 and record["queue"] == "technical" and record["status"] == "open"
    assert record["due_date"] == DUE.isoformat()
    assert record["custom.customer_id"] == record["customer_id"] == "C-1001"
    assert record["custom.severity"] == "high"
    with pytest.raises(NotFound):
        adapter.read_object("ticket", "not-a-number")


def test_macros_are_the_helpdesks_preset_replies(adapter: EmbeddedHelpdeskAdapter) -> None:
    macros = adapter.list_macros()

    assert [macro.title for macro in macros] == sorted(name for name, _queues, _body in MACROS)
    descaling = next(macro for macro in macros if macro.title == "Descaling steps")
    assert descaling.id == str(PreSetReply.objects.get(name="Descaling steps").pk)
    assert "descaling programme" in descaling.body


def test_search_finds_a_customers_tickets_by_email_or_customer_id(
    adapter: EmbeddedHelpdeskAdapter, django_assert_max_num_queries: Any
) -> None:
    by_email = adapter.create_ticket(make_draft(customer_id=""), idempotency_key="key-1")
    by_id = adapter.create_ticket(make_draft(customer_email="other@example.com"), idempotency_key="key-2")
    adapter.create_ticket(make_draft(customer_id="C-2", customer_email="b@example.com"), idempotency_key="key-3")

    with django_assert_max_num_queries(2):  # the tickets, and the site for their links (no query per ticket)
        found = adapter.search_tickets(CustomerRef(id="C-1001", email="ANA.SILVA@example.com"))

    assert [ref.id for ref in found] == [by_id.id, by_email.id]
    assert adapter.search_tickets(CustomerRef(id="")) == []


# --- Through the gateway and the executor ----------------------------------------------------------------------------


@pytest.fixture
def priority_mapping(connector: Connector) -> Any:
    return FieldMappingFactory(
        system="helpdesk",
        object="ticket",
        field_path="priority",
        read_roles=[Role.SUPPORT_AGENT.value],
        read_min_verification=0,
        write_roles=[Role.SUPPORT_AGENT.value],
        write_min_verification=0,
        value_rule="range",
        allowed_min=Decimal(1),
        allowed_max=Decimal(5),
    )


def test_a_support_agent_may_set_the_priority_through_the_gateway(
    adapter: EmbeddedHelpdeskAdapter, connector: Connector, priority_mapping: Any, support_agent: Any
) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")
    agent = Principal.staff(support_agent)

    governed_write(
        principal=agent,
        connector=connector,
        obj="ticket",
        object_id=ref.id,
        field_path="priority",
        value=1,
        idempotency_key="key-agent-priority",
    )

    assert Ticket.objects.get(pk=ref.id).priority == 1
    record = AuditRecord.objects.get(event_type=EventType.FIELD_WRITE)
    assert record.changes == {"priority": {"old": 2, "new": 1}}
    assert record.actor_user_id == support_agent.pk
    read = governed_read(principal=agent, connector=connector, obj="ticket", object_id=ref.id)
    assert read.fields == {"priority": 1}  # unmapped fields (custom ones included) never leave the gateway


def test_a_customer_may_not_set_the_priority(
    adapter: EmbeddedHelpdeskAdapter, connector: Connector, priority_mapping: Any, verified_customer: Principal
) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")
    followups = FollowUp.objects.count()

    with pytest.raises(FieldWriteRefused):
        governed_write(
            principal=verified_customer,
            connector=connector,
            obj="ticket",
            object_id=ref.id,
            field_path="priority",
            value=1,
            idempotency_key="key-customer-priority",
        )

    assert Ticket.objects.get(pk=ref.id).priority == 2
    assert FollowUp.objects.count() == followups
    refused = AuditRecord.objects.get(event_type=EventType.FIELD_WRITE_REFUSED)
    assert (refused.subject_type, refused.subject_id, refused.fields) == ("helpdesk.ticket", ref.id, ["priority"])
    read = governed_read(principal=verified_customer, connector=connector, obj="ticket", object_id=ref.id)
    assert (read.fields, read.withheld) == ({}, ["priority"])


def test_a_customer_cannot_read_another_customers_ticket(
    adapter: EmbeddedHelpdeskAdapter, connector: Connector, priority_mapping: Any, email_verified_customer: Principal
) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")  # C-1001's, not C-1002's

    with pytest.raises(NotFound):
        governed_read(principal=email_verified_customer, connector=connector, obj="ticket", object_id=ref.id)


def test_the_ticket_create_executor_files_the_ticket_once(connector: Connector, verified_customer: Principal) -> None:
    context = ExecutionContext(
        action="ticket_create",
        arguments={"ticket": make_draft().as_dict()},  # as an approval request stores it: JSON, the time as text
        principal=verified_customer,
        idempotency_key="decision-7",
    )

    first = ticket_create(context)
    again = ticket_create(context)

    assert first == again
    assert first["connector"] == "helpdesk"
    ticket = Ticket.objects.get()
    assert first["result"]["id"] == str(ticket.pk)
    assert ticket.due_date == DUE
    assert custom_values(ticket.pk)["idempotency_key"] == "decision-7"


# --- What staff see -------------------------------------------------------------------------------------------------


def test_staff_see_the_ticket_with_its_custom_fields_in_the_helpdesk(
    adapter: EmbeddedHelpdeskAdapter, client: Any
) -> None:
    ref = adapter.create_ticket(make_draft(), idempotency_key="key-ticket")
    client.force_login(UserFactory(username="sam.support", roles=[Role.SUPPORT_AGENT]))

    response = client.get(f"/helpdesk/tickets/{ref.id}/")

    assert response.status_code == 200
    page = response.content.decode()
    # The custom fields ("Additional Info"), by label and value; the request key is shown nowhere else.
    for text in ("Additional Info", "Escalation reason", "Sentiment (-1 to 1)", "Steward request key", "key-ticket"):
        assert text in page
    assert "Steward hand-over notes" in page and "My grinder stopped." in page


# --- Routing and the SLA table (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product_area", "category", "severity", "tier", "confidence", "expected"),
    [
        ("orders", "late delivery", "normal", "standard", 0.9, ("orders", 3, 24)),
        ("Shipping", "where is my order", "high", "standard", 0.8, ("orders", 2, 4)),
        ("subscriptions", "pause", "low", "standard", 0.7, ("billing", 4, 72)),
        ("espresso machine", "leak", "urgent", "standard", 0.9, ("technical", 1, 1)),
        ("", "refund", "normal", "plus", 0.9, ("billing", 3, 24)),
        ("grinders", "noise", "normal", "standard", 0.3, ("support", 3, 24)),  # unsure of the topic: triage
        ("coffee beans", "taste", "normal", "standard", 0.9, ("support", 3, 24)),  # no specialist queue
        ("orders", "late delivery", "normal", "vip", 0.9, ("vip", 2, 2)),  # VIP: a step up, half the time
        ("orders", "late delivery", "urgent", "vip", 0.9, ("vip", 1, 0.5)),
        ("account", "GDPR request", "low", "standard", 0.2, ("compliance", 2, 4)),  # compliance: at least high
        ("billing", "chargeback", "normal", "vip", 0.9, ("compliance", 2, 2)),
        ("orders", "late delivery", "whatever", "standard", 0.9, ("orders", 3, 24)),
    ],
)
def test_routing_table(
    product_area: str, category: str, severity: str, tier: str, confidence: float, expected: tuple[str, int, float]
) -> None:
    now = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    draft = make_draft(product_area=product_area, issue_category=category, severity=severity, confidence=confidence)

    route = route_ticket(draft, account_tier=tier, now=now)

    queue, priority, hours = expected
    assert (route.queue, route.priority, route.sla_due_at) == (queue, priority, now + timedelta(hours=hours))


def test_routing_may_be_told_the_topic_confidence_separately() -> None:
    draft = make_draft(product_area="orders", confidence=0.9)

    assert route_ticket(draft, topic_confidence=0.2).queue == "support"


@pytest.mark.parametrize(
    ("priority", "standard", "vip"), [(1, 1, 0.5), (2, 4, 2), (3, 24, 12), (4, 72, 36), (5, 120, 60)]
)
def test_sla_table(priority: int, standard: float, vip: float) -> None:
    assert sla_hours(priority) == sla_hours(priority, account_tier="plus") == standard
    assert sla_hours(priority, account_tier="vip") == vip


# --- Setup ----------------------------------------------------------------------------------------------------------


def _schema_rows() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "queues": list(Queue.objects.order_by("slug").values_list("slug", "title", "allow_public_submission")),
        "fields": list(
            CustomField.objects.order_by("name").values_list(
                "name", "label", "data_type", "max_length", "decimal_places", "list_values", "staff_only", "ordering"
            )
        ),
        "macros": list(PreSetReply.objects.order_by("name").values_list("name", "body", "queues__slug")),
    }


def test_ensuring_the_schema_twice_leaves_the_same_rows(schema: None) -> None:
    rows = _schema_rows()

    assert ensure_helpdesk_schema() == {
        "queues": 0,
        "custom fields": 0,
        "custom fields repaired": 0,
        "pre-set replies": 0,
    }
    assert _schema_rows() == rows
    assert [slug for slug, _title, _public in rows["queues"]] == sorted(QUEUES)
    assert not any(public for _slug, _title, public in rows["queues"])
    assert {row[0] for row in rows["fields"]} == set(FIELD_NAMES)


def test_ensuring_the_schema_puts_back_a_field_type_but_keeps_an_admins_label(schema: None) -> None:
    CustomField.objects.filter(name="severity").update(data_type="varchar", label="How bad")

    assert ensure_helpdesk_schema()["custom fields repaired"] == 1

    field = CustomField.objects.get(name="severity")
    assert (field.data_type, field.label, field.list_values) == ("list", "How bad", "low\nnormal\nhigh\nurgent")


def test_the_schema_keeps_a_queue_made_before_it(db: None) -> None:
    Queue.objects.create(slug="support", title="Customer support")

    assert ensure_helpdesk_schema()["queues"] == len(QUEUES) - 1
    assert Queue.objects.get(slug="support").title == "Customer support"


def test_health_check_names_what_is_missing(adapter: EmbeddedHelpdeskAdapter) -> None:
    adapter.health_check()

    Queue.objects.get(slug="compliance").delete()
    with pytest.raises(ConnectorError, match="queue compliance") as caught:
        adapter.health_check()
    assert caught.value.permanent


def test_the_connector_is_seeded_once_primary_and_audited(connector: Connector) -> None:
    assert seed_helpdesk_connector() == {"connectors": 0}

    assert (connector.family, connector.adapter, connector.is_primary) == ("helpdesk", "helpdesk_embedded", True)
    assert connector.owner.username == "maya.ops"
    assert AuditRecord.objects.filter(
        event_type=EventType.CONFIG_CREATED, subject_type="connectors.connector", subject_id=str(connector.pk)
    ).exists()


def test_seeding_the_connector_needs_its_owner(db: None) -> None:
    with pytest.raises(HelpdeskSetupError, match="maya.ops"):
        seed_helpdesk_connector()

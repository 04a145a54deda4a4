"""The embedded helpdesk: django-helpdesk running inside Steward (staff UI at /helpdesk/).

Every write goes through helpdesk's own code, as its staff UI and REST API do: tickets are created by its staff
``TicketForm`` (which validates the custom fields by their types, saves the ticket, its custom values and the opening
follow-up, notifies, and sends ``new_ticket_done``), and comments and changes by ``helpdesk.update_ticket``
(follow-up, TicketChange rows, notifications, ``update_ticket_done``). Nothing is written with raw SQL or by
updating helpdesk's rows behind its back.

Idempotency: the helpdesk shares Steward's database, so a write and the record of its key commit together. A ticket
carries its key in the ``idempotency_key`` custom field and a repeated key returns that ticket; comments and field
changes have nowhere to carry one, so their keys are WriteReceipts written in the same transaction. Either way a
retried call never acts twice, hence ``honours_idempotency``.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from helpdesk.forms import TicketForm
from helpdesk.models import CustomField, FollowUp, PreSetReply, Queue, Ticket, TicketCustomFieldValue
from helpdesk.update_ticket import update_ticket

from connectors.base import (
    ConnectorError,
    CustomerRef,
    HelpdeskAdapter,
    Macro,
    NotFound,
    TicketDraft,
    TicketRef,
    register,
)
from connectors.helpdesk_schema import (
    FIELD_NAMES,
    QUEUES,
    VIP_TIER,
    route_ticket,
    sla_due_at,
    ticket_field_values,
)
from connectors.models import WriteReceipt

# Helpdesk's five built-in statuses by the names Steward reads and writes (field mappings list these as choices).
STATUS_NAMES: dict[int, str] = {
    Ticket.OPEN_STATUS: "open",
    Ticket.REOPENED_STATUS: "reopened",
    Ticket.RESOLVED_STATUS: "resolved",
    Ticket.CLOSED_STATUS: "closed",
    Ticket.DUPLICATE_STATUS: "duplicate",
}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}
WRITABLE_FIELDS = ("priority", "queue", "status")
SEARCH_LIMIT = 50
# Writes lock the ticket row (not its queue's: that would serialise every write to the queue) against staff edits.
_LOCKED_TICKETS = Ticket.objects.select_for_update(of=("self",)).select_related("queue")


class _TicketForm(TicketForm):
    """Helpdesk's staff ticket form, whose notification e-mails wait for the ticket's transaction to commit.

    Its ``save`` mails the submitter inline; inside our transaction that would announce a ticket that may yet roll
    back, and hold the transaction open for the SMTP round trip.
    """

    @staticmethod
    def _send_messages(ticket: Ticket, queue: Queue, followup: FollowUp, files: Any, user: Any = None) -> None:
        transaction.on_commit(
            lambda: TicketForm._send_messages(ticket=ticket, queue=queue, followup=followup, files=files, user=user),
            robust=True,  # the ticket exists by then: a failed notification is logged, not raised at the caller
        )


@register
class EmbeddedHelpdeskAdapter(HelpdeskAdapter):
    key = "helpdesk_embedded"
    honours_idempotency = True
    objects = ("ticket",)

    # --- Reads -------------------------------------------------------------------------------------------------------

    def search_tickets(self, customer: CustomerRef) -> list[TicketRef]:
        """Return the customer's tickets, newest first: by submitter e-mail or by the customer-id field."""
        match = Q()
        if customer.email:
            match |= Q(submitter_email__iexact=customer.email)
        if customer.id:
            match |= Q(
                pk__in=TicketCustomFieldValue.objects.filter(field__name="customer_id", value=customer.id).values(
                    "ticket_id"
                )
            )
        if not match:
            return []
        tickets = Ticket.objects.filter(match).select_related("queue").order_by("-created", "-pk")[:SEARCH_LIMIT]
        return [_ref(ticket) for ticket in tickets]

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        """Return a ticket as flat fields: custom fields as ``custom.<name>``, the customer also as ``customer_id``."""
        ticket = self._ticket(obj, object_id, Ticket.objects.select_related("queue", "assigned_to"))
        flat: dict[str, Any] = {
            "id": str(ticket.pk),
            "title": ticket.title,
            "status": _status_name(ticket.status),
            "priority": ticket.priority,
            "queue": ticket.queue.slug,
            "submitter_email": ticket.submitter_email or "",
            "assigned_to": ticket.assigned_to.get_username() if ticket.assigned_to else "",
            "on_hold": ticket.on_hold,
            "due_date": ticket.due_date.isoformat() if ticket.due_date else None,
            "created": ticket.created.isoformat(),
            "modified": ticket.modified.isoformat(),
            "url": str(ticket.get_absolute_url()),
        }
        for name, value in ticket.ticketcustomfieldvalue_set.values_list("field__name", "value"):
            flat[f"custom.{name}"] = value
        # Whose ticket it is, where connectors.gateway.OWNER_PATHS looks: a customer reads only their own tickets.
        flat["customer_id"] = flat.get("custom.customer_id") or ""
        return flat

    def list_macros(self) -> list[Macro]:
        return [Macro(id=str(reply.pk), title=reply.name, body=reply.body) for reply in PreSetReply.objects.all()]

    def health_check(self) -> None:
        """Raise unless the database answers and the queues and custom fields of the ticket schema exist."""
        try:
            queues = set(Queue.objects.filter(slug__in=QUEUES).values_list("slug", flat=True))
            fields = set(CustomField.objects.filter(name__in=FIELD_NAMES).values_list("name", flat=True))
        except DatabaseError as exc:
            raise ConnectorError(f"The helpdesk's database did not answer: {exc}") from exc
        missing = [f"queue {slug}" for slug in QUEUES if slug not in queues]
        missing += [f"custom field {name}" for name in FIELD_NAMES if name not in fields]
        if missing:
            raise ConnectorError(
                f"The embedded helpdesk is not set up ({', '.join(missing)} missing): run "
                "connectors.helpdesk_schema.ensure_helpdesk_schema() (manage.py seed_demo does).",
                permanent=True,
            )

    # --- Writes ------------------------------------------------------------------------------------------------------

    def create_ticket(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        """File the escalation as a helpdesk ticket, once per key: a repeated key returns the ticket filed first."""
        with transaction.atomic():
            existing = _ticket_by_key(idempotency_key)
            if existing is not None:
                return _ref(existing)
            if not self._claim("create_ticket", idempotency_key):
                # Another call with this key committed first (its receipt made us wait): return its ticket.
                existing = _ticket_by_key(idempotency_key)
                if existing is None:
                    raise ConnectorError(
                        "A ticket was already filed for this request and has since been deleted from the helpdesk.",
                        permanent=True,
                    )
                return _ref(existing)
            ticket = self._file(draft, idempotency_key)
            ref = _ref(ticket)
            self._done(idempotency_key, {"id": ref.id, "url": ref.url})
        return ref

    def add_comment(self, ticket_id: str, body: str, *, public: bool, idempotency_key: str) -> None:
        """Add a follow-up: public ones are shown and e-mailed to the submitter, internal ones only to staff."""
        if not body.strip():
            raise ConnectorError("A comment needs a body.", permanent=True)
        with transaction.atomic():
            ticket = self._ticket("ticket", ticket_id, _LOCKED_TICKETS)
            if not self._claim("add_comment", idempotency_key):
                return
            followup = update_ticket(AnonymousUser(), ticket, comment=_literal(body), public=public)
            self._done(idempotency_key, {"followup": followup.pk})

    def set_priority(self, ticket_id: str, priority: int, *, queue: str = "", idempotency_key: str) -> None:
        self._change(ticket_id, "set_priority", idempotency_key, priority=_priority(priority), queue=queue or None)

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        """Change a ticket's priority (1–5), queue (a slug) or status (open, resolved, closed, …); return it."""
        if obj != "ticket" or field_path not in WRITABLE_FIELDS:
            raise ConnectorError(
                f"Steward cannot change {obj}.{field_path} in the helpdesk (only ticket {', '.join(WRITABLE_FIELDS)}).",
                permanent=True,
            )
        if field_path == "priority":
            change: dict[str, Any] = {"priority": _priority(value)}
        elif field_path == "queue":
            change = {"queue": str(value)}
        else:
            change = {"status": _status_code(value)}
        return self._change(object_id, f"write_field:{field_path}", idempotency_key, **change)[field_path]

    # --- Internals ---------------------------------------------------------------------------------------------------

    def _ticket(self, obj: str, object_id: str, tickets: Any) -> Ticket:
        if obj != "ticket":
            raise ConnectorError(f"The embedded helpdesk has no {obj!r} objects, only tickets.", permanent=True)
        try:
            return tickets.get(pk=int(str(object_id)))
        except (ValueError, Ticket.DoesNotExist):
            raise NotFound(f"The helpdesk has no ticket {object_id!r}.") from None

    def _claim(self, operation: str, idempotency_key: str) -> bool:
        """Record the key in the caller's transaction; False when a call with this key already committed.

        A concurrent call with the same key waits on the unique key until the first commits (then gets False) or
        rolls back (then claims it itself).
        """
        try:
            with transaction.atomic():
                WriteReceipt.objects.create(
                    idempotency_key=idempotency_key,
                    connector=self.connector,
                    operation=f"helpdesk.{operation}",
                    state=WriteReceipt.State.DONE,  # it commits only together with the write
                )
        except IntegrityError:
            used_for = WriteReceipt.objects.filter(idempotency_key=idempotency_key).values_list("operation", flat=True)
            if used_for.first() != f"helpdesk.{operation}":
                raise ConnectorError(
                    f"The idempotency key was already used for {used_for.first()}, not {operation}.", permanent=True
                ) from None
            return False
        return True

    def _done(self, idempotency_key: str, result: dict[str, Any]) -> None:
        WriteReceipt.objects.filter(idempotency_key=idempotency_key).update(result={"value": result})

    def _file(self, draft: TicketDraft, idempotency_key: str) -> Ticket:
        """Create the ticket with helpdesk's form, then add Steward's internal hand-over note."""
        queue, priority, due = _placement(draft)
        owner = queue.default_owner if queue.default_owner and queue.default_owner.is_active else None
        data: dict[str, Any] = {
            "queue": queue.pk,
            "title": draft.subject.strip()[:200],
            "body": ticket_description(draft),
            "priority": str(priority),
            "due_date": due,
            "submitter_email": draft.customer_email,
            "assigned_to": str(owner.pk) if owner else "",
        }
        for name, value in ticket_field_values(draft, idempotency_key=idempotency_key).items():
            data[f"custom_{name}"] = value
        form = _TicketForm(data=data, queue_choices=[(queue.pk, queue.title)])
        if not form.is_valid():
            problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
            raise ConnectorError(f"The helpdesk refused the ticket: {problems}", permanent=True)
        ticket = form.save(user=None)  # Steward is not a helpdesk account; the audit log says who asked
        # Internal: the customer can open their ticket's public page, which shows the description and public
        # follow-ups, so Steward's own assessment of them goes where only staff look.
        FollowUp(
            ticket=ticket,
            title="Steward hand-over notes",
            comment=handover_note(draft, queue=queue.slug, priority=priority, due=due),
            public=False,
        ).save()
        return ticket

    def _change(
        self,
        ticket_id: str,
        operation: str,
        idempotency_key: str,
        *,
        priority: int | None = None,
        queue: str | None = None,
        status: int | None = None,
    ) -> dict[str, Any]:
        """Change priority, queue and/or status through helpdesk's update_ticket (one follow-up with its changes)."""
        with transaction.atomic():
            ticket = self._ticket("ticket", ticket_id, _LOCKED_TICKETS)
            target = Queue.objects.filter(slug=queue).first() if queue is not None else ticket.queue
            if target is None:
                raise ConnectorError(f"The helpdesk has no queue {queue!r}.", permanent=True)
            if self._claim(operation, idempotency_key):
                changes: dict[str, Any] = {}
                if priority is not None and priority != ticket.priority:
                    changes["priority"] = priority
                if target.pk != ticket.queue_id:
                    changes["queue"] = target.pk
                if status is not None and status != ticket.status:
                    changes["new_status"] = status
                if changes:  # an unchanged value leaves no empty follow-up behind
                    update_ticket(AnonymousUser(), ticket, public=False, **changes)
                self._done(idempotency_key, {"ticket": ticket.pk})
            now = Ticket.objects.select_related("queue").get(pk=ticket.pk)
        return {"priority": now.priority, "queue": now.queue.slug, "status": _status_name(now.status)}


# --- Parsing and rendering -------------------------------------------------------------------------------------------


def _ref(ticket: Ticket) -> TicketRef:
    return TicketRef(id=str(ticket.pk), url=ticket.staff_url, status=_status_name(ticket.status), subject=ticket.title)


def _ticket_by_key(idempotency_key: str) -> Ticket | None:
    values = TicketCustomFieldValue.objects.filter(field__name="idempotency_key", value=idempotency_key)
    return Ticket.objects.filter(pk__in=values.values("ticket_id")).select_related("queue").order_by("pk").first()


def _placement(draft: TicketDraft) -> tuple[Queue, int, datetime]:
    """Return the queue, priority and due time: as the draft says when it names a queue, else routed.

    A routed ticket is never less urgent than the draft's priority (an escalation rule's): routing may only raise it.
    """
    if draft.queue:
        slug, priority = draft.queue, _priority(draft.priority)
    else:
        route = route_ticket(draft)
        slug, priority = route.queue, min(route.priority, _priority(draft.priority))
    queue = Queue.objects.filter(slug=slug).select_related("default_owner").first()
    if queue is None:
        raise ConnectorError(f"The helpdesk has no queue {slug!r}: run ensure_helpdesk_schema().", permanent=True)
    due = _moment(draft.sla_due_at) or sla_due_at(priority, account_tier=VIP_TIER if slug == "vip" else "standard")
    return queue, priority, due


def _priority(value: Any) -> int:
    try:
        number = Decimal(str(value))  # a governed write may carry 2, "2" or Decimal("2.00")
    except InvalidOperation:
        number = Decimal(0)
    if not number.is_finite() or number != number.to_integral_value() or not 1 <= number <= 5:
        raise ConnectorError(f"A ticket priority is 1 (critical) to 5 (very low), not {value!r}.", permanent=True)
    return int(number)


def _status_name(code: int) -> str:
    return STATUS_NAMES.get(code, str(code))


def _status_code(value: Any) -> int:
    if str(value).lower() in STATUS_CODES:
        return STATUS_CODES[str(value).lower()]
    known = {code for code, _label in Ticket.STATUS_CHOICES}
    if str(value).isdigit() and int(value) in known:
        return int(value)
    raise ConnectorError(f"Unknown ticket status {value!r} (one of: {', '.join(STATUS_CODES)}).", permanent=True)


def _moment(value: datetime | str | None) -> datetime | None:
    """A draft's SLA time: a datetime, or the ISO string TicketDraft.as_dict() made of it (executors get those)."""
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(str(value))
    if moment is None:
        raise ConnectorError(f"sla_due_at {value!r} is not a date and time.", permanent=True)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


_BRACE = re.compile(r"[{}]")
_BRACE_LITERAL = {"{": '{{ "{" }}', "}": '{{ "}" }}'}


def _literal(text: str) -> str:
    """Make text come out of helpdesk's template rendering unchanged.

    ``update_ticket`` renders every comment as a Django template with the ticket as context (for pre-set replies):
    ``{{ ticket.ticket_url }}`` in a customer's words would expand to the ticket's secret link, and a lone ``%}``
    fails its own escaping with a TemplateSyntaxError. Each brace becomes a template string literal of itself.
    """
    return _BRACE.sub(lambda match: _BRACE_LITERAL[match.group(0)], text)


def _fenced(text: str) -> str:
    """A Markdown fenced block that no run of backticks inside the text can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.strip()}\n{fence}"


def ticket_description(draft: TicketDraft) -> str:
    """The ticket's description and opening follow-up: what the customer asked and the conversation (Markdown).

    Helpdesk shows both to the submitter on the ticket's public page, so only what the customer already knows.
    """
    lines = [
        f"Handed over by Steward, Brewline's AI assistant, from a {draft.channel or 'chat'} conversation.",
        "",
        f"- **Customer:** {draft.customer_email or 'e-mail unknown'} ({draft.customer_id or 'not identified'})",
        f"- **Topic:** {draft.issue_category or 'not classified'} · {draft.product_area or 'no product area'}",
        f"- **Already tried:** {draft.attempted_resolution or 'nothing yet'}",
        "",
        "**Transcript**",
        "",
        _fenced(draft.transcript or "(no transcript)"),
    ]
    return "\n".join(lines)


def handover_note(draft: TicketDraft, *, queue: str, priority: int, due: datetime) -> str:
    """Steward's internal hand-over: its assessment and what it read, changed and could not find (Markdown)."""

    def items(values: list[str]) -> str:
        return ", ".join(values) if values else "none"

    sentiment = "unknown" if draft.sentiment is None else f"{draft.sentiment:+.2f}"
    confidence = "unknown" if draft.confidence is None else f"{draft.confidence:.2f}"
    lines = [
        f"- **Why escalated:** {draft.escalation_reason or 'not given'}",
        f"- **Severity:** {draft.severity or 'not given'} · **Sentiment:** {sentiment} · "
        f"**Steward's confidence:** {confidence}",
        f"- **Suggested next step:** {draft.suggested_next_step or 'not given'}",
        f"- **Attempted resolution:** {draft.attempted_resolution or 'nothing yet'}",
        f"- **Knowledge sources:** {items(draft.related_sources)}",
        f"- **Fields read:** {items(draft.fields_read)} · **Fields changed:** {items(draft.fields_changed)}",
        f"- **Still missing:** {items(draft.missing)}",
        f"- **Routed:** queue {queue}, priority {priority}, due {timezone.localtime(due):%Y-%m-%d %H:%M %Z}",
    ]
    if draft.conversation_id:
        lines.append(f"- **Steward conversation:** {draft.conversation_id}")
    return "\n".join(lines)

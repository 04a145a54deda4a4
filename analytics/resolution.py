"""Resolution metrics: whether a customer's problem stayed solved, read from the helpdesk's ticket outcomes
(``ticket_solved``, ``ticket_reopened``) and returns on the same topic (``returned_on_topic``, agent.returns).

A conversation is judged over its *resolution window*: the ``STEWARD_RETURN_WINDOW_DAYS`` days after its close. It
counts once that window has fully passed (it has *matured*), so its figure no longer waits on a return or a reopen
still to come; when no conversation of the range has matured, the value is unknown and ``why`` says so. The cohort
is the conversations closed in the query's window that the AI took (not the ones its traffic share gave to a person
from the start, as for containment), about the query's slice (``analytics.slices.about_slice``).

Within its window a conversation is:

- *resolved* when it got no helpdesk ticket (the AI closed it, or a person closed it without one), or its ticket
  was solved by the window's end;
- *reopened* when its ticket was reopened by the window's end;
- *returned* when the customer came back about one of its intents within the window.

``reopen_rate`` is about tickets instead: the tickets solved in the window that were reopened afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Concat
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventKind
from analytics.slices import PERSON_REACHED, about_slice, events_in_window
from governance.metrics import Measurement, MetricQuery


def return_window_days() -> int:
    """The resolution window and the window a return on the topic is looked for in, in days."""
    return int(settings.STEWARD_RETURN_WINDOW_DAYS)


def of_conversation(*kinds: str) -> QuerySet[AnalyticsEvent]:
    """Events of ``kinds`` of the outer row's conversation (``analytics_event_conversation``)."""
    return AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=kinds)


def _within_window(*kinds: str, days: int) -> QuerySet[AnalyticsEvent]:
    """Events of ``kinds`` of the outer closed event's conversation recorded by the end of its resolution window."""
    return of_conversation(*kinds).filter(created_at__lte=OuterRef("created_at") + timedelta(days=days))


def _returns(days: int) -> QuerySet[AnalyticsEvent]:
    """Returns on the topic of the outer row's conversation that began within its window."""
    return of_conversation(EventKind.RETURNED_ON_TOPIC).filter(data__seconds_after_close__lte=days * 86400)


def _closed_cohort(query: MetricQuery, **flags: Exists) -> QuerySet[AnalyticsEvent]:
    """The ``closed`` events of the cohort, annotated with ``flags``."""
    held_back = of_conversation(EventKind.TRAFFIC_TO_PERSON)
    closed = about_slice(events_in_window(query, EventKind.CLOSED), query).exclude(Exists(held_back))
    return closed.annotate(**flags)


def matured(days: int) -> Q:
    """A closed event whose resolution window has fully passed."""
    return Q(created_at__lte=timezone.now() - timedelta(days=days))


def _count(condition: Q | None = None) -> Count:
    return Count("conversation_id", distinct=True, filter=condition)


# On a cohort annotated with ``resolution_flags``: resolved (no ticket, or its ticket solved within the window), and
# stayed resolved (no reopen, no return on the topic within the window).
RESOLVED = Q(ticketed=False) | Q(solved=True)
STAYED = Q(reopened=False, returned=False)
# Deflected: never reached a person, and no return on the topic within the window that did.
DEFLECTED = Q(reached_person=False, returned_to_person=False)


def _matured_share(figures: dict[str, int], part: str, whole: str, days: int) -> Measurement:
    """The share ``part`` ÷ ``whole`` over the matured conversations, or unknown saying that none has matured."""
    if not figures["matured"] and figures["closed"]:
        return Measurement(
            None,
            0,
            why=f"none of the {figures['closed']} conversations closed in the range has finished its {days}-day "
            "resolution window yet",
        )
    return Measurement.share(figures[part], figures[whole])


def resolution_flags(days: int) -> dict[str, Exists]:
    """Per closed event of the cohort: whether its conversation got a ticket, had it solved or reopened within the
    window, had the customer return on the topic within it (at all, or to a person) and ever reached a person."""
    return {
        "ticketed": Exists(of_conversation(EventKind.ESCALATED).filter(data__ticket=True)),
        "solved": Exists(_within_window(EventKind.TICKET_SOLVED, days=days)),
        "reopened": Exists(_within_window(EventKind.TICKET_REOPENED, days=days)),
        "returned": Exists(_returns(days)),
        "reached_person": Exists(of_conversation(*PERSON_REACHED)),
        "returned_to_person": Exists(_returns(days).filter(data__reached_person=True)),
    }


def returns_since(start: datetime) -> QuerySet[AnalyticsEvent]:
    """The later conversations (``by``) of the returns recorded since ``start``: not first contacts. A return is
    recorded when the later conversation closes, so a return by a conversation closed in a window was recorded in it
    or after: one scan of the window's returns (a hashed NOT IN), not one per conversation."""
    return (
        AnalyticsEvent.objects.filter(kind=EventKind.RETURNED_ON_TOPIC, created_at__gte=start)
        .annotate(later=KT("data__by"))
        .filter(later__isnull=False)
        .values("later")
    )


def durable_resolution(query: MetricQuery) -> Measurement:
    """Resolved conversations with no reopened ticket and no return on the topic within their window ÷ resolved
    conversations (matured ones, closed in the query's window)."""
    days = return_window_days()
    figures = _closed_cohort(query, **resolution_flags(days)).aggregate(
        closed=_count(),
        matured=_count(matured(days)),
        resolved=_count(matured(days) & RESOLVED),
        durable=_count(matured(days) & RESOLVED & STAYED),
    )
    return _matured_share(figures, "durable", "resolved", days)


def first_contact_resolution(query: MetricQuery) -> Measurement:
    """First contacts resolved with no reopened ticket and no return on the topic within their window ÷ first
    contacts (matured conversations closed in the query's window that were not themselves a return on a topic)."""
    days = return_window_days()
    first = matured(days) & ~Q(conversation_id__in=returns_since(query.bounds()[0]))
    figures = _closed_cohort(query, **resolution_flags(days)).aggregate(
        closed=_count(),
        matured=_count(matured(days)),
        first=_count(first),
        resolved=_count(first & RESOLVED & STAYED),
    )
    return _matured_share(figures, "resolved", "first", days)


def deflection_rate(query: MetricQuery) -> Measurement:
    """Conversations the AI helped without a person: never escalated or taken over, and no return on the topic
    within their window that reached a person or got a ticket ÷ conversations (matured ones, closed in the window)."""
    days = return_window_days()
    figures = _closed_cohort(query, **resolution_flags(days)).aggregate(
        closed=_count(),
        matured=_count(matured(days)),
        deflected=_count(matured(days) & DEFLECTED),
    )
    return _matured_share(figures, "deflected", "matured", days)


def reopen_rate(query: MetricQuery) -> Measurement:
    """Tickets solved in the window that were reopened after that solve (at any time since) ÷ tickets solved in the
    window; a ticket is its conversation and its helpdesk id, and counts once however often it was solved."""
    reopened_after = of_conversation(EventKind.TICKET_REOPENED).filter(
        created_at__gt=OuterRef("created_at"), data__ticket=OuterRef("data__ticket")
    )
    solved = about_slice(events_in_window(query, EventKind.TICKET_SOLVED), query).exclude(conversation_id="")
    ticket = Concat("conversation_id", Value(" "), KT("data__ticket"), output_field=CharField())
    figures = solved.aggregate(
        solved=Count(ticket, distinct=True), reopened=Count(ticket, distinct=True, filter=Exists(reopened_after))
    )
    return Measurement.share(figures["reopened"], figures["solved"])

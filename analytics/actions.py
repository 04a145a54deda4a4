"""What became of the actions the agent proposed, per action tier, and how long approvals took.

The tier is the action policy's tier as recorded on the event: ``approval_decided`` always carries it, a turn's
action events carry it from the tool call (``agent.tools.ActionOutcome.tier``). An event recorded without one is
counted under the action's current policy tier, and ``unknown`` when the action has no policy.
"""

from __future__ import annotations

from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    Exists,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, NullIf

from analytics.models import AnalyticsEvent, EventKind
from analytics.slices import about_slice, events_in_window
from governance.metrics import Measurement, MetricQuery
from governance.models import ActionPolicy, ApprovalStatus

# The outcomes ``action_outcomes`` counts, in the order a report shows them.
EXECUTED, FAILED, NOT_FOUND, DENIED = "executed", "failed", "not_found", "denied"
REJECTED, EXPIRED, AWAITING_APPROVAL = "rejected", "expired", "awaiting_approval"
ACTION_OUTCOMES = (EXECUTED, FAILED, NOT_FOUND, DENIED, REJECTED, EXPIRED, AWAITING_APPROVAL)
UNKNOWN_TIER = "unknown"

# The reasons agent/tools.py gives an allowed call that reached nothing because there was nothing to act on; every
# other allowed call that did not execute failed in the system it called (a connector error).
_NOT_FOUND = Q(data__reason="not found") | Q(data__reason__startswith="missing ")
_DONE = Q(data__reason__in=["executed", "read-only lookup"])


def approval_turnaround_s(query: MetricQuery) -> Measurement:
    """Average seconds from an approval request to its decision, over the requests decided (approved or rejected) in
    the window; expired requests were never decided and are left out. With a slice: the requests of the
    conversations about it."""
    decided = about_slice(events_in_window(query, EventKind.APPROVAL_DECIDED), query)
    decided = decided.exclude(data__outcome=ApprovalStatus.EXPIRED).filter(data__has_key="seconds_to_decision")
    figures = decided.exclude(data__seconds_to_decision=None).aggregate(
        seconds=Avg(Cast(KT("data__seconds_to_decision"), FloatField())), n=Count("pk")
    )
    return Measurement(None if figures["seconds"] is None else float(figures["seconds"]), figures["n"])


def _outcome() -> Case:
    """Each event's outcome (null: an event that is no outcome, e.g. the proposal of a call that executed)."""
    proposed_allowed = Q(kind=EventKind.ACTION_PROPOSED, data__decision="allow") & ~_DONE
    return Case(
        When(kind=EventKind.ACTION_EXECUTED, then=Value(EXECUTED)),
        When(kind=EventKind.ACTION_DENIED, then=Value(DENIED)),
        When(kind=EventKind.APPROVAL_DECIDED, then=KT("data__outcome")),
        When(kind=EventKind.APPROVAL_REQUESTED, request_id__isnull=False, decided=False, then=Value(AWAITING_APPROVAL)),
        When(proposed_allowed & _NOT_FOUND, then=Value(NOT_FOUND)),
        When(proposed_allowed, then=Value(FAILED)),
        default=None,
        output_field=CharField(),
    )


def _outcome_events(query: MetricQuery) -> QuerySet[AnalyticsEvent]:
    kinds = (
        EventKind.ACTION_PROPOSED,
        EventKind.ACTION_EXECUTED,
        EventKind.ACTION_DENIED,
        EventKind.APPROVAL_REQUESTED,
        EventKind.APPROVAL_DECIDED,
    )
    decided = (
        AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind=EventKind.APPROVAL_DECIDED)
        .annotate(decided_request=KT("data__request"))
        .filter(decided_request=OuterRef("request_id"))
    )
    policy_tier = ActionPolicy.objects.filter(action=OuterRef("action_name")).values("tier")[:1]
    return (
        about_slice(events_in_window(query, *kinds), query)
        .annotate(request_id=KT("data__request"), action_name=KT("data__action"))
        .annotate(
            decided=Exists(decided),
            tier_name=Coalesce(
                NullIf(KT("data__tier"), Value("")),
                Subquery(policy_tier),
                Value(UNKNOWN_TIER),
                output_field=CharField(),
            ),
        )
        .annotate(outcome=_outcome())
    )


def action_outcomes(query: MetricQuery) -> dict[str, dict[str, int]]:
    """Count what the agent's actions came to in the query's window, per tier: ``{tier: {outcome: count}}`` with
    every outcome of ``ACTION_OUTCOMES`` (0 when none), for each tier that had one. One query.

    - ``executed``: an action that ran (a lookup read, an automated change) or an approved request that executed;
    - ``failed``: an allowed call its system failed on, or an approved request whose execution failed;
    - ``not_found``: an allowed call with nothing to act on (the record was not found, its id was missing);
    - ``denied``: governance refused it; ``rejected`` / ``expired``: its approval request was rejected / expired;
    - ``awaiting_approval``: a request for approval made in the window that has no outcome yet (as of now).

    Each is counted when it happened (the request's outcome when it was decided), so one call sent for approval in
    the window and decided later is awaiting now and counted with its outcome in the window it was decided in.
    """
    rows = (
        _outcome_events(query)
        .filter(outcome__isnull=False)
        .values("tier_name", "outcome")
        .annotate(n=Count("pk"))
        .values_list("tier_name", "outcome", "n")
        .order_by()
    )
    counts: dict[str, dict[str, int]] = {}
    for tier, outcome, n in rows:
        counts.setdefault(tier, dict.fromkeys(ACTION_OUTCOMES, 0))
        counts[tier][outcome] = counts[tier].get(outcome, 0) + n
    return counts

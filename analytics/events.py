"""Recording analytics events. Called by the apps where things happen, inside their own transaction, so an event is
stored exactly when what it describes is (a rolled-back turn leaves no event)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from analytics.models import AnalyticsEvent, EventKind

# The governance decision of a tool call (agent TurnTrace.tool_calls[].decision) → the event after action_proposed.
_DECISION_EVENTS = {
    "deny": EventKind.ACTION_DENIED,
    "needs_approval": EventKind.APPROVAL_REQUESTED,
    "draft": EventKind.APPROVAL_REQUESTED,
}
# An allowed call did something only when it reached its system: "not found", "missing order_id" or a connector
# error are allowed calls that executed nothing (agent/tools.py sets these reasons).
_EXECUTED_REASONS = {"executed", "read-only lookup"}
# The responder's answer kinds (agent.responders.base.Answer.kind) that were knowledge questions.
_KNOWLEDGE_EVENTS = {"knowledge": EventKind.KNOWLEDGE_ANSWERED, "unknown": EventKind.KNOWLEDGE_UNKNOWN}


def event_record(
    *,
    kind: str,
    conversation_id: str = "",
    channel: str = "",
    intent: str = "",
    data: Mapping[str, Any] | None = None,
) -> AnalyticsEvent:
    """Append one event. Call it inside the transaction that makes what it describes true."""
    event = _event(kind=kind, conversation_id=conversation_id, channel=channel, intent=intent, data=data)
    event.save(force_insert=True)
    return event


def _event(
    *, kind: str, conversation_id: str, channel: str, intent: str, data: Mapping[str, Any] | None
) -> AnalyticsEvent:
    if kind not in EventKind.values:
        raise ValueError(f"unknown analytics event kind {kind!r}; known: {', '.join(EventKind.values)}")
    return AnalyticsEvent(
        kind=kind,
        conversation_id=str(conversation_id or ""),
        channel=channel or "",
        intent=(intent or "")[:100],
        data=dict(data or {}),
    )


def turn_event_kinds(*, answer_kind: str, tool_calls: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Return the events one agent turn stands for besides ``turn_answered``: (kind, data), in order. Pure."""
    events: list[tuple[str, dict[str, Any]]] = []
    if answer_kind in _KNOWLEDGE_EVENTS:
        events.append((_KNOWLEDGE_EVENTS[answer_kind], {}))
    for call in tool_calls:
        action, decision, reason = str(call.get("action", "")), str(call.get("decision", "")), call.get("reason", "")
        about = {"action": action, "decision": decision, "reason": str(reason or "")[:300]}
        if call.get("tier"):
            about["tier"] = str(call["tier"])  # the action policy's tier when the turn decided (action_outcomes)
        result = call.get("result")
        request = result.get("approval_request") if isinstance(result, Mapping) else None
        if request is not None:
            about["request"] = request  # the approval request it became, matched by approval_decided later
        events.append((EventKind.ACTION_PROPOSED, about))
        if decision in _DECISION_EVENTS:
            events.append((_DECISION_EVENTS[decision], about))
        elif decision == "allow" and reason in _EXECUTED_REASONS:
            events.append((EventKind.ACTION_EXECUTED, about))
    return events


def turn_events(
    *,
    conversation_id: str,
    channel: str,
    intent: str,
    answer_kind: str,
    tool_calls: Iterable[Mapping[str, Any]],
    data: Mapping[str, Any] | None = None,
) -> list[AnalyticsEvent]:
    """Return, unsaved, an agent turn's events: ``turn_answered`` (with ``data``), then what it did (see
    ``turn_event_kinds``), each naming the turn (``data["turn"]``) so a metric can read the turn's stage, responder
    and prompt version from its ``turn_answered``. The turn inserts them in its own transaction, in one statement
    (agent.turn_store.finish)."""
    common = {"conversation_id": conversation_id, "channel": channel, "intent": intent}
    events = [_event(kind=EventKind.TURN_ANSWERED, data=data, **common)]
    turn = {"turn": data["turn"]} if data and data.get("turn") is not None else {}
    for kind, about in turn_event_kinds(answer_kind=answer_kind, tool_calls=tool_calls):
        events.append(_event(kind=kind, data={**about, **turn}, **common))
    return events

"""Carrying out what the responder proposed, through governance: authorize → connectors → a reply.

Every action is decided by ``governance.authorization.authorize`` with the customer's principal; lookups read
through ``connectors.gateway.governed_read`` (mapped, readable fields of the customer's own records only); other
actions run their executor with an idempotency key derived from the conversation and the message they answer, so a
redelivered turn never acts twice; approval-required and draft actions become approval requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.base import ConnectorError, NotFound
from connectors.gateway import connector_for, governed_read
from governance import dry_run
from governance.approvals import approval_request_create
from governance.authorization import authorize_with_capability
from governance.executors import ACTION_EXECUTORS, ExecutionContext
from governance.models import ActionPolicy
from governance.policies import Decision, Outcome
from governance.roles import Principal

TALK_TO_PERSON = {"label": "Talk to a person", "value": "Talk to a person"}

# Read-only actions answered by reading one object from the primary connector of a family.
LOOKUPS: dict[str, tuple[str, str, str]] = {
    # action: (family, object, argument holding the id)
    "order_status_lookup": ("commerce", "order", "order_id"),
    "subscription_lookup": ("commerce", "subscription", "subscription_id"),
}

DONE_TEXT = {
    "refund": "Done — I've refunded {amount} for order {order_id}. It reaches your card in 3–5 business days.",
    "subscription_pause": "Done — subscription {subscription_id} is paused. Nothing ships or is charged until you "
    "resume it.",
    "subscription_resume": "Done — subscription {subscription_id} is active again.",
    "subscription_cancel": "Done — subscription {subscription_id} is cancelled.",
    "address_change": "Done — order {order_id} will ship to the new address.",
    "crm_note": "I've noted that on your account.",
}


@dataclass
class ActionOutcome:
    """What an action led to, for the reply and the trace."""

    text: str
    choices: list[dict[str, str]] = field(default_factory=list)
    decision: str = ""
    reason: str = ""
    needs_verification: bool = False
    connector_failed: bool = False
    progress: bool = True
    result: dict[str, Any] = field(default_factory=dict)
    fields_read: list[str] = field(default_factory=list)
    # The stage capability the action needed and whether the stage allowed it (CapabilityCheck.as_json), if asked.
    capability: dict[str, Any] | None = None
    tier: str = ""  # the action policy's tier when it was decided (empty: no policy); the turn's tool call keeps it


def run_action(
    *,
    principal: Principal,
    action: str,
    arguments: dict[str, Any],
    conversation_id: str,
    turn_id: str,
    channel: str,
    idempotency_key: str,
    stage: int | None = None,
) -> ActionOutcome:
    """Decide ``action`` through governance and carry it out; ``stage``: the rollout stage the turn decides at (None:
    read it). The outcome names the stage capability the action needed (``capability``) and the policy's ``tier``
    (action outcomes are reported per tier: analytics.actions)."""
    decision, check = authorize_with_capability(
        actor=principal,
        action=action,
        args=arguments,
        conversation_id=conversation_id,
        turn_id=turn_id,
        channel=channel,
        stage=stage,
    )
    policy = ActionPolicy.objects.filter(action=action).first()
    outcome = _decided(principal, policy, action, arguments, conversation_id, turn_id, idempotency_key, decision)
    outcome.capability = check.as_json() if check is not None else None
    outcome.tier = policy.tier if policy is not None else ""
    return outcome


def _decided(
    principal: Principal,
    policy: ActionPolicy | None,
    action: str,
    arguments: dict[str, Any],
    conversation_id: str,
    turn_id: str,
    idempotency_key: str,
    decision: Decision,
) -> ActionOutcome:
    if decision.outcome == Outcome.DENY:
        if decision.needs_verification is not None:
            return ActionOutcome(
                text="", decision="deny", reason=decision.reason, needs_verification=True, progress=False
            )
        return ActionOutcome(
            text="I'm not able to do that for you in this chat, but a person from our team can.",
            choices=[TALK_TO_PERSON],
            decision="deny",
            reason=decision.reason,
            progress=False,
        )
    if decision.outcome in (Outcome.NEEDS_APPROVAL, Outcome.DRAFT):
        try:
            # Nobody is asked to approve an action on a record that is not this customer's.
            _require_own_records(principal, arguments, conversation_id, turn_id)
        except NotFound:
            return _not_found("deny", "not one of this customer's records")
        except ConnectorError as exc:
            return _connector_failed("deny", exc)
        if policy is None:  # deleted since governance decided moments ago
            raise ActionPolicy.DoesNotExist(f"no action policy {action!r}")
        run = dry_run.current()
        if run is not None:
            # A test conversation: governance decided as live, but a rehearsal is never put in front of a person.
            run.approval(action=action, arguments=arguments, decision=decision.outcome.value, reason=decision.reason)
            result: dict[str, Any] = {"approval_request": None, "dry_run": True}
        else:
            request = approval_request_create(
                actor=principal,
                policy=policy,
                arguments=arguments,
                principal=principal,
                reason=decision.reason,
                conversation_id=conversation_id,
                turn_id=turn_id,
            )
            result = {"approval_request": request.pk}
        return ActionOutcome(
            text=f"I've asked a member of our team to approve this ({policy.label.lower()}). I'll tell "
            "you here as soon as they decide — usually within one business day.",
            decision=decision.outcome.value,
            reason=decision.reason,
            result=result,
        )
    try:
        if action in LOOKUPS:
            return _lookup(principal, action, arguments, conversation_id, turn_id)
        return _execute(principal, action, arguments, conversation_id, idempotency_key)
    except NotFound:
        return _not_found("allow", "not found")
    except ConnectorError as exc:
        return _connector_failed("allow", exc)


def _not_found(decision: str, reason: str) -> ActionOutcome:
    return ActionOutcome(
        text="I couldn't find that on your account. Could you check the number?",
        decision=decision,
        reason=reason,
        progress=False,
    )


def _connector_failed(decision: str, exc: ConnectorError) -> ActionOutcome:
    return ActionOutcome(
        text="I couldn't reach our systems just now, so I can't complete that step. I'm passing "
        "this to a person who can.",
        decision=decision,
        reason=str(exc),
        connector_failed=True,
        progress=False,
    )


# Arguments naming a customer's own record: (family, object) the customer must own before anyone is asked to approve.
OWNED_ARGUMENTS: dict[str, tuple[str, str]] = {
    "order_id": ("commerce", "order"),
    "subscription_id": ("commerce", "subscription"),
}


def _require_own_records(principal: Principal, arguments: dict[str, Any], conversation_id: str, turn_id: str) -> None:
    for argument, (family, obj) in OWNED_ARGUMENTS.items():
        object_id = str(arguments.get(argument) or "").strip()
        if object_id:
            governed_read(
                principal=principal,
                connector=connector_for(family=family),
                obj=obj,
                object_id=object_id,
                conversation_id=conversation_id,
                turn_id=turn_id,
            )


def _lookup(
    principal: Principal, action: str, arguments: dict[str, Any], conversation_id: str, turn_id: str
) -> ActionOutcome:
    family, obj, argument = LOOKUPS[action]
    object_id = str(arguments.get(argument, "")).strip()
    if not object_id:
        return ActionOutcome(
            text="Which one is it about?", decision="allow", reason=f"missing {argument}", progress=False
        )
    record = governed_read(
        principal=principal,
        connector=connector_for(family=family),
        obj=obj,
        object_id=object_id,
        conversation_id=conversation_id,
        turn_id=turn_id,
    )
    return ActionOutcome(
        text=describe(obj, object_id, record.fields),
        decision="allow",
        reason="read-only lookup",
        result={"fields": record.fields, "withheld": record.withheld},
        fields_read=sorted(record.fields),
    )


def _execute(
    principal: Principal, action: str, arguments: dict[str, Any], conversation_id: str, idempotency_key: str
) -> ActionOutcome:
    executor = ACTION_EXECUTORS.get(action)
    if executor is None:
        raise ConnectorError(f"no executor for {action}", permanent=True)
    result = executor(
        ExecutionContext(
            action=action,
            arguments=arguments,
            principal=principal,
            idempotency_key=idempotency_key,
            conversation_id=conversation_id,
        )
    )
    values = {key: value for key, value in arguments.items() if isinstance(value, str | int | float)}
    template = DONE_TEXT.get(action, "Done.")
    try:
        text = template.format(**values)
    except (KeyError, IndexError):
        text = "Done."
    return ActionOutcome(text=text, decision="allow", reason="executed", result=result)


def describe(obj: str, object_id: str, fields: dict[str, Any]) -> str:
    """Say what the customer may see of a record, in plain words (only the fields governance let through)."""
    if not fields:
        return f"I found {obj} {object_id}, but I'm not able to share its details here."
    if obj == "order":
        parts = [f"Order {object_id}"]
        if fields.get("status"):
            parts[0] += f" is {str(fields['status']).replace('_', ' ')}"
        sentences = [parts[0] + "."]
        if fields.get("shipping.status"):
            sentences.append(f"Shipping: {str(fields['shipping.status']).replace('_', ' ')}.")
        if fields.get("shipping.tracking_number"):
            sentences.append(f"Tracking number: {fields['shipping.tracking_number']}.")
        items = fields.get("items")
        if isinstance(items, list) and items:
            names = [str(i.get("name", i)) if isinstance(i, dict) else str(i) for i in items][:5]
            sentences.append("Items: " + ", ".join(names) + ".")
        if fields.get("total"):
            sentences.append(f"Total: {fields['total']}.")
        return " ".join(sentences)
    if obj == "subscription":
        sentences = [f"Subscription {object_id}"]
        if fields.get("status"):
            sentences[0] += f" is {fields['status']}"
        sentences[0] += "."
        if fields.get("next_charge_date"):
            sentences.append(f"Next charge: {fields['next_charge_date']}.")
        return " ".join(sentences)
    return " ".join(f"{path.replace('_', ' ')}: {value}." for path, value in fields.items())

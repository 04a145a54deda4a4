"""``authorize``: the one door every proposed action and field access goes through. Decisions are audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from governance import dry_run
from governance.audit import audit_record
from governance.gates import channel_stage
from governance.models import ActionPolicy, EventType, FieldMapping
from governance.policies import ActionRule, Decision, FieldRule, Verdict, can_read_field, can_write_field, decide_action
from governance.roles import Principal

DEFAULT_CHANNEL = "web_chat"


def authorize(
    *,
    actor: Principal,
    action: str,
    args: dict[str, Any],
    conversation_id: str = "",
    turn_id: str = "",
    channel: str = DEFAULT_CHANNEL,
) -> Decision:
    """Decide whether ``actor`` may take ``action`` with ``args`` now, on this channel; audit the decision."""
    policy = ActionPolicy.objects.filter(action=action).first()
    run = dry_run.current()
    # A regression suite may rehearse the stage a gate would open (suites.RegressionSuite.stage).
    stage = run.stage if run is not None and run.stage is not None else channel_stage(channel)
    decision = decide_action(ActionRule.from_policy(policy) if policy else None, actor, args, stage)
    with transaction.atomic():
        audit_record(
            actor=actor,
            event_type=EventType.ACTION_DECISION,
            subject_type="governance.actionpolicy",
            subject_id=action,
            conversation_id=conversation_id,
            turn_id=turn_id,
            decision=decision.outcome.value,
            reason=decision.reason,
            data={"args": args, "channel": channel, "stage": stage},
        )
    return decision


def field_rules(system: str, obj: str) -> dict[str, FieldRule]:
    """Return the enabled field rules of one object of one system, by field path (one query)."""
    mappings = FieldMapping.objects.filter(system=system, object=obj, enabled=True)
    return {mapping.field_path: FieldRule.from_mapping(mapping) for mapping in mappings}


def readable_fields(*, actor: Principal, system: str, obj: str) -> dict[str, Verdict]:
    """Return, per mapped field of the object, whether ``actor`` may read it (unmapped fields are not listed)."""
    return {path: can_read_field(rule, actor) for path, rule in field_rules(system, obj).items()}


def check_field_write(*, actor: Principal, system: str, obj: str, field_path: str, value: Any) -> Verdict:
    """Return whether ``actor`` may set one field to ``value``."""
    mapping = FieldMapping.objects.filter(system=system, object=obj, field_path=field_path).first()
    return can_write_field(FieldRule.from_mapping(mapping) if mapping else None, actor, value)

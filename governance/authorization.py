"""``authorize``: the one door every proposed action and field access goes through. Decisions are audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from governance import dry_run
from governance.audit import audit_record
from governance.gates import CapabilityCheck, action_capability, capability_check, channel_stage
from governance.models import ActionPolicy, EventType, FieldMapping
from governance.policies import (
    ActionRule,
    Decision,
    FieldRule,
    Outcome,
    Verdict,
    can_read_field,
    can_write_field,
    decide_action,
)
from governance.roles import Principal

DEFAULT_CHANNEL = "web_chat"


def decision_stage(channel: str) -> int:
    """Return the stage to decide at on ``channel``: a regression suite's rehearsed stage in its dry run
    (suites.RegressionSuite.stage), else the channel's current stage (one query)."""
    run = dry_run.current()
    return run.stage if run is not None and run.stage is not None else channel_stage(channel)


def authorize(
    *,
    actor: Principal,
    action: str,
    args: dict[str, Any],
    conversation_id: str = "",
    turn_id: str = "",
    channel: str = DEFAULT_CHANNEL,
    stage: int | None = None,
) -> Decision:
    """Decide whether ``actor`` may take ``action`` with ``args`` now, on this channel; audit the decision."""
    return authorize_with_capability(
        actor=actor,
        action=action,
        args=args,
        conversation_id=conversation_id,
        turn_id=turn_id,
        channel=channel,
        stage=stage,
    )[0]


def authorize_with_capability(
    *,
    actor: Principal,
    action: str,
    args: dict[str, Any],
    conversation_id: str = "",
    turn_id: str = "",
    channel: str = DEFAULT_CHANNEL,
    stage: int | None = None,
) -> tuple[Decision, CapabilityCheck | None]:
    """``authorize``, also returning the stage capability the action needs and whether the stage allows it (None:
    no enabled policy, so no capability was asked). ``stage``: the stage the caller already read
    (``decision_stage``); None reads it.

    The channel's stage limits an action twice: by the capability its kind needs (``gates.action_capability``:
    a lookup of the customer's records needs CRM context, an automated change low-risk actions, ...) and by its
    policy's own floor (``enabled_from_stage``); the later of the two wins.
    """
    policy = ActionPolicy.objects.filter(action=action).first()
    stage = decision_stage(channel) if stage is None else stage
    decision = decide_action(ActionRule.from_policy(policy) if policy else None, actor, args, stage)
    check = None
    if policy is not None and policy.enabled:
        check = capability_check(stage, action_capability(action, policy.tier))
        # The policy's own refusals (its stage floor, the actor's roles) keep their more specific reason; a refusal
        # the customer could lift by verifying does not: verifying would not help at this stage.
        if not check.allowed and (decision.outcome != Outcome.DENY or decision.needs_verification is not None):
            decision = Decision(Outcome.DENY, check.reason)
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
    return decision, check


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

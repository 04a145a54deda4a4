"""Rollout gates: the stage each channel stands at, the capabilities it gives the agent, and how a channel moves.

A ``RolloutGate(channel, stage)`` is the gate *into* ``stage``. One evaluation of a channel at stage N:

1. rollback first: when a rollback criterion of the gate into N is met, the channel drops to N - 1 at once, and the
   sign-offs of that gate are cleared (people sign again before it re-enters);
2. otherwise it moves up to N + 1 only when every entry criterion of the gate into N + 1 is met (no data is never
   met), none of that gate's rollback criteria is already met, and every sign-off it requires is given;
3. otherwise it stays: *held* when there is nowhere to go (stage 5, or no gate into N + 1), *blocked* with the reasons
   when the gate exists but does not open.

Scheduled evaluation may promote (``governance.rollout_gates_evaluate`` every 15 minutes): promotion always needs the
gate's sign-offs, so people decide *whether* a channel may move up and the metrics decide *when*. A gate that
requires no sign-off opens on metrics alone; the readiness report says so. Rollback never waits for a person.

The pure part (``governance.gate_decisions``: ``evaluate_criteria``, ``decide_gate``) takes plain values and is tested
without a database; the services load rows, read metrics outside the transaction (providers may be slow) and apply
the decision under a lock on the channel row, with its audit records, in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_record
from governance.exceptions import GovernanceError, NotPermitted
from governance.gate_decisions import (  # noqa: F401 - re-exported: the gates' public API
    FIRST_STAGE,
    LAST_STAGE,
    CriterionLike,
    CriterionResult,
    GateDecision,
    MetricKey,
    decide_gate,
    evaluate_criteria,
    metric_key,
    signoff_label,
    signoffs_missing,
)
from governance.metrics import MetricQuery, metric_read
from governance.models import (
    ChannelRollout,
    EventType,
    GateCriterion,
    GateEvaluation,
    GateSignOff,
    RolloutGate,
    RolloutStage,
)
from governance.models.gates import CriterionKind, GateOutcome

SIGNOFF_PERMISSION = "governance.signoff_rolloutgate"
ROLLBACK_PERMISSION = "governance.change_channelrollout"


class Capability(StrEnum):
    KNOWLEDGE_ANSWERS = "knowledge_answers"
    CRM_CONTEXT = "crm_context"
    TICKET_DRAFT = "ticket_draft"
    HANDOFF = "handoff"
    LOW_RISK_ACTIONS = "low_risk_actions"
    OMNICHANNEL = "omnichannel"


_NEW_AT_STAGE: dict[int, frozenset[str]] = {
    1: frozenset({Capability.KNOWLEDGE_ANSWERS}),
    2: frozenset({Capability.CRM_CONTEXT}),
    3: frozenset({Capability.TICKET_DRAFT, Capability.HANDOFF}),
    4: frozenset({Capability.LOW_RISK_ACTIONS}),
    5: frozenset({Capability.OMNICHANNEL}),
}
# What the agent may do on a channel at each stage; a stage keeps everything the stages below it allow.
STAGE_CAPABILITIES: dict[int, frozenset[str]] = {
    stage: frozenset().union(*(_NEW_AT_STAGE[s] for s in range(FIRST_STAGE, stage + 1))) for stage in _NEW_AT_STAGE
}


# The stage each capability first comes with.
CAPABILITY_STAGE: dict[str, int] = {capability: stage for stage, new in _NEW_AT_STAGE.items() for capability in new}
# Actions whose capability is not their tier's (``action_capability``).
_ACTION_CAPABILITY: dict[str, str] = {
    "knowledge_search": Capability.KNOWLEDGE_ANSWERS,
    "ticket_create": Capability.HANDOFF,  # the handoff's helpdesk ticket (agent.handoff)
}
_TIER_CAPABILITY: dict[str, str] = {
    "read_only": Capability.CRM_CONTEXT,  # lookups of the customer's own records (orders, subscriptions)
    "draft": Capability.TICKET_DRAFT,  # a person sends or decides it, as with a ticket draft
    "approval_required": Capability.TICKET_DRAFT,
    "automated": Capability.LOW_RISK_ACTIONS,
}
TRAFFIC_BUCKETS = 100


def channel_stage(channel: str) -> int:
    """Return the rollout stage of ``channel``; a channel without a rollout row stands at stage 1."""
    stage = ChannelRollout.objects.filter(channel=channel).values_list("stage", flat=True).first()
    return int(stage) if stage is not None else int(RolloutStage.KNOWLEDGE_ANSWERS)


def channel_capabilities(channel: str) -> frozenset[str]:
    """Return what the agent may do on ``channel`` right now (a channel without a rollout row: stage 1)."""
    return STAGE_CAPABILITIES[channel_stage(channel)]


def channel_rollout_now(channel: str) -> tuple[int, int]:
    """Return ``(stage, traffic_percent)`` of ``channel`` (one query); without a rollout row: stage 1, 100%."""
    row = ChannelRollout.objects.filter(channel=channel).values_list("stage", "traffic_percent").first()
    return (int(row[0]), int(row[1])) if row else (FIRST_STAGE, 100)


# --- Capabilities and the traffic share (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class CapabilityCheck:
    """Whether the agent may use ``capability`` at ``stage``, and why: what the turn records on its trace."""

    capability: str
    stage: int
    allowed: bool
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"capability": self.capability, "stage": self.stage, "allowed": self.allowed, "reason": self.reason}


def capability_check(stage: int, capability: str) -> CapabilityCheck:
    """Decide whether a channel at ``stage`` allows ``capability`` (``STAGE_CAPABILITIES``), with the reason."""
    needed = CAPABILITY_STAGE[capability]
    if capability in STAGE_CAPABILITIES.get(stage, frozenset()):
        return CapabilityCheck(capability, stage, True, f"{capability} is allowed from rollout stage {needed}")
    return CapabilityCheck(
        capability,
        stage,
        False,
        f"{capability} is allowed from rollout stage {needed}; this channel is at stage {stage}",
    )


def action_capability(action: str, tier: str) -> str:
    """Return the capability an action needs: answering from knowledge, reading the customer's records (read-only
    lookups), a draft or approval request a person decides (stage 3), or an automated change (stage 4)."""
    return _ACTION_CAPABILITY.get(action) or _TIER_CAPABILITY.get(tier, Capability.LOW_RISK_ACTIONS)


def traffic_bucket(channel: str, subject: str) -> int:
    """Return ``subject``'s traffic bucket on ``channel``, 0-99: the same for the same id, spread evenly.

    SHA-256 rather than ``hash()``: Python salts ``hash`` of a string per process, and every web process must put a
    returning customer in the same bucket. The channel is part of the input, so one customer's buckets on two
    channels are independent.
    """
    digest = hashlib.sha256(f"{channel}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % TRAFFIC_BUCKETS


def takes_conversation(bucket: int, traffic_percent: int) -> bool:
    """Tell whether the agent takes a conversation in ``bucket`` at ``traffic_percent``: 0 takes none, 100 all.

    A bucket in at N% stays in at every share above N: widening the share only adds conversations."""
    return bucket < traffic_percent


# --- Services ------------------------------------------------------------------------------------------------------


def _gates_around(channel_id: int, stage: int) -> tuple[RolloutGate | None, RolloutGate | None]:
    """Return the gate into ``stage`` and the gate into the next stage, with their criteria (two queries)."""
    gates = RolloutGate.objects.filter(channel_id=channel_id, stage__in=[stage, stage + 1]).prefetch_related("criteria")
    by_stage = {gate.stage: gate for gate in gates}
    return by_stage.get(stage), by_stage.get(stage + 1)


def _rollback_criteria(gate: RolloutGate | None) -> list[GateCriterion]:
    return [c for c in gate.criteria.all() if c.kind == CriterionKind.ROLLBACK] if gate else []


def rollout_gate_evaluate(
    *, channel: ChannelRollout, actor: Actor = None, now: datetime | None = None
) -> GateEvaluation:
    """Evaluate ``channel``'s gates: roll back, promote or stay; record the evaluation and audit it.

    Metrics are read before the transaction (a provider may be slow; the audit lock must not wait on it). The decision
    is then taken and applied under a lock on the channel row, so an evaluation racing another, a sign-off or a
    revocation sees the stage and the sign-offs as they are when it commits.
    """
    now = now or timezone.now()
    stage = ChannelRollout.objects.values_list("stage", flat=True).get(pk=channel.pk)
    current_gate, next_gate = _gates_around(channel.pk, stage)
    criteria = [*_rollback_criteria(current_gate), *(next_gate.criteria.all() if next_gate else [])]
    values: dict[MetricKey, float | None] = {}
    errors: dict[MetricKey, str] = {}
    samples: dict[MetricKey, int | None] = {}
    parts: dict[MetricKey, int | None] = {}
    for key in dict.fromkeys(metric_key(c) for c in criteria):
        reading = metric_read(MetricQuery(channel.channel, key.metric, key.intent, key.window_days))
        values[key], samples[key], parts[key] = reading.value, reading.n, reading.part
        if reading.error:
            errors[key] = reading.error
    readings = (values, errors, samples, parts)
    rollback_results = evaluate_criteria(_rollback_criteria(current_gate), *readings)
    next_results = evaluate_criteria(next_gate.criteria.all(), *readings) if next_gate else None
    return _evaluation_apply(
        channel=channel,
        stage=stage,
        gates=(current_gate, next_gate),
        results=(rollback_results, next_results),
        actor=actor,
        now=now,
    )


@transaction.atomic
def _evaluation_apply(
    *,
    channel: ChannelRollout,
    stage: int,
    gates: tuple[RolloutGate | None, RolloutGate | None],
    results: tuple[list[CriterionResult], list[CriterionResult] | None],
    actor: Actor,
    now: datetime,
) -> GateEvaluation:
    current_gate, next_gate = gates
    rollback_results, next_results = results
    locked_stage = _channel_lock(channel.pk)
    if locked_stage != stage:
        # Another evaluation (or a person) moved the channel after this one read its metrics; those metrics were read
        # for the old stage, so decide nothing now; the next run starts from the new stage.
        reason = f"the stage changed from {stage} to {locked_stage} during this evaluation; nothing was changed"
        decision = GateDecision(GateOutcome.HELD, locked_stage, locked_stage, (reason,))
    else:
        given = GateSignOff.objects.filter(gate=next_gate).values_list("kind", flat=True) if next_gate else []
        missing = signoffs_missing(next_gate.required_signoffs, given) if next_gate else []
        decision = decide_gate(stage, next_results, missing, rollback_results)
    rows = [{"gate_stage": stage, **r.as_json()} for r in rollback_results]
    rows += [{"gate_stage": stage + 1, **r.as_json()} for r in next_results or []]
    evaluation = GateEvaluation.objects.create(
        channel=channel,
        evaluated_at=now,
        stage_before=decision.stage_before,
        stage_after=decision.stage_after,
        outcome=decision.outcome,
        reason=decision.reason,
        results=rows,
    )
    audit_record(
        actor=actor,
        event_type=EventType.GATE_EVALUATED,
        subject=channel,
        decision=decision.outcome,
        reason=decision.reason,
        data={"evaluation_id": evaluation.pk, "stage_before": stage, "stage_after": decision.stage_after},
    )
    if decision.moves:
        gate = next_gate if decision.outcome == GateOutcome.PROMOTED else current_gate
        _stage_move(channel=channel, decision=decision, gate=gate, evaluation=evaluation, actor=actor, now=now)
    return evaluation


def _channel_lock(channel_id: int) -> int:
    """Lock the channel row for this transaction and return its stage.

    Every service that changes a channel's stage or the sign-offs of its gates takes this lock first, so they apply
    one after the other, each seeing what the one before committed.
    """
    return ChannelRollout.objects.select_for_update().values_list("stage", flat=True).get(pk=channel_id)


def _stage_move(
    *,
    channel: ChannelRollout,
    decision: GateDecision,
    gate: RolloutGate | None,
    evaluation: GateEvaluation,
    actor: Actor,
    now: datetime,
) -> None:
    """Move the channel one stage, inside the caller's transaction, holding the channel lock.

    Promotion sets the traffic share to the new gate's limited-launch share. A rollback clears the sign-offs of the
    gate the channel left, and restores the traffic share of the gate into the stage it falls back to (at stage 1,
    which has no gate, the share stays as it is).
    """
    traffic_before = ChannelRollout.objects.values_list("traffic_percent", flat=True).get(pk=channel.pk)
    cleared: list[str] = []
    if decision.outcome == GateOutcome.PROMOTED:
        traffic = gate.traffic_percent if gate else traffic_before
        event = EventType.GATE_PROMOTED
    else:
        back_into = RolloutGate.objects.filter(channel_id=channel.pk, stage=decision.stage_after).first()
        traffic = back_into.traffic_percent if back_into else traffic_before
        if gate is not None:
            signoffs = GateSignOff.objects.filter(gate=gate)
            cleared = list(signoffs.values_list("kind", flat=True))
            signoffs.delete()
        event = EventType.GATE_ROLLED_BACK
    # The stage condition is the claim (STYLE.md rule 5); with the row lock held it cannot miss, and it keeps this
    # write from ever moving a channel that is no longer where the decision found it.
    moved = ChannelRollout.objects.filter(pk=channel.pk, stage=decision.stage_before).update(
        stage=decision.stage_after, traffic_percent=traffic, updated_at=now
    )
    if moved != 1:
        raise GovernanceError(f"{channel.channel} is no longer at stage {decision.stage_before}; nothing was changed.")
    channel.stage, channel.traffic_percent = decision.stage_after, traffic
    audit_record(
        actor=actor,
        event_type=event,
        subject=channel,
        decision=decision.outcome,
        reason=decision.reason,
        changes={
            "stage": {"old": decision.stage_before, "new": decision.stage_after},
            "traffic_percent": {"old": traffic_before, "new": traffic},
        },
        data={"evaluation_id": evaluation.pk, "gate_id": gate.pk if gate else None, "signoffs_cleared": cleared},
    )


@transaction.atomic
def rollout_stage_roll_back(*, channel: ChannelRollout, actor: AbstractBaseUser, reason: str) -> GateEvaluation:
    """Drop ``channel`` one stage by hand (a manager's call, no metric needed); record and audit why."""
    if actor is None or not actor.has_perm(ROLLBACK_PERMISSION):
        raise NotPermitted("Only a support manager or a support admin may roll a channel back.")
    if not reason.strip():
        raise GovernanceError("Say why the channel is rolled back.")
    now = timezone.now()
    stage = _channel_lock(channel.pk)
    if stage <= FIRST_STAGE:
        raise GovernanceError(f"{channel.channel} is at stage {stage}; there is no stage below it.")
    text = f"rolled back by {actor.get_username()}: {reason.strip()}"
    decision = GateDecision(GateOutcome.ROLLED_BACK, stage, stage - 1, (text,))
    evaluation = GateEvaluation.objects.create(
        channel=channel,
        evaluated_at=now,
        stage_before=stage,
        stage_after=stage - 1,
        outcome=decision.outcome,
        reason=decision.reason,
    )
    gate = RolloutGate.objects.filter(channel_id=channel.pk, stage=stage).first()
    _stage_move(channel=channel, decision=decision, gate=gate, evaluation=evaluation, actor=actor, now=now)
    return evaluation


def _require_signoff_permission(actor: AbstractBaseUser | None) -> None:
    if actor is None or not actor.has_perm(SIGNOFF_PERMISSION):
        raise NotPermitted("Only a support manager or a support admin may sign off rollout gates.")


@transaction.atomic
def rollout_gate_sign_off(
    *, gate: RolloutGate, kind: str, actor: AbstractBaseUser, note: str = "", now: datetime | None = None
) -> GateSignOff:
    """Give one sign-off the gate requires; audit it."""
    _require_signoff_permission(actor)
    _channel_lock(gate.channel_id)
    required = RolloutGate.objects.values_list("required_signoffs", flat=True).get(pk=gate.pk)
    if kind not in required:
        raise GovernanceError(f"The gate {gate} does not ask for a {signoff_label(kind).lower()} sign-off.")
    existing = GateSignOff.objects.filter(gate=gate, kind=kind).select_related("signed_by").first()
    if existing is not None:
        raise GovernanceError(
            f"The gate {gate} already has its {signoff_label(kind).lower()} sign-off, by "
            f"{existing.signed_by.get_username()} on {existing.signed_at:%Y-%m-%d}."
        )
    signoff = GateSignOff.objects.create(
        gate=gate, kind=kind, signed_by=actor, signed_at=now or timezone.now(), note=note
    )
    audit_record(
        actor=actor,
        event_type=EventType.GATE_SIGNED_OFF,
        subject=gate,
        decision="signed",
        reason=note,
        data={"kind": kind, "channel": gate.channel_id, "stage": gate.stage, "signoff_id": signoff.pk},
    )
    return signoff


@transaction.atomic
def rollout_gate_revoke_sign_off(*, gate: RolloutGate, kind: str, actor: AbstractBaseUser, reason: str = "") -> None:
    """Withdraw a sign-off; the gate stays shut until it is given again. Audited as a sign-off event, "revoked"."""
    _require_signoff_permission(actor)
    _channel_lock(gate.channel_id)
    signoff = GateSignOff.objects.filter(gate=gate, kind=kind).select_related("signed_by").first()
    if signoff is None:
        raise GovernanceError(f"The gate {gate} has no {signoff_label(kind).lower()} sign-off to revoke.")
    given_by, given_at = signoff.signed_by.get_username(), signoff.signed_at
    signoff.delete()
    audit_record(
        actor=actor,
        event_type=EventType.GATE_SIGNOFF_REVOKED,
        subject=gate,
        decision="revoked",
        reason=reason,
        data={
            "kind": kind,
            "channel": gate.channel_id,
            "stage": gate.stage,
            "given_by": given_by,
            "given_at": given_at,
        },
    )

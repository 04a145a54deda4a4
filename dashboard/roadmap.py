"""The launch roadmap: every intent ranked by its launch score, read from measured traffic where there is some
(docs/roi.md, "The launch roadmap").

The launch score is the intent admin's (agent.admin): volume + business value − complexity − policy risk, each
scored 1-5, plus a containment adjustment. Two inputs come from the last 30 days of traffic when it exists:

- volume: measured when the intent had a conversation in the window (its share of every conversation the agent
  answered, mapped to 1-5 by ``volume_score``), otherwise the hand-entered score, which stays the estimate before
  launch;
- containment potential: the intent's measured containment mapped to 1-5 (``containment_score``) once at least
  ``MIN_CONTAINMENT_SAMPLE`` of its conversations closed in the window; it adds ``score - 3``, so an intent without
  enough closed conversations keeps the hand-entered ranking unchanged (an adjustment of 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from agent.models import Intent, Route
from dashboard.roi import Counts, Traffic, Window, traffic_measure
from governance.gates import CAPABILITY_STAGE, Capability, action_capability, channel_rollout_now
from governance.models import ActionPolicy, ChannelRollout, RolloutStage

MEASURE_DAYS = 30
# An intent's share of the window's conversations → volume score: an even spread over 20 intents (5% each) is 3.
VOLUME_SHARES: tuple[tuple[float, int], ...] = ((0.20, 5), (0.10, 4), (0.05, 3), (0.02, 2))
MIN_CONTAINMENT_SAMPLE = 10
NEUTRAL_CONTAINMENT = 3
MEASURED, HAND_ENTERED = "measured", "hand-entered"
# The stage capability each route needs; an action's comes from its policy (``needed_stage``).
ROUTE_CAPABILITY = {
    Route.KNOWLEDGE: Capability.KNOWLEDGE_ANSWERS,
    Route.SMALLTALK: Capability.KNOWLEDGE_ANSWERS,
    Route.VERIFY: Capability.CRM_CONTEXT,  # verifying links the customer's CRM record
    Route.HUMAN: Capability.HANDOFF,
}


# --- Scores (pure) -------------------------------------------------------------------------------------------------


def volume_score(conversations: int, total: int) -> int | None:
    """Map an intent's measured conversations to 1-5 by their share of all the window's conversations: 20% or more
    is 5, 10% 4, 5% 3, 2% 2, less 1. None when it had none (the hand-entered score stands)."""
    if conversations <= 0 or total <= 0:
        return None
    share = conversations / total
    return next((score for threshold, score in VOLUME_SHARES if share >= threshold), 1)


def containment_score(contained: int, closed: int) -> int | None:
    """Map measured containment to 1-5 in steps of 20% (under 20% is 1, 80% or more 5); None below the sample."""
    if closed < MIN_CONTAINMENT_SAMPLE:
        return None
    return min(5, 1 + (5 * contained) // closed)


def launch_score(
    *, volume: int, business_value: int, complexity: int, policy_risk: int, containment: int | None = None
) -> int:
    """Volume + business value − complexity − policy risk (the intent admin's score), plus containment − 3."""
    adjustment = containment - NEUTRAL_CONTAINMENT if containment is not None else 0
    return volume + business_value - complexity - policy_risk + adjustment


# --- The roadmap ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelState:
    """A channel's rollout now, and whether it lets this intent's work run."""

    channel: str
    stage: int
    traffic_percent: int
    live: bool
    had_traffic: bool

    @property
    def stage_label(self) -> str:
        return RolloutStage(self.stage).label


@dataclass(frozen=True)
class RoadmapRow:
    rank: int
    intent: Intent
    counts: Counts
    share: float | None
    measured_volume: int | None
    volume: int
    volume_source: str
    containment: int | None
    hand_score: int
    score: int
    needs_stage: int | None
    needs: str
    channels: list[ChannelState]


@dataclass(frozen=True)
class Roadmap:
    window: Window
    conversations: int
    rows: list[RoadmapRow]


def needed_stage(intent: Intent, policies: dict[str, ActionPolicy]) -> tuple[int | None, str]:
    """Return the rollout stage from which the intent's work runs, and what it needs, in words."""
    if intent.route == Route.ACTION:
        policy = policies.get(intent.action)
        if policy is None:
            return None, f"no action policy {intent.action!r}"
        if not policy.enabled:
            return None, f"action policy {policy.action} is disabled"
        capability = action_capability(policy.action, policy.tier)
        stage = max(CAPABILITY_STAGE[capability], policy.enabled_from_stage)
        return stage, f"{policy.action} ({policy.get_tier_display().lower()}) from stage {stage}"
    capability = ROUTE_CAPABILITY.get(intent.route, Capability.KNOWLEDGE_ANSWERS)
    stage = CAPABILITY_STAGE[capability]
    return stage, f"{capability.replace('_', ' ')} from stage {stage}"


def _row(
    intent: Intent,
    counts: Counts,
    total: int,
    policies: dict[str, ActionPolicy],
    rollouts: dict[str, tuple[int, int]],
) -> RoadmapRow:
    measured = volume_score(counts.conversations, total)
    volume = measured if measured is not None else intent.volume
    containment = containment_score(counts.contained, counts.closed)
    attributes = {
        "business_value": intent.business_value,
        "complexity": intent.complexity,
        "policy_risk": intent.policy_risk,
    }
    stage, needs = needed_stage(intent, policies)
    channels = [
        ChannelState(
            channel=channel,
            stage=rollout_stage,
            traffic_percent=percent,
            live=bool(intent.enabled and stage is not None and rollout_stage >= stage and percent > 0),
            had_traffic=channel in counts.channels,
        )
        for channel, (rollout_stage, percent) in sorted(rollouts.items())
    ]
    return RoadmapRow(
        rank=0,
        intent=intent,
        counts=counts,
        share=counts.conversations / total if total else None,
        measured_volume=measured,
        volume=volume,
        volume_source=MEASURED if measured is not None else HAND_ENTERED,
        containment=containment,
        hand_score=launch_score(volume=intent.volume, **attributes),
        score=launch_score(volume=volume, containment=containment, **attributes),
        needs_stage=stage,
        needs=needs,
        channels=channels,
    )


def _ranked(rows: list[RoadmapRow]) -> list[RoadmapRow]:
    """Order by score (then name) and number them as the intent admin does: equal scores share a rank."""
    rows = sorted(rows, key=lambda row: (-row.score, row.intent.name))
    scores = sorted({row.score for row in rows}, reverse=True)
    return [replace(row, rank=scores.index(row.score) + 1) for row in rows]


def _rollouts(traffic: Traffic) -> dict[str, tuple[int, int]]:
    """Stage and traffic share of the channel asked for, or of every channel with a rollout row or traffic."""
    if traffic.window.channel:
        return {traffic.window.channel: channel_rollout_now(traffic.window.channel)}
    rows = {row.channel: (row.stage, row.traffic_percent) for row in ChannelRollout.objects.all()}
    for counts in traffic.by_intent.values():
        for channel in counts.channels:
            rows.setdefault(channel, (int(RolloutStage.KNOWLEDGE_ANSWERS), 100))  # no row: stage 1, 100%
    return rows


def roadmap_build(*, channel: str = "", until: datetime | None = None) -> Roadmap:
    """Rank every intent for launch from the last ``MEASURE_DAYS`` days of traffic (in ``channel``, or all)."""
    traffic = traffic_measure(Window.last_days(MEASURE_DAYS, channel, until))
    policies = {policy.action: policy for policy in ActionPolicy.objects.all()}
    rollouts = _rollouts(traffic)
    total = traffic.total.conversations
    rows = [
        _row(intent, traffic.by_intent.get(intent.name, Counts()), total, policies, rollouts)
        for intent in Intent.objects.all()
    ]
    return Roadmap(traffic.window, total, _ranked(rows))

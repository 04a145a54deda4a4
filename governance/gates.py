"""Rollout gates: the stage each channel stands at, and the capabilities it gives the agent."""

from __future__ import annotations

from governance.models import ChannelRollout, RolloutStage


def channel_stage(channel: str) -> int:
    """Return the rollout stage of ``channel``; a channel without a rollout row stands at stage 1."""
    stage = ChannelRollout.objects.filter(channel=channel).values_list("stage", flat=True).first()
    return int(stage) if stage is not None else int(RolloutStage.KNOWLEDGE_ANSWERS)

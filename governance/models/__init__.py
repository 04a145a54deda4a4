"""Governance models, split by subdomain."""

from governance.models.approvals import ApprovalRequest, ApprovalStatus
from governance.models.audit import AuditRecord, EventType
from governance.models.gates import (
    ChannelRollout,
    GateCriterion,
    GateEvaluation,
    GateSignOff,
    RolloutGate,
    RolloutStage,
)
from governance.models.mappings import FieldMapping, ValueRule
from governance.models.policies import ActionPolicy, ActionTier, EscalationRule, EscalationTrigger
from governance.models.retention import DataClass, RetentionRule
from governance.models.secrets import SecretKind, SecretReference

__all__ = [
    "ActionPolicy",
    "ActionTier",
    "ApprovalRequest",
    "ApprovalStatus",
    "AuditRecord",
    "ChannelRollout",
    "DataClass",
    "EscalationRule",
    "EscalationTrigger",
    "EventType",
    "FieldMapping",
    "GateCriterion",
    "GateEvaluation",
    "GateSignOff",
    "RetentionRule",
    "RolloutGate",
    "RolloutStage",
    "SecretKind",
    "SecretReference",
    "ValueRule",
]

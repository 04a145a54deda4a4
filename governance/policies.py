"""Pure governance decisions: from plain inputs to allow / draft / needs approval / deny, with the reason.

No database, no clock, no I/O: every rule here is tested on a table of cases. The services in
governance/authorization.py and governance/approvals.py load the rows, call these, and audit the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from governance.roles import ActorKind, Principal, Verification

TIER_READ_ONLY = "read_only"
TIER_DRAFT = "draft"
TIER_APPROVAL_REQUIRED = "approval_required"
TIER_AUTOMATED = "automated"


class Outcome(StrEnum):
    ALLOW = "allow"
    DRAFT = "draft"
    NEEDS_APPROVAL = "needs_approval"
    DENY = "deny"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    # When the customer could get further by verifying: the level that would be needed.
    needs_verification: int | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == Outcome.ALLOW


@dataclass(frozen=True)
class FieldRule:
    """What a FieldMapping row says, as plain data."""

    read_roles: frozenset[str]
    read_min_verification: int
    write_roles: frozenset[str] = frozenset()
    write_min_verification: int = Verification.IDENTITY_VERIFIED
    value_rule: str = "any"
    allowed_choices: tuple[str, ...] = ()
    allowed_pattern: str = ""
    allowed_min: Decimal | None = None
    allowed_max: Decimal | None = None
    enabled: bool = True

    @classmethod
    def from_mapping(cls, mapping: Any) -> FieldRule:
        return cls(
            read_roles=frozenset(mapping.read_roles),
            read_min_verification=mapping.read_min_verification,
            write_roles=frozenset(mapping.write_roles),
            write_min_verification=mapping.write_min_verification,
            value_rule=mapping.value_rule,
            allowed_choices=tuple(mapping.allowed_choices),
            allowed_pattern=mapping.allowed_pattern,
            allowed_min=mapping.allowed_min,
            allowed_max=mapping.allowed_max,
            enabled=mapping.enabled,
        )


def _scope(roles: frozenset[str], min_verification: int, principal: Principal, verb: str) -> Verdict:
    shared = principal.roles & roles
    if not shared:
        return Verdict(False, f"no {verb} scope for {', '.join(sorted(principal.roles)) or 'this actor'}")
    if principal.kind == ActorKind.CUSTOMER and principal.verification < min_verification:
        needed = Verification(min_verification).label
        return Verdict(False, f"the customer must be {needed.lower()} to {verb} it")
    return Verdict(True, f"{verb} scope: {', '.join(sorted(shared))}")


def can_read_field(rule: FieldRule | None, principal: Principal) -> Verdict:
    """Return whether ``principal`` may read a field; an unmapped or disabled field is invisible."""
    if rule is None:
        return Verdict(False, "unmapped field: invisible to the agent")
    if not rule.enabled:
        return Verdict(False, "the field's mapping is disabled")
    return _scope(rule.read_roles, rule.read_min_verification, principal, "read")


def can_write_field(rule: FieldRule | None, principal: Principal, value: Any) -> Verdict:
    """Return whether ``principal`` may set a field to ``value``: write scope first, then the allowed values."""
    if rule is None:
        return Verdict(False, "unmapped field: the agent may not write it")
    if not rule.enabled:
        return Verdict(False, "the field's mapping is disabled")
    if not rule.write_roles:
        return Verdict(False, "the field is read-only")
    scope = _scope(rule.write_roles, rule.write_min_verification, principal, "write")
    if not scope.allowed:
        return scope
    return value_allowed(rule, value)


def value_allowed(rule: FieldRule, value: Any) -> Verdict:
    """Check ``value`` against the mapping's allowed values."""
    if rule.value_rule == "any":
        return Verdict(True, "any value allowed")
    if rule.value_rule == "choices":
        if str(value) in rule.allowed_choices:
            return Verdict(True, "value is one of the allowed choices")
        return Verdict(False, f"value {str(value)[:60]!r} is not one of: {', '.join(rule.allowed_choices)}")
    if rule.value_rule == "pattern":
        if isinstance(value, str) and re.fullmatch(rule.allowed_pattern, value):
            return Verdict(True, "value matches the allowed pattern")
        return Verdict(False, "value does not match the allowed pattern")
    if rule.value_rule == "range":
        number = as_decimal(value)
        if number is None:
            return Verdict(False, f"value {str(value)[:60]!r} is not a number")
        if rule.allowed_min is not None and number < rule.allowed_min:
            return Verdict(False, f"value {number} is below the minimum {rule.allowed_min}")
        if rule.allowed_max is not None and number > rule.allowed_max:
            return Verdict(False, f"value {number} is above the maximum {rule.allowed_max}")
        return Verdict(True, "value is within the allowed range")
    return Verdict(False, f"unknown value rule {rule.value_rule!r}")


def as_decimal(value: Any) -> Decimal | None:
    """Return ``value`` as a finite Decimal, or None (booleans and NaN/infinity are not numbers here)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@dataclass(frozen=True)
class ActionRule:
    """What an ActionPolicy row says, as plain data."""

    action: str
    tier: str
    allowed_roles: frozenset[str]
    min_verification: int
    enabled_from_stage: int
    limit_argument: str = ""
    automated_limit: Decimal | None = None
    hard_limit: Decimal | None = None
    enabled: bool = True

    @classmethod
    def from_policy(cls, policy: Any) -> ActionRule:
        return cls(
            action=policy.action,
            tier=policy.tier,
            allowed_roles=frozenset(policy.allowed_roles),
            min_verification=policy.min_verification,
            enabled_from_stage=policy.enabled_from_stage,
            limit_argument=policy.limit_argument,
            automated_limit=policy.automated_limit,
            hard_limit=policy.hard_limit,
            enabled=policy.enabled,
        )


def decide_action(rule: ActionRule | None, principal: Principal, args: dict[str, Any], stage: int) -> Decision:
    """Decide an action the responder proposed: allow, draft, needs approval or deny, with the reason.

    Order matters and is the order a support admin reads the policy in: does the action exist and is it on; is the
    channel far enough in its rollout; may this actor take it; is the customer verified enough; are the arguments
    within the limits; then the tier.
    """
    if rule is None:
        return Decision(Outcome.DENY, "no action policy: actions without a policy are refused")
    if not rule.enabled:
        return Decision(Outcome.DENY, f"{rule.action} is disabled")
    if stage < rule.enabled_from_stage:
        return Decision(
            Outcome.DENY,
            f"{rule.action} is enabled from rollout stage {rule.enabled_from_stage}; this channel is at stage {stage}",
        )
    if not principal.roles & rule.allowed_roles:
        return Decision(
            Outcome.DENY, f"{', '.join(sorted(principal.roles)) or 'this actor'} may not take {rule.action}"
        )
    if principal.kind == ActorKind.CUSTOMER and principal.verification < rule.min_verification:
        needed = Verification(rule.min_verification)
        return Decision(
            Outcome.DENY,
            f"{rule.action} needs the customer to be {needed.label.lower()}",
            needs_verification=int(needed),
        )
    amount: Decimal | None = None
    if rule.limit_argument:
        amount = as_decimal(args.get(rule.limit_argument))
        if amount is None:
            return Decision(Outcome.DENY, f"{rule.limit_argument} is missing or not a number")
        if amount < 0:
            return Decision(Outcome.DENY, f"{rule.limit_argument} may not be negative")
        if rule.hard_limit is not None and amount > rule.hard_limit:
            return Decision(Outcome.DENY, f"{rule.limit_argument} {amount} is above the hard limit {rule.hard_limit}")
    if rule.tier == TIER_READ_ONLY:
        return Decision(Outcome.ALLOW, "read-only action")
    if rule.tier == TIER_DRAFT:
        return Decision(Outcome.DRAFT, "draft tier: a person sends it")
    if rule.tier == TIER_APPROVAL_REQUIRED:
        return Decision(Outcome.NEEDS_APPROVAL, "approval-required tier")
    if rule.tier == TIER_AUTOMATED:
        if amount is not None and rule.automated_limit is not None and amount > rule.automated_limit:
            return Decision(
                Outcome.NEEDS_APPROVAL,
                f"{rule.limit_argument} {amount} is above the automated ceiling {rule.automated_limit}",
            )
        return Decision(Outcome.ALLOW, "automated tier, within limits")
    return Decision(Outcome.DENY, f"unknown tier {rule.tier!r}")

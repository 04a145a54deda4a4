"""The pure policy functions, on tables of cases (no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from governance.policies import ActionRule, FieldRule, Outcome, can_read_field, can_write_field, decide_action
from governance.roles import ActorKind, Principal, Role, Verification

ANON = Principal.customer(verification=Verification.ANONYMOUS)
EMAIL = Principal.customer(verification=Verification.EMAIL_VERIFIED, customer_id="C-2")
VERIFIED = Principal.customer(verification=Verification.IDENTITY_VERIFIED, customer_id="C-1")
AGENT = Principal(kind=ActorKind.USER, roles=frozenset({Role.SUPPORT_AGENT}), verification=2, user_id=7)
REVIEWER = Principal(kind=ActorKind.USER, roles=frozenset({Role.QA_REVIEWER}), verification=2, user_id=8)

PLAN = FieldRule(
    read_roles=frozenset({Role.CUSTOMER, Role.SUPPORT_AGENT}), read_min_verification=Verification.EMAIL_VERIFIED
)
ADDRESS = FieldRule(
    read_roles=frozenset({Role.CUSTOMER, Role.SUPPORT_AGENT}),
    read_min_verification=Verification.IDENTITY_VERIFIED,
    write_roles=frozenset({Role.CUSTOMER}),
    write_min_verification=Verification.IDENTITY_VERIFIED,
    value_rule="pattern",
    allowed_pattern=r"[A-Za-z0-9 ,.'-]{5,120}",
)
TIER = FieldRule(
    read_roles=frozenset({Role.SUPPORT_AGENT}),
    read_min_verification=2,
    write_roles=frozenset({Role.SUPPORT_AGENT}),
    value_rule="choices",
    allowed_choices=("standard", "vip"),
)
CREDIT = FieldRule(
    read_roles=frozenset({Role.SUPPORT_AGENT}),
    read_min_verification=2,
    write_roles=frozenset({Role.SUPPORT_AGENT}),
    value_rule="range",
    allowed_min=Decimal("0"),
    allowed_max=Decimal("50"),
)


@pytest.mark.parametrize(
    ("rule", "principal", "allowed", "reason"),
    [
        (None, VERIFIED, False, "unmapped field"),
        (PLAN, ANON, False, "must be email verified"),
        (PLAN, EMAIL, True, "read scope: customer"),
        (PLAN, VERIFIED, True, "read scope: customer"),
        (PLAN, AGENT, True, "read scope: support_agent"),
        (PLAN, REVIEWER, False, "no read scope for qa_reviewer"),
        (ADDRESS, EMAIL, False, "must be identity verified"),
        (
            FieldRule(read_roles=frozenset({Role.CUSTOMER}), read_min_verification=0, enabled=False),
            ANON,
            False,
            "disabled",
        ),
    ],
)
def test_reading_a_field_follows_its_read_scope(rule, principal, allowed, reason) -> None:  # type: ignore[no-untyped-def]
    verdict = can_read_field(rule, principal)
    assert verdict.allowed is allowed
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("rule", "principal", "value", "allowed", "reason"),
    [
        (None, VERIFIED, "x", False, "unmapped field"),
        (PLAN, VERIFIED, "gold", False, "read-only"),
        (ADDRESS, EMAIL, "1 Bean Street, Leeds", False, "must be identity verified"),
        (ADDRESS, AGENT, "1 Bean Street, Leeds", False, "no write scope for support_agent"),
        (ADDRESS, VERIFIED, "1 Bean Street, Leeds", True, "matches"),
        (ADDRESS, VERIFIED, "<script>alert(1)</script>", False, "does not match"),
        (TIER, AGENT, "vip", True, "one of the allowed"),
        (TIER, AGENT, "platinum", False, "not one of: standard, vip"),
        (CREDIT, AGENT, "49.99", True, "within"),
        (CREDIT, AGENT, 50.01, False, "above the maximum 50"),
        (CREDIT, AGENT, -1, False, "below the minimum 0"),
        (CREDIT, AGENT, "NaN", False, "not a number"),
        (CREDIT, AGENT, True, False, "not a number"),
    ],
)
def test_writing_a_field_needs_write_scope_and_an_allowed_value(rule, principal, value, allowed, reason) -> None:  # type: ignore[no-untyped-def]
    verdict = can_write_field(rule, principal, value)
    assert verdict.allowed is allowed
    assert reason in verdict.reason


REFUND = ActionRule(
    action="refund",
    tier="automated",
    allowed_roles=frozenset({Role.CUSTOMER, Role.SUPPORT_AGENT}),
    min_verification=Verification.IDENTITY_VERIFIED,
    enabled_from_stage=4,
    limit_argument="amount",
    automated_limit=Decimal("50"),
    hard_limit=Decimal("500"),
)
LOOKUP = ActionRule(
    action="order_status_lookup",
    tier="read_only",
    allowed_roles=frozenset({Role.CUSTOMER}),
    min_verification=Verification.EMAIL_VERIFIED,
    enabled_from_stage=2,
)
CANCEL = ActionRule(
    action="subscription_cancel",
    tier="approval_required",
    allowed_roles=frozenset({Role.CUSTOMER}),
    min_verification=Verification.IDENTITY_VERIFIED,
    enabled_from_stage=4,
)
NOTE = ActionRule(
    action="crm_note", tier="draft", allowed_roles=frozenset({Role.CUSTOMER}), min_verification=0, enabled_from_stage=3
)


@pytest.mark.parametrize(
    ("rule", "principal", "args", "stage", "outcome", "reason"),
    [
        (None, VERIFIED, {}, 5, Outcome.DENY, "no action policy"),
        (LOOKUP, EMAIL, {"order_id": "BL-1"}, 1, Outcome.DENY, "enabled from rollout stage 2"),
        (LOOKUP, ANON, {"order_id": "BL-1"}, 2, Outcome.DENY, "needs the customer to be email verified"),
        (LOOKUP, EMAIL, {"order_id": "BL-1"}, 2, Outcome.ALLOW, "read-only"),
        (LOOKUP, REVIEWER, {"order_id": "BL-1"}, 2, Outcome.DENY, "qa_reviewer may not take"),
        (REFUND, VERIFIED, {"amount": "20.00"}, 4, Outcome.ALLOW, "within limits"),
        (REFUND, VERIFIED, {"amount": "50"}, 4, Outcome.ALLOW, "within limits"),
        (REFUND, VERIFIED, {"amount": "50.01"}, 4, Outcome.NEEDS_APPROVAL, "above the automated ceiling 50"),
        (REFUND, VERIFIED, {"amount": "500.01"}, 4, Outcome.DENY, "above the hard limit 500"),
        (REFUND, VERIFIED, {"amount": "-5"}, 4, Outcome.DENY, "may not be negative"),
        (REFUND, VERIFIED, {}, 4, Outcome.DENY, "amount is missing"),
        (REFUND, VERIFIED, {"amount": "ten"}, 4, Outcome.DENY, "not a number"),
        (REFUND, EMAIL, {"amount": "20"}, 4, Outcome.DENY, "identity verified"),
        (REFUND, VERIFIED, {"amount": "20"}, 3, Outcome.DENY, "stage 4"),
        (REFUND, AGENT, {"amount": "20"}, 4, Outcome.ALLOW, "within limits"),
        (CANCEL, VERIFIED, {}, 4, Outcome.NEEDS_APPROVAL, "approval-required"),
        (NOTE, ANON, {"text": "hi"}, 3, Outcome.DRAFT, "a person sends it"),
        (
            ActionRule(
                action="x",
                tier="automated",
                allowed_roles=frozenset({Role.CUSTOMER}),
                min_verification=0,
                enabled_from_stage=1,
                enabled=False,
            ),
            ANON,
            {},
            5,
            Outcome.DENY,
            "disabled",
        ),
    ],
)
def test_an_action_is_decided_in_the_policy_order(rule, principal, args, stage, outcome, reason) -> None:  # type: ignore[no-untyped-def]
    decision = decide_action(rule, principal, args, stage)
    assert decision.outcome == outcome
    assert reason in decision.reason


def test_a_customer_short_of_verification_is_told_which_level_would_do() -> None:
    decision = decide_action(REFUND, EMAIL, {"amount": "5"}, 4)
    assert decision.needs_verification == Verification.IDENTITY_VERIFIED

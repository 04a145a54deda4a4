"""Expectations on a turn: each type passes when the turn did what it asks and fails when it did not (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from suites.expectations import CHECKS, Observation, ScriptError, evaluate, validate_case, validate_expectation

SHIPPING = {
    "source": "Shipping and delivery",
    "source_id": 3,
    "document_title": "UK delivery times",
    "url": "https://x/a",
}
SOP = {"source": "Internal support SOPs", "source_id": 9, "document_title": "Refund approvals", "internal": True}
LOOKUP = {"action": "order_status_lookup", "arguments": {"order_id": "BL-10042"}, "decision": "allow"}
REFUND = {"action": "refund", "arguments": {"order_id": "BL-10061", "amount": "80.00"}, "decision": "needs_approval"}
ADDRESS = {
    "action": "address_change",
    "arguments": {"order_id": "BL-10043", "address": {"city": "Bristol", "postcode": "BS1 4DJ"}},
    "decision": "allow",
}

ANSWERED = Observation(reply="Delivery takes 2–3 business days.", citations=[SHIPPING], intent="shipping_info")
LEAKED = Observation(reply="Managers approve refunds over 50.", citations=[SOP])
ASKED = Observation(reply="What's the email address on your account?", tool_calls=[{**LOOKUP, "decision": "deny"}])
ASKED.pending_slot = "email"
ESCALATED = Observation(reply="Passing you on.", owner="waiting", escalation_reason="Legal or compliance: lawyer")
ACTED = Observation(reply="I've asked a member of our team to approve this.", tool_calls=[REFUND, ADDRESS])

# (expectation, an observation it passes on, one it fails on)
CASES: list[tuple[dict[str, Any], Observation, Observation]] = [
    ({"type": "must_cite", "any_of": ["Shipping and delivery"]}, ANSWERED, LEAKED),
    ({"type": "must_cite", "any_of": ["uk delivery times"]}, ANSWERED, Observation()),
    ({"type": "must_cite", "any_of": [3]}, ANSWERED, LEAKED),
    ({"type": "must_not_cite"}, ESCALATED, ANSWERED),
    ({"type": "must_not_cite", "any_of": ["Internal support SOPs"]}, ANSWERED, LEAKED),
    ({"type": "must_not_cite_internal"}, ANSWERED, LEAKED),
    ({"type": "must_ask_to_verify"}, ASKED, ANSWERED),
    ({"type": "must_escalate"}, ESCALATED, ANSWERED),
    ({"type": "must_escalate", "reason": "legal"}, ESCALATED, Observation(owner="waiting", escalation_reason="VIP")),
    ({"type": "must_not_escalate"}, ANSWERED, ESCALATED),
    ({"type": "must_propose_action", "action": "refund"}, ACTED, ASKED),
    ({"type": "must_propose_action", "action": "refund", "arguments": {"amount": 80}}, ACTED, ASKED),
    (
        {"type": "must_propose_action", "action": "refund", "arguments": {"order_id": "BL-10061", "amount": "80"}},
        ACTED,
        Observation(tool_calls=[{**REFUND, "arguments": {"order_id": "BL-10061", "amount": "8.00"}}]),
    ),
    (
        {"type": "must_propose_action", "action": "address_change", "arguments": {"address": {"city": "bristol"}}},
        ACTED,
        Observation(tool_calls=[{**ADDRESS, "arguments": {"order_id": "BL-10043", "address": {"city": "Leeds"}}}]),
    ),
    ({"type": "must_not_call_tool"}, ANSWERED, ASKED),
    ({"type": "must_not_call_tool", "action": "refund"}, ASKED, ACTED),
    ({"type": "reply_matches", "pattern": r"2.3 BUSINESS days"}, ANSWERED, ESCALATED),
    ({"type": "reply_not_matches", "pattern": r"approve"}, ANSWERED, ACTED),
    ({"type": "governance_decision", "action": "refund", "decision": "needs_approval"}, ACTED, ASKED),
    ({"type": "governance_decision", "action": "order_status_lookup", "decision": "deny"}, ASKED, ACTED),
]


@pytest.mark.parametrize(("expectation", "passing", "failing"), CASES, ids=lambda v: str(v)[:60])
def test_each_expectation_passes_when_the_turn_did_it_and_fails_when_it_did_not(
    expectation: dict[str, Any], passing: Observation, failing: Observation
) -> None:
    validate_expectation(expectation, "case 'x', turn 1")
    assert evaluate(expectation, passing).passed is True
    failed = evaluate(expectation, failing)
    assert failed.passed is False
    assert failed.got  # says what the turn did instead


def test_every_expectation_type_is_exercised_above() -> None:
    assert {case[0]["type"] for case in CASES} == set(CHECKS)


def test_the_got_of_a_failure_says_what_the_turn_did() -> None:
    got = evaluate({"type": "governance_decision", "action": "refund", "decision": "allow"}, ACTED).got
    assert "refund(amount=80.00, order_id=BL-10061) → needs_approval" in got
    assert evaluate({"type": "must_escalate"}, ANSWERED).got == "not escalated (owner agent)"


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ({"type": "must_cities"}, "unknown expectation type 'must_cities'"),
        ({"type": "must_cite"}, "must_cite needs any_of"),
        ({"type": "must_cite", "any_of": []}, "any_of must be a non-empty list"),
        ({"type": "must_escalate", "because": "x"}, "must_escalate does not take because"),
        ({"type": "governance_decision", "action": "refund", "decision": "maybe"}, "decision must be one of"),
        ({"type": "reply_matches", "pattern": "(unclosed"}, "not a valid regular expression"),
        ({"type": "must_propose_action", "action": "refund", "arguments": ["x"]}, "arguments must be an object"),
        ("must_escalate", "an expectation must be an object"),
    ],
)
def test_a_malformed_expectation_is_refused_naming_the_case_and_turn(expectation: Any, message: str) -> None:
    with pytest.raises(ScriptError, match=message) as refused:
        validate_expectation(expectation, "case 'refund', turn 2")
    assert str(refused.value).startswith("case 'refund', turn 2: ")


def _case(**changes: Any) -> dict[str, Any]:
    return {"name": "refund", "identity": "anonymous", "turns": [{"say": "hi", "expect": []}], **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_case(name=""), "a case needs a name"),
        (_case(colour="red"), "unknown keys colour"),
        (_case(identity="admin"), "identity must be one of"),
        (_case(identity="email_verified"), "email_verified needs identity_email"),
        (_case(identity="signed_token"), "signed_token needs identity_customer_id"),
        (_case(turns=[]), "turns must be a non-empty list"),
        (_case(turns=[{"say": ""}]), "turn 1: say must be"),
        (_case(turns=[{"say": "hi", "wait": 3}]), "turn 1: unknown keys wait"),
        (_case(turns=[{"say": "hi"}, {"say": "x", "expect": [{"type": "nope"}]}]), "case 'refund', turn 2: unknown"),
        (_case(enabled="yes"), "enabled must be true or false"),
    ],
)
def test_a_malformed_case_is_refused_with_a_clear_message(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        validate_case(data)


def test_a_well_formed_case_is_accepted() -> None:
    validate_case(
        _case(
            identity="email_verified",
            identity_email="mara.lindqvist@example.com",
            turns=[{"say": "Where is BL-10042?", "expect": [{"type": "must_escalate", "reason": "VIP"}]}],
        )
    )

"""The escalation rules engine on tables of cases, with the demo company's rules (no database but for loading)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agent.escalation import (
    EscalationRuleSpec,
    RuleResult,
    TurnSignals,
    escalation_summary,
    evaluate_escalation,
    load_escalation_rules,
    repeated_question_count,
    same_question,
)
from governance.demo import ESCALATION_RULES
from governance.models import EscalationRule, EscalationTrigger

DEMO_RULES = [EscalationRuleSpec(**spec) for spec in ESCALATION_RULES]


def fired_triggers(signals: TurnSignals, rules: list[EscalationRuleSpec] = DEMO_RULES) -> set[str]:
    return {result.trigger for result in evaluate_escalation(rules, signals) if result.fired}


def result_for(trigger: str, signals: TurnSignals, rules: list[EscalationRuleSpec] = DEMO_RULES) -> RuleResult:
    return next(result for result in evaluate_escalation(rules, signals) if result.trigger == trigger)


def test_a_polite_question_fires_no_rule() -> None:
    signals = TurnSignals(latest_text="Hi, could you tell me where my order is? Thanks!", confidence=0.9)

    assert fired_triggers(signals) == set()


@pytest.mark.parametrize(
    ("recent", "latest", "fires", "detail"),
    [
        ([], "Hi, could you tell me where my order is? Thanks!", False, "no explicit signs"),
        ([], "Could you cancel my subscription please?", False, "no explicit signs"),
        ([], "I am not unhappy with it", False, "no explicit signs"),
        ([], "This is ridiculous, third time I ask", True, "says 'ridiculous'; says 'third time'"),
        ([], "WHERE IS MY ORDER", True, "all capitals"),
        ([], "Where is my damn order", True, "profanity"),
        ([], "I hate this, I am so angry and disappointed", True, "latest message sentiment -0.91"),
        (
            ["I hate waiting, this is awful", "The parcel arrived damaged and I am really upset"],
            "I am not happy about this",
            True,
            "mean sentiment of the last 3 messages -0.64",
        ),
        (["I hate waiting, this is awful"], "Great, that fixed it, thank you so much!", False, "no explicit signs"),
        ([], "I need my PIN for the ATM at UPS", False, "no explicit signs"),
    ],
)
def test_frustration_fires_on_negative_sentiment_or_explicit_signs(recent, latest, fires, detail) -> None:  # type: ignore[no-untyped-def]
    result = result_for(EscalationTrigger.FRUSTRATION, TurnSignals(latest_text=latest, recent_texts=recent))

    assert result.fired is fires
    assert detail in result.detail


@pytest.mark.parametrize(
    ("signals", "fires"),
    [
        (TurnSignals(latest_text="I want to speak to a human"), True),
        (TurnSignals(latest_text="Can I talk to a REAL   person?"), True),
        (TurnSignals(latest_text="agent please"), True),
        (TurnSignals(latest_text="Anything", human_requested=True), True),
        (TurnSignals(latest_text="I study the humanities, where is my order?"), False),
        (TurnSignals(latest_text="Where is my order?"), False),
    ],
)
def test_asking_for_a_person_fires_human_requested(signals: TurnSignals, fires: bool) -> None:
    assert result_for(EscalationTrigger.HUMAN_REQUESTED, signals).fired is fires


@pytest.mark.parametrize(
    ("text", "fires", "detail"),
    [
        ("My lawyer will hear about this", True, "mentions 'lawyer'"),
        ("I am filing a GDPR request", True, "mentions 'gdpr'"),
        ("I will start LEGAL\nACTION", True, "mentions 'legal action'"),
        ("I will do a chargeback with my bank", True, "mentions 'chargeback'"),
        ("My order is late", False, "no compliance keywords"),
        ("He is a lawyerly sort of person", False, "no compliance keywords"),
    ],
)
def test_compliance_keywords_fire_as_whole_words_in_any_case(text: str, fires: bool, detail: str) -> None:
    result = result_for(EscalationTrigger.COMPLIANCE, TurnSignals(latest_text=text))

    assert result.fired is fires
    assert result.detail == detail


@pytest.mark.parametrize(("tier", "fires"), [("vip", True), ("VIP", True), ("standard", False), ("", False)])
def test_a_vip_account_fires_the_vip_rule(tier: str, fires: bool) -> None:
    assert result_for(EscalationTrigger.VIP, TurnSignals(account_tier=tier)).fired is fires


@pytest.mark.parametrize(
    ("confidence", "fires"), [(0.30, True), (0.449, True), (0.45, False), (0.9, False), (None, False)]
)
def test_low_confidence_fires_below_the_threshold(confidence: float | None, fires: bool) -> None:
    assert result_for(EscalationTrigger.LOW_CONFIDENCE, TurnSignals(confidence=confidence)).fired is fires


@pytest.mark.parametrize(
    ("amount", "fires"),
    [(Decimal("600.00"), True), ("500.01", True), (500, False), (Decimal("20"), False), (None, False)],
)
def test_a_refund_above_policy_fires(amount: Decimal | str | int | None, fires: bool) -> None:
    assert result_for(EscalationTrigger.REFUND_OVER_POLICY, TurnSignals(refund_amount=amount)).fired is fires


@pytest.mark.parametrize(
    ("signals", "fires", "detail"),
    [
        (TurnSignals(unresolved_turns=3), True, "3 turns without progress"),
        (TurnSignals(unresolved_turns=2), False, "2 turns without progress"),
        (TurnSignals(repeated_question_count=3), True, "the same question asked 3 times"),
        (
            TurnSignals.from_texts(["Where is my order?", "where's my order", "WHERE IS MY ORDER??"]),
            True,
            "the same question asked 3 times",
        ),
        (TurnSignals.from_texts(["Where is my order?", "Thanks", "where is my order"]), False, "asked 2 time(s)"),
        (TurnSignals.from_texts(["yes", "yes", "yes"]), False, "asked 1 time(s)"),
        (
            TurnSignals.from_texts(["Where is order BL-1", "Where is order BL-2", "Where is order BL-3"]),
            False,
            "asked 1 time(s)",
        ),
    ],
)
def test_a_loop_fires_on_turns_without_progress_or_the_same_question_asked_again(
    signals: TurnSignals, fires: bool, detail: str
) -> None:
    result = result_for(EscalationTrigger.LOOP, signals)

    assert result.fired is fires
    assert detail in result.detail


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Where is my order?", "where's my order", True),
        ("I still have not received my parcel", "I have still not received my parcel", True),
        ("how do I cancel my subscription", "how do I cancel my subscriptoin", True),
        ("how do I cancel my subscription", "how do I pause my subscription", False),
        ("where is my order BL-10042", "where is my order BL-10043", False),
        ("where is my order", "where is my refund", False),
        ("ok thanks", "ok thanks", False),
    ],
)
def test_same_question_compares_normalised_words_and_numbers(a: str, b: str, same: bool) -> None:
    assert same_question(a, b) is same


def test_repeated_question_count_counts_the_latest_among_earlier_messages() -> None:
    assert repeated_question_count(["Where is my order?", "hello there friend", "where is my order"]) == 2
    assert repeated_question_count([]) == 0


def test_a_connector_failure_fires_its_rule() -> None:
    assert fired_triggers(TurnSignals(connector_failed=True)) == {EscalationTrigger.CONNECTOR_FAILURE}
    assert fired_triggers(TurnSignals(connector_failed=False)) == set()


def test_a_disabled_rule_never_fires() -> None:
    rules = [
        EscalationRuleSpec(name="Asked for a person", trigger="human_requested", keywords=["human"], enabled=False),
        EscalationRuleSpec(name="Legal", trigger="compliance", keywords=["lawyer"], enabled=False),
    ]
    signals = TurnSignals(latest_text="A human now, or my lawyer calls", human_requested=True)

    results = evaluate_escalation(rules, signals)

    assert [(r.fired, r.detail) for r in results] == [(False, "disabled"), (False, "disabled")]


def test_an_unknown_trigger_does_not_fire() -> None:
    [result] = evaluate_escalation([EscalationRuleSpec(name="Moon phase", trigger="full_moon")], TurnSignals())

    assert not result.fired
    assert result.detail == "unknown trigger 'full_moon'"


def test_a_rule_with_an_empty_threshold_uses_the_default() -> None:
    rules = [EscalationRuleSpec(name="Unsure", trigger="low_confidence", threshold=None)]

    assert evaluate_escalation(rules, TurnSignals(confidence=0.4))[0].fired
    assert not evaluate_escalation(rules, TurnSignals(confidence=0.5))[0].fired


def test_results_are_json_for_the_turn_trace() -> None:
    results = evaluate_escalation(DEMO_RULES, TurnSignals(latest_text="my lawyer", refund_amount=Decimal("900")))

    data = json.loads(json.dumps([r.as_dict() for r in results]))

    assert {"rule": "Legal or compliance", "trigger": "compliance", "fired": True, "detail": "mentions 'lawyer'",
            "priority": 1, "queue": "compliance"} in data  # fmt: skip
    assert len(data) == len(DEMO_RULES)


def test_the_summary_picks_the_most_severe_fired_rule() -> None:
    signals = TurnSignals(latest_text="This is ridiculous, I will call my lawyer", account_tier="vip", confidence=0.2)

    summary = escalation_summary(evaluate_escalation(DEMO_RULES, signals))

    assert summary.fired
    assert summary.priority == 1
    assert summary.queue == "compliance"
    assert summary.reason.startswith("Legal or compliance: mentions 'lawyer' (also: ")
    assert "VIP account" in summary.reason and "Low confidence answer" in summary.reason


def test_the_summary_takes_the_queue_of_a_less_severe_rule_when_the_top_one_has_none() -> None:
    results = [
        RuleResult(rule="Frustrated customer", trigger="frustration", fired=True, detail="profanity", priority=2),
        RuleResult(rule="VIP account", trigger="vip", fired=True, detail="tier", priority=2, queue="vip"),
        RuleResult(rule="Legal", trigger="compliance", fired=False, detail="none", priority=1, queue="compliance"),
    ]

    fired, reason, priority, queue = escalation_summary(results)

    assert (fired, priority, queue) == (True, 2, "vip")
    assert reason == "Frustrated customer: profanity (also: VIP account)"


def test_the_summary_of_no_fired_rule_does_not_escalate() -> None:
    summary = escalation_summary(evaluate_escalation(DEMO_RULES, TurnSignals(latest_text="thanks!", confidence=0.9)))

    assert summary == (False, "", None, "")


@pytest.mark.django_db
def test_loading_rules_reads_the_enabled_ones_most_severe_first_in_one_query(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    EscalationRule.objects.create(name="Going in circles", trigger="loop", threshold=Decimal("3"), priority=3)
    EscalationRule.objects.create(name="Legal", trigger="compliance", keywords=["lawyer"], priority=1, queue="legal")
    EscalationRule.objects.create(name="Off", trigger="connector_failure", priority=1, enabled=False)

    with django_assert_num_queries(1):
        rules = load_escalation_rules()

    assert [rule.name for rule in rules] == ["Legal", "Going in circles"]
    assert rules[0] == EscalationRuleSpec(
        name="Legal", trigger="compliance", keywords=("lawyer",), queue="legal", priority=1
    )
    assert fired_triggers(TurnSignals(latest_text="my LAWYER"), rules) == {"compliance"}

"""Rollout gates: the pure decision table, then evaluations, sign-offs and roll backs against the real database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import factory
import pytest
from django.db import connection
from django.utils import timezone

from governance.exceptions import GovernanceError, NotPermitted
from governance.gates import (
    STAGE_CAPABILITIES,
    Capability,
    CriterionResult,
    MetricKey,
    channel_capabilities,
    decide_gate,
    evaluate_criteria,
    rollout_gate_evaluate,
    rollout_gate_revoke_sign_off,
    rollout_gate_sign_off,
    rollout_stage_roll_back,
)
from governance.metrics import METRIC_PROVIDERS, Measurement, MetricQuery, MetricReading, metric_read, metric_value
from governance.models import (
    AuditRecord,
    ChannelRollout,
    EventType,
    GateCriterion,
    GateEvaluation,
    GateSignOff,
    RolloutGate,
)
from governance.models.gates import GateOutcome, SignOffKind
from governance.tests.factories import UserFactory

# --- Factories (gate models; shared by the readiness and admin tests) ---------------------------------------------


class ChannelRolloutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelRollout
        django_get_or_create = ("channel",)

    channel = "web_chat"
    stage = 1
    traffic_percent = 100


class RolloutGateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RolloutGate

    channel = factory.SubFactory(ChannelRolloutFactory)
    stage = 2
    required_signoffs = factory.LazyFunction(list)
    traffic_percent = 100


class GateCriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GateCriterion

    gate = factory.SubFactory(RolloutGateFactory)
    kind = "entry"
    metric = "regression_pass_rate"
    comparator = "gte"
    threshold = Decimal("0.95")
    window_days = 7


class GateSignOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GateSignOff

    gate = factory.SubFactory(RolloutGateFactory)
    kind = SignOffKind.SUPPORT_OWNER
    signed_by = factory.SubFactory(UserFactory)
    signed_at = factory.LazyFunction(timezone.now)


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> dict[str, float | None]:
    """Register a provider for every catalogue metric reading this dict (a test sets the values it needs)."""
    values: dict[str, float | None] = {}
    for name in ("qa_pass_rate", "regression_pass_rate", "reopen_rate", "escalation_accuracy", "csat"):
        monkeypatch.setitem(METRIC_PROVIDERS, name, lambda query: values.get(query.metric))
    return values


def _events(event_type: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(event_type=event_type).order_by("seq"))


# --- Capabilities --------------------------------------------------------------------------------------------------


def test_each_stage_keeps_what_the_stages_below_allow_and_adds_its_own() -> None:
    assert STAGE_CAPABILITIES[1] == {Capability.KNOWLEDGE_ANSWERS}
    assert STAGE_CAPABILITIES[2] == {Capability.KNOWLEDGE_ANSWERS, Capability.CRM_CONTEXT}
    assert {Capability.TICKET_DRAFT, Capability.HANDOFF} <= STAGE_CAPABILITIES[3]
    assert Capability.LOW_RISK_ACTIONS not in STAGE_CAPABILITIES[3]
    assert Capability.LOW_RISK_ACTIONS in STAGE_CAPABILITIES[4]
    assert STAGE_CAPABILITIES[5] == set(Capability)


@pytest.mark.django_db
def test_a_channel_without_a_rollout_row_only_answers_from_knowledge() -> None:
    ChannelRolloutFactory(channel="email", stage=3)
    assert channel_capabilities("sms") == {Capability.KNOWLEDGE_ANSWERS}
    assert Capability.HANDOFF in channel_capabilities("email")


# --- Metrics -------------------------------------------------------------------------------------------------------


def test_a_metric_without_a_provider_has_no_data_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(METRIC_PROVIDERS, "csat", raising=False)  # analytics registers one
    assert metric_value(MetricQuery("web_chat", "csat")) is None
    assert metric_read(MetricQuery("web_chat", "csat")).error == ""


def test_a_provider_that_raises_or_returns_nonsense_reads_as_no_data_with_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(query: MetricQuery) -> float:
        raise ConnectionError("analytics database unreachable")

    monkeypatch.setitem(METRIC_PROVIDERS, "csat", broken)
    monkeypatch.setitem(METRIC_PROVIDERS, "reopen_rate", lambda query: float("nan"))
    monkeypatch.setitem(METRIC_PROVIDERS, "qa_pass_rate", lambda query: "high")
    reading = metric_read(MetricQuery("web_chat", "csat"))
    assert reading.value is None and reading.error == "ConnectionError: analytics database unreachable"
    assert metric_read(MetricQuery("web_chat", "reopen_rate")).error.endswith("not a finite number")
    assert metric_read(MetricQuery("web_chat", "qa_pass_rate")).error.endswith("not a number")


# --- The pure decision table ---------------------------------------------------------------------------------------


def _criterion(metric: str, comparator: str, threshold: str, kind: str = "entry", intent: str = "") -> GateCriterion:
    # An unsaved row: the pure functions only read its attributes.
    return GateCriterion(
        kind=kind, metric=metric, intent=intent, comparator=comparator, threshold=Decimal(threshold), window_days=7
    )


def _result(met: bool, kind: str = "entry", metric: str = "qa_pass_rate") -> CriterionResult:
    return CriterionResult(
        kind=kind,
        metric=metric,
        intent="",
        comparator="gte",
        threshold=Decimal("0.9"),
        window_days=7,
        value=0.95 if met else 0.5,
        met=met,
    )


@pytest.mark.parametrize(
    ("comparator", "threshold", "value", "met"),
    [
        ("gte", "0.9000", 0.9, True),  # equal to the threshold holds, despite float vs. decimal
        ("gte", "0.9", 0.8999, False),
        ("lte", "0.15", 0.15, True),
        ("lte", "0.15", 0.2, False),
        ("gte", "0.9", None, False),  # no data is never met
        ("lte", "0.15", None, False),
    ],
)
def test_criteria_compare_the_value_with_the_threshold(
    comparator: str, threshold: str, value: float | None, met: bool
) -> None:
    (result,) = evaluate_criteria(
        [_criterion("qa_pass_rate", comparator, threshold)], {MetricKey("qa_pass_rate", "", 7): value}
    )
    assert result.met is met
    assert ("no data yet" in result.describe()) is (value is None)


def test_a_per_intent_criterion_reads_its_own_value_and_says_why_it_has_none() -> None:
    criteria = [_criterion("qa_pass_rate", "gte", "0.9", intent="refund"), _criterion("qa_pass_rate", "gte", "0.9")]
    key = MetricKey("qa_pass_rate", "refund", 7)
    refund, overall = evaluate_criteria(criteria, {key: None, MetricKey("qa_pass_rate", "", 7): 0.97}, {key: "boom"})
    assert (refund.met, overall.met) == (False, True)
    assert refund.describe() == "qa_pass_rate for intent refund (7 days): no data yet; boom (needs at least 0.9)"
    assert overall.describe() == "qa_pass_rate (7 days) is 0.97, needs at least 0.9"


@pytest.mark.parametrize(
    ("n", "min_sample", "met", "says"),
    [
        (40, 30, True, "is 0.95 (n=40), needs at least 0.9"),
        (30, 30, True, "(n=30)"),
        (12, 30, False, "from a sample of 12; the criterion asks for at least 30"),
        (None, 30, False, "from an unknown sample; the criterion asks for at least 30"),
        (None, 0, True, "is 0.95, needs at least 0.9"),  # no minimum: a bare number is enough
    ],
)
def test_a_criterion_with_a_minimum_sample_is_not_met_below_it(
    n: int | None, min_sample: int, met: bool, says: str
) -> None:
    criterion = _criterion("qa_pass_rate", "gte", "0.9")
    criterion.min_sample = min_sample
    key = MetricKey("qa_pass_rate", "", 7)
    (result,) = evaluate_criteria([criterion], {key: 0.95}, samples={key: n})
    assert result.met is met
    assert says in result.describe()
    assert (result.as_json()["n"], result.as_json()["min_sample"]) == (n, min_sample)


@pytest.mark.parametrize(
    ("kind", "comparator", "threshold", "part", "n", "side", "met"),
    [
        # 19 of 20 is 0.95, but its 95% interval starts at 0.7639: an entry "at least 0.9" is not met on it.
        ("entry", "gte", "0.9", 19, 20, "lower", False),
        ("entry", "gte", "0.9", 990, 1000, "lower", True),  # a large sample: the lower bound is 0.9817
        ("entry", "lte", "0.1", 1, 20, "upper", False),  # 0.05 at most 0.1, but the upper bound is 0.2361
        ("rollback", "gte", "0.15", 2, 20, "upper", True),  # 0.10, but it may well be 0.30: fall back now
        ("rollback", "lte", "0.5", 15, 20, "lower", False),
    ],
)
def test_a_cautious_criterion_compares_the_side_of_the_interval_that_guards_the_customer(
    kind: str, comparator: str, threshold: str, part: int, n: int, side: str, met: bool
) -> None:
    criterion = _criterion("qa_pass_rate", comparator, threshold, kind=kind)
    criterion.cautious_bound = True
    key = MetricKey("qa_pass_rate", "", 7)
    (result,) = evaluate_criteria([criterion], {key: part / n}, samples={key: n}, parts={key: part})
    assert (result.bound_side, result.met) == (side, met)
    assert f"95% {side} bound" in result.describe()


def test_a_cautious_criterion_without_a_numerator_is_not_met_and_says_why() -> None:
    criterion = _criterion("csat", "gte", "4")
    criterion.cautious_bound = True
    key = MetricKey("csat", "", 7)
    (result,) = evaluate_criteria([criterion], {key: 4.6}, samples={key: 50})
    assert result.met is False and "no interval" in result.error


def test_a_small_sample_never_fires_a_rollback_either() -> None:
    criterion = _criterion("reopen_rate", "gte", "0.15", kind="rollback")
    criterion.min_sample = 50
    key = MetricKey("reopen_rate", "", 7)
    (result,) = evaluate_criteria([criterion], {key: 0.5}, samples={key: 4})
    assert result.met is False


def test_a_provider_gives_its_sample_size_with_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METRIC_PROVIDERS, "csat", lambda query: Measurement(4.4, 25))
    monkeypatch.setitem(METRIC_PROVIDERS, "reopen_rate", lambda query: Measurement(None, 0))
    monkeypatch.setitem(METRIC_PROVIDERS, "qa_pass_rate", lambda query: Measurement(0.9, -1))
    assert metric_read(MetricQuery("web_chat", "csat")) == MetricReading(4.4, n=25)
    assert metric_read(MetricQuery("web_chat", "reopen_rate")) == MetricReading(None, n=0)
    assert metric_read(MetricQuery("web_chat", "qa_pass_rate")).error.endswith("-1, not a count")


@pytest.mark.parametrize(
    ("stage", "next_results", "missing", "rollback", "outcome", "after", "says"),
    [
        (2, [_result(True)], [], [], GateOutcome.PROMOTED, 3, "every required sign-off is given"),
        (2, [_result(True), _result(False)], [], [], GateOutcome.PROMOTION_BLOCKED, 2, "entry criterion not met"),
        (
            2,
            [_result(True)],
            ["support_owner"],
            [],
            GateOutcome.PROMOTION_BLOCKED,
            2,
            "sign-off missing: Support owner",
        ),
        (2, [], [], [], GateOutcome.PROMOTION_BLOCKED, 2, "has no entry criteria"),
        (2, None, [], [], GateOutcome.HELD, 2, "no gate into stage 3"),
        (5, None, [], [], GateOutcome.HELD, 5, "already at the last stage"),
        # Rollback has priority, even over a gate that would open.
        (3, [_result(True)], [], [_result(True, "rollback", "reopen_rate")], GateOutcome.ROLLED_BACK, 2, "reopen_rate"),
        # A rollback criterion without data does not fire.
        (3, [_result(True)], [], [_result(False, "rollback")], GateOutcome.PROMOTED, 4, "entry criterion met"),
        # Entering a stage whose rollback criterion already holds would only bounce back.
        (
            2,
            [_result(True), _result(True, "rollback", "reopen_rate")],
            [],
            [],
            GateOutcome.PROMOTION_BLOCKED,
            2,
            "rollback criterion of stage 3 is already met",
        ),
        (1, [_result(True)], [], [_result(True, "rollback")], GateOutcome.PROMOTED, 2, "entry criterion met"),
    ],
)
def test_the_gate_decision_table(
    stage: int,
    next_results: list[CriterionResult] | None,
    missing: list[str],
    rollback: list[CriterionResult],
    outcome: str,
    after: int,
    says: str,
) -> None:
    decision = decide_gate(stage, next_results, missing, rollback)
    assert (decision.outcome, decision.stage_before, decision.stage_after) == (outcome, stage, after)
    assert says in decision.reason


# --- Evaluations against the database ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_channel_is_promoted_once_its_entry_criteria_hold_and_its_sign_offs_are_given(
    metrics: dict[str, float | None], support_manager, support_admin
) -> None:  # type: ignore[no-untyped-def]
    channel = ChannelRolloutFactory(stage=1, traffic_percent=100)
    gate = RolloutGateFactory(
        channel=channel, stage=2, traffic_percent=20, required_signoffs=["permission_scope_review", "support_owner"]
    )
    GateCriterionFactory(gate=gate, metric="regression_pass_rate", threshold=Decimal("0.95"))
    GateCriterionFactory(
        gate=gate, metric="qa_pass_rate", intent="order_status", threshold=Decimal("0.9"), window_days=14
    )
    metrics.update(regression_pass_rate=0.97, qa_pass_rate=0.93)
    rollout_gate_sign_off(gate=gate, kind="permission_scope_review", actor=support_admin, note="scopes reviewed")
    rollout_gate_sign_off(gate=gate, kind="support_owner", actor=support_manager)
    now = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    evaluation = rollout_gate_evaluate(channel=channel, now=now)

    assert (evaluation.outcome, evaluation.stage_before, evaluation.stage_after) == ("promoted", 1, 2)
    assert evaluation.evaluated_at == now
    channel.refresh_from_db()
    assert (channel.stage, channel.traffic_percent) == (2, 20)  # the gate's limited launch
    assert {
        (row["metric"], row["intent"], row["window_days"], row["value"], row["met"]) for row in evaluation.results
    } == {
        ("regression_pass_rate", "", 7, 0.97, True),
        ("qa_pass_rate", "order_status", 14, 0.93, True),
    }
    (evaluated,) = _events(EventType.GATE_EVALUATED)
    (promoted,) = _events(EventType.GATE_PROMOTED)
    assert evaluated.actor_kind == "system" and evaluated.subject_id == str(channel.pk)
    assert evaluated.data["evaluation_id"] == evaluation.pk
    assert promoted.changes == {"stage": {"old": 1, "new": 2}, "traffic_percent": {"old": 100, "new": 20}}
    assert "regression_pass_rate (7 days) is 0.97" in promoted.reason
    signed = _events(EventType.GATE_SIGNED_OFF)
    assert [(r.actor_label, r.decision, r.data["kind"]) for r in signed] == [
        ("ada_admin", "signed", "permission_scope_review"),
        ("mo_manager", "signed", "support_owner"),
    ]
    assert signed[0].reason == "scopes reviewed"


@pytest.mark.django_db
def test_a_gate_stays_shut_while_its_evidence_comes_from_too_few_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = RolloutGateFactory(stage=2, required_signoffs=[])
    GateCriterionFactory(gate=gate, metric="qa_pass_rate", threshold=Decimal("0.9"), min_sample=20)
    sample = {"n": 5}
    monkeypatch.setitem(METRIC_PROVIDERS, "qa_pass_rate", lambda query: Measurement(1.0, sample["n"]))

    blocked = rollout_gate_evaluate(channel=gate.channel)
    sample["n"] = 20
    promoted = rollout_gate_evaluate(channel=gate.channel)

    assert blocked.outcome == GateOutcome.PROMOTION_BLOCKED
    assert "from a sample of 5; the criterion asks for at least 20" in blocked.reason
    assert blocked.results[0]["n"] == 5 and blocked.results[0]["met"] is False
    assert (promoted.outcome, promoted.stage_after) == (GateOutcome.PROMOTED, 2)


@pytest.mark.django_db
def test_it_refuses_to_promote_without_a_required_sign_off(metrics: dict[str, float | None], support_manager) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory(stage=2, required_signoffs=["permission_scope_review", "support_owner"])
    GateCriterionFactory(gate=gate)
    metrics["regression_pass_rate"] = 0.99
    rollout_gate_sign_off(gate=gate, kind="support_owner", actor=support_manager)

    evaluation = rollout_gate_evaluate(channel=gate.channel)

    assert evaluation.outcome == GateOutcome.PROMOTION_BLOCKED
    assert evaluation.reason == "sign-off missing: Permission scope review"
    assert ChannelRollout.objects.get().stage == 1
    assert not _events(EventType.GATE_PROMOTED)
    assert _events(EventType.GATE_EVALUATED)[0].decision == "blocked"


@pytest.mark.django_db
def test_without_data_a_gate_stays_shut_and_the_providers_error_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = RolloutGateFactory(stage=2)
    GateCriterionFactory(gate=gate, metric="regression_pass_rate")
    GateCriterionFactory(gate=gate, metric="qa_pass_rate")

    def broken(query: MetricQuery) -> float:
        raise TimeoutError("rollup not ready")

    monkeypatch.setitem(METRIC_PROVIDERS, "qa_pass_rate", broken)

    evaluation = rollout_gate_evaluate(channel=gate.channel)

    assert evaluation.outcome == GateOutcome.PROMOTION_BLOCKED
    rows = {row["metric"]: row for row in evaluation.results}
    assert rows["regression_pass_rate"]["value"] is None and rows["regression_pass_rate"]["error"] == ""
    assert rows["qa_pass_rate"]["error"] == "TimeoutError: rollup not ready"
    assert "qa_pass_rate (7 days): no data yet; TimeoutError: rollup not ready" in evaluation.reason


@pytest.mark.django_db
def test_a_met_rollback_criterion_drops_the_channel_one_stage_and_records_why(
    metrics: dict[str, float | None], support_manager
) -> None:  # type: ignore[no-untyped-def]
    channel = ChannelRolloutFactory(stage=3, traffic_percent=50)
    into_2 = RolloutGateFactory(channel=channel, stage=2, traffic_percent=100)
    into_3 = RolloutGateFactory(channel=channel, stage=3, traffic_percent=50, required_signoffs=["support_owner"])
    into_4 = RolloutGateFactory(channel=channel, stage=4)
    GateCriterionFactory(gate=into_3, kind="rollback", metric="reopen_rate", threshold=Decimal("0.15"))
    GateCriterionFactory(gate=into_4, metric="regression_pass_rate")  # would open: rollback comes first
    GateSignOffFactory(gate=into_3, kind="support_owner", signed_by=support_manager)
    metrics.update(reopen_rate=0.22, regression_pass_rate=0.99)

    evaluation = rollout_gate_evaluate(channel=channel)

    assert (evaluation.outcome, evaluation.stage_before, evaluation.stage_after) == ("rolled_back", 3, 2)
    assert evaluation.reason == "rollback criterion met: reopen_rate (7 days) is 0.22, falls back at at least 0.15"
    channel.refresh_from_db()
    assert (channel.stage, channel.traffic_percent) == (2, into_2.traffic_percent)
    # People sign again before the channel re-enters stage 3.
    assert not GateSignOff.objects.filter(gate=into_3).exists()
    (rolled_back,) = _events(EventType.GATE_ROLLED_BACK)
    assert rolled_back.reason == evaluation.reason
    assert rolled_back.data["signoffs_cleared"] == ["support_owner"]
    assert rolled_back.changes["stage"] == {"old": 3, "new": 2}

    again = rollout_gate_evaluate(channel=channel)  # the metric still holds, but gate 3 has lost its sign-off
    assert again.outcome == GateOutcome.PROMOTION_BLOCKED and "sign-off missing: Support owner" in again.reason


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_move_the_channel_only_once(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = RolloutGateFactory(stage=2)
    GateCriterionFactory(gate=gate)
    both_read = threading.Barrier(2, timeout=20)

    def regression_pass_rate(query: MetricQuery) -> float:
        both_read.wait()  # neither evaluation decides before both have read the metrics of stage 1
        return 0.99

    monkeypatch.setitem(METRIC_PROVIDERS, "regression_pass_rate", regression_pass_rate)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            outcomes.append(rollout_gate_evaluate(channel=ChannelRollout.objects.get(pk=gate.channel_id)).outcome)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(outcomes) == ["held", "promoted"]
    assert ChannelRollout.objects.get().stage == 2
    held = GateEvaluation.objects.get(outcome="held")
    assert held.reason == "the stage changed from 1 to 2 during this evaluation; nothing was changed"
    assert AuditRecord.objects.filter(event_type=EventType.GATE_PROMOTED).count() == 1
    assert AuditRecord.objects.filter(event_type=EventType.GATE_EVALUATED).count() == 2


# --- Sign-offs -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_qa_reviewer_may_not_sign_off_a_gate(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory(required_signoffs=["support_owner"])
    with pytest.raises(NotPermitted):
        rollout_gate_sign_off(gate=gate, kind="support_owner", actor=qa_reviewer)
    with pytest.raises(NotPermitted):
        rollout_gate_sign_off(gate=gate, kind="support_owner", actor=None)  # type: ignore[arg-type]
    assert not GateSignOff.objects.exists()
    assert not _events(EventType.GATE_SIGNED_OFF)


@pytest.mark.django_db
def test_a_sign_off_is_given_once_and_only_where_the_gate_asks_for_it(support_manager, support_admin) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory(required_signoffs=["support_owner"])
    with pytest.raises(GovernanceError, match="does not ask for a permission scope review sign-off"):
        rollout_gate_sign_off(gate=gate, kind="permission_scope_review", actor=support_manager)
    rollout_gate_sign_off(gate=gate, kind="support_owner", actor=support_manager)
    with pytest.raises(GovernanceError, match="already has its support owner sign-off, by mo_manager"):
        rollout_gate_sign_off(gate=gate, kind="support_owner", actor=support_admin)
    assert GateSignOff.objects.get().signed_by == support_manager


@pytest.mark.django_db
def test_a_withdrawn_sign_off_shuts_the_gate_again(metrics: dict[str, float | None], support_manager) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory(required_signoffs=["support_owner"])
    GateCriterionFactory(gate=gate)
    metrics["regression_pass_rate"] = 0.99
    rollout_gate_sign_off(gate=gate, kind="support_owner", actor=support_manager)
    rollout_gate_revoke_sign_off(gate=gate, kind="support_owner", actor=support_manager, reason="CSAT dip")

    assert rollout_gate_evaluate(channel=gate.channel).outcome == GateOutcome.PROMOTION_BLOCKED
    revoked = _events(EventType.GATE_SIGNOFF_REVOKED)[-1]
    assert (revoked.decision, revoked.reason, revoked.data["given_by"]) == ("revoked", "CSAT dip", "mo_manager")
    with pytest.raises(GovernanceError, match="no support owner sign-off to revoke"):
        rollout_gate_revoke_sign_off(gate=gate, kind="support_owner", actor=support_manager)


# --- Rolling back by hand, and the schedule ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manager_rolls_a_channel_back_by_hand_and_an_outsider_may_not(support_manager, outsider) -> None:  # type: ignore[no-untyped-def]
    channel = ChannelRolloutFactory(stage=2)
    with pytest.raises(NotPermitted):
        rollout_stage_roll_back(channel=channel, actor=outsider, reason="looks risky")

    evaluation = rollout_stage_roll_back(channel=channel, actor=support_manager, reason="complaints about tone")

    assert (evaluation.outcome, evaluation.stage_after) == ("rolled_back", 1)
    assert evaluation.reason == "rolled back by mo_manager: complaints about tone"
    assert ChannelRollout.objects.get().stage == 1
    assert _events(EventType.GATE_ROLLED_BACK)[0].actor_label == "mo_manager"
    with pytest.raises(GovernanceError, match="no stage below it"):
        rollout_stage_roll_back(channel=channel, actor=support_manager, reason="again")


@pytest.mark.django_db
def test_the_scheduled_task_evaluates_every_channel(metrics: dict[str, float | None]) -> None:
    from config.celery import app
    from governance.tasks import rollout_gates_evaluate_task

    GateCriterionFactory(gate=RolloutGateFactory(channel=ChannelRolloutFactory(channel="web_chat")))
    ChannelRolloutFactory(channel="email", stage=5)
    metrics["regression_pass_rate"] = 0.99

    assert rollout_gates_evaluate_task() == {"email": "held", "web_chat": "promoted"}
    entry = app.conf.beat_schedule["rollout-gates-evaluate"]
    assert entry["task"] == rollout_gates_evaluate_task.name
    assert rollout_gates_evaluate_task.soft_time_limit and rollout_gates_evaluate_task.time_limit

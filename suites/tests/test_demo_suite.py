"""The demo suite on the demo company: it covers what the issue asks and passes on the embedded responder."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command

from agent.demo import INTENTS
from suites.demo import CASES, FAULT_CASES, FAULTS_SUITE, seed_suites
from suites.models import RegressionCase, RegressionSuite, RunStatus, SuiteRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_suite_covers_every_demo_intent_in_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert {intent["name"] for intent in INTENTS} <= {case["intent"] for case in CASES}


def test_seeding_the_demo_suite_twice_creates_it_once(demo_suite) -> None:  # type: ignore[no-untyped-def]
    assert seed_suites() == {"regression suites": 0, "regression cases": 0}
    assert RegressionCase.objects.filter(suite=demo_suite).count() == len(CASES)
    assert sorted(demo_suite.gates.values_list("stage", flat=True)) == [2, 3, 4]
    faults = RegressionSuite.objects.get(name=FAULTS_SUITE)
    assert faults.cases.count() == len(FAULT_CASES) and faults.snapshot_recorded_at is not None


def test_the_fault_suite_hands_over_when_the_order_system_is_down_and_writes_nothing(demo_suite, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "faults.json"
    call_command("run_suite", FAULTS_SUITE, "--json", str(out))
    result = json.loads(out.read_text())
    assert (result["cases"], result["failures"]) == (len(FAULT_CASES), [])
    results = SuiteRun.objects.get(suite__name=FAULTS_SUITE).results.all()
    # The refund failed on reading the order first: the only would-be writes are the handover tickets.
    assert sorted(w["operation"] for r in results for w in r.would_execute["writes"]) == ["ticket_create"] * 2


def test_the_demo_suite_passes_on_the_embedded_responder(demo_suite, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "demo.json"
    started = time.perf_counter()
    call_command("run_suite", "demo", "--json", str(out))
    elapsed = time.perf_counter() - started
    result = json.loads(out.read_text())
    with capsys.disabled():
        print(f"\nrun_suite demo: {result['passed']}/{result['cases']} cases passed in {elapsed:.1f} s")
    assert result["cases"] == len(CASES)
    assert result["failures"] == []
    assert result["pass_rate"] == result["pass_hat_k"] == 1.0
    assert SuiteRun.objects.get(suite=demo_suite).status == RunStatus.DONE

"""manage.py run_suite: runs in this process, prints a table, writes the JSON the issue names."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from suites.models import RegressionSuite, SuiteRun
from suites.services import regression_case_create

pytestmark = pytest.mark.django_db(transaction=True)


def _suite(name: str) -> RegressionSuite:
    suite = RegressionSuite.objects.create(name=name)
    regression_case_create(
        suite=suite,
        name="greeting",
        intent="greeting",
        identity="anonymous",
        turns=[{"say": "Hi there!", "expect": [{"type": "must_not_call_tool"}]}],
        actor=None,
    )
    regression_case_create(
        suite=suite,
        name="delivery",
        intent="shipping_info",
        identity="anonymous",
        turns=[{"say": "How long does delivery to the UK take?", "expect": [{"type": "must_escalate"}]}],
        actor=None,
    )
    return suite


def test_it_writes_the_runs_figures_and_failures_as_json(demo_company, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _suite("smoke")
    out = tmp_path / "smoke.json"

    call_command("run_suite", "smoke", "--k", "2", "--json", str(out))

    result = json.loads(out.read_text())
    assert list(result) == ["suite", "k", "cases", "passed", "pass_rate", "pass_hat_k", "by_intent", "failures"]
    assert {k: result[k] for k in ("suite", "k", "cases", "passed", "pass_rate", "pass_hat_k")} == {
        "suite": "smoke",
        "k": 2,
        "cases": 2,
        "passed": 1,
        "pass_rate": 0.5,
        "pass_hat_k": 0.5,
    }
    assert result["by_intent"]["greeting"]["passed"] == 1 and result["by_intent"]["shipping_info"]["passed"] == 0
    assert len(result["failures"]) == 2  # one per attempt
    assert set(result["failures"][0]) == {"case", "turn", "expectation", "got"}
    assert result["failures"][0]["case"] == "delivery" and result["failures"][0]["turn"] == 1
    printed = capsys.readouterr().out
    assert "Suite smoke: done, k=2" in printed and "pass rate 50.0%" in printed


def test_with_all_it_writes_one_object_per_suite_in_a_list(demo_company, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _suite("one"), _suite("two")
    out = tmp_path / "all.json"
    call_command("run_suite", "--all", "--json", str(out))
    assert [run["suite"] for run in json.loads(out.read_text())] == ["one", "two"]


def test_bad_input_is_answered_with_a_clear_error() -> None:
    RegressionSuite.objects.create(name="demo")
    with pytest.raises(CommandError, match="No suite named 'nope'; known: demo"):
        call_command("run_suite", "nope")
    with pytest.raises(CommandError, match="Name one suite, or pass --all"):
        call_command("run_suite")
    with pytest.raises(CommandError, match="--k must be from 1 to 10"):
        call_command("run_suite", "demo", "--k", "0")
    SuiteRun.objects.create(suite=RegressionSuite.objects.get(name="demo"), status="running")
    with pytest.raises(CommandError, match="demo: The suite demo is already queued or running"):
        call_command("run_suite", "demo")

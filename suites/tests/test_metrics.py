"""regression_pass_rate: the latest finished run in the window of each suite linked to the channel's gates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.metrics import Measurement, MetricQuery, metric_read
from governance.models import ChannelRollout, RolloutGate
from suites.metrics import regression_pass_rate
from suites.models import RegressionSuite, RunStatus, SuiteRun

pytestmark = pytest.mark.django_db


def _run(suite: RegressionSuite, cases: int, passed: int, *, days_ago: float = 0, **extra: object) -> SuiteRun:
    return SuiteRun.objects.create(
        suite=suite,
        status=extra.pop("status", RunStatus.DONE),
        cases=cases,
        passed=passed,
        finished_at=timezone.now() - timedelta(days=days_ago),
        **extra,
    )


@pytest.fixture
def gates() -> dict[str, RolloutGate]:
    web, email = ChannelRollout.objects.create(channel="web_chat"), ChannelRollout.objects.create(channel="email")
    return {
        "web2": RolloutGate.objects.create(channel=web, stage=2),
        "web3": RolloutGate.objects.create(channel=web, stage=3),
        "email2": RolloutGate.objects.create(channel=email, stage=2),
    }


def test_it_reads_the_latest_run_in_the_window_of_each_suite_linked_to_the_channel(gates) -> None:  # type: ignore[no-untyped-def]
    checkout, faq, mail, loose = (RegressionSuite.objects.create(name=n) for n in ("checkout", "faq", "mail", "loose"))
    checkout.gates.set([gates["web2"], gates["web3"]])  # linked twice: counted once
    faq.gates.set([gates["web3"]])
    mail.gates.set([gates["email2"]])
    _run(checkout, 10, 2, days_ago=2)  # superseded by the later run
    _run(checkout, 10, 9, days_ago=1)
    _run(checkout, 10, 0, status=RunStatus.FAILED)  # a failed run is no evidence
    _run(faq, 10, 10, days_ago=30)  # outside the window
    _run(faq, 20, 15, days_ago=3)
    # mail, another channel's, has never run; loose is linked to no gate
    _run(loose, 10, 0)

    query = MetricQuery("web_chat", "regression_pass_rate", window_days=7)
    assert regression_pass_rate(query) == Measurement(0.8, 30, part=24)
    reading = metric_read(MetricQuery("web_chat", "regression_pass_rate", window_days=7))  # registered in ready()
    assert (reading.value, reading.n) == (0.8, 30)


def test_per_intent_it_counts_the_cases_of_that_intent(gates) -> None:  # type: ignore[no-untyped-def]
    suite = RegressionSuite.objects.create(name="checkout")
    suite.gates.set([gates["web2"]])
    _run(suite, 3, 2, by_intent={"refund_request": {"cases": 2, "passed": 1}, "greeting": {"cases": 1, "passed": 1}})

    query = MetricQuery("web_chat", "regression_pass_rate", intent="refund_request")
    assert regression_pass_rate(query) == Measurement(0.5, 2, part=1)
    none = MetricQuery("web_chat", "regression_pass_rate", intent="cancel_subscription")
    assert regression_pass_rate(none) == Measurement(None, 0, part=0)


def test_without_a_linked_run_in_the_window_there_is_no_value(gates) -> None:  # type: ignore[no-untyped-def]
    suite = RegressionSuite.objects.create(name="checkout")
    suite.gates.set([gates["web2"]])
    _run(suite, 10, 10, days_ago=9)
    query = MetricQuery("web_chat", "regression_pass_rate", window_days=7)
    assert regression_pass_rate(query) == Measurement(None, 0, why="no finished run in the last 7 days of checkout")
    RegressionSuite.objects.all().delete()
    assert regression_pass_rate(query) == Measurement(None, 0, part=0)  # no suite linked at all


def test_a_linked_suite_that_has_not_run_in_the_window_leaves_no_value_and_is_named(gates) -> None:  # type: ignore[no-untyped-def]
    ran, new, old = (RegressionSuite.objects.create(name=n) for n in ("checkout", "returns", "faq"))
    for suite in (ran, new, old):
        suite.gates.set([gates["web2"]])
    _run(ran, 10, 10)
    _run(old, 10, 10, days_ago=9)

    reading = metric_read(MetricQuery("web_chat", "regression_pass_rate", window_days=7))

    assert (reading.value, reading.n) == (None, 0)
    assert reading.error == "no finished run in the last 7 days of faq, returns"

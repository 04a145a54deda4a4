"""The analytics API: one metric series per request, for support managers and admins, in the OpenAPI schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from analytics.report import REPORT_METRICS, analytics_report
from analytics.rollups import metric_series, series_total
from dashboard.tests.facts import days_ago, period, support_week
from governance.metrics import wilson_interval

pytestmark = pytest.mark.django_db

SERIES = "/api/analytics/series/{}/"


@pytest.fixture
def week() -> dict[str, Any]:
    return support_week()


@pytest.fixture
def manager_api(support_manager) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(support_manager)
    return client


def test_the_api_is_for_managers_and_admins_only(client: Client, support_agent, support_admin) -> None:  # type: ignore[no-untyped-def]
    url = SERIES.format("containment_rate")
    assert client.get(url).status_code == 403  # not signed in
    client.force_login(support_agent)
    assert client.get(url).status_code == 403
    client.force_login(support_admin)
    assert client.get(url).status_code == 200


def test_a_series_gives_every_day_with_its_sample_numerator_and_interval(manager_api, week) -> None:  # type: ignore[no-untyped-def]
    response = manager_api.get(SERIES.format("containment_rate"), period(week, channel="web_chat"))
    body = response.json()

    assert response.status_code == 200
    assert set(body) >= {"metric", "unit", "definition", "from", "to", "channel", "total", "points"}
    assert (body["metric"], body["unit"], body["channel"]) == ("containment_rate", "rate", "web_chat")
    assert body["definition"] == REPORT_METRICS["containment_rate"].definition
    assert (body["from"], body["to"]) == (week["from"].isoformat(), week["to"].isoformat())
    assert [point["day"] for point in body["points"]] == [days_ago(n).isoformat() for n in range(6, -1, -1)]
    day = {point["day"]: point for point in body["points"]}[days_ago(2).isoformat()]
    low, high = wilson_interval(1, 2)
    assert day == {
        "day": days_ago(2).isoformat(),
        "value": 0.5,
        "n": 2,
        "numerator": 1,
        "low": round(low, 4),
        "high": round(high, 4),
        "why": "",
    }
    report = analytics_report(start=week["from"], end=week["to"], channel="web_chat")["metrics"]["containment_rate"]
    assert body["total"]["value"] == report["value"] == 0.75
    assert (body["total"]["n"], body["total"]["numerator"]) == (report["n"], report["numerator"]) == (4, 3)
    assert (body["total"]["low"], body["total"]["high"]) == (report["low"], report["high"])


def test_a_score_has_no_numerator_or_interval(manager_api, week) -> None:  # type: ignore[no-untyped-def]
    body = manager_api.get(SERIES.format("csat_ai"), period(week)).json()
    assert body["unit"] == "score"
    assert body["total"] == {"value": 4.5, "n": 2, "numerator": None, "low": None, "high": None, "why": ""}


def test_a_slice_is_passed_to_the_metric(manager_api, week) -> None:  # type: ignore[no-untyped-def]
    body = manager_api.get(SERIES.format("containment_rate"), period(week, stage="3")).json()
    points = metric_series("containment_rate", start=week["from"], end=week["to"], stage=3)
    expected = series_total("containment_rate", points)
    assert body["stage"] == 3
    assert (body["total"]["value"], body["total"]["n"]) == (expected.value, expected.n)


def test_unknown_is_null_with_why_never_zero(manager_api) -> None:  # type: ignore[no-untyped-def]
    body = manager_api.get(SERIES.format("containment_rate")).json()
    assert body["total"]["value"] is None and body["total"]["n"] == 0
    assert body["total"]["why"]
    assert len(body["points"]) == 30 and all(point["value"] is None for point in body["points"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-30"}, "from"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"stage": "7"}, "stage"),
        ({"channel": "two words"}, "channel"),
        ({"responder": "x" * 65}, "responder"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(manager_api, params: dict[str, str], field: str) -> None:
    response = manager_api.get(SERIES.format("containment_rate"), params)
    assert response.status_code == 400
    assert field in response.json()


def test_an_unknown_metric_is_a_404(manager_api) -> None:  # type: ignore[no-untyped-def]
    response = manager_api.get(SERIES.format("happiness_index"))
    assert response.status_code == 404
    assert "containment_rate" in response.json()["detail"]


def test_a_series_from_the_rollups_takes_a_handful_of_queries(manager_api, week, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    # Who is asking (one), the stored days (one), today live (one), whatever the length of the period.
    with django_assert_max_num_queries(4):
        assert manager_api.get(SERIES.format("containment_rate"), period(week)).status_code == 200


def test_the_schema_lists_the_endpoint_with_every_metric(admin_client) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.get("/api/schema/", {"format": "json"})
    schema: dict[str, Any] = json.loads(response.content)
    operation = schema["paths"]["/api/analytics/series/{metric}/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert operation["operationId"] == "analytics_metric_series"
    assert set(parameters["metric"]["schema"]["enum"]) == set(REPORT_METRICS)
    assert {"from", "to", "channel", "intent", "stage", "responder", "prompt_version"} <= set(parameters)
    assert {"200", "400", "403", "404"} <= set(operation["responses"])
    output = schema["components"]["schemas"]["AnalyticsMetricSeries"]["properties"]
    assert {"metric", "unit", "definition", "from", "to", "channel", "total", "points"} <= set(output)

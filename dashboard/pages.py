"""What the dashboard's pages show, assembled from the selectors with the links each number carries (the drill-down
of the period and of each day, the series page, its CSV), so the templates only lay it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from analytics.actions import ACTION_OUTCOMES, action_outcomes
from dashboard import selectors
from dashboard.drilldown import DRILLDOWNS, ELSEWHERE, metric_query
from dashboard.figures import SeriesPoint
from dashboard.filters import Filters
from dashboard.selectors import IntentLine, MetricSeries
from governance.models import ActionTier

TIER_ORDER = list(ActionTier.values)


def conversations_url(name: str, filters: Filters, **override: Any) -> str:
    return f"{reverse('dashboard:conversations', args=[name])}?{filters.query(**override)}"


def series_url(name: str, filters: Filters, **override: Any) -> str:
    return f"{reverse('dashboard:metric', args=[name])}?{filters.query(**override)}"


@dataclass(frozen=True)
class DayLink:
    point: SeriesPoint
    url: str


@dataclass(frozen=True)
class Card:
    """A metric's card: the period's figure, its links, and each day with the link to that day's drill-down."""

    series: MetricSeries
    conversations_url: str
    series_url: str
    csv_url: str
    days: list[DayLink]

    @property
    def drill(self) -> str:
        """Say what the drill-down holds: "conversations", "elsewhere" (other evidence) or "" (nothing)."""
        if self.series.name in DRILLDOWNS:
            return "conversations"
        return "elsewhere" if self.series.name in ELSEWHERE else ""


def card_for(series: MetricSeries, filters: Filters) -> Card:
    name = series.name
    days = [
        DayLink(point, conversations_url(name, filters, **{"from": point.day, "to": point.day}))
        for point in series.points
    ]
    return Card(
        series,
        conversations_url(name, filters),
        series_url(name, filters),
        series_url(name, filters, format="csv"),
        days,
    )


def chart_payload(cards: list[Card]) -> dict[str, Any]:
    """The series the charts draw (``json_script``): per measured metric its unit and each day's figure and link."""
    return {
        card.series.name: {
            "label": card.series.label,
            "unit": card.series.unit,
            "points": [{**link.point.as_json(), "url": link.url} for link in card.days],
        }
        for card in cards
        if card.series.measured
    }


@dataclass(frozen=True)
class IntentLink:
    line: IntentLine
    dashboard_url: str
    conversations_url: str


def home(filters: Filters) -> dict[str, Any]:
    """Everything the dashboard's home page shows for ``filters``."""
    cards = [card_for(series, filters) for series in selectors.metric_series_all(filters)]
    intents = [
        IntentLink(
            line,
            f"{reverse('dashboard:home')}?{filters.query(intent=line.intent)}",
            conversations_url("containment_rate", filters, intent=line.intent),
        )
        for line in selectors.intents_top(filters)
    ]
    sources_count, sources = selectors.sources_past_review()
    approvals_count, approvals = selectors.approvals_waiting()
    return {
        "cards": cards,
        "chart_data": chart_payload(cards),
        "gates": selectors.channel_gates(filters.channel),
        "intents": intents,
        "failed_queries": selectors.failed_queries_top(filters),
        "sources": sources,
        "sources_count": sources_count,
        "approvals": approvals,
        "approvals_count": approvals_count,
        "action_outcomes": action_outcome_rows(filters),
        "outcome_names": [outcome.replace("_", " ") for outcome in ACTION_OUTCOMES],
    }


def action_outcome_rows(filters: Filters) -> list[tuple[str, list[int], int]]:
    """What the agent's actions came to in the period, per tier (analytics.actions): (tier, counts in the order of
    ACTION_OUTCOMES, total), tiers in policy order."""
    outcomes = action_outcomes(metric_query("action_outcomes", filters))
    order = {tier: position for position, tier in enumerate(TIER_ORDER)}
    rows = []
    for tier in sorted(outcomes, key=lambda tier: order.get(tier, len(order))):
        counts = [outcomes[tier].get(outcome, 0) for outcome in ACTION_OUTCOMES]
        rows.append((tier, counts, sum(counts)))
    return rows

"""CSV exports of a metric's series and of its drill-down, each with a header row (docs/dashboard.md)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse

from dashboard.drilldown import drill_row
from dashboard.filters import Filters
from dashboard.selectors import MetricSeries

SERIES_HEADER = ["day", "metric", "channel", "value", "n", "numerator", "low", "high", "why"]
DRILLDOWN_HEADER = ["day", "conversation_id", "at", "in_numerator", "figure", "console_url"]


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _filename(name: str, filters: Filters, what: str) -> str:
    channel = f"_{filters.channel}" if filters.channel else ""
    return f"steward_{name}_{what}{channel}_{filters.start}_{filters.end}.csv"


def _attachment(response: HttpResponse, filename: str) -> None:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'


def series_csv(series: MetricSeries, filters: Filters) -> HttpResponse:
    """One row per day: the metric's value, sample, a share's numerator and 95% interval, and why when unknown."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    _attachment(response, _filename(series.name, filters, "series"))
    writer = csv.writer(response)
    writer.writerow(SERIES_HEADER)
    for point in series.points:
        figure = point.figure
        writer.writerow(
            [
                point.day.isoformat(),
                series.name,
                filters.channel or "all",
                _cell(figure.value),
                figure.n,
                _cell(figure.numerator),
                _cell(figure.low),
                _cell(figure.high),
                figure.why,
            ]
        )
    return response


def _drilldown_lines(request: HttpRequest, rows: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    yield DRILLDOWN_HEADER
    for values in rows:
        row = drill_row(values)
        counted = "" if row.counted is None else ("yes" if row.counted else "no")
        url = request.build_absolute_uri(row.console_url) if row.console_url else ""
        yield [row.day.isoformat(), row.cid, row.at.isoformat(), counted, _cell(row.figure), url]


def drilldown_csv(request: HttpRequest, name: str, rows: Any, filters: Filters) -> HttpResponse:
    """Every row of the drill-down, not only one page, read in chunks.

    Not a streaming response: under ASGI Django reads a synchronous iterator whole before sending it anyway (and
    warns), so the rows are written straight into the response."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    _attachment(response, _filename(name, filters, "conversations"))
    csv.writer(response).writerows(_drilldown_lines(request, rows.iterator(chunk_size=2000)))
    return response

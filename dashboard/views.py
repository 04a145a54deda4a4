"""The dashboard's pages (docs/dashboard.md): the overview, one metric's series, and the conversations behind a
metric. Adapters: read the filters (a bad value is the page with the error and a 400), call the selectors, render or
export CSV. Managers and admins only (``dashboard.access``)."""

from __future__ import annotations

from typing import Any

from django.core.paginator import EmptyPage, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from analytics.report import REPORT_METRICS, slices_not_narrowed
from dashboard import exports, pages, selectors
from dashboard.access import dashboard_view, page_context
from dashboard.drilldown import DRILLDOWNS, ELSEWHERE, ROW_FIELDS, drill_row, drill_summary
from dashboard.figures import metric_label
from dashboard.filters import MAX_DAYS, MAX_SLICED_DAYS, BadFilters, Filters, filters_from
from governance.models import RolloutStage

FORMATS = ("", "html", "csv")
PER_PAGE = 50


class BadRequest(BadFilters):
    """A request the filters accept but the page cannot serve (an unknown export format, a page out of range)."""


def _form(request: HttpRequest, filters: Filters | None) -> dict[str, Any]:
    """What the filter form shows: the filters read, or what was sent when they could not be read."""
    if filters is None:
        names = ("from", "to", "channel", "intent", "stage", "responder", "prompt_version")
        return {name: request.GET.get(name, "") for name in names}
    values = filters.params()
    return {**dict.fromkeys(("channel", "intent", "stage", "responder", "prompt_version"), ""), **values}


def _context(request: HttpRequest, title: str, filters: Filters | None, **extra: Any) -> dict[str, Any]:
    return page_context(
        request,
        title=title,
        filters=filters,
        form=_form(request, filters),
        options=selectors.filter_options(),
        query=filters.query() if filters else "",
        stages=RolloutStage.choices,
        max_days=MAX_DAYS,
        max_sliced_days=MAX_SLICED_DAYS,
        **extra,
    )


def _refused(request: HttpRequest, template: str, title: str, error: BadFilters, **extra: Any) -> HttpResponse:
    context = _context(request, title, None, errors=error.errors, **extra)
    return render(request, template, context, status=400)


def _wanted_format(request: HttpRequest) -> str:
    wanted = request.GET.get("format", "")
    if wanted not in FORMATS:
        raise BadRequest({"format": [f"Unknown format {wanted!r}: leave it out for the page, or use csv."]})
    return wanted


def _metric(name: str) -> str:
    if name not in REPORT_METRICS:
        raise Http404(f"There is no metric {name!r} on the dashboard.")
    return name


@dashboard_view()
def home(request: HttpRequest) -> HttpResponse:
    """Every report metric over the period, the channels' gates, top intents and failed queries, what waits."""
    try:
        filters = filters_from(request.GET)
    except BadFilters as error:
        return _refused(request, "dashboard/home.html", "Support dashboard", error)
    context = _context(request, "Support dashboard", filters, **pages.home(filters))
    return render(request, "dashboard/home.html", context)


@dashboard_view()
def metric(request: HttpRequest, name: str) -> HttpResponse:
    """One metric per day over the period, with its definition; ``?format=csv`` exports the series."""
    name = _metric(name)
    title = f"{metric_label(name)}: over time"
    try:
        filters = filters_from(request.GET)
        wanted = _wanted_format(request)
    except BadFilters as error:
        return _refused(request, "dashboard/metric.html", title, error, name=name)
    series = selectors.metric_series_read(name, filters)
    if wanted == "csv":
        return exports.series_csv(series, filters)
    card = pages.card_for(series, filters)
    context = _context(request, title, filters, name=name, card=card, chart_data=pages.chart_payload([card]))
    return render(request, "dashboard/metric.html", context)


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest({"page": [f"{raw!r} is not a page number (1, 2, …)."]})
    return int(raw)


@dashboard_view()
def conversations(request: HttpRequest, name: str) -> HttpResponse:
    """The conversations behind a metric's figure over the period, those in its numerator marked, paginated;
    ``?format=csv`` exports them all."""
    name = _metric(name)
    title = f"{metric_label(name)}: the conversations behind it"
    try:
        filters = filters_from(request.GET)
        wanted = _wanted_format(request)
        number = _page_number(request)
    except BadFilters as error:
        return _refused(request, "dashboard/conversations.html", title, error, name=name)
    drilldown = DRILLDOWNS.get(name)
    not_narrowed = slices_not_narrowed(name, **filters.slices)
    if drilldown is None or not_narrowed:
        if wanted == "csv":
            raise Http404(f"{name} has no conversations to export for these filters.")
        context = _context(
            request, title, filters, name=name, drilldown=None, elsewhere=ELSEWHERE.get(name), not_narrowed=not_narrowed
        )
        context["card"] = pages.card_for(selectors.metric_series_read(name, filters), filters)
        return render(request, "dashboard/conversations.html", context)
    rows = drilldown.rows(filters).values(*ROW_FIELDS)
    if wanted == "csv":
        return exports.drilldown_csv(request, name, rows, filters)
    paginator = Paginator(rows, PER_PAGE)
    try:
        page = paginator.page(number)
    except EmptyPage:
        error = BadRequest({"page": [f"There is no page {number}: the list has {paginator.num_pages}."]})
        return _refused(request, "dashboard/conversations.html", title, error, name=name)
    summary = drill_summary(drilldown.rows(filters))
    context = _context(
        request,
        title,
        filters,
        name=name,
        drilldown=drilldown,
        card=pages.card_for(selectors.metric_series_read(name, filters), filters),
        page=page,
        rows=[drill_row(values) for values in page.object_list],
        summary=summary,
        page_query=filters.query(),
    )
    return render(request, "dashboard/conversations.html", context)

"""Analytics REST API routes, mounted at /api/analytics/ (dashboard/api.py)."""

from __future__ import annotations

from django.urls import path

from dashboard import api

app_name = "analytics-api"

urlpatterns = [
    path("series/<slug:metric>/", api.MetricSeriesApi.as_view(), name="series"),
]

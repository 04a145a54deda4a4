"""The dashboard's pages (docs/dashboard.md)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("dashboard")

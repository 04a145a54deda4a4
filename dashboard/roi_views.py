"""The ROI and launch roadmap pages (docs/dashboard.md)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def roi(request: HttpRequest) -> HttpResponse:
    return HttpResponse("roi")


def roadmap(request: HttpRequest) -> HttpResponse:
    return HttpResponse("roadmap")

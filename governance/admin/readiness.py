"""The readiness report page: every check of governance/readiness.py, grouped by section, each with a link to fix it.

Served at ``/admin/governance/channelrollout/readiness/`` (URL name ``admin:governance_readiness``) through the channel
rollout admin's ``get_urls``: a documented ModelAdmin hook that keeps the admin's login, permission check and
layout, and needs neither a model of its own nor a custom AdminSite. Anyone who may see channel rollouts (support
admins and managers) may read it.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from governance.readiness import ReadinessLine, Status, readiness_report


def readiness_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """Return the report's URL, served through ``model_admin`` (its site's login and its view permission)."""

    def view(request: HttpRequest) -> HttpResponse:
        return readiness_view(request, model_admin=model_admin)

    return [path("readiness/", model_admin.admin_site.admin_view(view), name="governance_readiness")]


def readiness_view(request: HttpRequest, *, model_admin: admin.ModelAdmin) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    lines = readiness_report()
    sections: dict[str, list[ReadinessLine]] = {}
    for line in lines:
        sections.setdefault(line.section, []).append(line)
    counts = Counter(line.status for line in lines)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Readiness report",
        "opts": model_admin.model._meta,
        "sections": sections,
        "passed": counts[Status.PASS],
        "failed": counts[Status.FAIL],
        "not_configured": counts[Status.NOT_CONFIGURED],
    }
    return TemplateResponse(request, "admin/governance/readiness.html", context)

"""The search playground: an admin page that runs exactly the agent's search and shows what it would retrieve.

Served at ``/admin/knowledge/playground/`` (URL name ``knowledge_playground``) by ``knowledge/urls_admin.py``, which
config/urls.py includes *before* ``admin.site.urls`` (the admin's catch-all would otherwise answer 404). The view is
wrapped in ``admin.site.admin_view``, so it keeps the admin's login redirect, staff check, layout and no-cache
headers without a custom AdminSite or a change to knowledge/admin.py; on top of that it needs
``knowledge.view_chunk`` (whoever may read chunks may see which ones a query reaches).

A playground search is never recorded as a failed retrieval: an admin probing the knowledge base is not a customer
the knowledge base failed.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from knowledge.models import Audience, Chunk
from knowledge.retrieval import DENSE, FULLTEXT, HYBRID, search, stale_policy

PERMISSION = "knowledge.view_chunk"


class PlaygroundForm(forms.Form):
    q = forms.CharField(label="Query", max_length=2000, widget=forms.TextInput(attrs={"size": 80, "autofocus": True}))
    audience = forms.ChoiceField(
        choices=Audience.choices,
        initial=Audience.PUBLIC,
        help_text="Who is asking: a public visitor sees public sources only; verified adds verified; internal all.",
    )
    products = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated products of the conversation; empty means no product context.",
    )
    method = forms.ChoiceField(
        choices=[(HYBRID, "Hybrid (what the agent uses)"), (DENSE, "Dense only"), (FULLTEXT, "Full text only")],
        initial=HYBRID,
    )
    k = forms.IntegerField(label="Results", min_value=1, max_value=20, initial=5)

    def clean_products(self) -> list[str]:
        return [p.strip() for p in self.cleaned_data["products"].split(",") if p.strip()]


def playground_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = PlaygroundForm(request.GET if "q" in request.GET else None)
    result = None
    if form.is_valid():
        result = search(
            form.cleaned_data["q"],
            audience=form.cleaned_data["audience"],
            products=form.cleaned_data["products"] or None,
            k=form.cleaned_data["k"],
            method=form.cleaned_data["method"],
            record_failure=False,
        )
    context = {
        **admin.site.each_context(request),
        "title": "Search playground",
        "opts": Chunk._meta,
        "form": form,
        "result": result,
        "stale_policy": stale_policy(),
    }
    return TemplateResponse(request, "admin/knowledge/playground.html", context)

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def demo(request: HttpRequest) -> HttpResponse:
    """Render the demo company's page, where the chat widget lives."""
    return render(request, "demo.html")

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static


def demo(request: HttpRequest) -> HttpResponse:
    """Render the demo company's page, with the chat widget embedded by one absolute script tag.

    The URLs are absolute, as a third-party site would write them, and built from this request so the page works on
    whatever host and port it is opened (localhost, 127.0.0.1, a test server's free port).
    """
    steward_url = request.build_absolute_uri("/").rstrip("/")
    return render(
        request,
        "demo.html",
        {"steward_url": steward_url, "widget_src": request.build_absolute_uri(static("steward/widget.js"))},
    )


def see_other(url: str) -> HttpResponseRedirect:
    """Redirect after a POST so that the browser GETs the page (303, RFC 9110 §15.4.4): a reload never re-posts."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response

"""Who may see the dashboard, ROI and roadmap pages: support managers and support admins (and superusers)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache

from governance.roles import GROUP_NAMES, Role

View = Callable[..., HttpResponse]
READ = ("GET", "HEAD")
FORM = ("GET", "HEAD", "POST")
LEADS = [GROUP_NAMES[Role.SUPPORT_MANAGER], GROUP_NAMES[Role.SUPPORT_ADMIN]]


def may_see_dashboard(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Active staff in the support manager or support admin group, or a superuser."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return bool(user.is_superuser or user.groups.filter(name__in=LEADS).exists())


def dashboard_view(*, methods: tuple[str, ...] = READ) -> Callable[[View], View]:
    """Guard a dashboard page: log in first (redirect), then managers and admins (403), then the method (405)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not may_see_dashboard(request.user):
                raise PermissionDenied("The dashboard is for support managers and support admins.")
            if request.method not in methods:
                return HttpResponseNotAllowed(list(methods))
            return view(request, *args, **kwargs)

        return never_cache(wrapped)

    return decorator


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """The admin's context (header, user links) plus the page's own."""
    return {**admin.site.each_context(request), **extra}

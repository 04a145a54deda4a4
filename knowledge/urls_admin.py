"""Knowledge's admin pages that are not a ModelAdmin's: included by config/urls.py before ``admin.site.urls``.

path("admin/knowledge/playground/", include("knowledge.urls_admin")),
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from knowledge.admin_playground import playground_view

urlpatterns = [
    path("", admin.site.admin_view(playground_view), name="knowledge_playground"),
]

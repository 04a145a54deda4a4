from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz
from config.views import demo

urlpatterns = [
    path("", demo, name="demo"),
    path("healthz", healthz, name="healthz"),
    path("admin/knowledge/playground/", include("knowledge.urls_admin")),
    path("admin/", admin.site.urls),
    path("console/", include("agent.console.urls")),
    path("qa/", include("qa.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("helpdesk/", include("helpdesk.urls", namespace="helpdesk")),
    path("brewline-api/", include("brewline.urls")),
    path("api/knowledge/", include("knowledge.urls")),
    path("api/chat/", include("agent.urls")),
    path("api/analytics/", include("dashboard.api_urls")),
    path("api/hooks/", include("agent.webhook_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

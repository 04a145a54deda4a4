from __future__ import annotations

from django.urls import path

from dashboard import roi_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("metrics/<slug:name>/", views.metric, name="metric"),
    path("metrics/<slug:name>/conversations/", views.conversations, name="conversations"),
    path("roi/", roi_views.roi, name="roi"),
    path("roadmap/", roi_views.roadmap, name="roadmap"),
]

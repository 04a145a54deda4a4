"""Knowledge REST API routes, mounted at /api/knowledge/."""

from __future__ import annotations

from django.urls import path

from knowledge import api

app_name = "knowledge"

urlpatterns = [
    path("sources/", api.SourceCreateApi.as_view(), name="source-create"),
    path("sources/<int:source_id>/documents/", api.DocumentUploadApi.as_view(), name="document-upload"),
    path("sources/<int:source_id>/ingestion/", api.SourceIngestionStatusApi.as_view(), name="source-ingestion"),
    path("sources/<int:source_id>/reindex/", api.SourceReindexApi.as_view(), name="source-reindex"),
    path("search/", api.SearchApi.as_view(), name="search"),
]

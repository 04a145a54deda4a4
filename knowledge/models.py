"""Knowledge sources with their governance metadata, documents, chunks (embedding + full text), ingestion runs and
failed retrievals."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2; changing it is a migration plus `manage.py reindex_embeddings`
# How long after its review date a source is "due" before it turns "stale" (and stops serving by default).
DUE_GRACE_DAYS = 30


class SourceKind(models.TextChoices):
    HELP_ARTICLE = "help_article", "Help article"
    POLICY = "policy", "Policy"
    PRODUCT_MANUAL = "product_manual", "Product manual"
    SUPPORT_MACRO = "support_macro", "Support macro"
    INTERNAL_SOP = "internal_sop", "Internal SOP"
    RELEASE_NOTES = "release_notes", "Release notes"
    FAQ = "faq", "FAQ"


class Audience(models.TextChoices):
    PUBLIC = "public", "Public"
    VERIFIED = "verified", "Verified customers"
    INTERNAL = "internal", "Internal staff only"


class SourceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


class Confidence(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Origin(models.TextChoices):
    UPLOAD = "upload", "Uploaded files"
    FOLDER = "folder", "A folder or zip"
    URL_LIST = "url_list", "A list of URLs"
    HELPDESK_KB = "helpdesk_kb", "Helpdesk knowledge base"
    API = "api", "REST API"


class Freshness(models.TextChoices):
    FRESH = "fresh", "Fresh"
    DUE = "due", "Review due"
    STALE = "stale", "Stale"


class KnowledgeSource(models.Model):
    """A body of knowledge the agent may answer from, with who owns it, who may see it and how fresh it is."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=SourceKind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Reviews and approves this source; told when it goes stale.",
    )
    fallback_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    audience = models.CharField(
        max_length=16,
        choices=Audience.choices,
        default=Audience.PUBLIC,
        help_text="Who may receive its content. Internal never reaches a customer.",
    )
    products = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Products it covers; empty means all products.",
    )
    version_scope = models.CharField(max_length=100, blank=True, help_text="Product versions it applies to.")
    confidence = models.CharField(max_length=8, choices=Confidence.choices, default=Confidence.HIGH)
    status = models.CharField(max_length=16, choices=SourceStatus.choices, default=SourceStatus.DRAFT)
    last_reviewed_on = models.DateField(default=date.today)
    review_interval_days = models.PositiveIntegerField(default=180)
    # Derived from the two fields above on every save (knowledge services), so retrieval can filter in SQL.
    review_due_on = models.DateField(editable=False)
    stale_on = models.DateField(editable=False)
    retire_after = models.DateField(null=True, blank=True, help_text="Stops serving after this date.")
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Retired in favour of this source.",
    )
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.UPLOAD)
    origin_config = models.JSONField(default=dict, blank=True, help_text="Folder path, URL list, …")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("approve_knowledgesource", "Can approve or retire knowledge sources"),
            ("reindex_knowledgesource", "Can re-index knowledge sources"),
        ]
        indexes = [
            # Retrieval's source filter: approved, not stale, by audience.
            models.Index(fields=["status", "audience", "stale_on"], name="source_serving"),
        ]

    def __str__(self) -> str:
        return self.name

    def compute_review_dates(self) -> None:
        self.review_due_on = self.last_reviewed_on + timedelta(days=self.review_interval_days)
        self.stale_on = self.review_due_on + timedelta(days=DUE_GRACE_DAYS)

    def freshness(self, today: date | None = None) -> str:
        today = today or date.today()
        if today < self.review_due_on:
            return Freshness.FRESH
        if today < self.stale_on:
            return Freshness.DUE
        return Freshness.STALE


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    READY = "ready", "Serving"
    FAILED = "failed", "Failed"


class Document(models.Model):
    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=500, help_text="Path, URL or id of the document within its source.")
    title = models.CharField(max_length=500)
    url = models.URLField(max_length=1000, blank=True)
    version = models.CharField(max_length=100, blank=True)
    content_type = models.CharField(max_length=16, default="markdown")
    content_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the raw content last embedded.")
    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    ingested_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "title"]
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="document_unique_in_source")]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalised from the document so retrieval joins one table fewer.
    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    heading_path = models.CharField(max_length=1000, blank=True, help_text="Section › subsection, for the citation.")
    text = models.TextField()
    token_count = models.PositiveIntegerField(default=0)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=100)
    search_vector = SearchVectorField(null=True)

    class Meta:
        ordering = ["document", "position"]
        constraints = [models.UniqueConstraint(fields=["document", "position"], name="chunk_position_unique")]
        indexes = [
            # Dense retrieval: ORDER BY embedding <=> :query LIMIT k (cosine; pgvector uses it only for that form).
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            # Full-text retrieval: search_vector @@ websearch_to_tsquery(...).
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"


class IngestionRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        DONE_WITH_ERRORS = "done_with_errors", "Done with errors"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="ingestion_runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    documents_total = models.PositiveIntegerField(default=0)
    documents_done = models.PositiveIntegerField(default=0)
    documents_failed = models.PositiveIntegerField(default=0)
    documents_unchanged = models.PositiveIntegerField(default=0)
    documents_removed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One run at a time per source: a second request while one is queued or running is refused.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(status__in=["queued", "running"]),
                name="ingestion_one_active_run_per_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} run {self.pk} ({self.status})"


class FailedRetrieval(models.Model):
    """A query whose best result was under the answer threshold: for analytics and for source owners."""

    query = models.TextField()
    audience = models.CharField(max_length=16, choices=Audience.choices)
    products = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    best_score = models.FloatField(null=True)
    best_chunk = models.ForeignKey(Chunk, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    conversation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The failed-retrievals report, newest first.
            models.Index(fields=["-created_at"], name="failed_retrieval_recent"),
        ]

    def __str__(self) -> str:
        return self.query[:80]

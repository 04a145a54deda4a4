"""Knowledge REST API (staff only): one view per operation, nested input and output serializers, services do the
work. Domain errors become clear 4xx answers here; nothing a client sends can produce a 500."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge import services
from knowledge.exceptions import IngestionAlreadyActive, KnowledgeError, NotPermitted
from knowledge.models import (
    Audience,
    Confidence,
    Document,
    DocumentStatus,
    IngestionRun,
    KnowledgeSource,
    Origin,
    SourceKind,
)
from knowledge.origins import MAX_DOCUMENT_BYTES
from knowledge.parsers import CONTENT_TYPES, PDF, content_type_for_path, normalise_content_type

_MB = MAX_DOCUMENT_BYTES // (1024 * 1024)


class Conflict(ValidationError):
    status_code = status.HTTP_409_CONFLICT


class KnowledgeApi(APIView):
    """Turn knowledge's domain errors (and model validation) into 4xx answers (STYLE.md rule 7)."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, NotPermitted):
            exc = PermissionDenied(str(exc))
        elif isinstance(exc, IngestionAlreadyActive):
            exc = Conflict({"detail": str(exc)})
        elif isinstance(exc, KnowledgeError):
            exc = ValidationError({"detail": str(exc)})
        elif isinstance(exc, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
            exc = ValidationError(
                {"detail": f"The request body is over {limit:g} MB: send a large document as a multipart file."}
            )
        elif isinstance(exc, DjangoValidationError):
            exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
        return super().handle_exception(exc)


def _source(pk: int) -> KnowledgeSource:
    return get_object_or_404(KnowledgeSource, pk=pk)


def _user(pk: int | None, field: str) -> Any:
    if pk is None:
        return None
    user = get_user_model().objects.filter(pk=pk, is_active=True, is_staff=True).first()
    if user is None:
        raise ValidationError({field: ["No active staff user has this id."]})
    return user


class SourceOutputSerializer(serializers.ModelSerializer):
    freshness = serializers.SerializerMethodField()

    class Meta:
        model = KnowledgeSource
        ref_name = "KnowledgeSource"
        fields = [
            "id",
            "name",
            "kind",
            "owner",
            "fallback_owner",
            "audience",
            "products",
            "version_scope",
            "confidence",
            "status",
            "freshness",
            "last_reviewed_on",
            "review_interval_days",
            "review_due_on",
            "stale_on",
            "retire_after",
            "origin",
            "origin_config",
            "approved_by",
            "approved_at",
            "created_at",
        ]

    def get_freshness(self, source: KnowledgeSource) -> str:
        return source.freshness()


class SourceCreateApi(KnowledgeApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        kind = serializers.ChoiceField(choices=SourceKind.choices)
        owner = serializers.IntegerField(help_text="Id of the staff user who reviews and approves the source.")
        fallback_owner = serializers.IntegerField(required=False, allow_null=True)
        audience = serializers.ChoiceField(choices=Audience.choices, default=Audience.PUBLIC)
        products = serializers.ListField(child=serializers.CharField(max_length=100), default=list)
        version_scope = serializers.CharField(max_length=100, required=False, allow_blank=True)
        confidence = serializers.ChoiceField(choices=Confidence.choices, required=False)
        last_reviewed_on = serializers.DateField(required=False)
        review_interval_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
        retire_after = serializers.DateField(required=False, allow_null=True)
        origin = serializers.ChoiceField(choices=Origin.choices, default=Origin.API)
        origin_config = serializers.DictField(required=False, help_text='{"path": ...} or {"urls": [...]}')

        class Meta:
            ref_name = "KnowledgeSourceCreateInput"

    @extend_schema(
        operation_id="knowledge_source_create",
        summary="Create a knowledge source (a draft until its owner or a manager approves it)",
        request=InputSerializer,
        responses={201: SourceOutputSerializer, 400: OpenApiResponse(description="Invalid input"), 403: None},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["owner"] = _user(data["owner"], "owner")
        if "fallback_owner" in data:
            data["fallback_owner"] = _user(data["fallback_owner"], "fallback_owner")
        source = services.source_create(actor=request.user, **data)
        return Response(SourceOutputSerializer(source).data, status=status.HTTP_201_CREATED)


class DocumentOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        ref_name = "KnowledgeDocument"
        fields = [
            "id",
            "source",
            "external_id",
            "title",
            "url",
            "version",
            "content_type",
            "content_hash",
            "status",
            "error",
            "chunk_count",
            "ingested_at",
        ]


class DocumentUploadApi(KnowledgeApi):
    """Upload a document to an upload or API source: a multipart ``file``, or JSON with the text as ``content``."""

    parser_classes = [MultiPartParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(required=False, help_text=f"The document, at most {_MB} MB (multipart).")
        content = serializers.CharField(
            required=False, trim_whitespace=False, help_text="The document's text (JSON; not for PDFs)."
        )
        external_id = serializers.CharField(
            max_length=500, required=False, help_text="Its id in the source; defaults to the file name."
        )
        title = serializers.CharField(max_length=500, required=False, allow_blank=True)
        content_type = serializers.CharField(
            max_length=100, required=False, help_text=f"One of {', '.join(CONTENT_TYPES)} (or a MIME type)."
        )
        url = serializers.URLField(max_length=1000, required=False, allow_blank=True)
        version = serializers.CharField(max_length=100, required=False, allow_blank=True)

        class Meta:
            ref_name = "KnowledgeDocumentUploadInput"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            upload, text = attrs.get("file"), attrs.get("content")
            if (upload is None) == (text is None):
                raise serializers.ValidationError("Send either a file (multipart) or content (JSON), not both.")
            name = upload.name if upload is not None else ""
            attrs.setdefault("external_id", name)
            if not attrs["external_id"]:
                raise serializers.ValidationError({"external_id": ["Required with content."]})
            declared = attrs.get("content_type") or content_type_for_path(name) or ""
            if not declared and upload is not None:
                declared = upload.content_type or ""
            kind = normalise_content_type(declared)
            if kind is None:
                raise serializers.ValidationError(
                    {"content_type": [f"Unknown content type {declared!r}: send one of {', '.join(CONTENT_TYPES)}."]}
                )
            attrs["content_type"] = kind
            attrs["raw"] = self._raw(upload, text, kind)
            return attrs

        def _raw(self, upload: Any, text: str | None, kind: str) -> bytes | str:
            if upload is not None:
                if upload.size > MAX_DOCUMENT_BYTES:
                    raise serializers.ValidationError({"file": [f"The file is larger than {_MB} MB."]})
                raw = upload.read()
                if kind != PDF:
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise serializers.ValidationError(
                            {"file": [f"The file is not valid UTF-8 (byte {exc.start}); save it as UTF-8."]}
                        ) from None
                return raw
            assert text is not None
            if kind == PDF:
                raise serializers.ValidationError({"content": ["Send a PDF as a multipart file."]})
            if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
                raise serializers.ValidationError({"content": [f"The content is larger than {_MB} MB."]})
            return text

    @extend_schema(
        operation_id="knowledge_document_upload",
        summary="Upload or replace a document and ingest it now",
        request={"multipart/form-data": InputSerializer, "application/json": InputSerializer},
        responses={
            200: DocumentOutputSerializer,
            201: DocumentOutputSerializer,
            400: OpenApiResponse(description="Invalid input, or the document could not be read (`detail` says why)"),
            403: None,
            404: None,
        },
    )
    def post(self, request: Request, source_id: int) -> Response:
        source = _source(source_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        existed = Document.objects.filter(source=source, external_id=data["external_id"]).exists()
        document = services.document_upload(
            actor=request.user,
            source=source,
            external_id=data["external_id"],
            title=data.get("title") or "",
            content=data["raw"],
            content_type=data["content_type"],
            url=data.get("url", ""),
            version=data.get("version", ""),
        )
        output = DocumentOutputSerializer(document).data
        if document.status == DocumentStatus.FAILED:
            return Response({"detail": document.error, "document": output}, status=status.HTTP_400_BAD_REQUEST)
        return Response(output, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class RunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = IngestionRun
        ref_name = "KnowledgeIngestionRun"
        fields = [
            "id",
            "status",
            "documents_total",
            "documents_done",
            "documents_failed",
            "documents_unchanged",
            "documents_removed",
            "errors",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class SourceIngestionStatusApi(KnowledgeApi):
    RUNS = 10

    class OutputSerializer(serializers.Serializer):
        source = SourceOutputSerializer()
        documents = serializers.DictField(child=serializers.IntegerField(), help_text="Documents by status.")
        chunks = serializers.IntegerField()
        runs = RunOutputSerializer(many=True, help_text="The latest runs, newest first.")

        class Meta:
            ref_name = "KnowledgeIngestionStatus"

    @extend_schema(
        operation_id="knowledge_source_ingestion_status",
        summary="Ingestion status of a source: documents by status and the latest runs with their progress",
        responses={200: OutputSerializer, 403: None, 404: None},
    )
    def get(self, request: Request, source_id: int) -> Response:
        source = _source(source_id)
        by_status = dict(source.documents.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        payload = {
            "source": source,
            "documents": {value: by_status.get(value, 0) for value in DocumentStatus.values},
            "chunks": source.chunks.count(),
            "runs": source.ingestion_runs.order_by("-created_at")[: self.RUNS],
        }
        return Response(self.OutputSerializer(payload).data)


class SourceReindexApi(KnowledgeApi):
    @extend_schema(
        operation_id="knowledge_source_reindex",
        summary="Queue an ingestion run of the source (one at a time)",
        request=None,
        responses={202: RunOutputSerializer, 403: None, 404: None, 409: OpenApiResponse(description="Already running")},
    )
    def post(self, request: Request, source_id: int) -> Response:
        run = services.source_reindex(actor=request.user, source=_source(source_id))
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class SearchApi(KnowledgeApi):
    """Search as the agent would for a given audience (failures are not recorded: staff are trying queries)."""

    class InputSerializer(serializers.Serializer):
        q = serializers.CharField(max_length=1000)
        audience = serializers.ChoiceField(choices=Audience.choices, default=Audience.PUBLIC)
        products = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
        k = serializers.IntegerField(min_value=1, max_value=50, default=5)

        class Meta:
            ref_name = "KnowledgeSearchInput"

    class OutputSerializer(serializers.Serializer):
        class HitSerializer(serializers.Serializer):
            chunk_id = serializers.IntegerField()
            score = serializers.FloatField()
            text = serializers.CharField()
            citation = serializers.DictField()

            class Meta:
                ref_name = "KnowledgeSearchHit"

        query = serializers.CharField()
        failed = serializers.BooleanField(help_text="True when the best score is under the answer threshold.")
        hits = HitSerializer(many=True)

        class Meta:
            ref_name = "KnowledgeSearchResult"

    @extend_schema(
        operation_id="knowledge_search",
        summary="Search approved, fresh knowledge as a given audience would see it",
        parameters=[
            OpenApiParameter("q", str, required=True),
            OpenApiParameter("audience", str, enum=Audience.values),
            OpenApiParameter("products", str, many=True, description="Repeat for several products."),
            OpenApiParameter("k", int),
        ],
        responses={200: OutputSerializer, 400: None, 403: None},
    )
    def get(self, request: Request) -> Response:
        from knowledge.retrieval import search  # the retrieval engine is heavy to import; only search needs it

        params: dict[str, Any] = request.query_params.dict()
        if "products" in request.query_params:
            params["products"] = request.query_params.getlist("products")
        serializer = self.InputSerializer(data=params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = search(
            data["q"], audience=data["audience"], products=data.get("products"), k=data["k"], record_failure=False
        )
        return Response(self.OutputSerializer({"query": data["q"], "failed": result.failed, "hits": result.hits}).data)

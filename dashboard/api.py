"""The analytics REST API (read-only, support managers and admins): one report metric per day over a period, with
its definition, the period's figure and each day's sample and 95% interval, from the same rollups the dashboard
draws. Mounted at /api/analytics/ (docs/dashboard.md)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.report import RATE, REPORT_METRICS, SCORE, SECONDS
from dashboard.access import may_see_dashboard
from dashboard.filters import MAX_DAYS, MAX_SLICED_DAYS, BadFilters, filters_from
from dashboard.selectors import metric_series_read
from governance.models import RolloutStage


class SeesDashboard(BasePermission):
    """The dashboard's rule: active staff in the support manager or support admin group, or a superuser."""

    message = "The analytics API is for support managers and support admins."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return may_see_dashboard(request.user)


class FigureSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="Null when unknown (see why).")
    n = serializers.IntegerField(help_text="The sample behind the value (a share's denominator).")
    numerator = serializers.IntegerField(allow_null=True, help_text="A share's numerator; null for other units.")
    low = serializers.FloatField(allow_null=True, help_text="A share's 95% Wilson interval, lower bound.")
    high = serializers.FloatField(allow_null=True, help_text="A share's 95% Wilson interval, upper bound.")
    why = serializers.CharField(help_text="Why the value is unknown, when it is.")

    class Meta:
        ref_name = "AnalyticsFigure"


class PointSerializer(FigureSerializer):
    day = serializers.DateField()

    class Meta:
        ref_name = "AnalyticsSeriesPoint"


def _metric_names() -> list[str]:
    return list(REPORT_METRICS)


class MetricSeriesApi(APIView):
    """One report metric per day from ``from`` to ``to`` (both included; default the last 30 days)."""

    permission_classes = [SeesDashboard]

    class OutputSerializer(serializers.Serializer):
        metric = serializers.CharField()
        unit = serializers.ChoiceField(choices=[RATE, SCORE, SECONDS], help_text="rate: a share between 0 and 1.")
        definition = serializers.CharField()
        measured = serializers.BooleanField(help_text="False: Steward does not measure this metric yet.")
        # "from" is a Python keyword: the field is declared under another name and renamed below.
        from_ = serializers.DateField()
        to = serializers.DateField()
        channel = serializers.CharField(allow_null=True, help_text="Null: every channel.")
        intent = serializers.CharField(allow_null=True)
        stage = serializers.IntegerField(allow_null=True)
        responder = serializers.CharField(allow_null=True)
        prompt_version = serializers.CharField(allow_null=True)
        total = FigureSerializer(help_text="The period's figure: shares add their days' parts and samples.")
        points = PointSerializer(many=True)

        class Meta:
            ref_name = "AnalyticsMetricSeries"

        def get_fields(self) -> dict[str, Any]:
            fields = super().get_fields()
            fields["from"] = fields.pop("from_")
            return fields

    @extend_schema(
        operation_id="analytics_metric_series",
        summary="One support metric per day over a period, with its definition, sample and 95% interval",
        parameters=[
            OpenApiParameter("metric", str, OpenApiParameter.PATH, enum=_metric_names(), description="A metric name."),
            OpenApiParameter("from", str, description="First day, YYYY-MM-DD (default: 29 days before to)."),
            OpenApiParameter("to", str, description="Last day, YYYY-MM-DD, not after today (default: today)."),
            OpenApiParameter("channel", str, description="A channel such as web_chat; leave out for every channel."),
            OpenApiParameter("intent", str, description="Conversations about this intent."),
            OpenApiParameter("stage", int, enum=RolloutStage.values, description="Turns decided at this stage."),
            OpenApiParameter("responder", str, description="Turns of this responder (embedded, openai)."),
            OpenApiParameter("prompt_version", str, description='Turns of this prompt version, e.g. "default v2".'),
        ],
        description=f"At most {MAX_DAYS} days, or {MAX_SLICED_DAYS} with an intent, stage, responder or prompt "
        "version (those are computed live). Past days come from the nightly rollups, today is computed now.",
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="A bad date, period or filter; the body names the field."),
            403: OpenApiResponse(description="Not a support manager or support admin."),
            404: OpenApiResponse(description="No such metric."),
        },
    )
    def get(self, request: Request, metric: str) -> Response:
        if metric not in REPORT_METRICS:
            raise Http404(f"There is no metric {metric!r}; known: {', '.join(REPORT_METRICS)}.")
        try:
            filters = filters_from(request.query_params)
        except BadFilters as error:
            raise ValidationError(error.errors) from None
        series = metric_series_read(metric, filters)
        data = {
            "metric": metric,
            "unit": series.unit,
            "definition": series.definition,
            "measured": series.measured,
            "from": filters.start,
            "to": filters.end,
            "channel": filters.channel or None,
            "intent": filters.intent or None,
            "stage": filters.stage,
            "responder": filters.responder or None,
            "prompt_version": filters.prompt_version or None,
            "total": series.total.as_json(),
            "points": [point.as_json() for point in series.points],
        }
        return Response(self.OutputSerializer(data).data)

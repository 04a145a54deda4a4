"""Public chat API for the widget: start a conversation (and prove who the customer is with a signed token)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from agent import identity
from agent.handoff import conversation_traffic_route
from agent.messages import conversation_from_token, conversation_start, conversation_token


def widget_origins() -> set[str]:
    """Origins whose pages may embed the widget: WIDGET_ORIGINS plus Steward's own site."""
    own = urlsplit(settings.SITE_URL)
    return {*settings.STEWARD_WIDGET_ORIGINS, f"{own.scheme}://{own.netloc}"}


def _with_cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    if origin and origin in widget_origins():
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


class ConversationStartThrottle(AnonRateThrottle):
    rate = "30/min"


class ConversationStartApi(APIView):
    """Start a conversation; the answer carries the signed token the websocket needs."""

    authentication_classes: list = []  # public endpoint; no session, so no CSRF to bypass
    permission_classes = [AllowAny]
    throttle_classes = [ConversationStartThrottle]

    class InputSerializer(serializers.Serializer):
        identity_token = serializers.CharField(required=False, allow_blank=True, max_length=4096)
        origin_url = serializers.URLField(required=False, allow_blank=True, max_length=1000)
        channel = serializers.SlugField(required=False, max_length=64, default="web_chat")

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        token = serializers.CharField()
        websocket = serializers.CharField()
        verification = serializers.IntegerField()
        owner = serializers.CharField(
            help_text="Who answers: agent at the start (outside the AI's traffic share, the first message goes to a "
            "person instead)."
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        origin = request.headers.get("Origin", "")
        # A page Steward served itself (same scheme, host and port; the host already passed ALLOWED_HOSTS) may always
        # start a chat, whatever SITE_URL says: e.g. the demo page opened as localhost:8000, or a test server's port.
        same_origin = origin == f"{request.scheme}://{request.get_host()}"
        if origin and not same_origin and origin not in widget_origins():
            return Response(
                {"detail": f"Origin {origin} may not embed this chat (STEWARD_WIDGET_ORIGINS)."},
                status=status.HTTP_403_FORBIDDEN,
            )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = conversation_start(
            channel=data.validated_data.get("channel", "web_chat"), origin_url=data.validated_data.get("origin_url", "")
        )
        token = data.validated_data.get("identity_token")
        identity_error = ""
        if token:
            try:
                verified = identity.identity_from_token(token, conversation_id=str(conversation.pk))
                conversation = identity.conversation_identify(conversation=conversation, identity=verified)
            except identity.IdentityError as exc:
                # The chat still opens, anonymously; the page learns why its token was not accepted.
                identity_error = str(exc)
        # After the identity: a customer the host site vouched for keeps their side of the traffic share.
        conversation = conversation_traffic_route(conversation)
        return self._answer(conversation, identity_error=identity_error)

    def _answer(self, conversation, identity_error: str = "") -> Response:  # type: ignore[no-untyped-def]
        token = conversation_token(conversation)
        body = {
            "id": str(conversation.pk),
            "token": token,
            "verification": conversation.verification,
            "owner": conversation.owner,
            "websocket": f"/ws/chat/{conversation.pk}/?token={token}",
        }
        if identity_error:
            body["identity_error"] = identity_error
        return Response(body, status=status.HTTP_201_CREATED)

    def options(self, request: Request, *args: object, **kwargs: object) -> Response:
        return Response(status=status.HTTP_204_NO_CONTENT)

    def finalize_response(self, request: Request, response: Response, *args: object, **kwargs: object) -> Response:
        return _with_cors(request, super().finalize_response(request, response, *args, **kwargs))


class ConversationStatusApi(APIView):
    """Whether a saved conversation still exists for its token: the widget asks when its websocket keeps being refused
    (a database reset, a token from another deployment) and starts a new conversation on 404."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ConversationStartThrottle]

    @extend_schema(responses={200: dict, 404: dict})
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_from_token(conversation_id, request.query_params.get("token", ""))
        if conversation is None:
            # Unknown id and wrong token answer alike, so that ids cannot be probed.
            return Response({"detail": "No such conversation for this token."}, status=status.HTTP_404_NOT_FOUND)
        return Response({"id": str(conversation.pk), "owner": conversation.owner, "last_seq": conversation.last_seq})

    def options(self, request: Request, *args: object, **kwargs: object) -> Response:
        return Response(status=status.HTTP_204_NO_CONTENT)

    def finalize_response(self, request: Request, response: Response, *args: object, **kwargs: object) -> Response:
        return _with_cors(request, super().finalize_response(request, response, *args, **kwargs))

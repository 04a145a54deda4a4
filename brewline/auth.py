"""Token authentication for Brewline's API: ``Authorization: Token <token>`` against ApiToken."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from brewline.models import ApiToken

KEYWORD = "Token"


@dataclass(frozen=True)
class ApiClient:
    """``request.user`` of an API call: the client named by its token (not a Django user)."""

    name: str
    is_authenticated: bool = True


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # no credentials: HasApiToken answers 401 with the WWW-Authenticate below
        if len(parts) != 2:
            raise AuthenticationFailed("Send the header as 'Authorization: Token <token>'.")
        try:
            raw = parts[1].decode()
        except UnicodeDecodeError:
            raise AuthenticationFailed("The token is not valid.") from None
        token = ApiToken.objects.filter(token_hash=ApiToken.hash_token(raw)).first()
        if token is None or token.revoked:
            raise AuthenticationFailed("The token is not valid or has been revoked.")
        return ApiClient(name=token.name), token

    def authenticate_header(self, request: Request) -> str:
        # Present, so DRF answers a missing or refused credential with 401 rather than 403 (DRF authentication docs).
        return f'{KEYWORD} realm="brewline"'


class HasApiToken(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, ApiToken)

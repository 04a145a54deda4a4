"""The helpdesk webhook endpoint: ``POST /api/hooks/<connector key>/`` (Zendesk, signed) and
``POST /api/hooks/<connector key>/<token>/`` (Chatwoot, a token in the URL). docs/connectors/webhooks.md.

Thin: the vendor's authentication and payload are ``connectors.webhooks``', the outcome is
``agent.ticket_outcomes``'. No session and no CSRF: the sender is a helpdesk, proven by its signature or token.
Every refusal is a JSON ``{"error": ...}`` with its status; nothing a sender can send answers 500.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from agent.ticket_outcomes import ticket_update_receive
from connectors.webhooks import (
    MAX_BODY_BYTES,
    SIGNED_ADAPTERS,
    TOKEN_ADAPTERS,
    Ignored,
    PayloadInvalid,
    WebhookRefused,
    chatwoot_authenticate,
    chatwoot_update,
    payload_load,
    webhook_connector,
    zendesk_authenticate,
    zendesk_update,
)


@csrf_exempt
def webhook_receive(request: HttpRequest, connector_key: str, token: str | None = None) -> JsonResponse:
    """Take one webhook delivery from a helpdesk connector and record the ticket outcome it reports."""
    if request.method != "POST":
        response = _answer(405, error="Webhooks are delivered with POST.")
        response["Allow"] = "POST"
        return response
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _answer(400, error="Content-Length is not a number.")
    if declared > MAX_BODY_BYTES:
        return _answer(413, error=f"The body is over {MAX_BODY_BYTES} bytes.")
    signed = token is None
    connector = webhook_connector(key=connector_key, adapters=SIGNED_ADAPTERS if signed else TOKEN_ADAPTERS)
    if connector is None:
        return _answer(404, error=f"No enabled connector {connector_key!r} receives webhooks at this address.")
    body = request.read(MAX_BODY_BYTES + 1)  # bounded even when no Content-Length was sent
    if len(body) > MAX_BODY_BYTES:
        return _answer(413, error=f"The body is over {MAX_BODY_BYTES} bytes.")
    try:
        if signed:
            zendesk_authenticate(connector, headers=request.headers, body=body)
            update = zendesk_update(payload_load(body))
        else:
            chatwoot_authenticate(connector, token=token or "")
            update = chatwoot_update(payload_load(body))
        if isinstance(update, Ignored):
            return _answer(200, status="ignored", reason=update.reason)
        outcome = ticket_update_receive(connector=connector, update=update)
    except PayloadInvalid as exc:
        return _answer(exc.status, error=f"Not a {connector.adapter} webhook payload: {exc}")
    except WebhookRefused as exc:
        return _answer(exc.status, error=str(exc))
    if outcome.conversation_id is None:
        return _answer(200, status="ignored", reason=f"Ticket {update.ticket_id} belongs to no conversation.")
    if not outcome.recorded:
        return _answer(200, status="ignored", reason="Nothing changed for this conversation.")
    return _answer(200, status="recorded", events=outcome.recorded)


def _answer(http_status: int, **body: Any) -> JsonResponse:
    return JsonResponse(body, status=http_status)

"""The handoff console's views: adapters that check who is asking, call one service, and redirect with a message.

Domain errors (OwnershipConflict, ApprovalNotPending, NotPermitted) become a message on the page they came from,
never an error page; unknown ids are 404; a GET on a POST endpoint is 405.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from agent.console import selectors
from agent.console.forms import DecisionForm, ReplyForm
from agent.console.services import conversation_hand_back_by_assignee
from agent.models import Conversation
from agent.services import OwnershipConflict, conversation_close, conversation_take_over, human_message_send
from config.views import see_other
from governance.approvals import approval_request_approve, approval_request_reject
from governance.exceptions import ApprovalNotPending, NotPermitted
from governance.models import ApprovalRequest

View = Callable[..., HttpResponse]


def console_view(*, act: bool = False, post: bool = False) -> Callable[[View], View]:
    """Guard a console view: log in first (redirect), then staff with the console permission (403), then the method."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not selectors.may_use_console(request.user, act=act):
                raise PermissionDenied(
                    "The handoff console is for support staff."
                    if not act
                    else "You may read conversations here but not take them over, write in them or close them."
                )
            if post and request.method != "POST":
                return HttpResponseNotAllowed(["POST"], "Use the buttons on the conversation page (POST only).")
            if not post and request.method not in ("GET", "HEAD"):
                return HttpResponseNotAllowed(["GET", "HEAD"], "This page can only be read (GET).")
            return view(request, *args, **kwargs)

        # Live pages: a back button or a proxy must never show a stale owner or transcript.
        return never_cache(wrapped)

    return decorator


def _detail_url(conversation_id: Any) -> str:
    return reverse("console:detail", args=[conversation_id])


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    # The admin's header, user links and colours: the console is part of the admin a support team already uses.
    return {**admin.site.each_context(request), **extra}


def _conversation(conversation_id: Any) -> Conversation:
    conversation = selectors.conversation_or_none(conversation_id)
    if conversation is None:
        raise Http404("No conversation with this id.")
    return conversation


# --- Pages ---------------------------------------------------------------------------------------------------------


@console_view()
def conversation_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/list.html",
        _context(request, title="Handoff console", queues=selectors.console_queues()),
    )


@console_view()
def conversation_detail(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    conversation = _conversation(conversation_id)
    controls = selectors.controls_for(
        owner=conversation.owner,
        assignee_id=conversation.assignee_id,
        user_id=request.user.pk,
        may_act=selectors.may_use_console(request.user, act=True),
    )
    entries = selectors.transcript(conversation)
    decisions = selectors.pending_decisions(conversation, request.user)
    return render(
        request,
        "console/detail.html",
        _context(
            request,
            title=f"Conversation {str(conversation.pk)[:8]}",
            conversation=conversation,
            assignee_name=selectors.assignee_name(conversation),
            entries=entries,
            last_seq=max((e.message["seq"] for e in entries), default=0),
            controls=controls,
            reply_form=ReplyForm(),
            decisions=decisions,
            approval_ids=",".join(str(d.request.pk) for d in decisions),
            decided=selectors.decided_requests(conversation),
            customer=selectors.customer_context(conversation),
            ticket_url=selectors.ticket_url(conversation.ticket_id),
        ),
    )


@console_view()
def conversation_events(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    conversation = _conversation(conversation_id)
    raw = request.GET.get("after", "0") or "0"
    try:
        after = int(raw)
    except ValueError:
        return JsonResponse({"error": "after must be a whole number (the highest seq you have)."}, status=400)
    if after < 0:
        return JsonResponse({"error": "after must be 0 or more."}, status=400)
    return JsonResponse(selectors.conversation_events(conversation, request.user, after=after))


# --- Ownership moves and replies ----------------------------------------------------------------------------------


def _move(request: HttpRequest, conversation_id: Any, move: Any, failed: str, done: str) -> HttpResponse:
    """Run one ownership move for the signed-in person; a conflict is a message on the page, never an error."""
    conversation = _conversation(conversation_id)
    try:
        move(conversation.pk, request.user)
    except OwnershipConflict as exc:
        flash.error(request, f"{failed}: {exc}")
    else:
        flash.success(request, done)
    return see_other(_detail_url(conversation.pk))


@console_view(act=True, post=True)
def conversation_take_over_view(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    return _move(
        request,
        conversation_id,
        lambda pk, user: conversation_take_over(conversation_id=pk, user=user),
        "Not taken over",
        "You have the conversation; the AI stays silent until you hand it back.",
    )


@console_view(act=True, post=True)
def conversation_hand_back_view(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    return _move(
        request,
        conversation_id,
        lambda pk, user: conversation_hand_back_by_assignee(conversation_id=pk, user=user),
        "Not handed back",
        "Handed back: the AI answers the customer's next message.",
    )


@console_view(act=True, post=True)
def conversation_close_view(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    return _move(
        request,
        conversation_id,
        lambda pk, user: conversation_close(conversation_id=pk, actor=user, reason=f"closed by {user.get_username()}"),
        "Not closed",
        "Closed. The customer is asked how it went.",
    )


@console_view(act=True, post=True)
def conversation_send_view(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    conversation = _conversation(conversation_id)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        flash.error(request, " ".join(form.errors["text"]))
        return see_other(_detail_url(conversation.pk))
    try:
        human_message_send(conversation_id=conversation.pk, user=request.user, text=form.cleaned_data["text"])
    except OwnershipConflict as exc:
        flash.error(request, f"Not sent: {exc}")
    else:
        flash.success(request, "Sent.")
    return see_other(_detail_url(conversation.pk) + "#reply")


# --- Approvals -----------------------------------------------------------------------------------------------------


def _decide(request: HttpRequest, request_id: int, *, approve: bool) -> HttpResponse:
    approval = get_object_or_404(ApprovalRequest.objects.select_related("action"), pk=request_id)
    back = _back_from_approval(request, approval)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        flash.error(request, " ".join(form.errors["note"]))
        return see_other(back)
    decide = approval_request_approve if approve else approval_request_reject
    try:
        decide(request_id=approval.pk, actor=request.user, note=form.cleaned_data["note"])
    except (ApprovalNotPending, NotPermitted) as exc:
        flash.error(
            request, f"{approval.action.label} #{approval.pk} not {'approved' if approve else 'rejected'}: {exc}"
        )
    else:
        if approve:
            flash.success(request, f"Approved {approval.action.label.lower()} #{approval.pk}; it is being carried out.")
        else:
            flash.success(request, f"Rejected {approval.action.label.lower()} #{approval.pk}; the customer is told.")
    return see_other(back)


def _back_from_approval(request: HttpRequest, approval: ApprovalRequest) -> str:
    """Return where to go after deciding: a safe ``next``, else the request's conversation, else the console."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    conversation = selectors.conversation_or_none(approval.conversation_id)
    return _detail_url(conversation.pk) if conversation is not None else reverse("console:list")


@console_view(post=True)
def approval_approve_view(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, approve=True)


@console_view(post=True)
def approval_reject_view(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, approve=False)

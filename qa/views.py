"""The QA pages: adapters that check who is asking, call one service, and redirect or re-render with the errors.

Domain errors become form errors or a message on the page; bad ids are 404; a GET on a POST endpoint is 405.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from agent.console.selectors import conversation_or_none
from config.views import see_other
from qa import selectors
from qa.calibration import calibration
from qa.exceptions import InvalidInput, ItemNotOpen, NotPermitted
from qa.forms import FixRequestForm, RegressionCaseForm
from qa.models import ItemStatus, Review, ReviewItem, SamplingRule
from qa.scoring import pass_mark
from qa.services import (
    conversation_flag,
    fix_request_create,
    may_settle,
    qa_item_settle,
    qa_review_submit,
    regression_case_from_review,
)
from qa.services.regression import customer_turns
from qa.services.review import LABELS

View = Callable[..., HttpResponse]


READ = ("GET", "HEAD")
FORM = ("GET", "HEAD", "POST")
POST = ("POST",)


def qa_view(*, methods: tuple[str, ...] = READ, managers: bool = False) -> Callable[[View], View]:
    """Guard a QA page: log in first (redirect), then QA reviewers and managers (403), then the method (405)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not selectors.may_use_qa(request.user):
                raise PermissionDenied("The QA pages are for QA reviewers and support managers.")
            if managers and not may_settle(request.user):
                raise PermissionDenied("This page is for support managers.")
            if request.method not in methods:
                return HttpResponseNotAllowed(list(methods))
            return view(request, *args, **kwargs)

        return never_cache(wrapped)

    return decorator


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "is_manager": may_settle(request.user), **extra}


def _item(request: HttpRequest, item_id: int) -> ReviewItem:
    items = ReviewItem.objects.select_related("conversation", "final_review").prefetch_related("reasons__rule")
    item = get_object_or_404(items, pk=item_id)
    if not selectors.may_see_item(request.user, item):
        raise PermissionDenied("This item is not assigned to you.")
    return item


def _review(request: HttpRequest, review_id: int) -> Review:
    review = get_object_or_404(Review.objects.select_related("item__conversation", "reviewer"), pk=review_id)
    if review.reviewer_id != request.user.pk and not may_settle(request.user):
        raise PermissionDenied("Only the reviewer and managers act on a review.")
    return review


# --- The queue -------------------------------------------------------------------------------------------------------


@qa_view()
def queue(request: HttpRequest) -> HttpResponse:
    rule_id = request.GET.get("rule") or None
    status = request.GET.get("status") or ""
    if rule_id is not None and not rule_id.isdigit():
        rule_id = None
    if status not in ItemStatus.values:
        status = ""
    items = selectors.queue_for(request.user, rule_id=int(rule_id) if rule_id else None, status=status)
    return render(
        request,
        "qa/queue.html",
        _context(
            request,
            title="QA review queue",
            items=items,
            rules=SamplingRule.objects.order_by("name") if may_settle(request.user) else [],
            statuses=ItemStatus.choices,
            rule_id=int(rule_id) if rule_id else None,
            status=status,
            limit=selectors.QUEUE_LIMIT,
        ),
    )


# --- Reviewing one item ----------------------------------------------------------------------------------------------


def review_input(post: QueryDict) -> dict[str, Any]:
    """Read the scorecard form: results and comments per criterion, labels, per-turn notes, the comment."""
    results: dict[str, dict[str, str]] = {}
    annotations: dict[str, str] = {}
    for key, value in post.items():
        if key.startswith("result-"):
            results.setdefault(key.removeprefix("result-"), {})["result"] = value
        elif key.startswith("comment-"):
            results.setdefault(key.removeprefix("comment-"), {})["comment"] = value
        elif key.startswith("note-"):
            annotations[key.removeprefix("note-")] = value
    choice = {"yes": True, "no": False}
    labels: dict[str, Any] = {name: choice.get(post.get(f"label-{name}", "")) for name in LABELS}
    labels["breached_policy"] = post.get("breached_policy", "")
    return {"results": results, "labels": labels, "annotations": annotations, "comment": post.get("comment", "")}


def _scorecard(page: selectors.ItemPage, posted: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for row in page.criteria:
        given = posted["results"].get(str(row.criterion.pk), {})
        rows.append(
            {
                "criterion": row.criterion,
                "applies": row.applies,
                "result": given.get("result", "") if row.applies else "na",
                "comment": given.get("comment", ""),
                "error": errors.get(f"criterion-{row.criterion.pk}", ""),
            }
        )
    return rows


def _labels(posted: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for key, name in enumerate(LABELS, start=1):
        value = posted["labels"].get(name)
        rows.append(
            {
                "name": name,
                "title": name.replace("_", " ").capitalize(),
                "key": key,
                "value": "" if value is None else ("yes" if value else "no"),
                "error": errors.get(name, ""),
            }
        )
    return rows


def _render_item(
    request: HttpRequest,
    item: ReviewItem,
    *,
    posted: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    page = selectors.item_page(item, request.user)
    posted = posted or {"results": {}, "labels": {}, "annotations": {}, "comment": ""}
    errors = errors or {}
    for entry in page.entries:
        entry.note = posted["annotations"].get(str(entry.trace.pk), "") if entry.trace else ""  # type: ignore[attr-defined]
    mine_failed = [r for r in page.reviews if not r.passed and r.reviewer_id == request.user.pk]
    return render(
        request,
        "qa/item.html",
        _context(
            request,
            title=f"Review conversation {str(item.conversation_id)[:8]}",
            page=page,
            conversation=item.conversation,
            scorecard=_scorecard(page, posted, errors),
            labels=_labels(posted, errors),
            breached_policy=posted["labels"].get("breached_policy", ""),
            comment=posted["comment"],
            errors=errors,
            pass_mark=pass_mark(),
            failed_reviews=mine_failed
            or ([r for r in page.reviews if not r.passed] if may_settle(request.user) else []),
        ),
        status=status,
    )


@qa_view()
def item_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    return _render_item(request, _item(request, item_id))


@qa_view(methods=POST)
def item_review(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _item(request, item_id)
    posted = review_input(request.POST)
    try:
        review = qa_review_submit(item=item, reviewer=request.user, **posted)
    except InvalidInput as exc:
        return _render_item(request, item, posted=posted, errors=exc.errors, status=400)
    except (NotPermitted, ItemNotOpen) as exc:
        flash.error(request, f"Not submitted: {exc}")
        return see_other(reverse("qa:item", args=[item.pk]))
    verdict = "passed" if review.passed else "failed"
    score = f"{review.score:.0f}" if review.score is not None else "—"
    flash.success(request, f"Review submitted: {verdict} (score {score}).")
    if not review.passed:
        return see_other(reverse("qa:item", args=[item.pk]) + "#after-review")
    return see_other(reverse("qa:queue"))


@qa_view(methods=POST, managers=True)
def item_settle(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _item(request, item_id)
    back = request.POST.get("back") == "item"
    target = reverse("qa:item", args=[item.pk]) if back else reverse("qa:calibration")
    review_id = request.POST.get("review", "")
    review = Review.objects.filter(pk=int(review_id), item=item).first() if review_id.isdigit() else None
    if review is None:
        flash.error(request, "Not settled: pick the review that stands.")
        return see_other(target)
    try:
        qa_item_settle(item=item, review=review, actor=request.user, note=request.POST.get("note", ""))
    except (NotPermitted, ItemNotOpen, InvalidInput) as exc:
        flash.error(request, f"Not settled: {exc}")
    else:
        flash.success(request, f"Settled: {review.reviewer.get_username()}'s review stands.")
    return see_other(target)


@qa_view(managers=True)
def calibration_view(request: HttpRequest) -> HttpResponse:
    return render(request, "qa/calibration.html", _context(request, title="QA calibration", data=calibration()))


# --- After a failed review -------------------------------------------------------------------------------------------


@qa_view(methods=FORM)
def fix_request_form(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _review(request, review_id)
    sources = selectors.cited_sources(review.item)
    form = FixRequestForm(request.POST or None, sources=sources)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            fix = fix_request_create(
                actor=request.user,
                review=review,
                source=data["source"],
                document=data["document"],
                missing_topic=data["missing_topic"],
                owner=data["owner"],
                note=data["note"],
            )
        except InvalidInput as exc:
            for name, message in exc.errors.items():
                form.add_error(name if name in form.fields else None, message)
        except NotPermitted as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            flash.success(request, f"Fix request sent to {fix.owner.get_username()}.")
            return see_other(reverse("qa:item", args=[review.item_id]))
    return render(
        request,
        "qa/fix_request.html",
        _context(request, title="Ask the source owner for a fix", review=review, form=form, sources=sources),
        status=400 if form.errors else 200,
    )


@qa_view(methods=FORM)
def regression_case_form(request: HttpRequest, review_id: int) -> HttpResponse:
    from suites.models import RegressionSuite

    review = _review(request, review_id)
    if not request.user.has_perm("suites.add_regressioncase"):
        raise PermissionDenied("You may not add regression cases.")
    turns = customer_turns(review.item.conversation)
    form = RegressionCaseForm(request.POST or None, turns=turns, suites=RegressionSuite.objects.order_by("name"))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            case = regression_case_from_review(
                review=review,
                suite=data["suite"],
                actor=request.user,
                expectations=data["expectations"],
                name=data["name"],
            )
        except InvalidInput as exc:
            for message in exc.errors.values():
                form.add_error(None, message)
        except NotPermitted as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            flash.success(request, f"Regression case “{case.name}” added to suite {data['suite'].name}.")
            return see_other(reverse("qa:item", args=[review.item_id]))
    return render(
        request,
        "qa/regression_case.html",
        _context(request, title="Create a regression case", review=review, form=form),
        status=400 if form.errors else 200,
    )


# --- Flagging from the console ---------------------------------------------------------------------------------------


@never_cache
def flag(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    """Flag a conversation for QA (the handoff console's "Flag for QA" button); support staff with the permission."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not (request.user.is_staff and request.user.has_perm("qa.add_conversationflag")):
        raise PermissionDenied("You may not flag conversations for QA.")
    conversation = conversation_or_none(conversation_id)
    if conversation is None:
        raise Http404("No conversation with this id.")
    try:
        _, created = conversation_flag(conversation=conversation, actor=request.user, note=request.POST.get("note", ""))
    except (NotPermitted, InvalidInput) as exc:
        flash.error(request, f"Not flagged: {exc}")
    else:
        flash.success(
            request, "Flagged for QA: the next queue fill picks it up." if created else "You flagged it already."
        )
    return see_other(reverse("console:detail", args=[conversation.pk]))

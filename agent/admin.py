"""Agent admin: intents and prompt versions (configuration, audited), and conversations with their turn traces
(evidence: read-only, never added or deleted here).

Conversations and traces are rendered for a person to read: each reply of the transcript with what its turn did —
the intent, the passages retrieved, the tool calls and governance's decision on each, the escalation rules, the
timings. Every value is escaped (``format_html``): transcripts hold what customers typed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import F, QuerySet, Window
from django.db.models.functions import DenseRank
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agent.models import Conversation, Intent, Message, PromptVersion, Route, TurnTrace
from agent.prompts import prompt_version_create, prompt_version_set_active
from agent.responders import slots as slot_patterns
from governance.admin.base import GovernedAdmin
from governance.models import ActionPolicy

# --- Intents -------------------------------------------------------------------------------------------------------

SLOT_KEYS = {"name", "pattern", "question", "label", "required"}
LAUNCH_ATTRIBUTES = ["volume", "complexity", "policy_risk", "business_value"]


def slot_errors(value: Any) -> list[str]:
    """Return what is wrong with an intent's slots (empty when they are right). Pure.

    The shape is ``[{"name", "pattern", "question", "label"?, "required"?}]``: the router reads a slot's value with
    its pattern (agent/responders/slots.py) and asks its question when the value is missing.
    """
    if not isinstance(value, list):
        return ['Slots must be a list: [{"name": …, "pattern": …, "question": …}], or [] for none.']
    errors: list[str] = []
    seen: set[str] = set()
    for position, slot in enumerate(value, start=1):
        where = f"Slot {position}"
        if not isinstance(slot, dict):
            errors.append(f"{where} must be an object with a name, a pattern and a question.")
            continue
        if unknown := sorted(set(slot) - SLOT_KEYS):
            errors.append(f"{where} has unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(SLOT_KEYS))}).")
        name = slot.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{where} needs a name.")
        elif name in seen:
            errors.append(f"{where}: the name {name!r} is used twice.")
        else:
            seen.add(name)
            where = f"Slot {name!r}"
        if slot.get("pattern") not in slot_patterns.PATTERNS:
            errors.append(f"{where}: the pattern must be one of {', '.join(slot_patterns.PATTERNS)}.")
        if not isinstance(slot.get("question"), str) or not slot["question"].strip():
            errors.append(f"{where} needs the question the agent asks when the value is missing.")
        if "label" in slot and not isinstance(slot["label"], str):
            errors.append(f"{where}: the label must be text.")
        if "required" in slot and not isinstance(slot["required"], bool):
            errors.append(f"{where}: required must be true or false.")
    return errors


class IntentForm(forms.ModelForm):
    class Meta:
        model = Intent
        fields = ["name", "label", "enabled", "route", "action", "slots", "examples", "threshold", *LAUNCH_ATTRIBUTES]
        widgets = {"slots": forms.Textarea(attrs={"rows": 8, "cols": 90, "style": "font-family: monospace"})}

    def clean_slots(self) -> Any:
        value = self.cleaned_data.get("slots")
        if value is None:  # an emptied field: no slots (the column is never NULL)
            return []
        if errors := slot_errors(value):
            raise forms.ValidationError(errors)
        return value

    def clean_threshold(self) -> float | None:
        threshold = self.cleaned_data.get("threshold")
        if threshold is not None and not 0 < threshold < 1:
            raise forms.ValidationError("A routing score is between 0 and 1; leave it empty for the default.")
        return threshold

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for attribute in LAUNCH_ATTRIBUTES:
            value = data.get(attribute)
            if value is not None and not 1 <= value <= 5:
                self.add_error(attribute, "Score it from 1 to 5.")
        route, action = data.get("route"), data.get("action", "")
        if route == Route.ACTION and not action:
            self.add_error("action", "An intent that takes an action names the action policy it takes.")
        elif route == Route.ACTION and not ActionPolicy.objects.filter(action=action).exists():
            self.add_error("action", f"There is no action policy named {action!r}.")
        elif route != Route.ACTION and action:
            self.add_error("action", "Only an intent that takes an action names one; clear it or change the route.")
        return data


@admin.register(Intent)
class IntentAdmin(GovernedAdmin):
    form = IntentForm
    list_display = [
        "name",
        "label",
        "route",
        "action",
        "slot_names",
        "example_count",
        "enabled",
        "launch_score",
        "rank",
    ]
    list_filter = ["route", "enabled", "policy_risk", "complexity"]
    search_fields = ["name", "label", "action"]
    search_help_text = "Name, label or action."
    fieldsets = [
        ("Intent", {"fields": ["name", "label", "enabled"]}),
        (
            "What the agent does",
            {
                "fields": ["route", "action", "slots"],
                "description": "Slots are what the action needs before it runs, as JSON: "
                '[{"name": "order_id", "pattern": "order_id", "question": "Which order is it?", '
                f'"label": "the order number", "required": true}}]. Patterns: {", ".join(slot_patterns.PATTERNS)}.',
            },
        ),
        (
            "Routing",
            {
                "fields": ["examples", "threshold"],
                "description": "Customer messages are routed to the intent whose examples they are most like, when "
                "the score reaches the threshold.",
            },
        ),
        (
            "Launch scope",
            {
                "fields": LAUNCH_ATTRIBUTES,
                "description": "Scored 1-5. The launch score is volume + business value − complexity − policy "
                "risk: high-volume, valuable, simple and safe intents launch first.",
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Intent]:
        # Not super(): it orders before annotating, and the ordering is by the annotation.
        score = F("volume") + F("business_value") - F("complexity") - F("policy_risk")
        return Intent.objects.annotate(
            launch_score_value=score,
            # Ranked among the intents listed (after filters): the window runs after WHERE.
            launch_rank=Window(DenseRank(), order_by=[score.desc()]),
        ).order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # Not ``ordering``: the system check looks for a model field, and this is the annotation below.
        return ["-launch_score_value", "name"]

    @admin.display(description="launch score", ordering="launch_score_value")
    def launch_score(self, intent: Intent) -> int:
        return intent.launch_score_value  # type: ignore[attr-defined]

    @admin.display(description="rank", ordering="launch_score_value")
    def rank(self, intent: Intent) -> int:
        return intent.launch_rank  # type: ignore[attr-defined]

    @admin.display(description="slots")
    def slot_names(self, intent: Intent) -> str:
        names = [str(slot.get("name", "?")) for slot in intent.slots if isinstance(slot, dict)]
        return ", ".join(names) or "—"

    @admin.display(description="examples")
    def example_count(self, intent: Intent) -> int:
        return len(intent.examples)


# --- Prompt versions -------------------------------------------------------------------------------------------------


class PromptVersionForm(forms.ModelForm):
    activate = forms.BooleanField(
        required=False, label="Active", help_text="Use this version from now on (the active one before stops)."
    )

    class Meta:
        model = PromptVersion
        fields = ["name", "system_prompt", "guidance"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["activate"].initial = self.instance.active


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    """A saved version is never changed: saving an edited prompt stores it as the next version of its name.

    Only the active mark moves between versions of a name (one at a time). Versions are never deleted: traces and
    audit records name them.
    """

    form = PromptVersionForm
    list_display = ["name", "version", "active", "created_at", "prompt_start"]
    list_display_links = ["name", "version"]
    list_filter = ["active", "name"]
    search_fields = ["name", "system_prompt", "guidance"]
    actions = ["make_active"]

    def get_fields(self, request: HttpRequest, obj: PromptVersion | None = None) -> list[str]:
        if obj is None:
            return ["name", "system_prompt", "guidance", "activate"]
        return ["name", "version", "created_at", "system_prompt", "guidance", "activate"]

    def get_readonly_fields(self, request: HttpRequest, obj: PromptVersion | None = None) -> list[str]:
        return ["name", "version", "created_at"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: PromptVersion | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PromptVersion, form: forms.ModelForm, change: bool) -> None:
        activate = form.cleaned_data.get("activate", False)
        edited_version = obj.version
        if not change or {"system_prompt", "guidance"} & set(form.changed_data):
            saved = prompt_version_create(
                actor=request.user,
                name=obj.name,
                system_prompt=obj.system_prompt,
                guidance=obj.guidance,
                activate=activate,
            )
            if change:
                messages.info(
                    request, f"Saved as a new version, v{saved.version}; v{edited_version} is kept as it was."
                )
        else:
            saved = prompt_version_set_active(actor=request.user, prompt_version_id=obj.pk, active=activate)
        # The admin goes on with ``obj`` (the log entry, the redirect): make it the row actually saved, which is the
        # new version after an edit. The version edited stays as it was in the database.
        for field in PromptVersion._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"name": "default", **super().get_changeform_initial_data(request)}

    @admin.action(description="Make the selected version active", permissions=["change"])
    def make_active(self, request: HttpRequest, queryset: QuerySet[PromptVersion]) -> None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Choose exactly one version to make active.", messages.WARNING)
            return
        prompt = prompt_version_set_active(actor=request.user, prompt_version_id=chosen[0].pk, active=True)
        self.message_user(request, f"{prompt} is now the active {prompt.name} prompt.", messages.SUCCESS)

    @admin.display(description="system prompt")
    def prompt_start(self, prompt: PromptVersion) -> str:
        text = " ".join(prompt.system_prompt.split())
        return text if len(text) <= 100 else f"{text[:99]}…"


# --- Rendering a turn's trace ----------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _rows(header: str, rows: Iterable[tuple[Any, ...]], row_format: str, empty: str) -> SafeString:
    body = format_html_join("", row_format, rows)
    if not body:
        return format_html("<p><strong>{}</strong>: {}</p>", header, empty)
    return format_html("<p><strong>{}</strong></p><ul>{}</ul>", header, body)


def render_trace(trace: TurnTrace) -> SafeString:
    """Return a turn's trace as HTML a person can read; every value escaped."""
    score = "" if trace.intent_score is None else f" (score {trace.intent_score:.3f})"
    confidence = "—" if trace.confidence is None else f"{trace.confidence:.3f}"
    retrieved = _rows(
        "Retrieved",
        (
            (hit.get("document_title") or "(untitled)", hit.get("chunk_id", "?"), hit.get("score", "?"))
            for hit in trace.retrieved
            if isinstance(hit, dict)
        ),
        "<li>{} — chunk {} — score {}</li>",
        "nothing",
    )
    tools = _rows(
        "Tool calls",
        (
            (
                call.get("action", "?"),
                _json(call.get("arguments", {})),
                call.get("decision", "?"),
                call.get("reason", ""),
                # Values read from outside systems stay out of this page: the field names say what was read.
                ", ".join(sorted(call["result"])) if isinstance(call.get("result"), dict) else "",
            )
            for call in trace.tool_calls
            if isinstance(call, dict)
        ),
        "<li><code>{}</code> <code>{}</code> → governance: <strong>{}</strong> — {}"
        "<br><small>result keys: {}</small></li>",
        "none",
    )
    escalation = _rows(
        "Escalation rules",
        (
            ("FIRED" if rule.get("fired") else "no", rule.get("rule", "?"), rule.get("trigger", ""), rule.get("detail"))
            for rule in trace.escalation
            if isinstance(rule, dict)
        ),
        "<li><strong>{}</strong> {} ({}): {}</li>",
        "none ran",
    )
    timings = ", ".join(f"{step} {ms} ms" for step, ms in trace.timings.items()) or "—"
    error = format_html('<p style="color:#ba2121"><strong>Error</strong>: {}</p>', trace.error) if trace.error else ""
    return format_html(
        '<div class="turn-trace"><p><strong>Turn {}</strong> · {} · intent <code>{}</code>{} · confidence {} · '
        "responder {} · prompt <code>{}</code></p>{}{}{}<p><strong>Timings</strong>: {}</p>{}</div>",
        trace.pk,
        trace.get_status_display(),
        trace.intent or "(none)",
        score,
        confidence,
        trace.responder or "—",
        trace.prompt_version or "—",
        retrieved,
        tools,
        escalation,
        timings,
        error,
    )


def render_transcript(messages_: list[Message], traces: list[TurnTrace]) -> SafeString:
    """Return the conversation as HTML: each message, and under each agent reply the trace of the turn behind it."""
    by_reply = {trace.reply_id: trace for trace in traces if trace.reply_id}
    parts = []
    for message in messages_:
        trace = by_reply.get(message.pk)
        sources = format_html_join(
            ", ",
            '<a href="{}" rel="noopener noreferrer">{}</a>',
            (
                (c.get("url", ""), c.get("document_title") or c.get("title") or c.get("url", ""))
                for c in message.citations
                if isinstance(c, dict)
            ),
        )
        parts.append(
            format_html(
                '<div style="margin:0 0 1em 0"><p><strong>#{} {}</strong> <small>{}</small></p>'
                '<p style="white-space:pre-wrap">{}</p>{}{}</div>',
                message.seq,
                message.get_author_display(),
                timezone.localtime(message.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                message.text,
                format_html("<p><small>Sources: {}</small></p>", sources) if sources else "",
                format_html(
                    '<details open style="margin-left:2em"><summary>What this turn did</summary>{}</details>',
                    render_trace(trace),
                )
                if trace
                else "",
            )
        )
    # Turns that produced no reply (still running, or failed before storing one) are evidence too.
    for trace in traces:
        if not trace.reply_id:
            parts.append(format_html('<div style="margin-left:2em">{}</div>', render_trace(trace)))
    return (
        format_html_join("", "{}", ((part,) for part in parts)) if parts else format_html("<p>{}</p>", "No messages.")
    )


# --- Conversations and traces: evidence, read-only ------------------------------------------------------------------


class EvidenceAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: what the agent and customers said and did is evidence."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(EvidenceAdmin):
    list_display = [
        "short_id",
        "owner",
        "channel",
        "customer",
        "verification",
        "ticket_id",
        "csat_score",
        "is_demo",
        "created_at",
    ]
    list_filter = ["owner", "verification", "csat_score", "is_test", "is_demo", "created_at"]
    search_fields = ["=customer_email", "=customer_id", "=ticket_id"]  # and an exact conversation id (below)
    search_help_text = "An exact conversation id, customer email, customer id or ticket id."
    show_full_result_count = False
    list_select_related = False  # no foreign key is shown in the list
    # The placeholder vault (real PII values) and the agent's working context are never shown here.
    fieldsets = [
        (
            "Conversation",
            {"fields": ["id", "channel", "owner", "assignee", "origin_url", "is_test", "created_at", "closed_at"]},
        ),
        (
            "Customer",
            {
                "fields": [
                    "customer_id",
                    "customer_name",
                    "customer_email",
                    "verification",
                    "verified_at",
                    "failed_verifications",
                ]
            },
        ),
        ("Outcome", {"fields": ["ticket_id", "escalation_reason", "unresolved_turns", "csat_score", "csat_comment"]}),
        ("Transcript", {"fields": ["transcript"]}),
    ]
    readonly_fields = [
        "id",
        "channel",
        "owner",
        "assignee",
        "origin_url",
        "is_test",
        "created_at",
        "closed_at",
        "customer_id",
        "customer_name",
        "customer_email",
        "verification",
        "verified_at",
        "failed_verifications",
        "ticket_id",
        "escalation_reason",
        "unresolved_turns",
        "csat_score",
        "csat_comment",
        "transcript",
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        try:
            return queryset.filter(pk=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    @admin.display(description="conversation", ordering="created_at")
    def short_id(self, conversation: Conversation) -> str:
        return str(conversation.pk)[:8]

    @admin.display(description="customer")
    def customer(self, conversation: Conversation) -> str:
        return conversation.customer_name or conversation.customer_email or conversation.customer_id or "anonymous"

    @admin.display(description="transcript and turn traces")
    def transcript(self, conversation: Conversation) -> SafeString:
        return render_transcript(
            list(Message.objects.filter(conversation=conversation).order_by("seq")),
            list(TurnTrace.objects.filter(conversation=conversation).order_by("created_at", "pk")),
        )


class IntentListFilter(admin.SimpleListFilter):
    """The configured intents (a small table) rather than SELECT DISTINCT over every trace."""

    title = "intent"
    parameter_name = "intent"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("-", "(none)"), *((name, name) for name in Intent.objects.values_list("name", flat=True))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TurnTrace]) -> QuerySet[TurnTrace]:
        if self.value() is None:
            return queryset
        return queryset.filter(intent="" if self.value() == "-" else self.value())


class ResponderListFilter(admin.SimpleListFilter):
    title = "responder"
    parameter_name = "responder"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        from agent.responders import RESPONDERS

        return [(name, name) for name in sorted(RESPONDERS)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TurnTrace]) -> QuerySet[TurnTrace]:
        return queryset.filter(responder=self.value()) if self.value() else queryset


@admin.register(TurnTrace)
class TurnTraceAdmin(EvidenceAdmin):
    list_display = ["id", "conversation_link", "status", "intent", "intent_score", "confidence", "responder", "total"]
    list_display_links = ["id"]
    list_filter = ["status", IntentListFilter, ResponderListFilter, "created_at"]
    search_fields = ["=conversation__id"]
    search_help_text = "An exact conversation id."
    ordering = ["-created_at"]
    show_full_result_count = False
    fields = ["conversation", "reply_text", "message_seqs", "created_at", "finished_at", "trace"]
    readonly_fields = fields
    list_select_related = False  # the conversation column shows the id the row already has

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TurnTrace], search_term: str
    ) -> tuple[QuerySet[TurnTrace], bool]:
        try:
            return queryset.filter(conversation_id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return queryset.none() if search_term.strip() else queryset, False

    @admin.display(description="conversation")
    def conversation_link(self, trace: TurnTrace) -> str:
        return str(trace.conversation_id)[:8]

    @admin.display(description="total ms")
    def total(self, trace: TurnTrace) -> Any:
        return trace.timings.get("total_ms", "—")

    @admin.display(description="reply")
    def reply_text(self, trace: TurnTrace) -> str:
        return trace.reply.text if trace.reply else "(no reply stored)"

    @admin.display(description="what the turn did")
    def trace(self, trace: TurnTrace) -> SafeString:
        return render_trace(trace)

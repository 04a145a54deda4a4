"""The QA pages' forms: the two one-click flows after a failed review. (The scorecard is read by views.review_input:
its fields are the scorecard's criteria.)"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from knowledge.models import Document, KnowledgeSource


class FixRequestForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=KnowledgeSource.objects.none(),
        required=False,
        empty_label="Missing source: nothing covers it",
        label="Source to fix",
    )
    document = forms.ModelChoiceField(queryset=Document.objects.none(), required=False, label="Document (optional)")
    missing_topic = forms.CharField(max_length=300, required=False, label="Topic of the missing source")
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        label="Who should write it (missing source only)",
    )
    note = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 4}), label="What is wrong or missing")

    def __init__(self, *args: Any, sources: Sequence[KnowledgeSource], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = [s.pk for s in sources]
        self.fields["source"].queryset = KnowledgeSource.objects.filter(pk__in=ids).order_by("name")
        self.fields["document"].queryset = Document.objects.filter(source_id__in=ids).order_by("title")
        owners = KnowledgeSource.objects.values("owner")
        self.fields["owner"].queryset = (
            get_user_model().objects.filter(is_active=True, pk__in=owners).order_by("username")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") is None:
            if not (data.get("missing_topic") or "").strip():
                self.add_error("missing_topic", "Name the topic a missing source should cover.")
            if data.get("owner") is None:
                self.add_error("owner", "Pick who should write the missing source.")
        elif data.get("document") is not None and data["document"].source_id != data["source"].pk:
            self.add_error("document", "That document is not in the chosen source.")
        return data


ESCALATION = [("", "—"), ("must_escalate", "must escalate"), ("must_not_escalate", "must not escalate")]


class RegressionCaseForm(forms.Form):
    """A suite, a name, the starting identity, and per customer turn the expectations the reviewer writes."""

    suite = forms.ModelChoiceField(queryset=None, label="Suite")  # type: ignore[arg-type]
    name = forms.CharField(max_length=200, required=False, help_text="Empty: named after the conversation.")

    def __init__(self, *args: Any, turns: Sequence[str], suites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns = list(turns)
        self.fields["suite"].queryset = suites
        for i, _ in enumerate(self.turns):
            self.fields[f"t{i}-escalate"] = forms.ChoiceField(choices=ESCALATION, required=False, label="Escalation")
            self.fields[f"t{i}-reason"] = forms.CharField(max_length=200, required=False, label="with reason")
            self.fields[f"t{i}-verify"] = forms.BooleanField(required=False, label="must ask to verify")
            self.fields[f"t{i}-no_internal"] = forms.BooleanField(required=False, label="must not cite internal")
            self.fields[f"t{i}-cite"] = forms.CharField(
                max_length=500, required=False, label="must cite one of (sources or documents, comma-separated)"
            )
            self.fields[f"t{i}-match"] = forms.CharField(max_length=300, required=False, label="reply must match")
            self.fields[f"t{i}-not_match"] = forms.CharField(
                max_length=300, required=False, label="reply must not match"
            )
            self.fields[f"t{i}-no_tool"] = forms.CharField(
                max_length=64, required=False, label="must not call tool (action name, or * for any)"
            )
            self.fields[f"t{i}-extra"] = forms.CharField(
                required=False,
                widget=forms.Textarea(attrs={"rows": 2}),
                label="more expectations (a JSON list, docs/suites.md)",
            )

    def turn_fields(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (say, [self[name] for name in self.fields if name.startswith(f"t{i}-")]) for i, say in enumerate(self.turns)
        ]

    def _turn(self, i: int, data: dict[str, Any]) -> list[dict[str, Any]]:
        get = lambda key: data.get(f"t{i}-{key}")  # noqa: E731
        expect: list[dict[str, Any]] = []
        escalate, reason = get("escalate"), (get("reason") or "").strip()
        if escalate:
            # The reason applies to must_escalate only (must_not_escalate takes none).
            expect.append({"type": escalate, **({"reason": reason} if escalate == "must_escalate" and reason else {})})
        if get("verify"):
            expect.append({"type": "must_ask_to_verify"})
        if get("no_internal"):
            expect.append({"type": "must_not_cite_internal"})
        cite = [name.strip() for name in (get("cite") or "").split(",") if name.strip()]
        if cite:
            expect.append({"type": "must_cite", "any_of": cite})
        for key, kind in (("match", "reply_matches"), ("not_match", "reply_not_matches")):
            if get(key):
                expect.append({"type": kind, "pattern": get(key)})
        if get("no_tool"):
            tool = get("no_tool").strip()
            expect.append({"type": "must_not_call_tool", **({} if tool == "*" else {"action": tool})})
        if (get("extra") or "").strip():
            try:
                extra = json.loads(get("extra"))
            except json.JSONDecodeError as exc:
                self.add_error(f"t{i}-extra", f"Not JSON: {exc.msg} (line {exc.lineno}).")
                return expect
            if not isinstance(extra, list):
                self.add_error(f"t{i}-extra", 'A JSON list of expectations: [{"type": ...}].')
                return expect
            expect.extend(extra)
        return expect

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["expectations"] = [self._turn(i, data) for i in range(len(self.turns))]
        return data

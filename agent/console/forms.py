from __future__ import annotations

from django import forms

from agent.messages import MAX_TEXT


class ReplyForm(forms.Form):
    text = forms.CharField(
        label="Reply to the customer",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={
            "required": "Write a reply first (1–4000 characters).",
            "max_length": "A reply can be at most 4000 characters (this one has %(show_value)d).",
        },
    )


class DecisionForm(forms.Form):
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"max_length": "A note can be at most 2000 characters."},
    )

"""Fill the QA review queue now (what the daily beat task does), and close the fix requests whose source was
reviewed. Idempotent: a conversation is queued once per rule, however often it runs."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Fill the QA review queue from the sampling rules now, and close fix requests whose source was reviewed."

    def handle(self, *args: object, **options: object) -> None:
        from qa.services import fix_requests_close_reviewed, qa_queue_fill

        filled = qa_queue_fill().as_dict()
        closed = fix_requests_close_reviewed()
        summary = ", ".join(f"{count} {name}" for name, count in {**filled, "fix requests closed": closed}.items())
        self.stdout.write(f"QA queue: {summary}.")

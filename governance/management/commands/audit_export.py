"""Write audit records as JSON Lines, for a time range or a conversation."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from governance.audit import audit_export, audit_json_line


def _moment(value: str, name: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(
                f"--{name} must be a date (2026-11-25) or a date and time (2026-11-25T14:00:00Z); got {value!r}."
            )
        parsed = datetime(day.year, day.month, day.day)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = "Export audit records as JSON Lines (one record a line, in chain order, with their hashes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="From this moment (inclusive), UTC unless a zone is given.")
        parser.add_argument("--until", help="Up to this moment (exclusive).")
        parser.add_argument("--conversation", default="", help="Only this conversation's records.")
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")

    def handle(
        self,
        *args: object,
        since: str | None,
        until: str | None,
        conversation: str,
        output: str | None,
        **options: object,
    ) -> None:
        start = _moment(since, "since") if since else None
        end = _moment(until, "until") if until else None
        if start and end and start >= end:
            raise CommandError("--since must be before --until.")
        stream = open(output, "w", encoding="utf-8") if output else self.stdout  # noqa: SIM115
        count = 0
        try:
            for row in audit_export(since=start, until=end, conversation_id=conversation):
                stream.write(audit_json_line(row))
                count += 1
        finally:
            if output:
                stream.close()
        if output:
            self.stderr.write(f"Wrote {count} records to {output}.")

"""Recompute the daily metric rollups of a date range (the dashboard's stored series; docs/analytics.md)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.management.commands.analytics_report import _day
from analytics.rollups import rollup_days


class Command(BaseCommand):
    help = "Recompute the daily metric rollups from --from to --to (both included); default: yesterday."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", help="First day (YYYY-MM-DD); default: --to.")
        parser.add_argument("--to", dest="end", help="Last day, included (YYYY-MM-DD); default: yesterday.")

    def handle(self, *args: Any, **options: Any) -> None:
        end = _day(options["end"], "--to") if options["end"] else timezone.localdate() - timedelta(days=1)
        start = _day(options["start"], "--from") if options["start"] else end
        if end < start:
            raise CommandError(f"--to ({end}) is before --from ({start}).")
        began = time.perf_counter()
        written = rollup_days(start, end)
        seconds = time.perf_counter() - began
        days = (end - start).days + 1
        self.stdout.write(f"Rolled up {days} day(s), {start} to {end}: {written} metric rows in {seconds:.1f} s.")

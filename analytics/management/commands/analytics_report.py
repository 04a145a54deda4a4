"""Print (and write as JSON) every support metric with its definition, sample and 95% interval over a date range."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.report import RATE, REPORT_METRICS, analytics_report
from governance.models import RolloutStage


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} takes a date as YYYY-MM-DD, not {text!r}.") from None


def _stage(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        stage = int(text)
    except ValueError:
        stage = None
    if stage not in RolloutStage.values:
        known = ", ".join(str(value) for value in RolloutStage.values)
        raise CommandError(f"--stage takes a rollout stage ({known}), not {text!r}.")
    return stage


def _shown(value: float | None, *, rate: bool) -> str:
    if value is None:
        return "unknown"
    return f"{value:.1%}" if rate else f"{value:.2f}"


class Command(BaseCommand):
    help = "Report every support metric over a date range (docs/analytics.md, the metric catalogue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", help="First day (YYYY-MM-DD); default: 6 days before --to.")
        parser.add_argument("--to", dest="end", help="Last day, included (YYYY-MM-DD); default: today.")
        parser.add_argument("--channel", default="", help="One channel (e.g. web_chat); default: every channel.")
        parser.add_argument("--intent", default="", help="The conversations about one intent; default: all.")
        parser.add_argument("--stage", help="The conversations with a turn decided at this rollout stage (1-5).")
        parser.add_argument("--responder", default="", help="The conversations with a turn of this responder.")
        parser.add_argument(
            "--prompt-version", dest="prompt_version", default="", help="The conversations with a turn of this version."
        )
        parser.add_argument("--json", dest="json_out", help="Write the report as JSON to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        end = _day(options["end"], "--to") if options["end"] else timezone.localdate()
        start = _day(options["start"], "--from") if options["start"] else end - timedelta(days=6)
        if end < start:
            raise CommandError(f"--to ({end}) is before --from ({start}).")
        report = analytics_report(
            start=start,
            end=end,
            channel=options["channel"].strip(),
            intent=options["intent"].strip(),
            stage=_stage(options["stage"]),
            responder=options["responder"].strip(),
            prompt_version=options["prompt_version"].strip(),
        )
        self._table(report)
        if options["json_out"]:
            try:
                Path(options["json_out"]).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
            except OSError as exc:
                raise CommandError(f"--json: cannot write {options['json_out']}: {exc}") from None

    def _table(self, report: dict[str, Any]) -> None:
        write = self.stdout.write
        about = "".join(
            f", {label} {report[key]}"
            for key, label in (
                ("intent", "intent"),
                ("stage", "stage"),
                ("responder", "responder"),
                ("prompt_version", "prompt version"),
            )
            if report[key] is not None
        )
        write(f"Support metrics {report['from']} to {report['to']}, {report['channel'] or 'every channel'}{about}")
        write(f"  {'metric':<28} {'value':>8} {'n':>6}  95% interval")
        for name, row in report["metrics"].items():
            value = _shown(row["value"], rate=REPORT_METRICS[name].unit == RATE)
            n = "" if row["n"] is None else str(row["n"])
            interval = f"{row['low']:.1%} – {row['high']:.1%}" if row["low"] is not None else ""
            write(f"  {name:<28} {value:>8} {n:>6}  {interval}")

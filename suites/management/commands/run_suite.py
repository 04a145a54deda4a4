"""Run regression suites in this process: ``manage.py run_suite NAME|--all [--k N] [--json OUT] [--record-snapshot]``.

Prints a table per suite (cases, passed, pass rate, pass^k, per intent, failures). ``--json OUT`` writes one object
per suite (``{"suite", "k", "cases", "passed", "pass_rate", "pass_hat_k", "by_intent", "failures"}``); with ``--all``
the file holds a list of them, in name order. Exit code 0 when every suite ran, whatever its pass rate (a gate judges
the rate, not the command); 1 when a suite could not run (unknown, already running, the run failed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from suites.models import MAX_K, RegressionSuite, RunStatus, SuiteRun
from suites.runner import suite_run_execute
from suites.services import SuiteError, suite_run_start, suite_snapshot_save


def run_json(run: SuiteRun) -> dict[str, Any]:
    """The --json shape of one run."""
    return {
        **run.figures(),
        "by_intent": run.by_intent,
        "failures": [{key: f.get(key) for key in ("case", "turn", "expectation", "got")} for f in run.failures],
    }


class Command(BaseCommand):
    help = "Run regression suites on the live turn code in a dry run (docs/suites.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="The suite to run.")
        parser.add_argument("--all", action="store_true", help="Run every suite.")
        parser.add_argument("--k", type=int, help=f"Attempts per case (1-{MAX_K}); default: the suite's k.")
        parser.add_argument("--json", dest="json_out", help="Write the results as JSON to this file.")
        snapshot = parser.add_mutually_exclusive_group()
        snapshot.add_argument(
            "--record-snapshot",
            action="store_true",
            help="Read from the systems and store what they returned as the suite's snapshot (later runs replay it).",
        )
        snapshot.add_argument(
            "--snapshot-file",
            help="Store this JSON file as the suite's snapshot before running (docs/suites.md, shape and failures).",
        )
        snapshot.add_argument(
            "--clear-snapshot", action="store_true", help="Drop the suite's snapshot: reads go to the systems again."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        suites = self._suites(options["name"], options["all"])
        if options["k"] is not None and not 1 <= options["k"] <= MAX_K:
            raise CommandError(f"--k must be from 1 to {MAX_K}.")
        self._snapshot(suites, options)
        results, broken = [], []
        for suite in suites:
            try:
                run = suite_run_start(suite=suite, k=options["k"], actor=None)
            except SuiteError as exc:
                broken.append(f"{suite.name}: {exc}")
                continue
            run = suite_run_execute(run, record_snapshot=options["record_snapshot"])
            self._table(run)
            if run.status != RunStatus.DONE:
                broken.append(f"{suite.name}: the run failed: {run.error}")
                continue
            results.append(run_json(run))
        if options["json_out"]:
            payload: Any = results if options["all"] else (results[0] if results else None)
            Path(options["json_out"]).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        if broken:
            raise CommandError("; ".join(broken))

    def _snapshot(self, suites: list[RegressionSuite], options: dict[str, Any]) -> None:
        """Load or clear the snapshot (one suite only) before running: a bad file changes nothing and runs nothing."""
        if not (options["snapshot_file"] or options["clear_snapshot"]):
            return
        if options["all"]:
            raise CommandError("--snapshot-file and --clear-snapshot apply to one named suite, not --all.")
        snapshot = None
        if options["snapshot_file"]:
            try:
                snapshot = json.loads(Path(options["snapshot_file"]).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise CommandError(f"--snapshot-file: cannot read {options['snapshot_file']}: {exc}") from None
        try:
            suite_snapshot_save(suite=suites[0], snapshot=snapshot, actor=None)
        except SuiteError as exc:
            raise CommandError(f"--snapshot-file: {exc}") from None
        suites[0].refresh_from_db()

    def _suites(self, name: str | None, every: bool) -> list[RegressionSuite]:
        if bool(name) == every:
            raise CommandError("Name one suite, or pass --all.")
        if every:
            suites = list(RegressionSuite.objects.order_by("name"))
            if not suites:
                raise CommandError("There are no regression suites (seed_demo creates the demo suite).")
            return suites
        suite = RegressionSuite.objects.filter(name=name).first()
        if suite is None:
            known = ", ".join(RegressionSuite.objects.order_by("name").values_list("name", flat=True)) or "none"
            raise CommandError(f"No suite named {name!r}; known: {known}.")
        return [suite]

    def _table(self, run: SuiteRun) -> None:
        write = self.stdout.write
        rate = f"{run.pass_rate:.1%}" if run.pass_rate is not None else "-"
        hat = f"{run.pass_hat_k:.1%}" if run.pass_hat_k is not None else "-"
        write(f"Suite {run.suite.name}: {run.status}, k={run.k}, {(run.duration_ms or 0) / 1000:.1f} s")
        write(f"  cases {run.cases}  passed {run.passed}  pass rate {rate}  pass^{run.k} {hat}")
        if run.by_intent:
            write(f"  {'intent':<26} {'cases':>5} {'passed':>6} {'rate':>7}")
            for intent, figures in run.by_intent.items():
                shown = f"{figures['pass_rate']:.0%}" if figures.get("pass_rate") is not None else "-"
                write(f"  {intent or '(none)':<26} {figures['cases']:>5} {figures['passed']:>6} {shown:>7}")
        for failure in run.failures:
            where = f"{failure['case']} #{failure.get('attempt')} turn {failure['turn']}"
            write(f"  FAIL {where}: {failure['expectation']}")
            write(f"       got {failure['got']}")
        if run.error:
            write(f"  error: {run.error}")

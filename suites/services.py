"""Writes of the suites app: cases (created, imported), runs (queued, claimed, finished) and snapshots. Each is one
service with a required actor; governed changes are audited in the same transaction (STYLE.md rule 1)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.snapshot import snapshot_problems
from governance.audit import Actor, audit_record
from governance.changes import config_object_save
from governance.models import EventType
from suites.expectations import ScriptError, validate_case
from suites.models import MAX_K, CaseResult, Identity, RegressionCase, RegressionSuite, RunStatus, SuiteRun

# The Celery task's limits (suites/tasks.py): a suite of ~40 cases takes about a minute per attempt on a busy
# two-core machine; k up to MAX_K.
RUN_SOFT_TIME_LIMIT = 60 * 60
RUN_TIME_LIMIT = RUN_SOFT_TIME_LIMIT + 120
MAX_IMPORT_LINES = 2000


class SuiteError(Exception):
    """A suites operation was refused; the message says why, fit to show an admin."""


class SuiteRunActive(SuiteError):
    """The suite already has a queued or running run."""


# --- Cases ----------------------------------------------------------------------------------------------------------


@transaction.atomic
def regression_case_create(
    *,
    suite: RegressionSuite,
    name: str,
    identity: str,
    identity_email: str = "",
    identity_customer_id: str = "",
    turns: list[dict[str, Any]],
    intent: str = "",
    source_conversation_id: str = "",
    actor: Any,
) -> RegressionCase:
    """Create a case (validated: ``ScriptError`` says what is wrong); audited as a configuration change.

    The QA app calls it for "create a regression case from a failed review"."""
    data = {
        "name": name,
        "intent": intent,
        "identity": identity,
        "identity_email": identity_email,
        "identity_customer_id": identity_customer_id,
        "turns": turns,
        "source_conversation_id": source_conversation_id,
    }
    validate_case(data)
    if RegressionCase.objects.filter(suite=suite, name=name).exists():
        raise ScriptError(f"case {name!r}: the suite {suite.name} already has a case of that name")
    case = RegressionCase(suite=suite, created_by=_user(actor), **data)
    return config_object_save(actor=actor, instance=case, reason=f"regression case for suite {suite.name}")


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def cases_export(suite: RegressionSuite) -> str:
    """Return the suite's cases as JSON Lines: one case per line, the shape ``cases_import`` reads."""
    lines = [json.dumps(case.as_data(), ensure_ascii=False) for case in suite.cases.order_by("name")]
    return "\n".join(lines) + ("\n" if lines else "")


def parse_cases(text: str) -> list[dict[str, Any]]:
    """Parse and validate JSON Lines; raise ``ScriptError`` listing every bad line by number."""
    errors: list[str] = []
    cases: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    lines = text.splitlines()
    if len(lines) > MAX_IMPORT_LINES:
        raise ScriptError(f"at most {MAX_IMPORT_LINES} lines at once; got {len(lines)}")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            validate_case(data)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not JSON ({exc.msg})")
            continue
        except ScriptError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if data["name"] in names:
            errors.append(f"line {number}: case {data['name']!r} is also on line {names[data['name']]}")
            continue
        names[data["name"]] = number
        cases.append(data)
    if errors:
        raise ScriptError("; ".join(errors))
    if not cases:
        raise ScriptError("no cases: the file is empty")
    return cases


@transaction.atomic
def cases_import(*, suite: RegressionSuite, text: str, actor: Any) -> dict[str, int]:
    """Create or replace (by name) the suite's cases from JSON Lines; all or nothing. Return counts."""
    cases = parse_cases(text)
    existing = {case.name: case for case in suite.cases.select_for_update()}
    counts = {"created": 0, "updated": 0}
    for data in cases:
        case = existing.get(data["name"]) or RegressionCase(suite=suite, created_by=_user(actor))
        counts["updated" if case.pk else "created"] += 1
        for key, value in {"enabled": True, "identity": Identity.ANONYMOUS, **data}.items():
            setattr(case, key, value)
        config_object_save(actor=actor, instance=case, reason=f"JSON Lines import into suite {suite.name}")
    return counts


# --- Runs -----------------------------------------------------------------------------------------------------------


@transaction.atomic
def suite_run_create(*, suite: RegressionSuite, k: int | None = None, actor: Any) -> SuiteRun:
    """Queue a run of the suite (its task starts once committed); raise ``SuiteRunActive`` if one waits or runs."""
    run = suite_run_start(suite=suite, k=k, actor=actor)
    from suites.tasks import run_suite

    transaction.on_commit(lambda: run_suite.delay(run.pk))
    return run


def suite_run_start(*, suite: RegressionSuite, k: int | None = None, actor: Any) -> SuiteRun:
    """Create a run to execute in this process (the command), or for ``suite_run_create`` to queue: one suite has at
    most one queued or running run (a partial unique constraint), so a second is refused with ``SuiteRunActive``."""
    k = suite.k if k is None else k
    if not 1 <= k <= MAX_K:
        raise SuiteError(f"k must be from 1 to {MAX_K}; got {k}")
    suite_runs_abandon_stale(suite=suite)
    try:
        with transaction.atomic():
            return SuiteRun.objects.create(suite=suite, k=k, requested_by=_user(actor))
    except IntegrityError:
        raise SuiteRunActive(f"The suite {suite.name} is already queued or running.") from None


def suite_runs_abandon_stale(*, suite: RegressionSuite) -> int:
    """Fail runs of the suite that a dead process left queued or running past the task's hard time limit."""
    cutoff = timezone.now() - timedelta(seconds=RUN_TIME_LIMIT)
    return SuiteRun.objects.filter(
        suite=suite, status__in=[RunStatus.QUEUED, RunStatus.RUNNING], created_at__lt=cutoff
    ).update(status=RunStatus.FAILED, finished_at=timezone.now(), error="abandoned: no process finished it in time")


def suite_run_claim(*, run_id: int, cases: int) -> SuiteRun | None:
    """Move a queued run to running (a conditional update: a redelivered task finds it taken); None if not queued."""
    claimed = SuiteRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), cases=cases, cases_done=0
    )
    return SuiteRun.objects.select_related("suite").get(pk=run_id) if claimed == 1 else None


@transaction.atomic
def suite_run_finish(*, run: SuiteRun, summary: dict[str, Any] | None, config: dict[str, Any], error: str = "") -> None:
    """Store the run's outcome (``summary``: suites.runner.summarize) and audit it, in one transaction."""
    fields: dict[str, Any] = {"finished_at": timezone.now(), "config": config, "error": error[:4000]}
    if run.started_at is not None:
        fields["duration_ms"] = int((fields["finished_at"] - run.started_at).total_seconds() * 1000)
    if summary is not None and not error:
        fields.update(status=RunStatus.DONE, **summary)
    else:
        fields["status"] = RunStatus.FAILED
    SuiteRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    audit_record(
        actor=run.requested_by,
        event_type=EventType.SUITE_RUN,
        subject=run,
        decision=run.status,
        reason=error[:300] or f"suite {run.suite.name}: {run.passed} of {run.cases} cases passed (k={run.k})",
        data={**run.figures(), "duration_ms": run.duration_ms, "config": config},
    )


def case_result_record(*, run: SuiteRun, **values: Any) -> CaseResult:
    """Store one attempt's result (the run's own row: no audit; the run's finish is audited)."""
    return CaseResult.objects.create(run=run, **values)


@transaction.atomic
def suite_snapshot_save(*, suite: RegressionSuite, snapshot: dict[str, Any] | None, actor: Actor) -> None:
    """Store (or with None clear) the suite's recorded connector reads; audited (the values are not copied). A
    snapshot that could not be served is refused with what is wrong (``SuiteError``), and nothing changes."""
    problems = snapshot_problems(snapshot) if snapshot is not None else []
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise SuiteError(f"The snapshot cannot be used: {shown}.")
    RegressionSuite.objects.filter(pk=suite.pk).update(
        snapshot=snapshot, snapshot_recorded_at=timezone.now() if snapshot is not None else None
    )
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_CHANGED,
        subject=suite,
        fields=["snapshot"],
        reason="regression suite snapshot " + ("recorded" if snapshot is not None else "cleared"),
        data={"connectors": sorted(snapshot or {}), "reads": _reads(snapshot)},
    )


def _reads(snapshot: dict[str, Any] | None) -> int:
    return sum(len(part.get("objects", {})) + len(part.get("customers", {})) for part in (snapshot or {}).values())

"""Recorded snapshots: their shape is checked before they are stored, a file loads one, and a failure written into it
fails the read as a system that is down would."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from connectors.base import ConnectorError, NotFound
from connectors.snapshot import SnapshotReads, snapshot_problems
from governance.dry_run import DryRun
from suites.models import RegressionSuite
from suites.services import SuiteError, suite_snapshot_save

GOOD = {
    "demo_crm": {"customers": {"jo@example.com": [{"id": "C-1", "email": "jo@example.com", "name": "Jo"}]}},
    "demo_commerce": {"objects": {"order/BL-1": {"status": "shipped"}, "order/BL-2": {"failure": "timed out"}}},
}


class _System:
    """Stands in for an adapter: a snapshot never calls it while replaying."""

    def read_object(self, obj: str, object_id: str) -> dict[str, str]:
        raise AssertionError("a replayed read reached the system")


def test_a_well_formed_snapshot_has_no_problems() -> None:
    assert snapshot_problems(GOOD) == []


@pytest.mark.parametrize(
    ("snapshot", "problem"),
    [
        ([], "a snapshot is an object"),
        ({"demo_crm": {"orders": {}}}, 'demo_crm: an object with "objects" and/or "customers"'),
        ({"demo_commerce": {"objects": {"BL-1": {}}}}, 'the key is "<object>/<id>"'),
        ({"demo_commerce": {"objects": {"order/BL-1": "shipped"}}}, "a record (an object of field: value)"),
        ({"demo_commerce": {"objects": {"order/BL-1": {"failure": "x", "status": "y"}}}}, "a failure is"),
        ({"demo_crm": {"customers": {"jo@example.com": [{"email": "jo@example.com"}]}}}, 'a list of {"id"'),
        ({"demo_crm": {"customers": []}}, "demo_crm.customers: an object"),
    ],
)
def test_a_malformed_snapshot_is_named_where_it_is_wrong(snapshot: object, problem: str) -> None:
    problems = snapshot_problems(snapshot)
    assert problems and problem in problems[0]


def test_replayed_reads_come_from_the_snapshot_and_a_written_in_failure_fails_like_a_system() -> None:
    rehearsal = DryRun(snapshot=json.loads(json.dumps(GOOD)))
    commerce = SnapshotReads(_System(), "demo_commerce", rehearsal)
    assert commerce.read_object("order", "BL-1") == {"status": "shipped"}
    with pytest.raises(ConnectorError, match="timed out") as failed:
        commerce.read_object("order", "BL-2")
    assert not failed.value.permanent  # transient, as a timeout is
    with pytest.raises(NotFound):
        commerce.read_object("order", "BL-3")
    crm = SnapshotReads(_System(), "demo_crm", rehearsal)
    assert [ref.id for ref in crm.find_customers(email="JO@example.com")] == ["C-1"]


@pytest.mark.django_db
def test_storing_a_malformed_snapshot_is_refused_and_keeps_the_one_there() -> None:
    suite = RegressionSuite.objects.create(name="checkout")
    suite_snapshot_save(suite=suite, snapshot=GOOD, actor=None)
    with pytest.raises(SuiteError, match="The snapshot cannot be used: demo_crm"):
        suite_snapshot_save(suite=suite, snapshot={"demo_crm": "nope"}, actor=None)
    suite.refresh_from_db()
    assert suite.snapshot == GOOD


@pytest.mark.django_db
def test_run_suite_refuses_a_bad_snapshot_file_before_running_anything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    suite = RegressionSuite.objects.create(name="checkout")
    broken, malformed = tmp_path / "broken.json", tmp_path / "malformed.json"
    broken.write_text("{not json")
    malformed.write_text(json.dumps({"demo_crm": {"objects": {"BL-1": {}}}}))

    with pytest.raises(CommandError, match="cannot read"):
        call_command("run_suite", "checkout", "--snapshot-file", str(broken))
    with pytest.raises(CommandError, match='the key is "<object>/<id>"'):
        call_command("run_suite", "checkout", "--snapshot-file", str(malformed))
    with pytest.raises(CommandError, match="one named suite"):
        call_command("run_suite", "--all", "--clear-snapshot")

    suite.refresh_from_db()
    assert suite.snapshot is None and not suite.runs.exists()

"""The suites admin: Run queues a run (permissioned) that the Celery worker executes, progress as JSON, JSON Lines
import and export, read-only runs and results, lists without a query per row."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from governance.roles import sync_roles
from suites.models import CaseResult, RegressionSuite, RunStatus, SuiteRun
from suites.services import regression_case_create

GREETING = [{"say": "Hi there!", "expect": [{"type": "must_not_call_tool"}]}]


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    sync_roles()  # the suites permissions exist once the suites app is migrated
    client = Client()
    client.force_login(user)
    return client


def _suite(name: str = "smoke", cases: int = 1) -> RegressionSuite:
    suite = RegressionSuite.objects.create(name=name)
    for n in range(cases):
        regression_case_create(suite=suite, name=f"greeting {n}", identity="anonymous", turns=GREETING, actor=None)
    return suite


@pytest.mark.django_db
def test_the_run_action_queues_a_run_once_and_only_for_those_allowed_to_run(  # type: ignore[no-untyped-def]
    support_manager, qa_reviewer, django_capture_on_commit_callbacks
) -> None:
    suite = _suite()
    changelist = reverse("admin:suites_regressionsuite_changelist")
    form = {"action": "run_suites", "_selected_action": [suite.pk]}

    with django_capture_on_commit_callbacks() as queued:
        _client(support_manager).post(changelist, form)
    assert SuiteRun.objects.get().status == RunStatus.QUEUED and len(queued) == 1
    # A second run while one waits is refused with a message, not a second row.
    response = _client(support_manager).post(changelist, form, follow=True)
    assert "already queued or running" in response.content.decode() and SuiteRun.objects.count() == 1
    # A QA reviewer sees suites but has no Run.
    SuiteRun.objects.all().delete()
    assert _client(qa_reviewer).post(changelist, form).status_code in (200, 302)
    assert not SuiteRun.objects.exists()
    run_url = reverse("admin:suites_regressionsuite_run", args=[suite.pk])
    _client(qa_reviewer).post(run_url)
    assert not SuiteRun.objects.exists()
    assert _client(support_manager).get(run_url).status_code == 405  # a run starts by POST only


@pytest.mark.django_db
def test_export_downloads_json_lines_and_a_bad_upload_names_its_lines(support_manager) -> None:  # type: ignore[no-untyped-def]
    suite = _suite(cases=2)
    client = _client(support_manager)
    exported = client.get(reverse("admin:suites_regressionsuite_export", args=[suite.pk]))
    assert exported["Content-Disposition"] == 'attachment; filename="smoke-cases.jsonl"'
    lines = exported.content.decode().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["greeting 0", "greeting 1"]

    other = RegressionSuite.objects.create(name="copy")
    url = reverse("admin:suites_regressionsuite_import", args=[other.pk])
    bad = io.BytesIO((lines[0] + "\n{oops\n").encode())
    bad.name = "cases.jsonl"
    response = client.post(url, {"file": bad})
    assert response.status_code == 400 and "line 2: not JSON" in response.content.decode()
    assert not other.cases.exists()
    good = io.BytesIO(exported.content)
    good.name = "cases.jsonl"
    assert client.post(url, {"file": good}).status_code == 302
    assert other.cases.count() == 2


@pytest.mark.django_db
def test_run_and_result_lists_take_a_fixed_number_of_queries(support_manager, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    client = _client(support_manager)
    for name in ("a", "b", "c"):
        run = SuiteRun.objects.create(suite=_suite(name), status=RunStatus.DONE, cases=1, passed=1)
        CaseResult.objects.create(run=run, case_name="greeting 0", passed=True, turns=[])
    for model in ("regressionsuite", "regressioncase", "suiterun", "caseresult"):
        client.get(reverse(f"admin:suites_{model}_changelist"))  # warm the session and permission caches
        with django_assert_max_num_queries(12):
            assert client.get(reverse(f"admin:suites_{model}_changelist")).status_code == 200
    run = SuiteRun.objects.first()
    assert client.get(reverse("admin:suites_suiterun_change", args=[run.pk])).status_code == 200
    result = CaseResult.objects.first()
    assert client.get(reverse("admin:suites_caseresult_change", args=[result.pk])).status_code == 200
    progress = client.get(reverse("admin:suites_suiterun_progress", args=[run.pk])).json()
    assert progress == {
        "status": "done",
        "finished": True,
        "cases_done": 0,
        "cases": 1,
        "passed": 1,
        "pass_rate": None,
        "pass_hat_k": None,
    }
    assert client.get(reverse("admin:suites_suiterun_progress", args=[99999])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_run_in_admin_is_executed_by_the_celery_worker(demo_company, celery_worker_process, support_manager) -> None:  # type: ignore[no-untyped-def]
    suite = _suite(cases=2)
    response = _client(support_manager).post(reverse("admin:suites_regressionsuite_run", args=[suite.pk]))
    run = SuiteRun.objects.get()
    assert response.url == reverse("admin:suites_suiterun_change", args=[run.pk])

    progress_url = reverse("admin:suites_suiterun_progress", args=[run.pk])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _client(support_manager).get(progress_url).json()["finished"]:
        time.sleep(0.5)
    run.refresh_from_db()
    assert (run.status, run.cases_done, run.cases, run.passed) == (RunStatus.DONE, 2, 2, 2), run.error

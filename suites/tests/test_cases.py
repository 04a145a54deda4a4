"""Cases: the audited create service the QA app calls, and JSON Lines import and export (all or nothing)."""

from __future__ import annotations

import json

import pytest

from governance.models import AuditRecord, EventType
from suites.expectations import ScriptError
from suites.models import RegressionCase, RegressionSuite
from suites.services import cases_export, cases_import, regression_case_create

pytestmark = pytest.mark.django_db

TURNS = [{"say": "Where is my order BL-10042?", "expect": [{"type": "must_ask_to_verify"}]}]


@pytest.fixture
def suite() -> RegressionSuite:
    return RegressionSuite.objects.create(name="checkout")


def _line(name: str, **changes: object) -> str:
    return json.dumps({"name": name, "identity": "anonymous", "turns": TURNS, **changes})


def test_a_case_created_from_a_review_is_audited_with_who_made_it(suite, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    case = regression_case_create(
        suite=suite,
        name="order status asks to verify",
        identity="email_verified",
        identity_email="mara.lindqvist@example.com",
        turns=TURNS,
        intent="where_is_my_order",
        source_conversation_id="0b6f7c1e-2f0a-4c55-9d59-5d1f0e7a9b11",
        actor=qa_reviewer,
    )
    assert case.created_by == qa_reviewer and case.source_conversation_id.startswith("0b6f")
    record = AuditRecord.objects.get(subject_type="suites.regressioncase", subject_id=str(case.pk))
    assert record.event_type == EventType.CONFIG_CREATED and record.actor_user_id == qa_reviewer.pk


def test_a_malformed_case_or_a_second_of_the_same_name_is_refused_and_nothing_is_stored(suite) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScriptError, match="case 'x', turn 1: unknown expectation type 'must_smile'"):
        turns = [{"say": "hi", "expect": [{"type": "must_smile"}]}]
        regression_case_create(suite=suite, name="x", identity="anonymous", turns=turns, actor=None)
    regression_case_create(suite=suite, name="x", identity="anonymous", turns=TURNS, actor=None)
    with pytest.raises(ScriptError, match="already has a case of that name"):
        regression_case_create(suite=suite, name="x", identity="anonymous", turns=TURNS, actor=None)
    assert RegressionCase.objects.count() == 1


def test_exported_cases_import_into_another_suite_unchanged(suite, support_admin) -> None:  # type: ignore[no-untyped-def]
    regression_case_create(suite=suite, name="b", identity="anonymous", turns=TURNS, intent="greeting", actor=None)
    regression_case_create(
        suite=suite,
        name="a",
        identity="signed_token",
        identity_customer_id="C-1001",
        identity_email="mara.lindqvist@example.com",
        turns=TURNS,
        actor=None,
    )
    exported = cases_export(suite)
    assert [json.loads(line)["name"] for line in exported.splitlines()] == ["a", "b"]

    other = RegressionSuite.objects.create(name="copy")
    assert cases_import(suite=other, text=exported, actor=support_admin) == {"created": 2, "updated": 0}
    assert cases_export(other) == exported
    # Importing again replaces by name.
    changed = exported.replace('"intent": "greeting"', '"intent": "thanks"')
    assert cases_import(suite=other, text=changed, actor=support_admin) == {"created": 0, "updated": 2}
    assert other.cases.get(name="b").intent == "thanks"


def test_a_bad_file_is_answered_with_its_line_numbers_and_nothing_is_imported(suite) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join(
        [
            _line("fine"),
            "{not json",
            _line("no turns", turns=[]),
            "",
            _line("fine"),
            _line("bad", identity="email_verified"),
        ]
    )
    with pytest.raises(ScriptError) as refused:
        cases_import(suite=suite, text=text, actor=None)
    message = str(refused.value)
    assert "line 2: not JSON" in message
    assert "line 3: case 'no turns': turns must be a non-empty list" in message
    assert "line 5: case 'fine' is also on line 1" in message
    assert "line 6: case 'bad': identity email_verified needs identity_email" in message
    assert not RegressionCase.objects.exists()
    with pytest.raises(ScriptError, match="the file is empty"):
        cases_import(suite=suite, text="\n\n", actor=None)

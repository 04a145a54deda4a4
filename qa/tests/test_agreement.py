"""Cohen's kappa (pure) and the score arithmetic: no database."""

from __future__ import annotations

import pytest

from qa.agreement import cohen_kappa
from qa.scoring import ConversationFacts, Line, applies, reviews_agree, score_lines


def test_kappa_of_no_items_is_undefined() -> None:
    result = cohen_kappa([])
    assert (result.kappa, result.n, result.observed) == (None, 0, None)


def test_perfect_agreement_over_two_categories_is_one() -> None:
    result = cohen_kappa([("pass", "pass"), ("fail", "fail"), ("pass", "pass")])
    assert result.kappa == 1.0 and not result.degenerate and result.observed == 1.0


def test_agreement_on_a_single_category_is_reported_as_one_and_marked_degenerate() -> None:
    result = cohen_kappa([("pass", "pass")] * 4)
    assert (result.kappa, result.degenerate, result.n) == (1.0, True, 4)


def test_a_textbook_example_matches_cohens_formula() -> None:
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 → p_o = 0.7, p_e = 0.5 → kappa 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs).kappa == pytest.approx(0.4)


def test_systematic_disagreement_is_below_zero() -> None:
    assert cohen_kappa([("pass", "fail"), ("fail", "pass")]).kappa == pytest.approx(-1.0)


def test_one_rater_constant_and_the_other_not_gives_zero() -> None:
    assert cohen_kappa([("pass", "pass"), ("pass", "fail")]).kappa == pytest.approx(0.0)


def test_the_score_is_the_weighted_share_of_applicable_passes() -> None:
    lines = [Line(3, False, "pass"), Line(1, False, "fail"), Line(5, False, "na")]
    result = score_lines(lines, mark=70)
    assert (result.score, result.passed) == (75.0, True)
    assert score_lines(lines, mark=80).passed is False


def test_a_failed_auto_fail_criterion_fails_whatever_the_score() -> None:
    result = score_lines([Line(10, False, "pass"), Line(1, True, "fail")], mark=80)
    assert result.score == pytest.approx(90.91) and result.passed is False and result.auto_failed


def test_nothing_applicable_means_no_score_and_a_pass() -> None:
    result = score_lines([Line(1, False, "na")], mark=80)
    assert (result.score, result.passed) == (None, True)


def test_which_criteria_apply_follows_the_conversation() -> None:
    escalated = ConversationFacts(escalated=True, with_actions=False, knowledge_answers=True)
    assert applies("escalated", escalated) and not applies("not_escalated", escalated)
    assert applies("knowledge", escalated) and not applies("with_actions", escalated) and applies("all", escalated)


def test_two_reviews_agree_only_on_the_verdict_and_every_label() -> None:
    assert reviews_agree(True, (False, False, True), True, (False, False, True))
    assert not reviews_agree(True, (False, False, True), False, (False, False, True))
    assert not reviews_agree(True, (False, False, True), True, (True, False, True))

"""Agreement between two reviewers: Cohen's kappa, as a pure function.

kappa = (p_o - p_e) / (1 - p_e), where p_o is the share of items both raters put in the same category and p_e the
agreement expected by chance from each rater's own category shares (Cohen 1960).

Degenerate cases, defined here and in docs/qa.md:

- no items: kappa is ``None`` (nothing to measure);
- p_e = 1: both raters put every item in one and the same category. Then p_o = 1 as well and the formula is 0/0; we
  report kappa = 1.0 (perfect, if uninformative, agreement) and say so with ``degenerate=True``, so the calibration
  page can show "all agreed on one value" instead of a number that looks earned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Agreement:
    kappa: float | None
    n: int
    observed: float | None  # p_o: the raw share of items the two agreed on
    degenerate: bool = False


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> Agreement:
    """Return Cohen's kappa over ``pairs`` (rater A's category, rater B's category), one pair per item."""
    n = len(pairs)
    if n == 0:
        return Agreement(kappa=None, n=0, observed=None)
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second.get(c, 0) for c in first) / (n * n)
    if expected >= 1.0:
        return Agreement(kappa=1.0, n=n, observed=observed, degenerate=True)
    return Agreement(kappa=round((observed - expected) / (1.0 - expected), 4), n=n, observed=round(observed, 4))

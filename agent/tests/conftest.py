"""Fixtures of the agent's tests."""

from __future__ import annotations

import pytest
from django.utils import timezone

from agent.tests.clock import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock

"""Dry run: while a test conversation's turn runs (a regression suite, suites/), nothing leaves Steward.

The turn code is the live one — responder, governance, escalation, audit — and a few chokepoints ask ``current()``:

- ``connectors.gateway.idempotent`` (every outside write passes it) records the would-be write here and returns a
  result marked ``{"dry_run": True, ...}`` instead of calling the system; reads still go to the systems, or, when the
  suite has a recorded snapshot, to the snapshot (``connectors.snapshot.SnapshotReads``, wrapped around the adapter
  by ``adapter_for``);
- ``agent.tools.run_action`` records "would request approval" instead of creating an ApprovalRequest;
- ``agent.identity.email_challenge_start`` records the one-time code instead of e-mailing it (the runner types it);
- ``knowledge.retrieval.search`` records no FailedRetrieval;
- ``governance.authorization.decision_stage`` gives ``stage`` when set (a suite rehearsing the stage a gate opens):
  ``authorize``, the turn's capability checks and the handoff's ticket all decide at it.

The state is a ``contextvars.ContextVar``: it follows the thread (and asyncio task) that set it and is never shared
between two turns running at once. ``agent.turn.run_turn`` enters one itself for every test conversation, so a
worker that picks up a test conversation's turn can never write outside either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DryRun:
    """What a dry run decided it would have done, and how it reads.

    ``stage``: decide actions as if the channel were at this rollout stage (None: its current stage).
    ``snapshot``: ``{connector key: {"objects": {"<object>/<id>": raw}, "customers": {"<email>": [refs]}}}`` — with
    ``recording`` False reads are served from it (a read it lacks is "not found"); with ``recording`` True reads go
    to the systems and what they return is stored in it.
    """

    stage: int | None = None
    snapshot: dict[str, Any] | None = None
    recording: bool = False
    writes: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    codes: list[dict[str, str]] = field(default_factory=list)

    def write(self, *, connector: str, operation: str, idempotency_key: str, **details: Any) -> dict[str, Any]:
        """Record an outside write that was not made; return the stand-in result its caller gets."""
        entry = {"connector": connector, "operation": operation, "idempotency_key": idempotency_key, **details}
        self.writes.append(entry)
        return {"dry_run": True, **entry}

    def approval(self, *, action: str, arguments: dict[str, Any], decision: str, reason: str) -> None:
        """Record an approval request that was not put in front of a person."""
        self.approvals.append({"action": action, "arguments": arguments, "decision": decision, "reason": reason})

    def code_sent(self, email: str, code: str) -> None:
        """Record a one-time code that was not e-mailed."""
        self.codes.append({"email": email, "code": code})

    @property
    def last_code(self) -> str:
        return self.codes[-1]["code"] if self.codes else ""

    def would_execute(self) -> dict[str, list[dict[str, Any]]]:
        """The writes and approvals recorded so far (never the codes: a result is shown in admin)."""
        return {"writes": list(self.writes), "approvals": list(self.approvals)}


_current: ContextVar[DryRun | None] = ContextVar("steward_dry_run", default=None)


def current() -> DryRun | None:
    """Return the active dry run, or None on the live path."""
    return _current.get()


@contextmanager
def dry_run(recorder: DryRun) -> Iterator[DryRun]:
    """Run the block in dry run, recording into ``recorder``."""
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)

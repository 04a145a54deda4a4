"""Running a regression suite on the live turn code (docs/suites.md).

Each case, each attempt: a new conversation marked ``is_test`` on the suite's channel, the case's starting identity
set up through the identity services, then every scripted customer message stored with the real message service
and answered by ``agent.turn.run_turn`` in this process, inside a dry run (governance/dry_run.py): the responder,
governance, escalation and audit run as in production; outside writes, approval requests and e-mails do not happen
and are recorded instead. Each turn's reply, trace and the conversation after it are judged by the turn's
expectations (suites/expectations.py).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Max

from agent import identity
from agent.messages import conversation_start, message_store_customer
from agent.models import Author, Conversation, Message, PromptVersion, TurnTrace
from agent.responders.router import INTENTS_FINGERPRINT_SQL
from agent.turn import link_customer, run_turn
from governance.dry_run import DryRun, dry_run
from governance.gates import channel_stage
from knowledge.models import Audience, Chunk, DocumentStatus, IngestionRun, KnowledgeSource
from suites.expectations import Observation, describe, evaluate
from suites.models import Identity, RegressionCase, RegressionSuite, SuiteRun
from suites.services import (
    RUN_SOFT_TIME_LIMIT,
    case_result_record,
    suite_run_claim,
    suite_run_finish,
    suite_snapshot_save,
)

logger = logging.getLogger(__name__)

CODE_PLACEHOLDER = "{code}"
TOKEN_TTL_SECONDS = 600


class CaseSetupError(Exception):
    """The case's starting identity could not be set up."""


@dataclass
class Attempt:
    """One attempt of one case, judged."""

    case: str
    intent: str
    attempt: int
    passed: bool
    turns: list[dict[str, Any]] = field(default_factory=list)
    would_execute: dict[str, Any] = field(default_factory=dict)
    conversation_id: str = ""
    duration_ms: int = 0
    error: str = ""
    prompt_versions: set[str] = field(default_factory=set)


# --- The run --------------------------------------------------------------------------------------------------------


def suite_run_execute(run: SuiteRun, *, record_snapshot: bool = False) -> SuiteRun:
    """Claim a queued run, run every enabled case ``run.k`` times, store the results and the summary (audited).

    A run someone else claimed is returned as it is. ``record_snapshot``: read from the systems and store what they
    returned on the suite as its snapshot (replayed by later runs instead of the systems).
    """
    suite = run.suite
    cases = list(suite.cases.filter(enabled=True).order_by("name"))
    claimed = suite_run_claim(run_id=run.pk, cases=len(cases))
    if claimed is None:
        return SuiteRun.objects.get(pk=run.pk)
    stage = suite.stage or channel_stage(suite.channel)
    config = run_config(suite, stage)
    snapshot = _snapshot_for(suite, record_snapshot)
    attempts: list[Attempt] = []
    deadline = time.monotonic() + RUN_SOFT_TIME_LIMIT - 60
    try:
        for case in cases:
            if time.monotonic() > deadline:
                # Stop in good order before the task's time limit (a turn would swallow Celery's soft limit).
                raise TimeoutError(f"stopped after {RUN_SOFT_TIME_LIMIT - 60} s; run fewer cases or a smaller k")
            for number in range(1, claimed.k + 1):
                recorder = DryRun(stage=stage, snapshot=snapshot, recording=record_snapshot)
                attempt = case_execute(case, attempt=number, suite=suite, recorder=recorder)
                attempts.append(attempt)
                case_result_record(
                    run=claimed,
                    case=case,
                    case_name=case.name,
                    intent=case.intent,
                    attempt=number,
                    passed=attempt.passed,
                    turns=attempt.turns,
                    would_execute=attempt.would_execute,
                    conversation_id=attempt.conversation_id,
                    duration_ms=attempt.duration_ms,
                    error=attempt.error,
                )
            SuiteRun.objects.filter(pk=claimed.pk).update(cases_done=F("cases_done") + 1)
    except BaseException as exc:  # a time limit or a broken database: the run is marked failed, then re-raised
        suite_run_finish(run=claimed, summary=None, config=config, error=f"{type(exc).__name__}: {exc}")
        raise
    config["prompt_versions"] = sorted({v for a in attempts for v in a.prompt_versions})
    suite_run_finish(run=claimed, summary=summarize(attempts), config=config)
    if record_snapshot:
        suite_snapshot_save(suite=suite, snapshot=snapshot, actor=claimed.requested_by)
    return SuiteRun.objects.select_related("suite").get(pk=claimed.pk)


def _snapshot_for(suite: RegressionSuite, record: bool) -> dict[str, Any] | None:
    if record:
        return {}
    # A copy: the cases share it, and nothing of a run may change the suite's stored one.
    return copy.deepcopy(suite.snapshot) if suite.snapshot else None


def run_config(suite: RegressionSuite, stage: int) -> dict[str, Any]:
    """What configuration a run ran on: intents fingerprint, prompt version, responder, knowledge index, stage."""
    with connection.cursor() as cursor:
        cursor.execute(INTENTS_FINGERPRINT_SQL)
        fingerprint = cursor.fetchone()[0]
    prompt = PromptVersion.objects.filter(active=True).order_by("name").first()
    newest = IngestionRun.objects.filter(finished_at__isnull=False).aggregate(id=Max("id"), at=Max("finished_at"))
    return {
        "channel": suite.channel,
        "stage": stage,
        "stage_from": "suite" if suite.stage else "channel",
        "responder": settings.STEWARD_RESPONDER,
        "intents_fingerprint": fingerprint,
        "prompt_version": f"{prompt.name} v{prompt.version}" if prompt else "",
        "knowledge": {
            "ready_chunks": Chunk.objects.filter(document__status=DocumentStatus.READY).count(),
            "newest_ingestion_run": newest["id"],
            "newest_ingestion_at": newest["at"].isoformat() if newest["at"] else None,
        },
        "snapshot": bool(suite.snapshot),
    }


def summarize(attempts: list[Attempt]) -> dict[str, Any]:
    """Return the run's figures from its attempts (pure).

    ``pass_rate``: attempts passed ÷ attempts (every case × k); ``passed``: cases whose every attempt passed;
    ``pass_hat_k``: passed ÷ cases. ``by_intent``: the same per case intent ("" when the case names none).
    """
    by_case: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_case[attempt.case].append(attempt)
    intents: dict[str, list[list[Attempt]]] = defaultdict(list)
    for runs in by_case.values():
        intents[runs[0].intent].append(runs)
    figures = _figures(list(by_case.values()))
    return {
        "cases": figures["cases"],
        "passed": figures["passed"],
        "pass_rate": figures["pass_rate"],
        "pass_hat_k": figures["pass_hat_k"],
        "by_intent": {intent: _figures(runs) for intent, runs in sorted(intents.items())},
        "failures": [{"case": a.case, "attempt": a.attempt, **f} for a in attempts if not a.passed for f in _failed(a)],
    }


def _figures(cases: list[list[Attempt]]) -> dict[str, Any]:
    attempts = [a for runs in cases for a in runs]
    passed = sum(all(a.passed for a in runs) for runs in cases)
    return {
        "cases": len(cases),
        "passed": passed,
        "pass_rate": round(sum(a.passed for a in attempts) / len(attempts), 4) if attempts else None,
        "pass_hat_k": round(passed / len(cases), 4) if cases else None,
    }


def _failed(attempt: Attempt) -> list[dict[str, Any]]:
    if attempt.error:
        return [{"turn": None, "expectation": "the case ran", "got": attempt.error}]
    return [
        {"turn": number, "expectation": describe(result["expectation"]), "got": result["got"]}
        for number, turn in enumerate(attempt.turns, start=1)
        for result in turn["expectations"]
        if not result["passed"]
    ]


# --- One case -------------------------------------------------------------------------------------------------------


def case_execute(case: RegressionCase, *, attempt: int, suite: RegressionSuite, recorder: DryRun) -> Attempt:
    """Run one attempt of a case in a dry run and judge it."""
    started = time.perf_counter()
    outcome = Attempt(case=case.name, intent=case.intent, attempt=attempt, passed=False)
    with dry_run(recorder):
        conversation = conversation_start(channel=suite.channel, is_test=True)
        outcome.conversation_id = str(conversation.pk)
        try:
            _identify(conversation, case, recorder)
            outcome.turns = _play(conversation, case.turns, recorder, outcome)
        # One case's failure (a connector down, a bad identity) must not stop the others: it fails, with the reason.
        except Exception as exc:  # noqa: BLE001
            logger.exception("regression case %s failed to run", case.name)
            outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
    outcome.would_execute = _would_execute(recorder, outcome.turns)
    outcome.passed = not outcome.error and all(
        result["passed"] for turn in outcome.turns for result in turn["expectations"]
    )
    outcome.duration_ms = int((time.perf_counter() - started) * 1000)
    return outcome


def _identify(conversation: Conversation, case: RegressionCase, recorder: DryRun) -> None:
    """Set the case's starting identity through the identity services (as a live conversation would get it)."""
    if case.identity == Identity.EMAIL_VERIFIED:
        identity.email_challenge_start(conversation=conversation, email=case.identity_email)
        code = recorder.codes.pop()["code"]  # typed by the runner; a later {code} is a code the script asks for
        if not identity.email_challenge_verify(conversation=conversation, code=code):
            raise CaseSetupError("the one-time code was refused")
        conversation.refresh_from_db()
        link_customer(conversation)  # the CRM lookup the live turn makes after a right code
        wanted = case.identity_customer_id
        if wanted and conversation.customer_id != wanted:
            raise CaseSetupError(
                f"{case.identity_email} is customer {conversation.customer_id or 'unknown'} in the CRM, not {wanted}"
            )
    elif case.identity == Identity.SIGNED_TOKEN:
        secret = identity.identity_secret(
            purpose="regression suite: sign a test customer's token", conversation_id=str(conversation.pk)
        )
        token = identity.identity_token_issue(
            case.identity_customer_id, case.identity_email, secret=secret, ttl_seconds=TOKEN_TTL_SECONDS
        )
        verified = identity.identity_from_token(token, conversation_id=str(conversation.pk))
        identity.conversation_identify(conversation=conversation, identity=verified)


def _play(
    conversation: Conversation, turns: list[dict[str, Any]], recorder: DryRun, outcome: Attempt
) -> list[dict[str, Any]]:
    """Say each scripted message, run the turn, judge it; stop sending once the conversation is handed over."""
    played: list[dict[str, Any]] = []
    handed_over_at = 0
    last = Observation()
    for number, turn in enumerate(turns, start=1):
        expect = turn.get("expect", [])
        if handed_over_at:
            # Not sent: the AI no longer answers. Only expectations that the handover holds can still pass.
            only_escalation = all(e["type"] == "must_escalate" for e in expect)
            played.append(_skipped(turn, expect, last, handed_over_at, only_escalation))
            continue
        text = turn["say"].replace(CODE_PLACEHOLDER, recorder.last_code or "(no code was sent)")
        message, _ = message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text=text)
        run_turn(str(conversation.pk))
        last, prompt_versions = observe(conversation.pk, message.seq)
        outcome.prompt_versions |= prompt_versions
        played.append(
            {
                "say": text,
                "reply": last.reply,
                "skipped": False,
                "tool_calls": [
                    {k: c.get(k) for k in ("action", "arguments", "decision", "reason")} for c in last.tool_calls
                ],
                "expectations": [_judged(e, last) for e in expect],
            }
        )
        if last.owner != "agent":
            handed_over_at = number
    return played


def _judged(expectation: dict[str, Any], observation: Observation) -> dict[str, Any]:
    result = evaluate(expectation, observation)
    return {"expectation": expectation, "passed": result.passed, "got": result.got}


def _skipped(
    turn: dict[str, Any], expect: list[dict[str, Any]], last: Observation, at: int, judge: bool
) -> dict[str, Any]:
    note = f"not sent: the conversation was handed over at turn {at}"
    return {
        "say": turn["say"],
        "reply": "",
        "skipped": True,
        "expectations": [
            _judged(e, last) if judge else {"expectation": e, "passed": False, "got": note} for e in expect
        ],
    }


def observe(conversation_id: Any, seq: int) -> tuple[Observation, set[str]]:
    """Return what the turn that answered customer message ``seq`` produced, and the prompt versions it ran."""
    conversation = Conversation.objects.get(pk=conversation_id)
    replies = list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=seq, author=Author.AGENT).order_by("seq")
    )
    traces = list(
        TurnTrace.objects.filter(conversation_id=conversation_id, message_seqs__contains=[seq]).order_by("created_at")
    )
    citations = [dict(c) for m in replies for c in m.citations]
    internal = set(
        KnowledgeSource.objects.filter(
            pk__in=[c["source_id"] for c in citations if c.get("source_id")], audience=Audience.INTERNAL
        ).values_list("pk", flat=True)
    )
    for citation in citations:
        citation["internal"] = citation.get("source_id") in internal
    observation = Observation(
        reply="\n".join(m.text for m in replies),
        citations=citations,
        intent=next((t.intent for t in reversed(traces) if t.intent), ""),
        retrieved=[hit for t in traces for hit in t.retrieved],
        tool_calls=[call for t in traces for call in t.tool_calls],
        owner=conversation.owner,
        escalation_reason=conversation.escalation_reason,
        verification=conversation.verification,
        pending_slot=str(((conversation.context or {}).get("pending") or {}).get("slot") or ""),
    )
    return observation, {t.prompt_version for t in traces if t.prompt_version}


def _would_execute(recorder: DryRun, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The recorder's writes and approvals; a write an agent action made carries that action's arguments."""
    recorded = recorder.would_execute()
    calls = {c["action"]: c.get("arguments") for t in turns for c in t.get("tool_calls", [])}
    for write in recorded["writes"]:
        if write["operation"] in calls:
            write["arguments"] = calls[write["operation"]]
    return recorded

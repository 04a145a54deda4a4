"""The readiness report: is this deployment's configuration ready for customers? Computed live, one line per check.

Each check is a function in the plain dict registry ``READINESS_CHECKS`` returning ``ReadinessLine`` s. Later issues
replace their placeholder under the same key (the report keeps its order) or add their own, from their app's
``ready()``::

    READINESS_CHECKS["intents"] = intents_readiness

Registered so: ``knowledge_sources`` (knowledge.readiness), ``helpdesk`` (connectors.readiness), ``intents``
(agent.readiness). The placeholders stay in ``PLACEHOLDERS``: an app that is not installed leaves its line "not
configured". ``problems_line``, ``listing`` and ``admin_url`` are for the apps' checks too.

A line is ``pass``, ``fail`` (with what is wrong and a link to the admin page that fixes it) or ``not_configured``
(the part of Steward that would check it has not landed yet). Checks read configuration, never secret values.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db.models import Model
from django.urls import NoReverseMatch, reverse

from governance.audit import GENESIS_HASH, HASHED_FIELDS, record_hash
from governance.gates import evaluate_criteria, metric_key
from governance.metrics import METRIC_PROVIDERS, METRICS, MetricQuery, metric_read
from governance.models import (
    ActionPolicy,
    AuditRecord,
    ChannelRollout,
    DataClass,
    EscalationRule,
    EscalationTrigger,
    FieldMapping,
    GateCriterion,
    RetentionRule,
    RolloutGate,
    SecretKind,
    SecretReference,
    ValueRule,
)
from governance.models.gates import CriterionKind
from governance.models.policies import ActionTier
from governance.roles import Role

logger = logging.getLogger(__name__)

# How many of the newest audit records the report re-hashes; `manage.py audit_verify` checks the whole chain.
AUDIT_QUICK_CHECK = 1000
# A first release stays narrow: this many channels at most, none beyond this stage.
FIRST_RELEASE_MAX_CHANNELS = 2
FIRST_RELEASE_MAX_STAGE = 3


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class ReadinessLine:
    section: str
    title: str
    status: Status
    detail: str
    fix_url: str = ""


ReadinessCheck = Callable[[], Iterable[ReadinessLine]]

READINESS_CHECKS: dict[str, ReadinessCheck] = {}


def readiness_report() -> list[ReadinessLine]:
    """Run every registered check, in registration order."""
    lines: list[ReadinessLine] = []
    for name, check in READINESS_CHECKS.items():
        try:
            lines.extend(check())
        # A check is any app's code behind a plug-in boundary: one that breaks shows as a failed line (and is logged
        # with its traceback) instead of taking the whole report down.
        except Exception as exc:  # noqa: BLE001
            logger.exception("readiness check %s failed", name)
            lines.append(ReadinessLine("Report", f"Check {name!r}", Status.FAIL, f"The check itself failed: {exc}"))
    return lines


def _register(name: str) -> Callable[[ReadinessCheck], ReadinessCheck]:
    def register(check: ReadinessCheck) -> ReadinessCheck:
        READINESS_CHECKS[name] = check
        return check

    return register


def admin_url(model: type[Model], ids: Sequence[object] = ()) -> str:
    """Return the admin list of ``model`` (narrowed to ``ids``), or "" when the model has no admin page yet."""
    opts = model._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return ""
    return f"{url}?id__in={','.join(str(i) for i in ids)}" if ids else url


def listing(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def problems_line(section: str, title: str, problems: dict[object, str], ok: str, model: type[Model]) -> ReadinessLine:
    """A pass line, or a fail line naming the failing rows ({pk: "what: why"}) and linking to exactly them."""
    if not problems:
        return ReadinessLine(section, title, Status.PASS, ok, admin_url(model))
    detail = listing(list(problems.values()))
    return ReadinessLine(section, title, Status.FAIL, detail, admin_url(model, list(problems)))


# The lines of apps that register their own check, until they do; they hold the report's order for them.
PLACEHOLDERS: dict[str, ReadinessCheck] = {}


def _not_yet(name: str, section: str, title: str, detail: str) -> None:
    def check() -> list[ReadinessLine]:
        return [ReadinessLine(section, title, Status.NOT_CONFIGURED, detail)]

    READINESS_CHECKS[name] = PLACEHOLDERS[name] = check


_not_yet(
    "intents", "Agent", "Intents are ranked", "Intents arrive with the agent; until then there is nothing to rank."
)


@_register("field_mappings")
def _field_mappings() -> list[ReadinessLine]:
    section = "Data access"
    mappings = list(FieldMapping.objects.filter(enabled=True).select_related("owner", "fallback_owner"))
    owners: dict[object, str] = {}
    scopes: dict[object, str] = {}
    for m in mappings:
        if not m.owner.is_active:
            owners[m.pk] = f"{m}: the owner's account is inactive"
        elif m.fallback_owner is None:
            owners[m.pk] = f"{m}: no fallback owner"
        elif not m.fallback_owner.is_active:
            owners[m.pk] = f"{m}: the fallback owner's account is inactive"
        if not m.read_roles:
            scopes[m.pk] = f"{m}: nobody may read it"
        elif m.write_roles and m.value_rule == ValueRule.ANY:
            scopes[m.pk] = f"{m}: writable with any value; choose which values a write may set"
        elif Role.CUSTOMER in m.write_roles and m.write_min_verification < m.read_min_verification:
            scopes[m.pk] = f"{m}: a customer could change it with less verification than reading it needs"
    none = "No field mapping is enabled: the agent reads nothing from outside systems."
    return [
        problems_line(
            section,
            "Every enabled field mapping has an owner and a fallback owner",
            owners,
            f"{len(mappings)} enabled mappings, each with active owners." if mappings else none,
            FieldMapping,
        ),
        problems_line(
            section,
            "Every enabled field mapping has a read scope, a write scope (or is read-only) and a verification rule",
            scopes,
            f"{len(mappings)} enabled mappings; writable ones limit their values." if mappings else none,
            FieldMapping,
        ),
    ]


_not_yet(
    "helpdesk",
    "Handoff",
    "Helpdesk ticket fields, routing and transcript storage",
    "The helpdesk connector arrives with the connectors; until then nothing is handed over.",
)
_not_yet(
    "knowledge_sources",
    "Knowledge",
    "Every knowledge source has an owner, a freshness window and an audience",
    "Knowledge sources arrive with the knowledge base.",
)


@_register("action_policies")
def _action_policies() -> list[ReadinessLine]:
    policies = list(ActionPolicy.objects.filter(enabled=True))
    problems: dict[object, str] = {}
    for p in policies:
        if p.tier not in ActionTier.values:
            problems[p.pk] = f"{p}: no tier"
        elif not p.allowed_roles:
            problems[p.pk] = f"{p}: nobody may take it"
        elif not 1 <= p.enabled_from_stage <= 5:
            problems[p.pk] = f"{p}: no rollout stage"
        elif (p.tier == ActionTier.APPROVAL_REQUIRED or p.automated_limit is not None) and not p.approver_roles:
            problems[p.pk] = f"{p}: needs approval but names nobody who may approve"
    ok = f"{len(policies)} enabled actions, each with a tier, roles and a stage." if policies else "No action enabled."
    return [
        problems_line(
            "Actions",
            "Every enabled action has a tier, roles and a stage (and approvers where approval is needed)",
            problems,
            ok,
            ActionPolicy,
        )
    ]


# Escalation triggers every deployment needs, and what a rule of each kind must say to be able to fire.
REQUIRED_TRIGGERS = [
    EscalationTrigger.LOW_CONFIDENCE,
    EscalationTrigger.FRUSTRATION,
    EscalationTrigger.VIP,
    EscalationTrigger.COMPLIANCE,
    EscalationTrigger.REFUND_OVER_POLICY,
    EscalationTrigger.LOOP,
]
_NEEDS_THRESHOLD = {
    EscalationTrigger.LOW_CONFIDENCE,
    EscalationTrigger.FRUSTRATION,
    EscalationTrigger.REFUND_OVER_POLICY,
    EscalationTrigger.LOOP,
}


@_register("escalation_rules")
def _escalation_rules() -> list[ReadinessLine]:
    rules = list(EscalationRule.objects.filter(enabled=True))
    problems: dict[object, str] = {}
    for rule in rules:
        if rule.trigger in _NEEDS_THRESHOLD and rule.threshold is None:
            problems[rule.pk] = f"{rule}: no threshold, so it never fires"
        elif rule.trigger == EscalationTrigger.COMPLIANCE and not rule.keywords:
            problems[rule.pk] = f"{rule}: no keywords, so it never fires"
        elif rule.trigger == EscalationTrigger.VIP and not rule.account_tiers:
            problems[rule.pk] = f"{rule}: no account tiers, so it never fires"
    working = {rule.trigger for rule in rules if rule.pk not in problems}
    missing = [trigger.label for trigger in REQUIRED_TRIGGERS if trigger not in working]
    title = "Escalation covers low confidence, frustration, VIP, compliance, refunds over policy and loops"
    if not missing and not problems:
        detail = f"{len(rules)} enabled rules; every case is covered."
        return [ReadinessLine("Escalation", title, Status.PASS, detail, admin_url(EscalationRule))]
    parts = [f"No working rule for {listing(missing, 6)}"] if missing else []
    parts += [listing(list(problems.values()))] if problems else []
    url = admin_url(EscalationRule, list(problems))
    return [ReadinessLine("Escalation", title, Status.FAIL, "; ".join(parts) + ".", url)]


@_register("analytics")
def _analytics() -> list[ReadinessLine]:
    title = "Analytics metrics flow into the rollout gates"
    if not METRIC_PROVIDERS:
        detail = "Metrics arrive with analytics; until then every gate criterion reads 'no data yet' and none opens."
        return [ReadinessLine("Analytics", title, Status.NOT_CONFIGURED, detail)]
    used = sorted(set(GateCriterion.objects.values_list("metric", flat=True)))
    missing = [metric for metric in used if metric not in METRIC_PROVIDERS]
    if missing:
        detail = f"No provider for {listing(missing)}: these criteria never have data."
        return [ReadinessLine("Analytics", title, Status.FAIL, detail, admin_url(GateCriterion))]
    return [
        ReadinessLine("Analytics", title, Status.PASS, f"Every metric the gates read has a provider ({len(used)}).")
    ]


@_register("pii")
def _pii() -> list[ReadinessLine]:
    title = "Personal data is masked before text leaves for an outside model"
    if importlib.util.find_spec("governance.pii") is None:
        return [ReadinessLine("Privacy and security", title, Status.NOT_CONFIGURED, "PII masking has not landed yet.")]
    try:
        pii = importlib.import_module("governance.pii")
    except ImportError as exc:
        return [ReadinessLine("Privacy and security", title, Status.FAIL, f"governance.pii does not load: {exc}")]
    kinds = sorted(getattr(pii, "KINDS", ()))
    detail = "PII masking is installed" + (f"; it masks {', '.join(kinds)}." if kinds else ".")
    return [ReadinessLine("Privacy and security", title, Status.PASS, detail)]


@_register("secrets")
def _secrets() -> list[ReadinessLine]:
    secrets = list(SecretReference.objects.all())
    problems: dict[object, str] = {}
    for secret in secrets:
        # Presence only: the value itself is never read here.
        if secret.kind == SecretKind.ENVIRONMENT and not os.environ.get(secret.env_var or ""):
            problems[secret.pk] = f"{secret}: environment variable {secret.env_var or '(none named)'} is not set"
        elif secret.kind == SecretKind.ENCRYPTED and not secret.ciphertext:
            problems[secret.pk] = f"{secret}: no value stored yet"
        elif secret.kind == SecretKind.ENCRYPTED and not getattr(settings, "STEWARD_SECRETS_KEYS", None):
            problems[secret.pk] = f"{secret}: STEWARD_SECRETS_KEYS is not set, so it cannot be decrypted"
    ok = f"All {len(secrets)} secrets can be resolved." if secrets else "No secret referenced yet."
    return [problems_line("Privacy and security", "Every secret can be resolved", problems, ok, SecretReference)]


REQUIRED_RETENTION = [DataClass.TRANSCRIPTS, DataClass.CRM_VALUES, DataClass.AUDIT_EVIDENCE]


@_register("retention")
def _retention() -> list[ReadinessLine]:
    enabled = set(RetentionRule.objects.filter(enabled=True).values_list("data_class", flat=True))
    missing = [data_class.label for data_class in REQUIRED_RETENTION if data_class not in enabled]
    title = "Retention rules for transcripts, CRM values and audit evidence"
    if missing:
        detail = f"No enabled rule for: {listing(missing)}."
        return [ReadinessLine("Privacy and security", title, Status.FAIL, detail, admin_url(RetentionRule))]
    return [ReadinessLine("Privacy and security", title, Status.PASS, "All three are set.", admin_url(RetentionRule))]


@_register("audit_chain")
def _audit_chain() -> list[ReadinessLine]:
    """Re-hash the newest records (one query); the whole chain is for `manage.py audit_verify`."""
    title = "The audit chain is intact"
    rows = list(AuditRecord.objects.order_by("-seq").values(*HASHED_FIELDS, "hash")[:AUDIT_QUICK_CHECK])
    rows.reverse()
    url = admin_url(AuditRecord)
    previous: dict | None = None
    for row in rows:
        problem = ""
        if previous is not None and row["seq"] != previous["seq"] + 1:
            problem = f"records are missing before #{row['seq']}"
        elif previous is not None and row["prev_hash"] != previous["hash"]:
            problem = f"record #{row['seq']} does not link to the record before it"
        elif previous is None and row["seq"] == 1 and row["prev_hash"] != GENESIS_HASH:
            problem = "record #1 does not start the chain"
        elif record_hash(row) != row["hash"]:
            problem = f"record #{row['seq']} was altered: its content does not match its hash"
        if problem:
            return [ReadinessLine("Audit", title, Status.FAIL, f"{problem}; run manage.py audit_verify.", url)]
        previous = row
    detail = f"The newest {len(rows)} records verify; manage.py audit_verify checks the whole chain."
    return [ReadinessLine("Audit", title, Status.PASS, detail if rows else "No records yet.", url)]


@_register("rollout_gates")
def _rollout_gates() -> list[ReadinessLine]:
    section = "Rollout"
    gates = list(RolloutGate.objects.select_related("channel").prefetch_related("criteria"))
    thresholds: dict[object, str] = {}
    signoffs: dict[object, str] = {}
    for gate in gates:
        criteria = list(gate.criteria.all())
        unknown = sorted({c.metric for c in criteria if c.metric not in METRICS})
        regression = [c for c in criteria if c.kind == CriterionKind.ENTRY and c.metric == REGRESSION_METRIC]
        if not regression:
            thresholds[gate.pk] = f"{gate}: no entry criterion on {REGRESSION_METRIC}"
        elif unknown:
            thresholds[gate.pk] = f"{gate}: unknown metric {listing(unknown)}"
        elif problem := _regression_unmet(gate.channel.channel, regression):
            thresholds[gate.pk] = f"{gate}: {problem}"
        if not gate.required_signoffs:
            signoffs[gate.pk] = f"{gate}: opens on metrics alone"
    if not gates:
        detail = "No rollout gate is set up: no channel can move beyond its stage."
        thresholds_line = ReadinessLine(
            section, "Regression suite and acceptance thresholds", Status.FAIL, detail, admin_url(RolloutGate)
        )
    else:
        ok = f"{len(gates)} gates, each with a regression pass rate threshold its linked suites' latest runs meet."
        thresholds_line = problems_line(
            section, "Regression suite and acceptance thresholds", thresholds, ok, RolloutGate
        )
    signoff_ok = "Every gate needs a person's sign-off." if gates else "No gates yet."
    signoff_line = problems_line(section, "Every gate needs a sign-off to open", signoffs, signoff_ok, RolloutGate)
    return [thresholds_line, signoff_line]


REGRESSION_METRIC = "regression_pass_rate"


def _regression_unmet(channel: str, criteria: Sequence[GateCriterion]) -> str:
    """Say why the regression criteria of a gate are not met now (empty when they are): a threshold counts only when a
    suite linked to the gate has a recent run that meets it, never for merely being set."""
    problems = []
    for criterion in criteria:
        reading = metric_read(MetricQuery(channel, REGRESSION_METRIC, criterion.intent, criterion.window_days))
        key = metric_key(criterion)
        readings = ({key: reading.value}, {key: reading.error}, {key: reading.n}, {key: reading.part})
        (result,) = evaluate_criteria([criterion], *readings)
        if result.met:
            continue
        if reading.value is None and not reading.error:
            problems.append(f"no linked suite has run in the last {criterion.window_days} days")
        else:
            problems.append(result.describe())
    return "; ".join(problems)


@_register("first_release")
def _first_release() -> list[ReadinessLine]:
    title = "The first release is narrow (one or two channels, none beyond stage 3)"
    channels = list(ChannelRollout.objects.values_list("pk", "channel", "stage"))
    url = admin_url(ChannelRollout)
    if not channels:
        return [ReadinessLine("Rollout", title, Status.FAIL, "No channel has a rollout row yet.", url)]
    too_far = {pk: f"{name} is at stage {stage}" for pk, name, stage in channels if stage > FIRST_RELEASE_MAX_STAGE}
    if len(channels) > FIRST_RELEASE_MAX_CHANNELS:
        names = [name for _, name, _ in channels]
        detail = f"{len(channels)} channels ({listing(names)}); start with one or two"
        if too_far:
            detail += f"; {listing(list(too_far.values()))}"
        return [ReadinessLine("Rollout", title, Status.FAIL, detail + ".", url)]
    ok = ", ".join(f"{name} at stage {stage}" for _, name, stage in channels) + "."
    return [problems_line("Rollout", title, too_far, ok, ChannelRollout)]

"""The agent's line of the readiness report (governance.readiness): its intents, registered under "intents".

Registered from AgentConfig.ready()::

    from agent.readiness import intents_readiness
    from governance.readiness import READINESS_CHECKS

    READINESS_CHECKS["intents"] = intents_readiness

An intent the embedded responder routes to needs example messages; an action intent needs an enabled action policy
(governance decides every action by it) and something that carries the action out: a lookup (agent.tools.LOOKUPS) or
an executor a connector registered (governance.executors.ACTION_EXECUTORS).
"""

from __future__ import annotations

from agent.models import Intent, Route
from agent.tools import LOOKUPS
from governance.executors import ACTION_EXECUTORS
from governance.models import ActionPolicy
from governance.readiness import ReadinessLine, Status, admin_url, problems_line

SECTION = "Agent"
INTENTS_TITLE = "Intents are enabled, each with example messages"
ACTIONS_TITLE = "Every action intent has an enabled action policy and an executor or lookup"


def intents_readiness() -> list[ReadinessLine]:
    """Report on the enabled intents and the actions they lead to: two queries."""
    intents = list(Intent.objects.filter(enabled=True).order_by("name"))
    policies = dict(ActionPolicy.objects.values_list("action", "enabled"))
    if not intents:
        detail = "No intent is enabled: the agent recognises no request and can only search knowledge."
        return [
            ReadinessLine(SECTION, INTENTS_TITLE, Status.FAIL, detail, admin_url(Intent)),
            ReadinessLine(SECTION, ACTIONS_TITLE, Status.PASS, "No intent leads to an action.", admin_url(Intent)),
        ]
    bare = {i.pk: f"{i}: no example messages, so nothing routes to it" for i in intents if not i.examples}
    actions = {i.pk: problem for i in intents if (problem := _action_problem(i, policies))}
    action_count = sum(1 for i in intents if i.route == Route.ACTION)
    return [
        problems_line(SECTION, INTENTS_TITLE, bare, f"{len(intents)} enabled intents with examples.", Intent),
        problems_line(SECTION, ACTIONS_TITLE, actions, f"{action_count} action intents, each can act.", Intent),
    ]


def _action_problem(intent: Intent, policies: dict[str, bool]) -> str:
    if intent.route != Route.ACTION:
        return ""
    if not intent.action:
        return f"{intent}: routes to an action but names none"
    if intent.action not in policies:
        return f"{intent}: no action policy for {intent.action}"
    if not policies[intent.action]:
        return f"{intent}: the action policy {intent.action} is disabled"
    if intent.action not in ACTION_EXECUTORS and intent.action not in LOOKUPS:
        return f"{intent}: nothing carries out {intent.action} (no executor or lookup)"
    return ""

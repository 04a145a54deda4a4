"""Staff roles, customer verification levels and the principal every decision is made for.

Staff roles are Django groups (kept in sync by ``sync_roles``); customers are not Django users, their principal
carries a verification level instead. The agent's tools always run with the customer's principal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models


class Role(models.TextChoices):
    SUPPORT_ADMIN = "support_admin", "Support admin"
    SUPPORT_MANAGER = "support_manager", "Support manager"
    SUPPORT_AGENT = "support_agent", "Support agent"
    QA_REVIEWER = "qa_reviewer", "QA reviewer"
    # Not a group: the customer in a conversation, acting through the AI agent.
    CUSTOMER = "customer", "Customer (through the AI agent)"


STAFF_ROLES = [Role.SUPPORT_ADMIN, Role.SUPPORT_MANAGER, Role.SUPPORT_AGENT, Role.QA_REVIEWER]
# Group names as admins see them in Django admin.
GROUP_NAMES = {role.value: role.label for role in STAFF_ROLES}


class Verification(models.IntegerChoices):
    """How sure we are who the customer is; higher includes lower."""

    ANONYMOUS = 0, "Anonymous visitor"
    EMAIL_VERIFIED = 1, "Email verified (one-time code)"
    IDENTITY_VERIFIED = 2, "Identity verified (signed token or logged-in account)"


class ActorKind(models.TextChoices):
    USER = "user", "Staff user"
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "AI agent"
    SYSTEM = "system", "System"


@dataclass(frozen=True)
class Principal:
    """Who a read, write or action is for. Pure data: policies decide from it without the database."""

    kind: str
    roles: frozenset[str] = field(default_factory=frozenset)
    verification: int = Verification.ANONYMOUS
    user_id: int | None = None
    customer_id: str | None = None
    label: str = ""

    @classmethod
    def customer(cls, *, verification: int, customer_id: str | None = None, label: str = "") -> Principal:
        return cls(
            kind=ActorKind.CUSTOMER,
            roles=frozenset({Role.CUSTOMER}),
            verification=verification,
            customer_id=customer_id,
            label=label or (f"customer {customer_id}" if customer_id else "visitor"),
        )

    @classmethod
    def staff(cls, user) -> Principal:  # type: ignore[no-untyped-def]
        """Return the principal of a staff user: their role groups (a superuser holds every staff role)."""
        if user.is_superuser:
            roles = frozenset(role.value for role in STAFF_ROLES)
        else:
            names = {name: value for value, name in GROUP_NAMES.items()}
            roles = frozenset(names[g.name] for g in user.groups.all() if g.name in names)
        return cls(
            kind=ActorKind.USER,
            roles=roles,
            verification=Verification.IDENTITY_VERIFIED,
            user_id=user.pk,
            label=user.get_username(),
        )

    @classmethod
    def system(cls, label: str = "system") -> Principal:
        return cls(kind=ActorKind.SYSTEM, label=label)


# Permissions each staff role holds, as "app_label.codename". Models of later issues add their lines here; a
# permission whose model does not exist yet is skipped and picked up by the next `sync_roles` (run by migrations
# and by `make run`).
_GOVERNANCE_CONFIG = [
    "fieldmapping",
    "actionpolicy",
    "escalationrule",
    "retentionrule",
    "channelrollout",
    "rolloutgate",
    "gatecriterion",
    "secretreference",
]


def _crud(app: str, models_: list[str], actions: tuple[str, ...] = ("add", "change", "delete", "view")) -> list[str]:
    return [f"{app}.{action}_{model}" for model in models_ for action in actions]


# The handoff console (agent/console): view conversations, and take over / reply / hand back / close them.
CONSOLE_PERMISSIONS = ["agent.view_conversation", "agent.change_conversation"]

# QA review (qa/): sampling rules and the scorecard are configuration; reviewing an item needs
# ``qa.review_reviewitem`` on that item (a django-guardian object permission its assignee gets) or on the model
# (managers review anything); managers settle disagreements. Regression suites (suites/): cases, runs, results.
_QA_CONFIG = ["samplingrule", "scorecardcriterion"]
_SUITES = ["regressionsuite", "regressioncase"]
QA_READ = [
    "qa.view_reviewitem",
    "qa.view_review",
    "qa.view_fixrequest",
    "suites.view_suiterun",
    "suites.view_caseresult",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.SUPPORT_ADMIN: [
        *_crud("governance", _GOVERNANCE_CONFIG),
        "governance.view_auditrecord",
        "governance.export_auditrecord",
        "governance.view_approvalrequest",
        "governance.decide_approvalrequest",
        "governance.view_gatesignoff",
        "governance.view_gateevaluation",
        "governance.rotate_secretreference",
        "governance.signoff_rolloutgate",
        *_crud("django_celery_beat", ["periodictask", "intervalschedule", "crontabschedule"]),
        "auth.view_user",  # owner pickers (autocomplete) on mappings, secrets and sources
        *_crud("connectors", ["connector"]),
        "connectors.view_writereceipt",
        *_crud("knowledge", ["knowledgesource"]),
        "knowledge.approve_knowledgesource",
        "knowledge.reindex_knowledgesource",
        "knowledge.view_document",
        "knowledge.delete_document",
        "knowledge.view_chunk",
        "knowledge.view_ingestionrun",
        "knowledge.view_failedretrieval",
        *CONSOLE_PERMISSIONS,
        *_crud("agent", ["intent"]),
        *_crud("agent", ["promptversion"], ("add", "change", "view")),  # versions are kept: traces name them
        "agent.view_turntrace",
        "analytics.view_analyticsevent",
        *_crud("qa", _QA_CONFIG),
        *QA_READ,
        "qa.change_fixrequest",
        *_crud("suites", _SUITES),
        "suites.run_regressionsuite",
        *_crud("dashboard", ["costsettings"], ("add", "change", "view")),  # the ROI view's costs (docs/roi.md)
    ],
    Role.SUPPORT_MANAGER: [
        *_crud("governance", _GOVERNANCE_CONFIG + ["approvalrequest", "gatesignoff", "gateevaluation"], ("view",)),
        "governance.view_auditrecord",
        "governance.export_auditrecord",
        "governance.decide_approvalrequest",
        "governance.signoff_rolloutgate",
        "governance.change_channelrollout",
        "knowledge.view_knowledgesource",
        "knowledge.approve_knowledgesource",
        "knowledge.reindex_knowledgesource",
        "knowledge.view_document",
        "knowledge.view_chunk",
        "knowledge.view_ingestionrun",
        "knowledge.view_failedretrieval",
        *CONSOLE_PERMISSIONS,
        "agent.view_turntrace",
        "analytics.view_analyticsevent",
        *_crud("qa", _QA_CONFIG, ("change", "view")),
        *QA_READ,
        "qa.review_reviewitem",
        "qa.settle_reviewitem",
        "qa.add_fixrequest",
        "qa.change_fixrequest",
        "qa.add_conversationflag",
        *_crud("suites", _SUITES),
        "suites.run_regressionsuite",
        *_crud("dashboard", ["costsettings"], ("add", "change", "view")),
    ],
    Role.SUPPORT_AGENT: [
        "governance.view_approvalrequest",
        "governance.decide_approvalrequest",
        "governance.view_actionpolicy",
        "governance.view_fieldmapping",
        "governance.view_escalationrule",
        "knowledge.view_knowledgesource",
        "knowledge.view_document",
        *CONSOLE_PERMISSIONS,
        "qa.add_conversationflag",
    ],
    Role.QA_REVIEWER: [
        "governance.view_auditrecord",
        "governance.view_approvalrequest",
        "governance.view_actionpolicy",
        "governance.view_fieldmapping",
        "knowledge.view_knowledgesource",
        "knowledge.view_document",
        "knowledge.view_chunk",
        "knowledge.view_failedretrieval",
        "agent.view_conversation",  # the handoff console, read-only
        "agent.view_turntrace",
        "qa.add_fixrequest",
        "qa.view_fixrequest",
        "qa.add_conversationflag",
        "suites.view_regressionsuite",
        "suites.view_regressioncase",
        "suites.add_regressioncase",
        "suites.view_suiterun",
    ],
}


def sync_roles(apps=None) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Create the role groups and give each exactly the permissions above that exist; return counts per group.

    Usable from a migration (pass its ``apps``) and at run time. Staff get roles by group membership.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    for app_config in global_apps.get_app_configs():
        # Migrations run before post_migrate creates permissions; create them now (from the migration state when
        # called from a migration) so that groups can hold them.
        create_permissions(app_config, verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    counts: dict[str, int] = {}
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        wanted = set()
        for name in names:
            app_label, codename = name.split(".", 1)
            wanted.update(
                Permission.objects.filter(content_type__app_label=app_label, codename=codename).values_list(
                    "pk", flat=True
                )
            )
        group.permissions.set(wanted)
        counts[GROUP_NAMES[role]] = len(wanted)
    return counts

"""factory_boy factories for knowledge tests."""

from __future__ import annotations

from datetime import date, timedelta

import factory

from governance.tests.factories import UserFactory
from knowledge.models import DUE_GRACE_DAYS, Audience, KnowledgeSource, Origin, SourceKind, SourceStatus


class KnowledgeSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeSource
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Help centre {n}")
    kind = SourceKind.HELP_ARTICLE
    owner = factory.SubFactory(UserFactory)
    audience = Audience.PUBLIC
    status = SourceStatus.APPROVED
    origin = Origin.UPLOAD
    last_reviewed_on = factory.LazyFunction(date.today)
    review_interval_days = 180
    # What knowledge.services computes on every save (KnowledgeSource.compute_review_dates).
    review_due_on = factory.LazyAttribute(lambda s: s.last_reviewed_on + timedelta(days=s.review_interval_days))
    stale_on = factory.LazyAttribute(lambda s: s.review_due_on + timedelta(days=DUE_GRACE_DAYS))


# The knowledge permissions each role should hold. Until governance/roles.py ROLE_PERMISSIONS lists them (requested
# from its owner), tests give them to the role groups here; once it does, this is a no-op.
KNOWLEDGE_ROLE_PERMISSIONS = {
    "support_admin": [
        "add_knowledgesource",
        "change_knowledgesource",
        "delete_knowledgesource",
        "view_knowledgesource",
        "approve_knowledgesource",
        "reindex_knowledgesource",
        "view_document",
        "delete_document",
        "view_chunk",
        "view_ingestionrun",
        "view_failedretrieval",
    ],
    "support_manager": [
        "view_knowledgesource",
        "approve_knowledgesource",
        "reindex_knowledgesource",
        "view_document",
        "view_chunk",
        "view_ingestionrun",
        "view_failedretrieval",
    ],
    "support_agent": ["view_knowledgesource", "view_document"],
    "qa_reviewer": ["view_knowledgesource", "view_document", "view_chunk", "view_failedretrieval"],
}


def grant_knowledge_role_permissions() -> None:
    from django.contrib.auth.models import Group, Permission

    from governance.roles import GROUP_NAMES

    for role, codenames in KNOWLEDGE_ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=GROUP_NAMES[role])
        group.permissions.add(*Permission.objects.filter(content_type__app_label="knowledge", codename__in=codenames))

"""factory_boy factories for governance tests."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from governance.models import ActionPolicy, ActionTier, ApprovalRequest, FieldMapping
from governance.roles import GROUP_NAMES, Role, Verification


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@brewline.example")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        for role in extracted or []:
            self.groups.add(Group.objects.get(name=GROUP_NAMES[role]))


class FieldMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldMapping

    system = "demo_crm"
    object = "customer"
    field_path = factory.Sequence(lambda n: f"field_{n}")
    label = factory.LazyAttribute(lambda m: m.field_path.replace("_", " ").title())
    owner = factory.SubFactory(UserFactory)
    read_roles = factory.LazyFunction(lambda: [Role.CUSTOMER.value, Role.SUPPORT_AGENT.value])
    read_min_verification = Verification.IDENTITY_VERIFIED
    write_roles = factory.LazyFunction(list)
    purpose = "Tell the customer about their own account."


class ActionPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActionPolicy
        django_get_or_create = ("action",)

    action = factory.Sequence(lambda n: f"action_{n}")
    label = factory.LazyAttribute(lambda p: p.action.replace("_", " ").capitalize())
    tier = ActionTier.AUTOMATED
    allowed_roles = factory.LazyFunction(lambda: [Role.CUSTOMER.value, Role.SUPPORT_AGENT.value])
    min_verification = Verification.IDENTITY_VERIFIED
    enabled_from_stage = 1


class ApprovalRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalRequest

    action = factory.SubFactory(ActionPolicyFactory, tier=ActionTier.APPROVAL_REQUIRED)
    arguments = factory.LazyFunction(lambda: {"order_id": "BL-10042", "amount": "120.00"})
    principal = factory.LazyFunction(lambda: {"kind": "customer", "verification": 2, "customer_id": "C-1001"})
    conversation_id = "7d1f0c1e-0000-4000-8000-000000000001"
    requester_label = "AI agent for customer C-1001"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))

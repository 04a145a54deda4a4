"""Load the demo company (Brewline Coffee). Idempotent: running it again changes nothing that is already there."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agent.demo import seed_intents, seed_prompt_versions
from connectors.demo import DemoSeedError, seed_connectors
from connectors.helpdesk_schema import HelpdeskSetupError, ensure_helpdesk_schema, seed_helpdesk_connector
from governance.demo import seed_governance
from knowledge.demo import DemoContentError, seed_knowledge
from qa.demo import seed_qa
from suites.demo import seed_suites

DEMO_COMPANY = "Brewline Coffee"


def _site() -> dict[str, int]:
    domain = urlsplit(settings.SITE_URL).netloc
    _, created = Site.objects.update_or_create(
        pk=settings.SITE_ID, defaults={"domain": domain, "name": f"Steward — {DEMO_COMPANY}"}
    )
    return {"site": int(created)}


def _helpdesk() -> dict[str, int]:
    return {**ensure_helpdesk_schema(), **seed_helpdesk_connector()}


# (label, step, in one transaction?) — in order: the owners seed_governance creates are used by every later step.
STEPS: list[tuple[str, Callable[[], dict[str, int]], bool]] = [
    ("Site", _site, True),
    ("Governance", seed_governance, True),
    ("QA", seed_qa, True),
    ("Intents", seed_intents, True),
    ("Prompts", seed_prompt_versions, True),
    # Own transactions: the connector rows, then Brewline's ~10,000 demo records (~2 s) without the audit-chain lock.
    ("Connectors", seed_connectors, False),
    ("Helpdesk", _helpdesk, True),
    # Not in a transaction: the first run embeds the articles (~20 s), and an open transaction would hold the
    # audit-chain lock all that time.
    ("Knowledge", seed_knowledge, False),
    ("Suites", seed_suites, True),
]


class Command(BaseCommand):
    help = "Load the demo company's configuration and content (safe to run again)."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(f"Demo company: {DEMO_COMPANY}")
        for label, step, atomic in STEPS:
            try:
                if atomic:
                    with transaction.atomic():
                        made = step()
                else:
                    made = step()
            except (DemoContentError, HelpdeskSetupError, DemoSeedError) as exc:
                raise CommandError(f"{label}: {exc}") from None
            summary = ", ".join(f"{count} {name}" for name, count in made.items() if count) or "nothing new"
            self.stdout.write(f"  {label}: {summary}.")

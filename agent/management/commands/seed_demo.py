"""Load the demo company (Brewline Coffee). Idempotent: running it again changes nothing that is already there."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand
from django.db import transaction
from helpdesk.models import Queue

from governance.demo import seed_governance

DEMO_COMPANY = "Brewline Coffee"


class Command(BaseCommand):
    help = "Load the demo company's configuration and content (safe to run again)."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        domain = urlsplit(settings.SITE_URL).netloc
        Site.objects.update_or_create(
            pk=settings.SITE_ID, defaults={"domain": domain, "name": f"Steward — {DEMO_COMPANY}"}
        )
        queue, created = Queue.objects.get_or_create(
            slug="support", defaults={"title": "Customer support", "allow_public_submission": False}
        )
        self.stdout.write(
            f"Demo company {DEMO_COMPANY!r}: site {domain}, helpdesk queue {queue.slug!r}"
            f"{' created' if created else ' present'}."
        )
        made = seed_governance()
        summary = ", ".join(f"{count} {name}" for name, count in made.items() if count) or "nothing new"
        self.stdout.write(f"Governance: {summary}.")

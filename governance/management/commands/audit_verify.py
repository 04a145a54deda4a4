"""Walk the audit chain and name the first broken record."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from governance.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit 1 naming the first broken record."

    def handle(self, *args: object, **options: object) -> None:
        report = audit_verify()
        if not report.ok:
            raise CommandError(
                f"Audit chain broken at record #{report.first_broken_seq}: {report.problem} "
                f"({report.checked} records before it are intact).",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} records."))
